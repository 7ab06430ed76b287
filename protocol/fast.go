package protocol

import (
	"encoding/json"
	"slices"

	"github.com/parleychat/parley"
)

// Fast paths for the requests a busy client sends most (a send), which
// otherwise cost two reflective json.Unmarshal calls each. They accept
// only the plain form every client in this repository writes: an object
// of known keys, each once, with string values free of escapes and
// control characters (data a nested object). Anything else (an unknown or
// differently cased key, a repeated key, an escape, a number) makes them
// report false, and the caller takes encoding/json's path, so every input
// decodes exactly as encoding/json decodes it (FuzzFastPaths checks).

// decodeRequestFast parses b, a UTF-8 request frame, into r.
func decodeRequestFast(b []byte, r *Request) bool {
	var seen [3]bool // op, id, data
	return plainObject(b, seen[:], func(key []byte, p int) (int, int, bool) {
		switch string(key) {
		case "op", "id":
			v, q, ok := plainString(b, p)
			if !ok {
				return 0, 0, false
			}
			if string(key) == "op" {
				r.Op = internOp(v)
				return q, 0, true
			}
			r.ID = string(v)
			return q, 1, true
		case "data":
			q, ok := objectEnd(b, p)
			if !ok || !json.Valid(b[p:q]) {
				return 0, 0, false
			}
			r.Data = slices.Clone(b[p:q])
			return q, 2, true
		}
		return 0, 0, false
	})
}

// DecodeSend parses a send's data, as DecodeData(data, &Send{}) does.
func DecodeSend(data json.RawMessage) (Send, error) {
	var s Send
	if decodeSendFast(data, &s) {
		return s, nil
	}
	return decodeSendSlow(data)
}

// decodeSendSlow is DecodeSend's general path.
func decodeSendSlow(data json.RawMessage) (Send, error) {
	var s Send
	err := DecodeData(data, &s)
	return s, err
}

// sendKeys are the members of a send's data, in the order of the fields
// decodeSendFast fills.
var sendKeys = [...]string{"conversation_id", "client_id", "type", "text", "attachment_id", "reply_to"}

// sendText is the slot of "text" in sendKeys, sendType that of "type".
const sendType, sendText = 2, 3

// decodeSendFast parses the plain form of a send's data (see above). It
// makes two strings, not one per member: the text, and one holding the
// ids (conversation, client, attachment, reply_to), which the fields
// slice; a type the protocol knows is a constant. The ids live as long as
// the message anyway; the text, which may be large, is apart so that
// keeping an id (a map key, say) keeps no text alive.
func decodeSendFast(b []byte, s *Send) bool {
	var (
		seen [len(sendKeys)]bool
		vals [len(sendKeys)][]byte // the members' values, in b
	)
	ok := plainObject(b, seen[:], func(key []byte, p int) (int, int, bool) {
		for i, k := range sendKeys {
			if string(key) != k {
				continue
			}
			v, q, ok := plainString(b, p)
			if !ok {
				return 0, 0, false
			}
			vals[i] = v
			return q, i, true
		}
		return 0, 0, false
	})
	if !ok {
		return false
	}
	var buf [256]byte
	ids := buf[:0]
	for i, v := range vals {
		if i != sendType && i != sendText {
			ids = append(ids, v...)
		}
	}
	all := string(ids)
	dst := [len(sendKeys)]*string{&s.ConversationID, &s.ClientID, nil, nil, &s.AttachmentID, &s.ReplyTo}
	for i, v := range vals {
		if dst[i] != nil {
			*dst[i], all = all[:len(v)], all[len(v):]
		}
	}
	if len(vals[sendText]) > 0 {
		s.Text = string(vals[sendText])
	}
	switch typ := vals[sendType]; string(typ) {
	case string(parley.Text):
		s.Type = parley.Text
	case string(parley.Image):
		s.Type = parley.Image
	case string(parley.File):
		s.Type = parley.File
	default:
		s.Type = parley.MessageType(typ)
	}
	return true
}

// ops maps every op the protocol knows to itself: internOp's constants.
var ops = func() map[string]string {
	m := make(map[string]string)
	for _, op := range [...]string{OpHello, OpPing, OpSend, OpHistory, OpDelete, OpRead, OpTyping, OpConversations,
		OpConversation, OpCreateDirect, OpCreateGroup, OpUpdateConversation, OpPresence, OpEdit, OpReact, OpSetFlags,
		OpDelivered, OpSetProfile, OpSearch, OpMentions,
		OpBlock, OpUnblock, OpPrivacy, OpSetPrivacy, OpAcceptRequest, OpDeclineRequest} {
		m[op] = op
	}
	return m
}()

// internOp is string(v), without allocating for an op the protocol knows.
func internOp(v []byte) string {
	if op, ok := ops[string(v)]; ok {
		return op
	}
	return string(v)
}

// plainObject walks b, one JSON object of plain members (see above) with
// nothing but whitespace around it. For each member it calls value with
// the key and the index where the value starts; value decodes the value
// and returns the index just after it and the key's slot in seen, or false
// to refuse the input. A key seen twice is refused too.
func plainObject(b []byte, seen []bool, value func(key []byte, p int) (end, slot int, ok bool)) bool {
	p := skipSpace(b, 0)
	if p >= len(b) || b[p] != '{' {
		return false
	}
	p = skipSpace(b, p+1)
	if p < len(b) && b[p] == '}' {
		return skipSpace(b, p+1) == len(b)
	}
	for {
		key, q, ok := plainString(b, p)
		if !ok {
			return false
		}
		p = skipSpace(b, q)
		if p >= len(b) || b[p] != ':' {
			return false
		}
		q, k, ok := value(key, skipSpace(b, p+1))
		if !ok || seen[k] {
			return false
		}
		seen[k] = true
		p = skipSpace(b, q)
		if p >= len(b) {
			return false
		}
		if b[p] == '}' {
			return skipSpace(b, p+1) == len(b)
		}
		if b[p] != ',' {
			return false
		}
		p = skipSpace(b, p+1)
	}
}

// skipSpace returns the first index at or after p that is not JSON
// whitespace.
func skipSpace(b []byte, p int) int {
	for p < len(b) && (b[p] == ' ' || b[p] == '\t' || b[p] == '\n' || b[p] == '\r') {
		p++
	}
	return p
}

// plainString reads the JSON string at b[p:], which must hold no escape
// and no control character, and returns its bytes and the index after it.
// Callers pass valid UTF-8 (DecodeRequest checks the frame), so the bytes
// are the string encoding/json would return. They are b's: keys are
// compared without a copy (switch string(key) does not allocate).
func plainString(b []byte, p int) ([]byte, int, bool) {
	if p >= len(b) || b[p] != '"' {
		return nil, 0, false
	}
	for i := p + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return b[p+1 : i], i + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// objectEnd returns the index after the JSON object that starts at b[p],
// matching braces and brackets outside strings; it does not check the
// object (the caller does).
func objectEnd(b []byte, p int) (int, bool) {
	if p >= len(b) || b[p] != '{' {
		return 0, false
	}
	depth, inString := 0, false
	for i := p; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1, c == '}'
			}
		}
	}
	return 0, false
}
