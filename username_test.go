package parley

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizeUsername(t *testing.T) {
	for _, tt := range []struct{ in, want, code string }{
		{"alice", "alice", ""},
		{"Alice", "alice", ""},
		{"ＡＬＩＣＥ", "alice", ""}, // full width
		{"émile", "émile", ""},
		{"e\u0301mile", "émile", ""}, // NFC
		{"дмитрий", "дмитрий", ""},
		{"a.b-c_d", "a.b-c_d", ""},
		{"ab", "", EINVALID},
		{"a b c", "", EINVALID},
		{"bad\xffname", "", EINVALID},
		{"admin!", "", EINVALID},
		{"adm\u200bin", "", EINVALID}, // zero-width space
		{strings.Repeat("x", MaxUsernameRunes+1), "", EINVALID},
		{strings.Repeat("é", MaxUsernameRunes), strings.Repeat("é", MaxUsernameRunes), ""},
	} {
		got, err := NormalizeUsername(tt.in)
		if ErrorCode(err) != tt.code || got != tt.want {
			t.Errorf("NormalizeUsername(%q) = %q, %v; want %q, code %q", tt.in, got, err, tt.want, tt.code)
		}
	}
}

func TestNameKey(t *testing.T) {
	same := []string{"admin", "ADMIN", "\u0430dmin", "adm\u0131n", "admіn", "ａｄｍｉｎ"}
	for _, n := range same[1:] {
		if NameKey(n) != NameKey(same[0]) {
			t.Errorf("NameKey(%q) = %q, want NameKey(%q) = %q", n, NameKey(n), same[0], NameKey(same[0]))
		}
	}
	for _, n := range []string{"admins", "bob", "amin", "Ext One", "adm1n"} {
		if NameKey(n) == NameKey("admin") {
			t.Errorf("NameKey(%q) == NameKey(admin)", n)
		}
	}
	if NameKey("Ext  One") != NameKey("ext one") {
		t.Errorf("display names: NameKey(%q) = %q, NameKey(%q) = %q", "Ext  One", NameKey("Ext  One"), "ext one", NameKey("ext one"))
	}
}

// FuzzUsername: NormalizeUsername never panics, is idempotent, returns a
// valid name of 3..MaxUsernameRunes runes, and the name keeps its key
// (so the store's uniqueness holds whatever form a client sends); NameKey
// never panics on any string.
func FuzzUsername(f *testing.F) {
	for _, s := range []string{"alice", "Alice", "ＡＬＩＣＥ", "e\u0301mile", "дмитрий", "\u0430dmin", "adm\u0131n",
		"a b c", "bad\xffname", "adm\u200bin", "ǅemal", "ßtraße", "ﬁne", "İstanbul", "ΣΑΣ", "x\u0345y", "Ext One"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := NameKey(s)
		if utf8.ValidString(s) && !utf8.ValidString(k) {
			t.Fatalf("NameKey(%q) = %q: not UTF-8", s, k)
		}
		n, err := NormalizeUsername(s)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("NormalizeUsername(%q): %v, want invalid", s, err)
			}
			return
		}
		if c := utf8.RuneCountInString(n); c < 3 || c > MaxUsernameRunes {
			t.Fatalf("NormalizeUsername(%q) = %q: %d runes", s, n, c)
		}
		n2, err := NormalizeUsername(n)
		if err != nil || n2 != n {
			t.Fatalf("NormalizeUsername(%q) = %q, but NormalizeUsername(%q) = %q, %v", s, n, n, n2, err)
		}
		if NameKey(n) != k {
			t.Fatalf("NameKey(%q) = %q, NameKey(normalized %q) = %q", s, k, n, NameKey(n))
		}
	})
}
