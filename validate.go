package parley

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"
)

// The validation rules every Store applies before a write is queued, so a
// bad call never takes a place in a batch and every store refuses the same
// input with the same message. Every failure is an *Error with EINVALID
// that names the field.

// MaxIDLen bounds user ids made by integrators and attachment ids.
const MaxIDLen = 128

// NUL is refused in every string a store keeps: PostgreSQL's text cannot
// hold it, and the stores must accept the same input.
func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// ValidateID checks an id named field: required, valid UTF-8, no NUL, at
// most MaxIDLen bytes.
func ValidateID(field, id string) error {
	switch {
	case hasNUL(id):
		return invalidf("%s holds a NUL character", field)
	case id == "":
		return invalidf("%s is required", field)
	case len(id) > MaxIDLen:
		return invalidf("%s is longer than %d bytes", field, MaxIDLen)
	case !utf8.ValidString(id):
		return invalidf("%s is not valid UTF-8", field)
	}
	return nil
}

// ValidateUsername checks a username as NormalizeUsername does.
func ValidateUsername(name string) error {
	_, err := NormalizeUsername(name)
	return err
}

// NormalizeUsername returns the form of a username that is stored and
// compared: the PRECIS UsernameCaseMapped profile (RFC 8265: full-width
// characters to their normal width, lower case, NFC; spaces, symbols,
// control and unassigned characters refused), which then must be
// 3..MaxUsernameRunes letters, digits, '_', '-' or '.'. Letters and digits
// of any script are allowed ("émile", "дмитрий"): look-alikes of a name
// are refused by NameKey's uniqueness, not by banning scripts.
// NormalizeUsername(NormalizeUsername(x)) == NormalizeUsername(x).
func NormalizeUsername(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", invalidf("username is not valid UTF-8")
	}
	// A bound before PRECIS, so a huge input costs no mapping work.
	if len(name) > 4*MaxUsernameRunes*utf8.UTFMax {
		return "", invalidf("username must be 3 to %d characters", MaxUsernameRunes)
	}
	norm, err := precis.UsernameCaseMapped.String(name)
	if err != nil {
		return "", invalidf("username may hold only letters, digits, '_', '-' and '.'")
	}
	n := utf8.RuneCountInString(norm)
	if n < 3 || n > MaxUsernameRunes {
		return "", invalidf("username must be 3 to %d characters", MaxUsernameRunes)
	}
	for _, r := range norm {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '-' && r != '.' {
			return "", invalidf("username may hold only letters, digits, '_', '-' and '.'")
		}
	}
	return norm, nil
}

// NameKey is the uniqueness key of a user's name (a username, or a display
// name from an integrator's token): two names with the same key look
// alike, and the stores keep one user per key. It is the Unicode TR39
// confusables skeleton (data of Unicode 13.0, from
// github.com/mtibben/confusables) of the name's PRECIS Nickname comparison
// form (RFC 8266: NFKC, lower case, spaces collapsed), lower-cased again
// because the skeleton maps some letters to upper-case ones ("0" -> "O").
// So "admin", "ADMIN", "аdmin" (Cyrillic а) and "admın" (dotless ı)
// share a key, as do "paypal" and "paypa1" (TR39 maps "1" to "l", not to
// "i"). Keys are compared, never shown; a new Unicode
// confusables table may change some keys (the stores keep the key they
// computed, so an upgrade never merges existing users).
func NameKey(name string) string {
	k, err := precis.Nickname.CompareKey(name)
	if err != nil {
		// Not a nickname PRECIS accepts (e.g. an unassigned code point):
		// fold it the same way without PRECIS's refusal.
		k = cases.Fold().String(norm.NFKC.String(name))
	}
	return strings.ToLower(confusables.Skeleton(k))
}

// ValidateDisplayName is the looser rule for names in integrators' tokens:
// 1..MaxUsernameRunes printable characters, not blank.
func ValidateDisplayName(name string) error {
	if !utf8.ValidString(name) {
		return invalidf("name is not valid UTF-8")
	}
	if strings.TrimSpace(name) == "" {
		return invalidf("name is required")
	}
	if utf8.RuneCountInString(name) > MaxUsernameRunes {
		return invalidf("name is longer than %d characters", MaxUsernameRunes)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return invalidf("name holds a control character")
		}
	}
	return nil
}

// ValidateTitle checks a group title.
func ValidateTitle(title string) error {
	if !utf8.ValidString(title) {
		return invalidf("title is not valid UTF-8")
	}
	if hasNUL(title) {
		return invalidf("title holds a NUL character")
	}
	if utf8.RuneCountInString(title) > MaxTitleRunes {
		return invalidf("title is longer than %d characters", MaxTitleRunes)
	}
	return nil
}

// ValidateText checks message text; required means at least one non-blank character.
func ValidateText(text string, required bool) error {
	if !utf8.ValidString(text) {
		return invalidf("text is not valid UTF-8")
	}
	if hasNUL(text) {
		return invalidf("text holds a NUL character")
	}
	if required && strings.TrimSpace(text) == "" {
		return invalidf("text is required")
	}
	if utf8.RuneCountInString(text) > MaxTextRunes {
		return invalidf("text is longer than %d characters", MaxTextRunes)
	}
	return nil
}

// ValidateClientID checks a client-made id (of a send or an edit).
func ValidateClientID(id string) error {
	switch {
	case id == "":
		return invalidf("client_id is required")
	case len(id) > MaxClientIDLen:
		return invalidf("client_id is longer than %d bytes", MaxClientIDLen)
	case !utf8.ValidString(id):
		return invalidf("client_id is not valid UTF-8")
	case hasNUL(id):
		return invalidf("client_id holds a NUL character")
	}
	return nil
}

// Validate checks e's ids, client id and text as far as they can be
// checked without the message (whether the text may be blank depends on
// its type: a store checks that with ValidateText).
func (e MessageEdit) Validate() error {
	for _, f := range [][2]string{{"user id", e.UserID}, {"conversation_id", e.ConversationID}} {
		if err := ValidateID(f[0], f[1]); err != nil {
			return err
		}
	}
	switch {
	case e.MessageID != "" && e.MessageClientID != "":
		return invalidf("give message_id or message_client_id, not both")
	case e.MessageID != "":
		if err := ValidateID("message_id", e.MessageID); err != nil {
			return err
		}
	case e.MessageClientID == "":
		return invalidf("message_id or message_client_id is required")
	case len(e.MessageClientID) > MaxClientIDLen || !utf8.ValidString(e.MessageClientID) || hasNUL(e.MessageClientID):
		return invalidf("message_client_id is not a client_id")
	}
	if err := ValidateClientID(e.ClientID); err != nil {
		return err
	}
	return ValidateText(e.Text, false)
}

// ValidateEmoji checks a reaction: 1..MaxEmojiRunes code points and at
// most MaxEmojiBytes bytes, holding at least one symbol (Unicode category
// So, as every emoji's base is, or a regional indicator pair's) and
// otherwise only what emoji sequences are made of: symbols and modifiers
// (So, Sk: skin tones), combining marks (Mn, Me: variation selectors,
// the keycap), the zero width joiner, tag characters (subdivision flags),
// and the keycap bases 0-9, '#', '*' when followed by U+20E3. Letters,
// spaces, punctuation and control characters are refused, so a reaction
// cannot carry a message.
func ValidateEmoji(emoji string) error {
	if !utf8.ValidString(emoji) {
		return invalidf("emoji is not valid UTF-8")
	}
	if emoji == "" {
		return invalidf("emoji is required")
	}
	if len(emoji) > MaxEmojiBytes || utf8.RuneCountInString(emoji) > MaxEmojiRunes {
		return invalidf("emoji is longer than %d code points or %d bytes", MaxEmojiRunes, MaxEmojiBytes)
	}
	symbol := false
	runes := []rune(emoji)
	for i, r := range runes {
		switch {
		case unicode.Is(unicode.So, r):
			symbol = true
		case unicode.Is(unicode.Sk, r), unicode.Is(unicode.Mn, r), unicode.Is(unicode.Me, r):
		case r == 0x200D, r >= 0xE0020 && r <= 0xE007F: // ZWJ, tags
		case r >= '0' && r <= '9', r == '#', r == '*':
			// A keycap base: the keycap (after an optional U+FE0F) follows.
			j := i + 1
			if j < len(runes) && runes[j] == 0xFE0F {
				j++
			}
			if j >= len(runes) || runes[j] != 0x20E3 {
				return invalidf("emoji must be an emoji")
			}
			symbol = true
		default:
			return invalidf("emoji must be an emoji")
		}
	}
	if !symbol {
		return invalidf("emoji must be an emoji")
	}
	return nil
}

// Validate checks m: ids, client id, type, and text or attachment.
func (m NewMessage) Validate() error {
	if err := ValidateID("conversation_id", m.ConversationID); err != nil {
		return err
	}
	if err := ValidateID("sender_id", m.SenderID); err != nil {
		return err
	}
	if err := ValidateClientID(m.ClientID); err != nil {
		return err
	}
	if m.ReplyTo != "" {
		if err := ValidateID("reply_to", m.ReplyTo); err != nil {
			return err
		}
	}
	switch m.Type {
	case Text:
		if m.AttachmentID != "" {
			return invalidf("a text message has no attachment_id")
		}
		return ValidateText(m.Text, true)
	case Image, File:
		if err := ValidateID("attachment_id", m.AttachmentID); err != nil {
			return err
		}
		return ValidateText(m.Text, false)
	}
	return invalidf("type must be %q, %q or %q", Text, Image, File)
}

// DedupeIDs returns ids without duplicates and without skip, in first-seen
// order, checking each.
func DedupeIDs(field string, ids []string, skip string) ([]string, error) {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if err := ValidateID(field, id); err != nil {
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

// PageLimit applies the default and the clamp.
func PageLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, invalidf("limit must not be negative")
	case limit == 0:
		return DefaultPageLimit, nil
	case limit > MaxPageLimit:
		return MaxPageLimit, nil
	}
	return limit, nil
}

// EventLimit bounds a page of the event log: at least 1, at most one more
// than ResumeLimit (what a resume asks for to detect "too far behind").
func EventLimit(after int64, limit int) (int, error) {
	switch {
	case after < 0:
		return 0, invalidf("after must not be negative")
	case limit <= 0:
		return 0, invalidf("limit must be positive")
	}
	return min(limit, ResumeLimit+1), nil
}

func invalidf(format string, args ...any) error { return Errorf(EINVALID, format, args...) }

// NameTaken is the ECONFLICT a store returns when name is refused because
// existing, another user's name, is the same name in another case or form
// ("the name ... is taken") or only looks like it ("... looks like an
// existing one"): they share a NameKey.
func NameTaken(name, existing string) error {
	fold := func(s string) string { return cases.Fold().String(norm.NFKC.String(s)) }
	if fold(name) == fold(existing) {
		return Errorf(ECONFLICT, "the name %q is taken", name)
	}
	return Errorf(ECONFLICT, "the name %q looks like an existing one; choose another", name)
}
