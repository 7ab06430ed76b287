package server

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
)

// Hand-written JSON for the frames every send makes: its reply (the
// message) and its newMessage event. encoding/json reflects over every
// field and boxes each time.Time for its MarshalJSON (two allocations a
// time field, three time fields a send); these append into the pooled
// encoder's buffer and allocate nothing. The bytes are encoding/json's, as
// an Encoder with HTML escaping (json.Marshal) writes them: the wire does
// not change. TestAppendJSONLikeEncodingJSON checks that on random values,
// and TestAppendJSONFields fails when one of the types gains a field these
// do not write. What they cannot write exactly as encoding/json does (a
// time outside RFC 3339, an event with a profile, conversation or flags)
// they refuse (ok false), and the caller uses encoding/json.

// appendMessageJSON appends m's JSON; ok is false (and b undefined) when
// one of its times has no RFC 3339 form.
func appendMessageJSON(b []byte, m *parley.Message) (_ []byte, ok bool) {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, m.ID)
	b = append(b, `,"conversation_id":`...)
	b = appendJSONString(b, m.ConversationID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"sender_id":`...)
	b = appendJSONString(b, m.SenderID)
	b = append(b, `,"sender_name":`...)
	b = appendJSONString(b, m.SenderName)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, m.ClientID)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, string(m.Type))
	if m.Text != "" {
		b = append(b, `,"text":`...)
		b = appendJSONString(b, m.Text)
	}
	if a := m.Attachment; a != nil {
		b = append(b, `,"attachment":{"id":`...)
		b = appendJSONString(b, a.ID)
		b = append(b, `,"content_type":`...)
		b = appendJSONString(b, a.ContentType)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, a.Size, 10)
		b = append(b, `,"width":`...)
		b = strconv.AppendInt(b, int64(a.Width), 10)
		b = append(b, `,"height":`...)
		b = strconv.AppendInt(b, int64(a.Height), 10)
		if a.Name != "" {
			b = append(b, `,"name":`...)
			b = appendJSONString(b, a.Name)
		}
		if a.URL != "" {
			b = append(b, `,"url":`...)
			b = appendJSONString(b, a.URL)
		}
		if a.ThumbURL != "" {
			b = append(b, `,"thumb_url":`...)
			b = appendJSONString(b, a.ThumbURL)
		}
		b = append(b, '}')
	}
	b = append(b, `,"created_at":`...)
	if b, ok = appendJSONTime(b, m.CreatedAt); !ok {
		return b, false
	}
	if m.Deleted {
		b = append(b, `,"deleted":true`...)
	}
	if m.DeletedAt != nil {
		b = append(b, `,"deleted_at":`...)
		if b, ok = appendJSONTime(b, *m.DeletedAt); !ok {
			return b, false
		}
	}
	if m.EditedAt != nil {
		b = append(b, `,"edited_at":`...)
		if b, ok = appendJSONTime(b, *m.EditedAt); !ok {
			return b, false
		}
	}
	if q := m.ReplyTo; q != nil {
		b = append(b, `,"reply_to":{"message_id":`...)
		b = appendJSONString(b, q.MessageID)
		b = append(b, `,"seq":`...)
		b = strconv.AppendInt(b, q.Seq, 10)
		if q.SenderID != "" {
			b = append(b, `,"sender_id":`...)
			b = appendJSONString(b, q.SenderID)
		}
		if q.SenderName != "" {
			b = append(b, `,"sender_name":`...)
			b = appendJSONString(b, q.SenderName)
		}
		if q.Type != "" {
			b = append(b, `,"type":`...)
			b = appendJSONString(b, string(q.Type))
		}
		if q.Text != "" {
			b = append(b, `,"text":`...)
			b = appendJSONString(b, q.Text)
		}
		if q.Deleted {
			b = append(b, `,"deleted":true`...)
		}
		if q.Hidden {
			b = append(b, `,"hidden":true`...)
		}
		b = append(b, '}')
	}
	if len(m.Reactions) > 0 {
		b = append(b, `,"reactions":[`...)
		for i, r := range m.Reactions {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"emoji":`...)
			b = appendJSONString(b, r.Emoji)
			b = append(b, `,"count":`...)
			b = strconv.AppendInt(b, r.Count, 10)
			if r.Me {
				b = append(b, `,"me":true`...)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(m.Mentions) > 0 {
		b = append(b, `,"mentions":`...)
		b = appendJSONStrings(b, m.Mentions)
	}
	return append(b, '}'), true
}

// appendEventJSON appends ev's JSON; ok is false (and b undefined) for
// an event with a profile, conversation or flags (encoding/json writes
// those: they are rare, and large), or a time with no RFC 3339 form.
func appendEventJSON(b []byte, ev *parley.Event) (_ []byte, ok bool) {
	if ev.Profile != nil || ev.Conversation != nil || ev.Flags != nil {
		return b, false
	}
	b = append(b, '{')
	if ev.Pos != 0 {
		b = append(b, `"pos":`...)
		b = strconv.AppendInt(b, ev.Pos, 10)
		b = append(b, ',')
	}
	if ev.Shard != 0 {
		b = append(b, `"shard":`...)
		b = strconv.AppendInt(b, int64(ev.Shard), 10)
		b = append(b, ',')
	}
	b = append(b, `"type":`...)
	b = appendJSONString(b, string(ev.Type))
	if ev.ConversationID != "" {
		b = append(b, `,"conversation_id":`...)
		b = appendJSONString(b, ev.ConversationID)
	}
	if ev.UserID != "" {
		b = append(b, `,"user_id":`...)
		b = appendJSONString(b, ev.UserID)
	}
	if ev.UserName != "" {
		b = append(b, `,"user_name":`...)
		b = appendJSONString(b, ev.UserName)
	}
	if ev.Message != nil {
		b = append(b, `,"message":`...)
		if b, ok = appendMessageJSON(b, ev.Message); !ok {
			return b, false
		}
	}
	if ev.MessageID != "" {
		b = append(b, `,"message_id":`...)
		b = appendJSONString(b, ev.MessageID)
	}
	b = appendJSONIntField(b, `,"seq":`, ev.Seq)
	if ev.Emoji != "" {
		b = append(b, `,"emoji":`...)
		b = appendJSONString(b, ev.Emoji)
	}
	b = appendJSONIntField(b, `,"count":`, ev.Count)
	b = appendJSONIntField(b, `,"read_seq":`, ev.ReadSeq)
	b = appendJSONIntField(b, `,"delivered_seq":`, ev.DeliveredSeq)
	if ev.Change != "" {
		b = append(b, `,"change":`...)
		b = appendJSONString(b, string(ev.Change))
	}
	if len(ev.UserIDs) > 0 {
		b = append(b, `,"user_ids":`...)
		b = appendJSONStrings(b, ev.UserIDs)
	}
	if ev.Consent != "" {
		b = append(b, `,"consent":`...)
		b = appendJSONString(b, string(ev.Consent))
	}
	b = append(b, `,"at":`...)
	if b, ok = appendJSONTime(b, ev.At); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendJSONIntField appends the member key (with its comma) and n,
// unless n is 0 (omitempty).
func appendJSONIntField(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	b = append(b, key...)
	return strconv.AppendInt(b, n, 10)
}

// appendJSONStrings appends ss as a JSON array of strings.
func appendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONTime appends t as time.Time's MarshalJSON writes it (RFC 3339
// with nanoseconds, quoted); ok is false where MarshalJSON fails (the
// same checks as its appendStrictRFC3339).
func appendJSONTime(b []byte, t time.Time) (_ []byte, ok bool) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	switch {
	case len(b) < n0+len("9999-") || b[n0+len("9999")] != '-': // a year of 4 digits
		return b, false
	case b[len(b)-1] != 'Z':
		// A zone offset "+hh:mm" of hours 0 to 23 (not seconds).
		c := b[len(b)-len("Z07:00")]
		h := 10*int(b[len(b)-len("07:00")]-'0') + int(b[len(b)-len("7:00")]-'0')
		if ('0' <= c && c <= '9') || h >= 24 {
			return b, false
		}
	}
	return append(b, '"'), true
}

// appendJSONString appends s as a JSON string, byte for byte as
// encoding/json writes it with HTML escaping (json.Marshal): <, > and &
// as \u003c and the like, control characters escaped, invalid UTF-8 as
// \ufffd, U+2028 and U+2029 escaped. Plain ASCII is copied as it is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonPlain[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// jsonPlain[c] is true for the ASCII bytes appendJSONString copies as
// they are: printable, and neither a quote, a backslash nor <, > or &.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
