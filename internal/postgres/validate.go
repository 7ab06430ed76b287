package postgres

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parleychat/parley"
)

// Validation happens before a write is queued, so a bad call never takes a
// place in a batch. Every failure is EINVALID with a message that names the
// field.

// maxIDLen bounds user ids made by integrators and attachment ids.
const maxIDLen = 128

// PostgreSQL's text cannot hold NUL; unlike internal/sqlite, this store
// refuses it (EINVALID) in every string it keeps, rather than failing the
// write with an internal error.
func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

func validID(field, id string) error {
	switch {
	case hasNUL(id):
		return invalidf("%s holds a NUL character", field)
	case id == "":
		return invalidf("%s is required", field)
	case len(id) > maxIDLen:
		return invalidf("%s is longer than %d bytes", field, maxIDLen)
	case !utf8.ValidString(id):
		return invalidf("%s is not valid UTF-8", field)
	}
	return nil
}

// validUsername: 3..MaxUsernameRunes letters, digits, '_', '-' or '.'.
func validUsername(name string) error {
	n := utf8.RuneCountInString(name)
	if !utf8.ValidString(name) {
		return invalidf("username is not valid UTF-8")
	}
	if n < 3 || n > parley.MaxUsernameRunes {
		return invalidf("username must be 3 to %d characters", parley.MaxUsernameRunes)
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return invalidf("username may hold only letters, digits, '_', '-' and '.'")
		}
	}
	return nil
}

// validDisplayName is the looser rule for names in integrators' tokens:
// 1..MaxUsernameRunes printable characters, not blank.
func validDisplayName(name string) error {
	if !utf8.ValidString(name) {
		return invalidf("name is not valid UTF-8")
	}
	if strings.TrimSpace(name) == "" {
		return invalidf("name is required")
	}
	if utf8.RuneCountInString(name) > parley.MaxUsernameRunes {
		return invalidf("name is longer than %d characters", parley.MaxUsernameRunes)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return invalidf("name holds a control character")
		}
	}
	return nil
}

func validTitle(title string) error {
	if !utf8.ValidString(title) {
		return invalidf("title is not valid UTF-8")
	}
	if hasNUL(title) {
		return invalidf("title holds a NUL character")
	}
	if utf8.RuneCountInString(title) > parley.MaxTitleRunes {
		return invalidf("title is longer than %d characters", parley.MaxTitleRunes)
	}
	return nil
}

// validText: required means at least one non-blank character.
func validText(text string, required bool) error {
	if !utf8.ValidString(text) {
		return invalidf("text is not valid UTF-8")
	}
	if hasNUL(text) {
		return invalidf("text holds a NUL character")
	}
	if required && strings.TrimSpace(text) == "" {
		return invalidf("text is required")
	}
	if utf8.RuneCountInString(text) > parley.MaxTextRunes {
		return invalidf("text is longer than %d characters", parley.MaxTextRunes)
	}
	return nil
}

func validNewMessage(m *parley.NewMessage) error {
	if err := validID("conversation_id", m.ConversationID); err != nil {
		return err
	}
	if err := validID("sender_id", m.SenderID); err != nil {
		return err
	}
	switch {
	case m.ClientID == "":
		return invalidf("client_id is required")
	case len(m.ClientID) > parley.MaxClientIDLen:
		return invalidf("client_id is longer than %d bytes", parley.MaxClientIDLen)
	case !utf8.ValidString(m.ClientID):
		return invalidf("client_id is not valid UTF-8")
	case hasNUL(m.ClientID):
		return invalidf("client_id holds a NUL character")
	}
	switch m.Type {
	case parley.Text:
		if m.AttachmentID != "" {
			return invalidf("a text message has no attachment_id")
		}
		return validText(m.Text, true)
	case parley.Image:
		if err := validID("attachment_id", m.AttachmentID); err != nil {
			return err
		}
		return validText(m.Text, false)
	}
	return invalidf("type must be %q or %q", parley.Text, parley.Image)
}

// dedupe returns ids without duplicates and without skip, in first-seen
// order, checking each.
func dedupe(field string, ids []string, skip string) ([]string, error) {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := validID(field, id); err != nil {
			return nil, err
		}
		if id == skip || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out, nil
}

// pageLimit applies the default and the clamp.
func pageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, invalidf("limit must not be negative")
	case limit == 0:
		return parley.DefaultPageLimit, nil
	case limit > parley.MaxPageLimit:
		return parley.MaxPageLimit, nil
	}
	return limit, nil
}

// eventLimit bounds a page of the event log: at least 1, at most one more
// than ResumeLimit (what a resume asks for to detect "too far behind").
func eventLimit(after int64, limit int) (int, error) {
	switch {
	case after < 0:
		return 0, invalidf("after must not be negative")
	case limit <= 0:
		return 0, invalidf("limit must be positive")
	}
	return min(limit, parley.ResumeLimit+1), nil
}
