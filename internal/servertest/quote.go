package servertest

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// The hidden form of a quote on the wire: its place, and that it is
// hidden; nothing of the parent's sender or content.
var hiddenQuoteKeys = []string{"hidden", "message_id", "seq"}

// quoteJSON returns the members of the reply_to of the message in raw
// (a Message's JSON), decoded as they came: the wire's own form.
func quoteJSON(t testing.TB, what string, raw []byte) map[string]any {
	t.Helper()
	var m struct {
		ReplyTo map[string]any `json:"reply_to"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.ReplyTo == nil {
		t.Fatalf("%s: no quote in %s (%v)", what, raw, err)
	}
	return m.ReplyTo
}

// WantHiddenQuote fails t unless raw (a Message's JSON) quotes parent in
// the hidden form (docs/protocol.md, Quote): message_id and seq, hidden
// true, and nothing else; parent's text appears nowhere in raw. what
// names raw in the failure.
func WantHiddenQuote(t testing.TB, what string, raw []byte, parent parley.Message) {
	t.Helper()
	q := quoteJSON(t, what, raw)
	if keys := slices.Sorted(maps.Keys(q)); !slices.Equal(keys, hiddenQuoteKeys) || q["hidden"] != true ||
		q["message_id"] != parent.ID || q["seq"] != float64(parent.Seq) {
		t.Errorf("%s: quote %v, want only message_id %s, seq %d and hidden", what, q, parent.ID, parent.Seq)
	}
	if strings.Contains(string(raw), parent.Text) {
		t.Errorf("%s: the hidden parent's text is in %s", what, raw)
	}
}

// WantWholeQuote fails t unless raw (a Message's JSON) quotes parent
// whole: its sender and text, not hidden. what names raw in the failure.
func WantWholeQuote(t testing.TB, what string, raw []byte, parent parley.Message) {
	t.Helper()
	q := quoteJSON(t, what, raw)
	if q["hidden"] != nil || q["message_id"] != parent.ID || q["sender_id"] != parent.SenderID || q["sender_name"] != parent.SenderName || q["text"] != parent.Text {
		t.Errorf("%s: quote %v, want %s's %q", what, q, parent.SenderName, parent.Text)
	}
}

// MessageIn returns the raw JSON of the message id among the messages
// at path in the JSON doc (path: the members leading to a list of
// messages, or of objects with a "message"), failing t when it is not
// there. what names doc in the failure.
func MessageIn(t testing.TB, what string, doc []byte, id string, path ...string) json.RawMessage {
	t.Helper()
	var v any = json.RawMessage(doc)
	for _, p := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v.(json.RawMessage), &obj); err != nil {
			t.Fatalf("%s: %v in %s", what, err, doc)
		}
		v = obj[p]
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v.(json.RawMessage), &items); err != nil {
		t.Fatalf("%s: %v in %s", what, err, doc)
	}
	for _, it := range items {
		var x struct {
			ID      string          `json:"id"`
			Message json.RawMessage `json:"message"`
		}
		json.Unmarshal(it, &x)
		if x.Message != nil {
			json.Unmarshal(x.Message, &x)
			it = x.Message
		}
		if x.ID == id {
			return it
		}
	}
	t.Fatalf("%s: no message %s in %s", what, id, doc)
	return nil
}
