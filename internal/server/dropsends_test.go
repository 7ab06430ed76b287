package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// stallStore is SQLite with a batcher the test can hold after one
// commit, in its batch observer (on the batcher goroutine, before that
// batch's answers): the writes queued meanwhile wait in the store's
// queue, not taken into a batch. It embeds *sqlite.DB, so it keeps every
// optional interface of the store (the server hands it runs of sends
// through parley.AsyncSender, as it does SQLite).
//
// Its Messages (a history request) waits until reads is closed, so a
// connection's worker can be held while requests queue up behind it.
type stallStore struct {
	*sqlite.DB
	armed   atomic.Bool   // the next batch committed holds the batcher
	held    chan struct{} // receives once the batcher is held
	release chan struct{} // closed to let it go on
	reads   chan struct{} // closed to let Messages go on
	reading chan struct{} // receives when Messages starts to wait
}

// newStallStore opens a stallStore for the test server, which gets it
// as wrap returns it (nil: as it is).
func newStallStore(t *testing.T, wrap func(*stallStore) parley.Store) (*stallStore, servertest.Option) {
	st := &stallStore{held: make(chan struct{}, 1), release: make(chan struct{}),
		reads: make(chan struct{}), reading: make(chan struct{}, 1)}
	t.Cleanup(st.unblock)
	return st, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		st.DB = db
		if wrap == nil {
			return st, err
		}
		return wrap(st), err
	})
}

// unblock lets the batcher and Messages go on, if the test has not yet.
// A test that stops early calls it before its server stops, which waits
// for them.
func (st *stallStore) unblock() {
	for _, ch := range []chan struct{}{st.release, st.reads} {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
}

func (st *stallStore) Messages(ctx context.Context, userID, conversationID string, q parley.MessageQuery) (parley.MessagePage, error) {
	select {
	case st.reading <- struct{}{}:
	default:
	}
	select {
	case <-st.reads:
	case <-ctx.Done():
		return parley.MessagePage{}, ctx.Err()
	}
	return st.DB.Messages(ctx, userID, conversationID, q)
}

// syncStore is a stallStore the server sees without parley.AsyncSender
// (nor any other optional interface, but the batch observer that holds
// its batcher), as it sees a store an integrator plugs in: it runs a
// connection's sends synchronously, one SendMessage after the other.
type syncStore struct {
	parley.Store
	st *stallStore
}

func (s syncStore) SetBatchObserver(f func(ops int, commit, txn time.Duration)) {
	s.st.SetBatchObserver(f)
}

// multiSyncStore is a syncStore that keeps parley.MultiSender: the server
// hands it a connection's run of sends in one synchronous call.
type multiSyncStore struct{ syncStore }

func (s multiSyncStore) SendMessages(ctx context.Context, ms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) {
	s.st.SendMessages(ctx, ms, done)
}

// SetBatchObserver hands the server's observer on, and holds the batcher
// in it when armed.
func (st *stallStore) SetBatchObserver(f func(ops int, commit, txn time.Duration)) {
	st.DB.SetBatchObserver(func(ops int, commit, txn time.Duration) {
		f(ops, commit, txn)
		if st.armed.CompareAndSwap(true, false) {
			st.held <- struct{}{}
			<-st.release
		}
	})
}

// TestClosedConnDropsQueuedSends: the sends a connection handed to the
// store that the store has not taken into a batch when the connection
// closes are not run (the client never gets their replies and sends them
// again on its next connection); the ones behind them, still in the
// connection's request queue, are dropped too. The client's resends are
// then each stored, and delivered, exactly once, and the store ran fewer
// sends than the client made. Before, a reconnect storm's store did every
// such send twice: once for the dead connection, once for the resend.
//
// The same holds for a store without parley.AsyncSender, whose sends the
// worker waits for (with parley.MultiSender in one call, else one by
// one): the close ends the run's context and the sends the store has not
// started are not run. Before, such a store ran every one of them (the
// "sync" subtests failed with parley_sends_dropped_total = 0).
func TestClosedConnDropsQueuedSends(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*stallStore) parley.Store
	}{
		{"AsyncSender", nil},
		{"sync MultiSender", func(st *stallStore) parley.Store { return multiSyncStore{syncStore{st, st}} }},
		{"sync SendMessage", func(st *stallStore) parley.Store { return syncStore{st, st} }},
	} {
		t.Run(tc.name, func(t *testing.T) { testClosedConnDropsQueuedSends(t, tc.wrap) })
	}
}

func testClosedConnDropsQueuedSends(t *testing.T, wrap func(*stallStore) parley.Store) {
	st, withStore := newStallStore(t, wrap)
	srv := servertest.Start(t, withStore, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	t.Cleanup(st.unblock) // before the server stops
	a, conv := aliceToBob(t, srv)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)

	// Bob's send holds the batcher once it is committed: what alice
	// sends next waits in the store's queue.
	st.armed.Store(true)
	b.sendOp(protocol.OpSend, "block", protocol.Send{ConversationID: conv.ID, ClientID: "bob-1", Text: "from bob"})
	<-st.held
	handedBefore := metric(t, srv, "parley_store_send_batch_size_sum")
	opsBefore := metric(t, srv, "parley_store_batch_ops_sum")

	// Alice's worker waits for her history request while her sends
	// queue up behind it; her ping's pong (the reader answers it) says
	// they are all read.
	a.sendOp(protocol.OpHistory, "h", protocol.History{ConversationID: conv.ID})
	<-st.reading
	const n = 20
	for i := range n {
		a.sendOp(protocol.OpSend, fmt.Sprintf("s%d", i), protocol.Send{ConversationID: conv.ID, ClientID: fmt.Sprintf("a-%d", i), Text: fmt.Sprintf("m%02d", i)})
	}
	if f := a.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("ping: %s", f.Type)
	}
	close(st.reads)
	// The worker hands alice's sends to the store as one run, which
	// waits there behind the held batcher.
	var handed float64
	servertest.WaitUntil(t, "alice's sends in the store", testWait, func() bool {
		handed = metric(t, srv, "parley_store_send_batch_size_sum") - handedBefore
		return handed > 0
	})
	if handed != n {
		t.Fatalf("alice's worker handed the store %v sends at once, want %d", handed, n)
	}
	a.ws.CloseNow() // the client is cut off: no reply can reach it
	// Seen closing, or gone already: a run the worker waits for ends
	// with the close, and so does the connection.
	servertest.WaitUntil(t, "the server to see alice's connection close", testWait, func() bool {
		return srv.Server.ClosingConns() == 1 || srv.Server.Conns() == 1
	})
	close(st.release)
	if f := b.waitFor(func(f protocol.Frame) bool { return f.ID == "block" }); f.Type != protocol.TypeReply {
		t.Fatalf("bob's send: %s %+v", f.Type, f.Error)
	}
	servertest.WaitUntil(t, "alice's connection to end", testWait, func() bool { return srv.Server.Conns() == 1 })
	if got := metric(t, srv, "parley_sends_dropped_total"); got != handed {
		t.Errorf("parley_sends_dropped_total = %v, want %v: the closed connection's sends in the store's queue ran", got, handed)
	}

	// The client sends every message it got no reply for again.
	a2 := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	for i := range n {
		if m := a2.send(conv.ID, fmt.Sprintf("a-%d", i), fmt.Sprintf("m%02d", i)); m.Text != fmt.Sprintf("m%02d", i) {
			t.Fatalf("resend %d stored %q", i, m.Text)
		}
	}
	if ops := metric(t, srv, "parley_store_batch_ops_sum") - opsBefore; ops != n {
		t.Errorf("the store ran %v writes for alice's %v sends and %d resends, want %d: one per message", ops, handed, n, n)
	}
	a2.send(conv.ID, "a-last", "last")

	// Stored once each, in order, and bob got each once.
	msgs := b.history(conv.ID).Messages
	if len(msgs) != n+2 {
		t.Fatalf("history has %d messages, want %d", len(msgs), n+2)
	}
	for i, m := range msgs[1 : n+1] {
		if want := fmt.Sprintf("a-%d", i); m.ClientID != want {
			t.Fatalf("message %d is %s, want %s", i+1, m.ClientID, want)
		}
	}
	got := map[string]int{}
	for {
		ev := b.event(parley.EventNewMessage)
		got[ev.Message.ClientID]++
		if ev.Message.ClientID == "a-last" {
			break
		}
	}
	for i := range n {
		if id := fmt.Sprintf("a-%d", i); got[id] != 1 {
			t.Errorf("bob got %s %d times, want once", id, got[id])
		}
	}
}
