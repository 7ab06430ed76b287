package server_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// The hidden form of a quote on the wire: its place, and that it is
// hidden; nothing of the parent's sender or content.
var hiddenQuoteKeys = []string{"hidden", "message_id", "seq"}

// quoteJSON returns the members of the reply_to of the message in raw
// (a Message's JSON), decoded as they came: the wire's own form.
func quoteJSON(t *testing.T, what string, raw []byte) map[string]any {
	t.Helper()
	var m struct {
		ReplyTo map[string]any `json:"reply_to"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.ReplyTo == nil {
		t.Fatalf("%s: no quote in %s (%v)", what, raw, err)
	}
	return m.ReplyTo
}

// wantHiddenQuote fails unless raw's quote is the hidden form of a quote
// of parent: message_id and seq, hidden true, and nothing else.
func wantHiddenQuote(t *testing.T, what string, raw []byte, parent parley.Message) {
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

// wantWholeQuote fails unless raw's quote shows parent: its sender and
// text, not hidden.
func wantWholeQuote(t *testing.T, what string, raw []byte, parent parley.Message) {
	t.Helper()
	q := quoteJSON(t, what, raw)
	if q["hidden"] != nil || q["message_id"] != parent.ID || q["sender_id"] != parent.SenderID || q["sender_name"] != parent.SenderName || q["text"] != parent.Text {
		t.Errorf("%s: quote %v, want %s's %q", what, q, parent.SenderName, parent.Text)
	}
}

// eventFrom waits for the next event of typ by user and returns its
// message's raw JSON.
func (c *wsClient) eventFrom(typ parley.EventType, user string) json.RawMessage {
	c.t.Helper()
	f := c.waitFor(func(f protocol.Frame) bool {
		var ev parley.Event
		return f.Type == protocol.TypeEvent && json.Unmarshal(f.Data, &ev) == nil && ev.Type == typ && ev.UserID == user
	})
	var ev struct {
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(f.Data, &ev); err != nil || ev.Message == nil {
		c.t.Fatalf("%s by %s without a message: %s", typ, user, f.Data)
	}
	return ev.Message
}

// messageIn returns the raw JSON of the message id among the messages
// at path in the JSON doc (path: the members leading to a list of
// messages, or of objects with a "message").
func messageIn(t *testing.T, what string, doc []byte, id string, path ...string) json.RawMessage {
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

// TestQuoteOfBlockedHidden: alice blocked bob; carol (not blocked)
// replies in their group to bob's message. Alice gets carol's reply,
// and its quote of bob's message in its hidden form only (its message_id
// and seq, hidden: true; no sender, no type, no text), live (newMessage,
// messageEdited) and on every read: history, resume, GET /v1/events,
// the conversation's last_message, search and mentions. Bob and carol
// get the quote whole, from the same events. A reply alice herself sends
// to bob's message is answered with the quote hidden too, while bob and
// carol see it whole. After an unblock alice's next history read shows
// the quotes again.
func TestQuoteOfBlockedHidden(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, b, c, g, from := blockedTeam(t, srv)
	a := connect(t, srv, aliceTok, nil)

	parent := b.send(g.ID, "b0", "bob's secret plan")
	var reply parley.Message
	c.do(protocol.OpSend, protocol.Send{ConversationID: g.ID, ClientID: "c0", Text: "@alice pineapple", ReplyTo: parent.ID}, &reply)
	raw, _ := json.Marshal(reply)
	wantWholeQuote(t, "carol's send reply", raw, parent)

	wantHiddenQuote(t, "alice's newMessage", a.eventFrom(parley.EventNewMessage, "carol"), parent)
	wantWholeQuote(t, "bob's newMessage", b.eventFrom(parley.EventNewMessage, "carol"), parent)
	wantWholeQuote(t, "carol's newMessage", c.eventFrom(parley.EventNewMessage, "carol"), parent)

	var edited parley.Message
	c.do(protocol.OpEdit, protocol.Edit{ConversationID: g.ID, MessageID: reply.ID, ClientID: "e0", Text: "@alice pineapple!"}, &edited)
	wantHiddenQuote(t, "alice's messageEdited", a.eventFrom(parley.EventMessageEdited, "carol"), parent)
	wantWholeQuote(t, "bob's messageEdited", b.eventFrom(parley.EventMessageEdited, "carol"), parent)

	// Alice replies to bob's message herself (she had its id).
	f := a.call(protocol.OpSend, protocol.Send{ConversationID: g.ID, ClientID: "a0", Text: "answering", ReplyTo: parent.ID})
	if f.Type != protocol.TypeReply {
		t.Fatalf("alice's reply: %s %+v", f.Type, f.Error)
	}
	wantHiddenQuote(t, "alice's send reply", f.Data, parent)
	var own parley.Message
	json.Unmarshal(f.Data, &own)
	wantHiddenQuote(t, "alice's own newMessage", a.eventFrom(parley.EventNewMessage, "alice"), parent)
	wantWholeQuote(t, "bob's newMessage of alice's reply", b.eventFrom(parley.EventNewMessage, "alice"), parent)
	wantWholeQuote(t, "carol's newMessage of alice's reply", c.eventFrom(parley.EventNewMessage, "alice"), parent)
	// Her send again (a resend, as after a reconnect): the same answer.
	f = a.call(protocol.OpSend, protocol.Send{ConversationID: g.ID, ClientID: "a0", Text: "answering", ReplyTo: parent.ID})
	wantHiddenQuote(t, "alice's resend reply", f.Data, parent)

	// Reads.
	hist := a.call(protocol.OpHistory, protocol.History{ConversationID: g.ID})
	wantHiddenQuote(t, "alice's history", messageIn(t, "history", hist.Data, reply.ID, "messages"), parent)
	wantHiddenQuote(t, "alice's history, her reply", messageIn(t, "history", hist.Data, own.ID, "messages"), parent)
	bh := b.call(protocol.OpHistory, protocol.History{ConversationID: g.ID})
	wantWholeQuote(t, "bob's history", messageIn(t, "history", bh.Data, reply.ID, "messages"), parent)

	back := connect(t, srv, aliceTok, &from)
	wantHiddenQuote(t, "alice's replayed newMessage", back.eventFrom(parley.EventNewMessage, "carol"), parent)
	wantHiddenQuote(t, "alice's replayed messageEdited", back.eventFrom(parley.EventMessageEdited, "carol"), parent)

	resp := httpDo(t, srv, "GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", from), aliceTok, "")
	var page struct {
		Events []struct {
			Type    parley.EventType `json:"type"`
			Message json.RawMessage  `json:"message"`
		} `json:"events"`
	}
	if err := json.Unmarshal(resp.body, &page); err != nil {
		t.Fatalf("GET /v1/events: %d %s", resp.status, resp.body)
	}
	n := 0
	for _, ev := range page.Events {
		if ev.Message != nil && (ev.Type == parley.EventNewMessage || ev.Type == parley.EventMessageEdited) {
			n++
			wantHiddenQuote(t, "GET /v1/events "+string(ev.Type), ev.Message, parent)
		}
	}
	if n != 3 {
		t.Errorf("GET /v1/events: %d replies, want carol's, its edit and alice's: %s", n, resp.body)
	}

	resp = httpDo(t, srv, "GET", "/v1/conversations/"+g.ID, aliceTok, "")
	var conv struct {
		LastMessage json.RawMessage `json:"last_message"`
	}
	json.Unmarshal(resp.body, &conv)
	if conv.LastMessage == nil {
		t.Fatalf("GET /v1/conversations/%s: %s", g.ID, resp.body)
	}
	wantHiddenQuote(t, "alice's last_message", conv.LastMessage, parent)
	resp = httpDo(t, srv, "GET", "/v1/conversations", aliceTok, "")
	wantHiddenQuote(t, "alice's list", messageIn(t, "list", []byte(`{"c":[`+lastMessages(t, resp.body)+`]}`), own.ID, "c"), parent)

	resp = httpDo(t, srv, "GET", "/v1/search?q=pineapple", aliceTok, "")
	wantHiddenQuote(t, "alice's search", messageIn(t, "search", resp.body, reply.ID, "results"), parent)
	resp = httpDo(t, srv, "GET", "/v1/mentions", aliceTok, "")
	wantHiddenQuote(t, "alice's mentions", messageIn(t, "mentions", resp.body, reply.ID, "results"), parent)
	sr := c.call(protocol.OpSearch, protocol.Search{Query: "pineapple"})
	wantWholeQuote(t, "carol's search", messageIn(t, "search", sr.Data, reply.ID, "results"), parent)

	// Unblocked: the next read shows the quotes again.
	a.do(protocol.OpUnblock, protocol.UserRef{UserID: "bob"}, nil)
	hist = a.call(protocol.OpHistory, protocol.History{ConversationID: g.ID})
	wantWholeQuote(t, "alice's history after the unblock", messageIn(t, "history", hist.Data, reply.ID, "messages"), parent)
	wantWholeQuote(t, "alice's history after the unblock, her reply", messageIn(t, "history", hist.Data, own.ID, "messages"), parent)
}

// lastMessages returns the last_message of each conversation of a
// GET /v1/conversations body, joined with commas (a JSON list's items).
func lastMessages(t *testing.T, body []byte) string {
	t.Helper()
	var list struct {
		Conversations []struct {
			LastMessage json.RawMessage `json:"last_message"`
		} `json:"conversations"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /v1/conversations: %v: %s", err, body)
	}
	var out []string
	for _, c := range list.Conversations {
		if c.LastMessage != nil {
			out = append(out, string(c.LastMessage))
		}
	}
	return strings.Join(out, ",")
}
