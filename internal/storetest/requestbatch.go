package storetest

import (
	"testing"

	"github.com/parleychat/parley"
)

// testRequestsInRun is RequestsInOneBatch with the runs taken as they come.
func testRequestsInRun(t *testing.T, s parley.Store) { RequestsInOneBatch(t, s, nil) }

// RequestsInOneBatch: a message of the recipient of a declined request
// accepts it for the sends that come after it in a run of sends
// (parley.AsyncSender: one after the other, in order), though they share
// its store batch, as they would in batches of their own: the starter's
// send after it is stored. Before it, the starter's send is refused, and
// a block of the starter's stays a block whoever writes first.
//
// oneBatch calls queue, which queues a run of sends and returns, and
// makes the store take the whole run into one batch (nil: the store
// takes the run as it comes, which for a run of two queued at once is
// most often one batch).
func RequestsInOneBatch(t *testing.T, s parley.Store, oneBatch func(queue func())) {
	cs := optional[parley.Consenter](t, s)
	as := optional[parley.AsyncSender](t, s)
	if oneBatch == nil {
		oneBatch = func(queue func()) { queue() }
	}
	run := func(nms ...parley.NewMessage) []sendResult {
		t.Helper()
		return sendManyAround(t, as, nms, nil, oneBatch)
	}
	msg := func(c parley.Conversation, from parley.User, text string) parley.NewMessage {
		return parley.NewMessage{ConversationID: c.ID, SenderID: from.ID, ClientID: clientID(), Type: parley.Text, Text: text}
	}
	// declined makes starter's request to recipient, declined.
	declined := func(starter, recipient parley.User) parley.Conversation {
		t.Helper()
		c := newDirect(t, s, starter, recipient)
		send(t, s, c.ID, starter, "hello")
		if _, _, err := cs.AnswerRequest(ctx(t), recipient.ID, c.ID, false); err != nil {
			t.Fatalf("decline: %v", err)
		}
		return c
	}
	request := func(c parley.Conversation, u parley.User) parley.Request {
		t.Helper()
		return must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), u.ID, c.ID)).Request
	}

	// The recipient writes first: the starter's answer is stored after it.
	a, b := newUser(t, s, "rbra"), newUser(t, s, "rbrb")
	c := declined(a, b)
	got := run(msg(c, b, "changed my mind"), msg(c, a, "thanks"))
	if got[0].err != nil || got[1].err != nil {
		t.Errorf("the recipient's message, then the starter's, in one run: %v, %v; want both stored", got[0].err, got[1].err)
	} else if got[1].m.Seq <= got[0].m.Seq {
		t.Errorf("the starter's message has seq %d, the recipient's %d: want it after", got[1].m.Seq, got[0].m.Seq)
	}
	if r := request(c, b); r != "" {
		t.Errorf("after the recipient wrote: request %q, want accepted", r)
	}

	// The starter writes first: refused, as the request was declined
	// then; the recipient's message accepts it.
	d, e := newUser(t, s, "rbrd"), newUser(t, s, "rbre")
	c = declined(d, e)
	got = run(msg(c, d, "please"), msg(c, e, "fine"))
	wantErr(t, "the starter's message, then the recipient's, in one run: the starter's", got[0].err, parley.ErrUnreachable)
	if got[1].err != nil {
		t.Errorf("the recipient's message after the starter's: %v", got[1].err)
	}
	if r := request(c, e); r != "" {
		t.Errorf("after the recipient wrote: request %q, want accepted", r)
	}
	send(t, s, c.ID, d, "thanks")

	// Declined and blocked: the recipient's message accepts the request
	// but leaves the block, and the starter stays refused.
	f, g := newUser(t, s, "rbrf"), newUser(t, s, "rbrg")
	c = declined(f, g)
	if _, err := cs.Block(ctx(t), g.ID, f.ID); err != nil {
		t.Fatal(err)
	}
	got = run(msg(c, g, "go away"), msg(c, f, "but why"))
	if got[0].err != nil {
		t.Errorf("a blocker's message in a declined request: %v", got[0].err)
	}
	wantErr(t, "the blocked starter's message after the blocker's, in one run", got[1].err, parley.ErrUnreachable)
}
