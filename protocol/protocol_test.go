package protocol

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/parleychat/parley"
)

var decodeCases = []struct {
	in   string
	code string
	id   string
}{
	{`{"op":"ping","id":"1"}`, "", "1"},
	{`{"op":"send","id":"2","data":{"conversation_id":"c","client_id":"x","text":"hi"}}`, "", "2"},
	{`{"op":"fly","id":"3"}`, parley.EUNKNOWNOP, "3"},
	{`{"id":"4"}`, parley.EINVALID, "4"},
	{`{"op":`, parley.EBADJSON, ""},
	{`[]`, parley.EBADJSON, ""},
	{"\xff", parley.EBADJSON, ""},
	{``, parley.EBADJSON, ""},
	{`{"op":5}`, parley.EBADJSON, ""},
}

func TestDecodeRequest(t *testing.T) {
	for _, c := range decodeCases {
		r, err := DecodeRequest([]byte(c.in))
		if got := parley.ErrorCode(err); got != c.code || r.ID != c.id {
			t.Errorf("DecodeRequest(%q) = id %q, code %q; want id %q, code %q", c.in, r.ID, got, c.id, c.code)
		}
	}
	var s Send
	if err := DecodeData([]byte(`{"conversation_id":5}`), &s); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("wrong type: %v", err)
	}
}

// FuzzDecode: any bytes decode to a request or a *parley.Error with a
// known code, and the data of a request decodes or fails with EINVALID.
func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`{"op":"delivered","id":"d","data":{"conversations":[{"conversation_id":"c","seq":3}]}}`))
	f.Add([]byte(`{"op":"set_profile","data":{"display_name":"A","avatar_id":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		switch parley.ErrorCode(err) {
		case "":
		case parley.EBADJSON, parley.EINVALID, parley.EUNKNOWNOP:
			return
		default:
			t.Fatalf("DecodeRequest(%q): %v", b, err)
		}
		for _, v := range []any{&Hello{}, &Send{}, &History{}, &UpdateConversation{}, &CreateGroup{}, &Delivered{}, &SetProfile{}} {
			if err := DecodeData(r.Data, v); err != nil && parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("DecodeData(%q): %v", r.Data, err)
			}
		}
	})
}

// FuzzFastPaths: whatever the fast paths accept, they decode exactly as
// encoding/json does.
func FuzzFastPaths(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c.in))
	}
	for _, s := range []string{
		`{"op":"send","id":"s1","data":{"conversation_id":"c","client_id":"x","text":"hé \u00e9"}}`,
		` { "id" : "s2" , "op":"send", "data" : {"text":"a\"b","conversation_id":"c"} } `,
		`{"op":"send","op":"ping"}`,
		`{"op":"send","data":{"Text":"case","text":"x"}}`,
		`{"op":"send","data":{"conversation_id":"c","client_id":"x","type":"image","attachment_id":"a","text":""}}`,
		`{"op":"send","data":{"conversation_id":"c","nested":{"a":[1,"}"]}}}`,
		`{"op":"send","data":{"text":"x","text":"y"}}`,
		`{"op":"send","data":{}}`,
		`{"conversation_id":"c","client_id":"x","text":"re","reply_to":"m1"}`,
		`{"reply_to":"m1","reply_to":"m2"}`,
		`{"reply_to":5}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return // DecodeRequest refuses it before any decoding
		}
		var fast Request
		if decodeRequestFast(b, &fast) {
			var slow Request
			if err := json.Unmarshal(b, &slow); err != nil {
				t.Fatalf("fast path accepted %q, encoding/json refuses it: %v", b, err)
			}
			if fast.Op != slow.Op || fast.ID != slow.ID || string(fast.Data) != string(slow.Data) {
				t.Fatalf("%q: fast %+v, encoding/json %+v", b, fast, slow)
			}
		}
		var fs Send
		if decodeSendFast(b, &fs) {
			var slow Send
			if err := json.Unmarshal(b, &slow); err != nil {
				t.Fatalf("send fast path accepted %q, encoding/json refuses it: %v", b, err)
			}
			if fs != slow {
				t.Fatalf("%q: fast %+v, encoding/json %+v", b, fs, slow)
			}
		}
	})
}

// TestFastPathsTaken: the plain forms clients send take the fast paths.
func TestFastPathsTaken(t *testing.T) {
	var r Request
	if !decodeRequestFast([]byte(`{"op":"send","id":"s1","data":{"conversation_id":"c","client_id":"x","text":"hi"}}`), &r) || r.Op != OpSend || r.ID != "s1" {
		t.Fatalf("a plain send frame missed the fast path: %+v", r)
	}
	var s Send
	if !decodeSendFast(r.Data, &s) || s != (Send{ConversationID: "c", ClientID: "x", Text: "hi"}) {
		t.Fatalf("a plain send's data missed the fast path: %+v", s)
	}
}

// BenchmarkDecodeSend: a send frame as the load tool writes it, through
// DecodeRequest and DecodeSend (fast) and through encoding/json alone.
func BenchmarkDecodeSend(b *testing.B) {
	frame := []byte(`{"op":"send","id":"s12345","data":{"conversation_id":"01a203cc-0904-79eb-a0fc-081096a164e0","client_id":"run1-17-12345","text":"pb|run1|17|0|12345|1795000000000000000"}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r, err := DecodeRequest(frame)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeSend(r.Data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r Request
			if err := json.Unmarshal(frame, &r); err != nil {
				b.Fatal(err)
			}
			var s Send
			if err := DecodeData(r.Data, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodeSendAllocs: a plain send frame costs four allocations to
// decode: the request's id and data (kept in the request queue, past the
// read buffer) and the send's text and one string for all its ids; the
// op and the message type are constants, and the request is not moved to
// the heap for the slow path's decoder.
func TestDecodeSendAllocs(t *testing.T) {
	frame := []byte(`{"op":"send","id":"s12345","data":{"conversation_id":"01a203cc-0904-79eb-a0fc-081096a164e0","client_id":"run1-17-12345","type":"text","text":"pb|run1|17|0|12345|1795000000000000000","reply_to":"m1"}}`)
	var r Request
	if n := testing.AllocsPerRun(100, func() { r, _ = DecodeRequest(frame) }); n > 2 {
		t.Errorf("DecodeRequest: %v allocations, want 2 (id, data)", n)
	}
	var s Send
	if n := testing.AllocsPerRun(100, func() { s, _ = DecodeSend(r.Data) }); n > 2 {
		t.Errorf("DecodeSend: %v allocations, want 2 (text, ids)", n)
	}
	want := Send{ConversationID: "01a203cc-0904-79eb-a0fc-081096a164e0", ClientID: "run1-17-12345", Type: parley.Text,
		Text: "pb|run1|17|0|12345|1795000000000000000", ReplyTo: "m1"}
	if r.Op != OpSend || r.ID != "s12345" || s != want {
		t.Fatalf("decoded %+v, %+v", r, s)
	}
}
