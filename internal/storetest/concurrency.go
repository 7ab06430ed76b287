package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
)

// testConcurrency: many writers at once, then the log must be dense and in
// commit order, every conversation's Seq dense, and a reader polling the
// log during the writes must never see a position appear behind one it
// already saw.
func testConcurrency(t *testing.T, s parley.Store) {
	const (
		writers = 16
		each    = 100
		convs   = 4
	)
	users := make([]parley.User, writers)
	for i := range users {
		users[i] = newUser(t, s, "conc")
	}
	groups := make([]parley.Conversation, convs)
	for i := range groups {
		groups[i] = newGroup(t, s, users[0], fmt.Sprint("G", i), users[1:]...)
	}
	start := must[int64](t, "Head")(s.Head(ctx(t)))

	var (
		writersWG sync.WaitGroup
		readerWG  sync.WaitGroup
		done      atomic.Bool
	)
	// The reader: each poll must continue exactly where the last ended.
	// A position committed out of order would show as a gap here (a larger
	// position visible before a smaller one).
	var seen atomic.Int64
	kick := make(chan struct{}, 1)
	nudge := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	readerWG.Go(func() {
		after := start
		for {
			finished := done.Load()
			events, err := s.Events(ctx(t), after, 500)
			if err != nil {
				t.Errorf("Events(%d) while writing: %v", after, err)
				return
			}
			head, err := s.Head(ctx(t))
			if err != nil {
				t.Errorf("Head while writing: %v", err)
				return
			}
			for _, e := range events {
				if e.Pos != after+1 {
					t.Errorf("reader after %d saw position %d: a position appeared behind a larger one", after, e.Pos)
					return
				}
				after = e.Pos
			}
			if head < after {
				t.Errorf("Head %d is behind a visible position %d", head, after)
				return
			}
			seen.Store(after)
			if finished && len(events) == 0 {
				return
			}
			if len(events) == 0 {
				// Nothing new: wait for a writer's next commit rather
				// than spin (the machine running this may be small).
				<-kick
			}
		}
	})

	for w := range writers {
		writersWG.Go(func() {
			for i := range each {
				conv := groups[(w+i)%convs]
				m, events, err := s.SendMessage(ctx(t), parley.NewMessage{
					ConversationID: conv.ID, SenderID: users[w].ID, ClientID: fmt.Sprintf("w%d-%d", w, i),
					Type: parley.Text, Text: fmt.Sprintf("w%d m%d", w, i),
				})
				if err != nil {
					t.Errorf("writer %d send %d: %v", w, i, err)
					return
				}
				if len(events) != 1 || events[0].Message.ID != m.ID {
					t.Errorf("writer %d send %d: events %+v", w, i, events)
					return
				}
				nudge()
			}
		})
	}
	writersWG.Wait()
	done.Store(true)
	nudge()
	readerWG.Wait()

	head := must[int64](t, "Head")(s.Head(ctx(t)))
	if want := start + writers*each; head != want {
		t.Fatalf("Head = %d, want %d", head, want)
	}
	if got := seen.Load(); got != head {
		t.Errorf("the reader saw up to %d, head is %d", got, head)
	}
	all := allEvents(t, s)
	for i, e := range all {
		if e.Pos != int64(i+1) {
			t.Fatalf("event %d has position %d: the log is not dense", i+1, e.Pos)
		}
	}
	// Each conversation's Seq is dense, and in position order.
	lastSeq := map[string]int64{}
	for _, e := range all[start:] {
		if e.Type != parley.EventNewMessage {
			t.Fatalf("unexpected event %+v", e)
		}
		if e.Message.Seq != lastSeq[e.ConversationID]+1 {
			t.Fatalf("conversation %s: seq %d after %d", e.ConversationID, e.Message.Seq, lastSeq[e.ConversationID])
		}
		lastSeq[e.ConversationID] = e.Message.Seq
	}
	for _, g := range groups {
		if got := lastSeq[g.ID]; got != writers*each/convs {
			t.Errorf("conversation %s has %d messages, want %d", g.Title, got, writers*each/convs)
		}
	}
}

// testBatchIsolation: calls that fail do not fail the others they are
// batched with, and concurrent resends of one message store it once.
func testBatchIsolation(t *testing.T, s parley.Store) {
	a, b, outsider := newUser(t, s, "bisa"), newUser(t, s, "bisb"), newUser(t, s, "biso")
	conv := newGroup(t, s, a, "G", b)
	const n = 40
	var wg sync.WaitGroup
	var good atomic.Int64
	for i := range n {
		wg.Go(func() {
			switch i % 4 {
			case 0, 1: // good
				if _, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: "ok"}); err != nil {
					t.Errorf("good send: %v", err)
					return
				}
				good.Add(1)
			case 2: // not a member
				_, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: outsider.ID, ClientID: clientID(), Type: parley.Text, Text: "no"})
				if !isNotFound(err) {
					t.Errorf("outsider send: %v, want not found", err)
				}
			case 3: // forbidden delete of nothing there
				_, _, err := s.DeleteMessage(ctx(t), b.ID, conv.ID, "no-such-message")
				if !isNotFound(err) {
					t.Errorf("delete of an unknown message: %v, want not found", err)
				}
			}
		})
	}
	// Concurrent resends of one message.
	var ids sync.Map
	var events atomic.Int64
	for range 8 {
		wg.Go(func() {
			m, ev, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: b.ID, ClientID: "resent", Type: parley.Text, Text: "once"})
			if err != nil {
				t.Errorf("resend: %v", err)
				return
			}
			ids.Store(m.ID, true)
			events.Add(int64(len(ev)))
		})
	}
	wg.Wait()
	distinct := 0
	ids.Range(func(any, any) bool { distinct++; return true })
	if distinct != 1 || events.Load() != 1 {
		t.Errorf("8 concurrent sends of one client id made %d messages and %d events, want 1 and 1", distinct, events.Load())
	}
	got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, conv.ID))
	if got.LastSeq != good.Load()+1 {
		t.Errorf("LastSeq = %d, want %d", got.LastSeq, good.Load()+1)
	}
}

// testCancelledContext: a write whose context is already done does not
// happen.
func testCancelledContext(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "cana"), newUser(t, s, "canb")
	conv := newGroup(t, s, a, "G", b)
	head := must[int64](t, "Head")(s.Head(ctx(t)))
	cctx, cancel := context.WithCancel(ctx(t))
	cancel()
	_, _, err := s.SendMessage(cctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("SendMessage with a cancelled context: %v, want context.Canceled", err)
	}
	if h := must[int64](t, "Head")(s.Head(ctx(t))); h != head {
		t.Errorf("Head moved from %d to %d", head, h)
	}
	page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), a.ID, conv.ID, parley.MessageQuery{}))
	if len(page.Messages) != 0 {
		t.Errorf("a cancelled send was stored: %+v", page.Messages)
	}
}

// SendUntilError starts n writers that each send text messages to
// conversation convID as senderID until a send fails: sent runs after
// each stored message, stopped with the error that ended a writer (both
// from the writers' goroutines). wait returns once every writer stopped.
// Tests of Close use it: the writers are still at work when it is called.
func SendUntilError(s parley.Store, convID, senderID string, n int, sent func(parley.Message), stopped func(error)) (wait func()) {
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() {
			for i := 0; ; i++ {
				m, _, err := s.SendMessage(context.Background(), parley.NewMessage{
					ConversationID: convID, SenderID: senderID, ClientID: fmt.Sprintf("w%d-%d", w, i), Type: parley.Text, Text: "x",
				})
				if err != nil {
					stopped(err)
					return
				}
				sent(m)
			}
		})
	}
	return wg.Wait
}

// testClose: Close with writes under way returns once they are done;
// calls after it fail rather than hang.
func testClose(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "closea"), newUser(t, s, "closeb")
	conv := newGroup(t, s, a, "G", b)
	var sent atomic.Int64
	started := make(chan struct{})
	var once sync.Once
	wait := SendUntilError(s, conv.ID, a.ID, 8, func(parley.Message) {
		sent.Add(1)
		once.Do(func() { close(started) })
	}, func(error) {}) // closed
	<-started
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	wait()
	if sent.Load() == 0 {
		t.Fatal("no send succeeded before Close")
	}
	if _, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: "late"}); err == nil {
		t.Error("SendMessage after Close succeeded")
	}
	late := []parley.NewMessage{{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: "late"}}
	if r := sendManyAsync(t, optional[parley.AsyncSender](t, s), late); r[0].err == nil {
		t.Error("SendMessagesAsync after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
