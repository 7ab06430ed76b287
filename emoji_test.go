package parley

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

var emojiCases = []struct {
	emoji string
	ok    bool
}{
	{"👍", true},
	{"👍🏽", true},         // skin tone (Sk)
	{"❤️", true},         // heart + VS16 (Mn)
	{"👨‍👩‍👧‍👦", true},    // ZWJ family
	{"🇫🇷", true},         // regional indicator pair
	{"1️⃣", true},        // keycap
	{"#⃣", true},         // keycap without VS16
	{"🏴󠁧󠁢󠁳󠁣󠁴󠁿", true},    // subdivision flag (tags)
	{"👩🏻‍❤️‍💋‍👨🏼", true}, // 10 code points, 35 bytes
	{"", false},
	{"a", false},
	{"1", false},       // a digit without the keycap
	{"1\uFE0F", false}, // nor with only the variation selector
	{"👍 ", false},      // a space
	{"👍a", false},
	{"\u200D", false}, // no symbol
	{"\uFE0F", false},
	{"\x00", false},
	{"\xff", false},
	{"👍\n", false},
	{strings.Repeat("👍", MaxEmojiRunes), true},
	{strings.Repeat("👍", MaxEmojiRunes+1), false}, // 17 runes, 68 bytes
	{strings.Repeat("\u00A9", MaxEmojiRunes), true},
	{strings.Repeat("©", MaxEmojiRunes+1), false},
}

func TestValidateEmoji(t *testing.T) {
	for _, tt := range emojiCases {
		err := ValidateEmoji(tt.emoji)
		if got := err == nil; got != tt.ok {
			t.Errorf("ValidateEmoji(%q) = %v, want ok %v", tt.emoji, err, tt.ok)
		}
		if err != nil && ErrorCode(err) != EINVALID {
			t.Errorf("ValidateEmoji(%q) code = %q, want invalid", tt.emoji, ErrorCode(err))
		}
	}
}

// FuzzValidateEmoji: an accepted emoji is short, valid UTF-8, holds a
// symbol and nothing a sentence is made of.
func FuzzValidateEmoji(f *testing.F) {
	for _, tt := range emojiCases {
		f.Add(tt.emoji)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateEmoji(s) != nil {
			return
		}
		if !utf8.ValidString(s) || len(s) > MaxEmojiBytes || utf8.RuneCountInString(s) > MaxEmojiRunes {
			t.Fatalf("accepted %q: too long or not UTF-8", s)
		}
		symbol := false
		for _, r := range s {
			if unicode.IsLetter(r) || unicode.IsSpace(r) || unicode.IsControl(r) || (unicode.IsPunct(r) && r != '#' && r != '*') {
				t.Fatalf("accepted %q holding %U", s, r)
			}
			if unicode.Is(unicode.So, r) {
				symbol = true
			}
		}
		if !symbol && !strings.ContainsRune(s, 0x20E3) {
			t.Fatalf("accepted %q without a symbol", s)
		}
	})
}

func TestValidateEdit(t *testing.T) {
	ok := MessageEdit{UserID: "u", ConversationID: "c", MessageID: "m", ClientID: "k", Text: "hi"}
	for name, tt := range map[string]struct {
		edit func(*MessageEdit)
		want string
	}{
		"valid":           {func(*MessageEdit) {}, ""},
		"empty text":      {func(e *MessageEdit) { e.Text = "" }, ""}, // an image's caption may be emptied; the store checks text messages
		"no client id":    {func(e *MessageEdit) { e.ClientID = "" }, EINVALID},
		"no message id":   {func(e *MessageEdit) { e.MessageID = "" }, EINVALID},
		"by client id":    {func(e *MessageEdit) { e.MessageID, e.MessageClientID = "", "mk" }, ""},
		"both ids":        {func(e *MessageEdit) { e.MessageClientID = "mk" }, EINVALID},
		"text too long":   {func(e *MessageEdit) { e.Text = strings.Repeat("x", MaxTextRunes+1) }, EINVALID},
		"text with NUL":   {func(e *MessageEdit) { e.Text = "\x00" }, EINVALID},
		"client id w NUL": {func(e *MessageEdit) { e.ClientID = "\x00" }, EINVALID},
	} {
		e := ok
		tt.edit(&e)
		if got := ErrorCode(e.Validate()); got != tt.want {
			t.Errorf("%s: code %q, want %q", name, got, tt.want)
		}
	}
}
