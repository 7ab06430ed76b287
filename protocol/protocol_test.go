package protocol

import (
	"testing"

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
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		switch parley.ErrorCode(err) {
		case "":
		case parley.EBADJSON, parley.EINVALID, parley.EUNKNOWNOP:
			return
		default:
			t.Fatalf("DecodeRequest(%q): %v", b, err)
		}
		for _, v := range []any{&Hello{}, &Send{}, &History{}, &UpdateConversation{}, &CreateGroup{}} {
			if err := DecodeData(r.Data, v); err != nil && parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("DecodeData(%q): %v", r.Data, err)
			}
		}
	})
}
