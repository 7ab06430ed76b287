package parley

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := NewMessage{ConversationID: "c", SenderID: "u", ClientID: "k", Type: Text, Text: "hi"}
	tests := []struct {
		name string
		edit func(*NewMessage)
		want string // "" for valid
	}{
		{"valid", func(*NewMessage) {}, ""},
		{"blank text", func(m *NewMessage) { m.Text = " \n\t" }, EINVALID},
		{"text too long", func(m *NewMessage) { m.Text = strings.Repeat("é", MaxTextRunes+1) }, EINVALID},
		{"text at the limit", func(m *NewMessage) { m.Text = strings.Repeat("é", MaxTextRunes) }, ""},
		{"text not UTF-8", func(m *NewMessage) { m.Text = "\xff" }, EINVALID},
		{"text with NUL", func(m *NewMessage) { m.Text = "a\x00b" }, EINVALID},
		{"no client id", func(m *NewMessage) { m.ClientID = "" }, EINVALID},
		{"client id too long", func(m *NewMessage) { m.ClientID = strings.Repeat("k", MaxClientIDLen+1) }, EINVALID},
		{"client id with NUL", func(m *NewMessage) { m.ClientID = "k\x00" }, EINVALID},
		{"unknown type", func(m *NewMessage) { m.Type = "video" }, EINVALID},
		{"text with attachment", func(m *NewMessage) { m.AttachmentID = "a" }, EINVALID},
		{"image without attachment", func(m *NewMessage) { m.Type, m.Text = Image, "" }, EINVALID},
		{"image with caption", func(m *NewMessage) { m.Type, m.AttachmentID = Image, "a" }, ""},
		{"no conversation", func(m *NewMessage) { m.ConversationID = "" }, EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ok
			tt.edit(&m)
			if got := ErrorCode(m.Validate()); got != tt.want {
				t.Fatalf("Validate() code = %q, want %q", got, tt.want)
			}
		})
	}
	for name, err := range map[string]error{
		"username too short":     ValidateUsername("ab"),
		"username with space":    ValidateUsername("a b c"),
		"display name blank":     ValidateDisplayName("  "),
		"display name control":   ValidateDisplayName("a\x07"),
		"title too long":         ValidateTitle(strings.Repeat("t", MaxTitleRunes+1)),
		"title with NUL":         ValidateTitle("t\x00"),
		"id too long":            ValidateID("id", strings.Repeat("i", MaxIDLen+1)),
		"negative page limit":    func() error { _, err := PageLimit(-1); return err }(),
		"zero event limit":       func() error { _, err := EventLimit(0, 0); return err }(),
		"negative event cursor":  func() error { _, err := EventLimit(-1, 10); return err }(),
		"duplicate ids with NUL": func() error { _, err := DedupeIDs("member id", []string{"a", "b\x00"}, ""); return err }(),
	} {
		if ErrorCode(err) != EINVALID {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if n, _ := PageLimit(0); n != DefaultPageLimit {
		t.Errorf("PageLimit(0) = %d, want %d", n, DefaultPageLimit)
	}
	if n, _ := PageLimit(1000); n != MaxPageLimit {
		t.Errorf("PageLimit(1000) = %d, want %d", n, MaxPageLimit)
	}
	if ids, _ := DedupeIDs("member id", []string{"a", "me", "b", "a"}, "me"); strings.Join(ids, ",") != "a,b" {
		t.Errorf("DedupeIDs = %v, want [a b]", ids)
	}
}
