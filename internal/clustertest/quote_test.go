package clustertest_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestQuoteHiddenAcrossNodes: alice, carol and bob are in one group,
// each on a node of their own (0, 1 and 2), and alice blocked bob. Bob
// posts; carol replies to bob's message. The reply's event crosses the
// broker (natsbroker, the events' Data and QuoteHidden) to the other
// two nodes: alice receives it live with the quote hidden
// ({message_id, seq, hidden: true}, no sender, no type, no text), bob
// with the quote whole. Then bob edits his message: alice receives
// nothing of it (docs/protocol.md, Consent and blocks: no messageEdited
// of a blocked user's) while carol receives it; carol's edit of her
// reply, which comes after it, reaches alice with the quote hidden and
// bob with the quote whole, showing bob's new text. Alice's history on
// her node, and a resume from before bob's message after she moves to
// node 1, show carol's reply with the quote hidden and nothing of bob's
// message.
func TestQuoteHiddenAcrossNodes(t *testing.T) {
	nodes, secret := startNodes(t, nodeCount)
	ctx := t.Context()
	clients := make([]*client, 3)
	for i, name := range []string{"Alice", "Carol", "Bob"} {
		clients[i] = newClient(ctx, t, nodes[0].store, secret, i, strings.ToLower(name), name)
		clients[i].node = i
		clients[i].keepAll = true
	}
	alice, carol, bob := clients[0], clients[1], clients[2]
	groupsOfThree(ctx, t, clients, 1, "quotes", func(int) parley.Store { return nodes[0].store })
	conv := alice.conv
	connectAll(ctx, t, clients, nodes)
	alice.mu.Lock()
	from := alice.lastPos // her welcome's head: the resume below replays all that follows
	alice.mu.Unlock()

	var blocked protocol.BlockResult
	call(ctx, t, alice, protocol.OpBlock, protocol.UserRef{UserID: bob.user}, &blocked)
	if !blocked.Blocked {
		t.Fatalf("alice's block: %+v", blocked)
	}

	var parent, reply parley.Message
	post(ctx, t, bob, protocol.Send{ConversationID: conv, ClientID: "b0", Text: "bob's secret plan"}, &parent)
	raw := post(ctx, t, carol, protocol.Send{ConversationID: conv, ClientID: "c0", Text: "carol answers", ReplyTo: parent.ID}, &reply)
	servertest.WantWholeQuote(t, "carol's send reply", raw, parent)

	// Live, on the other two nodes.
	servertest.WantHiddenQuote(t, "alice's newMessage (node 0)", alice.waitEvent(parley.EventNewMessage, reply.ID), parent)
	servertest.WantWholeQuote(t, "bob's newMessage (node 2)", bob.waitEvent(parley.EventNewMessage, reply.ID), parent)

	// Bob edits his message: carol (node 1) receives it, alice nothing.
	var edited parley.Message
	call(ctx, t, bob, protocol.OpEdit, protocol.Edit{ConversationID: conv, MessageID: parent.ID, ClientID: "be0", Text: "bob's revised scheme"}, &edited)
	var got parley.Message
	if err := json.Unmarshal(carol.waitEvent(parley.EventMessageEdited, parent.ID), &got); err != nil || got.Text != edited.Text {
		t.Fatalf("carol's messageEdited of bob's message: %+v (%v), want the text %q", got, err, edited.Text)
	}
	// Carol edits her reply after it: the event is later in the log, so
	// alice's node delivers it after anything of bob's edit alice would
	// receive. Its quote reads bob's message as it is now, edited.
	call(ctx, t, carol, protocol.OpEdit, protocol.Edit{ConversationID: conv, MessageID: reply.ID, ClientID: "ce0", Text: "carol answers again"}, nil)
	servertest.WantHiddenQuote(t, "alice's messageEdited (node 0)", alice.waitEvent(parley.EventMessageEdited, reply.ID), edited)
	servertest.WantWholeQuote(t, "bob's messageEdited (node 2)", bob.waitEvent(parley.EventMessageEdited, reply.ID), edited)
	alice.wantNothingOf(t, "live on node 0", parent, edited)

	// Alice's history on her node.
	var hist json.RawMessage
	call(ctx, t, alice, protocol.OpHistory, protocol.History{ConversationID: conv}, &hist)
	servertest.WantHiddenQuote(t, "alice's history (node 0)", servertest.MessageIn(t, "alice's history", hist, reply.ID, "messages"), edited)
	var page struct {
		Messages []parley.Message `json:"messages"`
	}
	if err := json.Unmarshal(hist, &page); err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		if m.ID == parent.ID || m.SenderID == bob.user {
			t.Errorf("alice's history holds bob's message %+v", m)
		}
	}
	if s := string(hist); strings.Contains(s, parent.Text) || strings.Contains(s, edited.Text) {
		t.Errorf("alice's history holds bob's text: %s", hist)
	}

	// Alice moves to node 1 and resumes from before bob's message: the
	// replay (every event up to the resumed frame) holds carol's reply
	// and its edit, the quote hidden, and nothing of bob's message.
	alice.close()
	alice.mu.Lock()
	alice.lastPos, alice.all = from, nil
	alice.mu.Unlock()
	if err := alice.connect(ctx, nodes[1], &from); err != nil {
		t.Fatalf("alice's resume on node 1: %v", err)
	}
	alice.node = 1
	waitUntil(t, "alice's replay on node 1 to end", func() bool {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		return alice.cur.resumed
	})
	servertest.WantHiddenQuote(t, "alice's replayed newMessage (node 1)", alice.waitEvent(parley.EventNewMessage, reply.ID), edited)
	servertest.WantHiddenQuote(t, "alice's replayed messageEdited (node 1)", alice.waitEvent(parley.EventMessageEdited, reply.ID), edited)
	alice.wantNothingOf(t, "replayed on node 1", parent, edited)
}

// call sends op with data through c's connection and decodes its reply
// into out (when not nil), failing t on any other answer.
func call(ctx context.Context, t *testing.T, c *client, op string, data, out any) {
	t.Helper()
	f, err := c.request(ctx, op, data)
	if err != nil || f.Type != protocol.TypeReply {
		t.Fatalf("%s's %s: %s %+v (%v)", c.user, op, f.Type, f.Error, err)
	}
	if out != nil {
		if err := json.Unmarshal(f.Data, out); err != nil {
			t.Fatalf("%s's %s: %v in %s", c.user, op, err, f.Data)
		}
	}
}

// post sends s through c's connection, decodes the stored message into
// m and returns its JSON.
func post(ctx context.Context, t *testing.T, c *client, s protocol.Send, m *parley.Message) json.RawMessage {
	t.Helper()
	raw, err := c.sendMessage(ctx, s)
	if err == nil {
		err = json.Unmarshal(raw, m)
	}
	if err != nil {
		t.Fatalf("%s's send %s: %v", c.user, s.ClientID, err)
	}
	return raw
}

// keptEvent is what waitEvent and wantNothingOf read of an event frame's
// data.
type keptEvent struct {
	Type      parley.EventType `json:"type"`
	UserID    string           `json:"user_id"`
	MessageID string           `json:"message_id"`
	Message   json.RawMessage  `json:"message"`
}

func (e keptEvent) messageID() string {
	var m struct {
		ID string `json:"id"`
	}
	json.Unmarshal(e.Message, &m)
	return m.ID
}

// waitEvent waits until c (keepAll) has received an event of typ whose
// message is id, and returns that message's JSON.
func (c *client) waitEvent(typ parley.EventType, id string) json.RawMessage {
	c.t.Helper()
	var msg json.RawMessage
	waitUntil(c.t, c.user+"'s "+string(typ)+" of "+id, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, d := range c.all {
			var e keptEvent
			if json.Unmarshal(d, &e) == nil && e.Type == typ && e.messageID() == id {
				msg = e.Message
				return true
			}
		}
		return false
	})
	return msg
}

// wantNothingOf fails t if any event c (keepAll) received is about the
// message of the versions (by its id, or a message event of its sender's)
// or holds any version's text.
func (c *client) wantNothingOf(t *testing.T, where string, versions ...parley.Message) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, d := range c.all {
		var e keptEvent
		if err := json.Unmarshal(d, &e); err != nil {
			t.Fatalf("%s's event %s: %v", c.user, d, err)
		}
		about := e.Message != nil || e.MessageID != ""
		if slices.ContainsFunc(versions, func(m parley.Message) bool {
			return e.messageID() == m.ID || e.MessageID == m.ID || (about && e.UserID == m.SenderID) || strings.Contains(string(d), m.Text)
		}) {
			t.Errorf("%s, %s received an event naming or quoting %s's message %s: %s", where, c.user, versions[0].SenderID, versions[0].ID, d)
		}
	}
}
