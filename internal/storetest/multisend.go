package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
)

// sendResult is what SendMessages reported for one send.
type sendResult struct {
	i   int
	m   parley.Message
	evs []parley.Event
	err error
}

// sendMany runs SendMessages and checks that done was called once per
// send, in order, before it returned.
func sendMany(t *testing.T, ctx context.Context, ms parley.MultiSender, nms []parley.NewMessage) []sendResult {
	t.Helper()
	var got []sendResult
	ms.SendMessages(ctx, nms, func(i int, m parley.Message, evs []parley.Event, err error) {
		got = append(got, sendResult{i, m, evs, err})
	})
	if len(got) != len(nms) {
		t.Fatalf("SendMessages answered %d of %d sends", len(got), len(nms))
	}
	inOrder(t, "SendMessages", got)
	return got
}

// sendManyAsync runs SendMessagesAsync, waits until done was called once
// per send and checks that it was called in order.
func sendManyAsync(t *testing.T, as parley.AsyncSender, nms []parley.NewMessage) []sendResult {
	t.Helper()
	return sendManyDrop(t, as, nms, nil)
}

// sendManyDrop is sendManyAsync with drop.
func sendManyDrop(t *testing.T, as parley.AsyncSender, nms []parley.NewMessage, drop *atomic.Bool) []sendResult {
	t.Helper()
	return sendManyAround(t, as, nms, drop, func(queue func()) { queue() })
}

// sendManyAround is sendManyDrop whose SendMessagesAsync call (queue) runs
// inside around, e.g. while the store's batcher is held so the run shares
// one batch.
func sendManyAround(t *testing.T, as parley.AsyncSender, nms []parley.NewMessage, drop *atomic.Bool, around func(queue func())) []sendResult {
	t.Helper()
	var (
		mu  sync.Mutex
		got []sendResult
	)
	all := make(chan struct{})
	around(func() {
		as.SendMessagesAsync(nms, drop, func(i int, m parley.Message, evs []parley.Event, err error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, sendResult{i, m, evs, err})
			if len(got) == len(nms) {
				close(all)
			}
		})
	})
	<-all
	mu.Lock()
	defer mu.Unlock()
	inOrder(t, "SendMessagesAsync", got)
	return got
}

func inOrder(t *testing.T, name string, got []sendResult) {
	t.Helper()
	for k, r := range got {
		if r.i != k {
			t.Fatalf("%s answer %d was for send %d: out of order", name, k, r.i)
		}
	}
}

// testSendMessages: a run of sends is stored in its order, each send
// answered on its own: a duplicate client id inside the run (or one stored
// before it) is stored once, and an invalid or unauthorized send fails
// alone.
func testSendMessages(t *testing.T, s parley.Store) {
	ms := optional[parley.MultiSender](t, s)
	testSendRun(t, s, func(nms []parley.NewMessage) []sendResult { return sendMany(t, ctx(t), ms, nms) })
}

// testSendMessagesAsync: testSendMessages through parley.AsyncSender.
func testSendMessagesAsync(t *testing.T, s parley.Store) {
	as := optional[parley.AsyncSender](t, s)
	testSendRun(t, s, func(nms []parley.NewMessage) []sendResult { return sendManyAsync(t, as, nms) })
}

// testSendMessagesDropped: a run whose drop is set before the store takes
// it is answered parley.ErrSendDropped, send by send and in order, and
// nothing of it is stored (no message, no event); the same sends queued
// again without drop are each stored once.
func testSendMessagesDropped(t *testing.T, s parley.Store) {
	as := optional[parley.AsyncSender](t, s)
	a, b := newUser(t, s, "dropa"), newUser(t, s, "dropb")
	conv := newGroup(t, s, a, "dropped", b)
	var nms []parley.NewMessage
	for i := range 5 {
		nms = append(nms, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: fmt.Sprintf("drop-%d", i), Type: parley.Text, Text: fmt.Sprintf("d%d", i)})
	}
	head := must[int64](t, "Head")(s.Head(ctx(t)))
	var drop atomic.Bool
	drop.Store(true)
	for i, r := range sendManyDrop(t, as, nms, &drop) {
		if !errors.Is(r.err, parley.ErrSendDropped) || len(r.evs) != 0 {
			t.Errorf("dropped send %d: %d events, %v; want none, ErrSendDropped", i, len(r.evs), r.err)
		}
	}
	if got := must[int64](t, "Head")(s.Head(ctx(t))); got != head {
		t.Errorf("head %d after a dropped run, want %d: something was stored", got, head)
	}
	if got := allMessages(t, s, a.ID, conv.ID); len(got) != 0 {
		t.Errorf("history %v after a dropped run, want none", texts(got))
	}
	for i, r := range sendManyAsync(t, as, nms) {
		if r.err != nil || len(r.evs) != 1 {
			t.Fatalf("send %d again: %d events, %v; want it stored", i, len(r.evs), r.err)
		}
	}
	if got := texts(allMessages(t, s, a.ID, conv.ID)); fmt.Sprint(got) != "[d0 d1 d2 d3 d4]" {
		t.Errorf("history %v, want [d0 d1 d2 d3 d4]", got)
	}
}

// testSendRun is testSendMessages with the run stored by sendRun.
func testSendRun(t *testing.T, s parley.Store, sendRun func([]parley.NewMessage) []sendResult) {
	a, b, c := newUser(t, s, "multia"), newUser(t, s, "multib"), newUser(t, s, "multic")
	conv := newGroup(t, s, a, "multi", b)
	notMine := newGroup(t, s, c, "not a's")
	before := send(t, s, conv.ID, a, "before")

	text := func(id, txt string) parley.NewMessage {
		return parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: id, Type: parley.Text, Text: txt}
	}
	var nms []parley.NewMessage
	var want []string // texts stored, in order
	for i := range 40 {
		nms = append(nms, text(fmt.Sprintf("run-%d", i), fmt.Sprintf("m%02d", i)))
		want = append(want, fmt.Sprintf("m%02d", i))
	}
	const (
		dupAt     = 10 // a resend of run-3 inside the run
		invalidAt = 20 // empty text
		foreignAt = 25 // a conversation a is not in
		resendAt  = 30 // a resend of the message stored before the run
	)
	nms[dupAt], want[dupAt] = text("run-3", "m03 again"), ""
	nms[invalidAt], want[invalidAt] = text("run-invalid", ""), ""
	nms[foreignAt], want[foreignAt] = parley.NewMessage{ConversationID: notMine.ID, SenderID: a.ID, ClientID: "run-foreign", Type: parley.Text, Text: "no"}, ""
	nms[resendAt], want[resendAt] = text(before.ClientID, "before"), ""

	head := must[int64](t, "Head")(s.Head(ctx(t)))
	got := sendRun(nms)
	wantCode(t, "empty text in a run", got[invalidAt].err, parley.EINVALID)
	if !isNotFound(got[foreignAt].err) {
		t.Errorf("send to a conversation not joined: %v, want not found", got[foreignAt].err)
	}
	if r := got[dupAt]; r.err != nil || r.m.ID != got[3].m.ID || len(r.evs) != 0 {
		t.Errorf("duplicate inside the run = %+v, %d events, %v; want message %s, no events", r.m, len(r.evs), r.err, got[3].m.ID)
	}
	if r := got[resendAt]; r.err != nil || r.m.ID != before.ID || len(r.evs) != 0 {
		t.Errorf("resend inside the run = %+v, %d events, %v; want message %s, no events", r.m, len(r.evs), r.err, before.ID)
	}
	seq, pos := before.Seq, head
	var stored []string
	for i, r := range got {
		if want[i] == "" {
			continue
		}
		if r.err != nil {
			t.Fatalf("send %d: %v", i, r.err)
		}
		ev := oneEvent(t, fmt.Sprintf("send %d", i), r.evs, parley.EventNewMessage)
		if r.m.Seq != seq+1 || ev.Pos <= pos || r.m.Text != want[i] {
			t.Fatalf("send %d: seq %d pos %d text %q after seq %d pos %d; want the next seq, a later position and %q",
				i, r.m.Seq, ev.Pos, r.m.Text, seq, pos, want[i])
		}
		seq, pos = r.m.Seq, ev.Pos
		stored = append(stored, want[i])
	}
	page := parley.MessagePage{Messages: allMessages(t, s, a.ID, conv.ID)}
	if got, want := texts(page.Messages), append([]string{"before"}, stored...); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history = %v, want %v", got, want)
	}
}

// testSendMessagesConcurrent: runs of several senders into one group, at
// once, keep each sender's order, and every event reaches the log once.
func testSendMessagesConcurrent(t *testing.T, s parley.Store) {
	ms := optional[parley.MultiSender](t, s)
	const senders, runs, perRun = 4, 8, 6
	users := make([]parley.User, senders)
	for i := range users {
		users[i] = newUser(t, s, "multiconc")
	}
	conv := newGroup(t, s, users[0], "concurrent runs", users[1:]...)
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for u := range senders {
		wg.Go(func() {
			for r := range runs {
				var nms []parley.NewMessage
				for k := range perRun {
					n := r*perRun + k
					nms = append(nms, parley.NewMessage{ConversationID: conv.ID, SenderID: users[u].ID,
						ClientID: fmt.Sprintf("conc-%d-%d", u, n), Type: parley.Text, Text: fmt.Sprintf("%d:%03d", u, n)})
				}
				var failed error
				ms.SendMessages(ctx(t), nms, func(i int, _ parley.Message, _ []parley.Event, err error) {
					if err != nil && failed == nil {
						failed = fmt.Errorf("sender %d send %d: %w", u, r*perRun+i, err)
					}
				})
				if failed != nil {
					errs <- failed
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	page := parley.MessagePage{Messages: allMessages(t, s, users[0].ID, conv.ID)}
	if len(page.Messages) != senders*runs*perRun {
		t.Fatalf("history holds %d messages, want %d", len(page.Messages), senders*runs*perRun)
	}
	next := make(map[string]int)
	for _, m := range page.Messages {
		var u, n int
		fmt.Sscanf(m.Text, "%d:%d", &u, &n)
		if n != next[m.SenderID] {
			t.Fatalf("sender %d: message %d stored where %d was due: out of order", u, n, next[m.SenderID])
		}
		next[m.SenderID]++
	}
	seen := map[int64]bool{}
	for _, ev := range allEventsFor(t, s, users[1].ID) {
		if seen[ev.Pos] {
			t.Fatalf("position %d twice in the log", ev.Pos)
		}
		seen[ev.Pos] = true
	}
}

// testSendMessagesCancelled: when the context ends in the middle of a run,
// the sends that fail with the context's error are the last ones, and
// exactly the others are stored: none after a dropped one.
func testSendMessagesCancelled(t *testing.T, s parley.Store) {
	ms := optional[parley.MultiSender](t, s)
	a := newUser(t, s, "multicancel")
	conv := newGroup(t, s, a, "cancelled run")
	var nms []parley.NewMessage
	for i := range 1200 { // more than one batch holds
		nms = append(nms, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID,
			ClientID: fmt.Sprintf("cancel-%d", i), Type: parley.Text, Text: fmt.Sprintf("c%04d", i)})
	}
	cctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	var stored []string
	dropped := false
	ms.SendMessages(cctx, nms, func(i int, m parley.Message, _ []parley.Event, err error) {
		cancel() // from the first answer on, the rest may be dropped
		switch {
		case err == nil && dropped:
			t.Errorf("send %d stored after an earlier one was dropped", i)
		case err == nil:
			stored = append(stored, m.Text)
		case errors.Is(err, context.Canceled):
			dropped = true
		default:
			t.Errorf("send %d: %v", i, err)
		}
	})
	page := parley.MessagePage{Messages: allMessages(t, s, a.ID, conv.ID)}
	if got := texts(page.Messages); fmt.Sprint(got) != fmt.Sprint(stored) {
		t.Errorf("history = %v, want the sends answered as stored %v", got, stored)
	}
	// An ended context stores nothing.
	before := len(page.Messages)
	ms.SendMessages(cctx, nms[:3], func(i int, _ parley.Message, _ []parley.Event, err error) {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("send %d with an ended context: %v, want context.Canceled", i, err)
		}
	})
	page = parley.MessagePage{Messages: allMessages(t, s, a.ID, conv.ID)}
	if len(page.Messages) != before {
		t.Errorf("an ended context stored %d messages", len(page.Messages)-before)
	}
}

// allMessages returns a conversation's whole history, page by page.
func allMessages(t *testing.T, s parley.Store, userID, convID string) []parley.Message {
	t.Helper()
	var all []parley.Message
	var before int64
	for {
		page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), userID, convID, parley.MessageQuery{Before: before, Limit: parley.MaxPageLimit}))
		all = append(slices.Clone(page.Messages), all...)
		if !page.HasMore || len(page.Messages) == 0 {
			return all
		}
		before = page.Messages[0].Seq
	}
}
