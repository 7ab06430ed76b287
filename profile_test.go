package parley_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parleychat/parley"
)

func TestNormalizeProfileName(t *testing.T) {
	for in, want := range map[string]string{
		"Alice":       "Alice",
		"  Zoë Ω 李  ": "Zoë Ω 李",
		"":            "",
		"   ":         "",
		"a-b_c (d) 👍": "a-b_c (d) 👍",
		"e\u0301":     "e\u0301", // a combining mark is fine
		strings.Repeat("é", parley.MaxDisplayNameRunes): strings.Repeat("é", parley.MaxDisplayNameRunes),
	} {
		if got, err := parley.NormalizeProfileName(in); err != nil || got != want {
			t.Errorf("NormalizeProfileName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"a\x00b", "a\x07b", "a\nb", "a\tb", "a\u202eb", "a\u2066b", "a\u200bb", "a\u200db", "a\u2028b",
		"a\ufeffb", "a\ue000b", "a\xffb", "\U000e0001", strings.Repeat("x", parley.MaxDisplayNameRunes+1),
	} {
		if got, err := parley.NormalizeProfileName(in); parley.ErrorCode(err) != parley.EINVALID {
			t.Errorf("NormalizeProfileName(%q) = %q, %v; want invalid", in, got, err)
		}
	}
}

// FuzzNormalizeProfileName: an accepted name is valid UTF-8, bounded,
// trimmed, free of what the rule refuses, and accepted again unchanged.
func FuzzNormalizeProfileName(f *testing.F) {
	for _, s := range []string{"Alice", "  x ", "a\u202eb", "\xff", "e\u0301", "👍🏽", "a\u200db", strings.Repeat("é", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parley.NormalizeProfileName(in)
		if err != nil {
			if parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("%q: %v, want invalid", in, err)
			}
			return
		}
		if !utf8.ValidString(got) || utf8.RuneCountInString(got) > parley.MaxDisplayNameRunes || strings.TrimSpace(got) != got {
			t.Fatalf("%q accepted as %q", in, got)
		}
		for _, r := range got {
			if r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200b || r == 0x200d {
				t.Fatalf("%q accepted as %q holding U+%04X", in, got, r)
			}
		}
		if again, err := parley.NormalizeProfileName(got); err != nil || again != got {
			t.Fatalf("%q: again %q, %v", got, again, err)
		}
	})
}
