package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

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
	servertest.WantWholeQuote(t, "carol's send reply", raw, parent)

	servertest.WantHiddenQuote(t, "alice's newMessage", a.eventFrom(parley.EventNewMessage, "carol"), parent)
	servertest.WantWholeQuote(t, "bob's newMessage", b.eventFrom(parley.EventNewMessage, "carol"), parent)
	servertest.WantWholeQuote(t, "carol's newMessage", c.eventFrom(parley.EventNewMessage, "carol"), parent)

	var edited parley.Message
	c.do(protocol.OpEdit, protocol.Edit{ConversationID: g.ID, MessageID: reply.ID, ClientID: "e0", Text: "@alice pineapple!"}, &edited)
	servertest.WantHiddenQuote(t, "alice's messageEdited", a.eventFrom(parley.EventMessageEdited, "carol"), parent)
	servertest.WantWholeQuote(t, "bob's messageEdited", b.eventFrom(parley.EventMessageEdited, "carol"), parent)

	// Alice replies to bob's message herself (she had its id).
	f := a.call(protocol.OpSend, protocol.Send{ConversationID: g.ID, ClientID: "a0", Text: "answering", ReplyTo: parent.ID})
	if f.Type != protocol.TypeReply {
		t.Fatalf("alice's reply: %s %+v", f.Type, f.Error)
	}
	servertest.WantHiddenQuote(t, "alice's send reply", f.Data, parent)
	var own parley.Message
	json.Unmarshal(f.Data, &own)
	servertest.WantHiddenQuote(t, "alice's own newMessage", a.eventFrom(parley.EventNewMessage, "alice"), parent)
	servertest.WantWholeQuote(t, "bob's newMessage of alice's reply", b.eventFrom(parley.EventNewMessage, "alice"), parent)
	servertest.WantWholeQuote(t, "carol's newMessage of alice's reply", c.eventFrom(parley.EventNewMessage, "alice"), parent)
	// Her send again (a resend, as after a reconnect): the same answer.
	f = a.call(protocol.OpSend, protocol.Send{ConversationID: g.ID, ClientID: "a0", Text: "answering", ReplyTo: parent.ID})
	servertest.WantHiddenQuote(t, "alice's resend reply", f.Data, parent)

	// Reads.
	hist := a.call(protocol.OpHistory, protocol.History{ConversationID: g.ID})
	servertest.WantHiddenQuote(t, "alice's history", servertest.MessageIn(t, "history", hist.Data, reply.ID, "messages"), parent)
	servertest.WantHiddenQuote(t, "alice's history, her reply", servertest.MessageIn(t, "history", hist.Data, own.ID, "messages"), parent)
	bh := b.call(protocol.OpHistory, protocol.History{ConversationID: g.ID})
	servertest.WantWholeQuote(t, "bob's history", servertest.MessageIn(t, "history", bh.Data, reply.ID, "messages"), parent)

	back := connect(t, srv, aliceTok, &from)
	servertest.WantHiddenQuote(t, "alice's replayed newMessage", back.eventFrom(parley.EventNewMessage, "carol"), parent)
	servertest.WantHiddenQuote(t, "alice's replayed messageEdited", back.eventFrom(parley.EventMessageEdited, "carol"), parent)

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
			servertest.WantHiddenQuote(t, "GET /v1/events "+string(ev.Type), ev.Message, parent)
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
	servertest.WantHiddenQuote(t, "alice's last_message", conv.LastMessage, parent)
	resp = httpDo(t, srv, "GET", "/v1/conversations", aliceTok, "")
	servertest.WantHiddenQuote(t, "alice's list", servertest.MessageIn(t, "list", []byte(`{"c":[`+lastMessages(t, resp.body)+`]}`), own.ID, "c"), parent)

	resp = httpDo(t, srv, "GET", "/v1/search?q=pineapple", aliceTok, "")
	servertest.WantHiddenQuote(t, "alice's search", servertest.MessageIn(t, "search", resp.body, reply.ID, "results"), parent)
	resp = httpDo(t, srv, "GET", "/v1/mentions", aliceTok, "")
	servertest.WantHiddenQuote(t, "alice's mentions", servertest.MessageIn(t, "mentions", resp.body, reply.ID, "results"), parent)
	sr := c.call(protocol.OpSearch, protocol.Search{Query: "pineapple"})
	servertest.WantWholeQuote(t, "carol's search", servertest.MessageIn(t, "search", sr.Data, reply.ID, "results"), parent)

	// Unblocked: the next read shows the quotes again.
	a.do(protocol.OpUnblock, protocol.UserRef{UserID: "bob"}, nil)
	hist = a.call(protocol.OpHistory, protocol.History{ConversationID: g.ID})
	servertest.WantWholeQuote(t, "alice's history after the unblock", servertest.MessageIn(t, "history", hist.Data, reply.ID, "messages"), parent)
	servertest.WantWholeQuote(t, "alice's history after the unblock, her reply", servertest.MessageIn(t, "history", hist.Data, own.ID, "messages"), parent)
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
