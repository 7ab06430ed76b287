// Package brokertest is the conformance suite for parley.Broker: every
// implementation (internal/membroker, internal/natsbroker) runs it from its
// own tests, and passing it is what "implements the Broker contract" means.
//
// The suite works with two nodes, a and b, that share one backend (two
// connections to the same NATS, say). A single-process broker passes the
// same instance twice. Besides the contract in broker.go the suite asks:
//
//   - a subscription is in effect when Subscribe returns: a message
//     published after that reaches it (on a healthy backend);
//   - Close is idempotent, and Publish and Subscribe fail after Close;
//   - calling the stop func twice, or after Close, is harmless.
//
// The constructor owns the brokers: it registers their Close (and the
// shutdown of any backend it started) with t.Cleanup. The implementing
// package checks goroutine leaks for the whole run with goleak in its
// TestMain; the suite also checks after each test that the brokers it
// closed left no goroutine behind.
package brokertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/parleychat/parley"
)

// NewPair returns two nodes of one cluster. They may be the same broker
// when the implementation has no backend to share.
type NewPair func(t *testing.T) (a, b parley.Broker)

// waitTimeout bounds how long the suite waits for a delivery before it
// fails the test: a liveness bound, not a timed assertion.
const waitTimeout = 10 * time.Second

// Run runs the suite. Subtests run one after another.
func Run(t *testing.T, newPair NewPair) {
	t.Run("OwnMessages", func(t *testing.T) { testOwnMessages(t, newPair) })
	t.Run("FanOut", func(t *testing.T) { testFanOut(t, newPair) })
	t.Run("OrderPerPublisher", func(t *testing.T) { testOrderPerPublisher(t, newPair) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, newPair) })
	t.Run("RoundTripData", func(t *testing.T) { testRoundTripData(t, newPair) })
	t.Run("OneCallAtATime", func(t *testing.T) { testOneCallAtATime(t, newPair) })
	t.Run("StopWaits", func(t *testing.T) { testStopWaits(t, newPair) })
	t.Run("Close", func(t *testing.T) { testClose(t, newPair) })
	t.Run("NoLeaks", func(t *testing.T) { testNoLeaks(t, newPair) })
}

// recorder collects what a subscriber receives.
type recorder struct {
	mu   sync.Mutex
	msgs []parley.BrokerMessage
	ch   chan struct{} // signalled (non-blocking) on every message
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 1)} }

func (r *recorder) fn(m parley.BrokerMessage) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.ch <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []parley.BrokerMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]parley.BrokerMessage(nil), r.msgs...)
}

// waitFor waits until cond holds for what r received, failing the test
// after waitTimeout.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]parley.BrokerMessage) bool) []parley.BrokerMessage {
	t.Helper()
	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	for {
		got := r.snapshot()
		if cond(got) {
			return got
		}
		select {
		case <-r.ch:
		case <-deadline.C:
			t.Fatalf("waiting for %s: gave up after %v with %d messages", what, waitTimeout, len(got))
		}
	}
}

func (r *recorder) waitCount(t *testing.T, n int) []parley.BrokerMessage {
	t.Helper()
	return r.waitFor(t, fmt.Sprintf("%d messages", n), func(m []parley.BrokerMessage) bool { return len(m) >= n })
}

func subscribe(t *testing.T, b parley.Broker, fn func(parley.BrokerMessage)) func() {
	t.Helper()
	stop, err := b.Subscribe(fn)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(stop)
	return stop
}

func publish(t *testing.T, b parley.Broker, m parley.BrokerMessage) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := b.Publish(ctx, m); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// marker is a message the suite recognises by node, user and position.
func marker(node, user string, n int64) parley.BrokerMessage {
	return parley.BrokerMessage{Node: node, Events: []parley.Event{{
		Pos: n, Type: parley.EventNewMessage, UserID: user, Audience: []string{user},
	}}}
}

func key(m parley.BrokerMessage) string {
	if len(m.Events) == 0 {
		return m.Node + "/presence"
	}
	return fmt.Sprintf("%s/%s/%d", m.Node, m.Events[0].UserID, m.Events[0].Pos)
}

func testOwnMessages(t *testing.T, newPair NewPair) {
	a, _ := newPair(t)
	r := newRecorder()
	subscribe(t, a, r.fn)
	publish(t, a, marker("a", "u1", 1))
	got := r.waitCount(t, 1)
	if k := key(got[0]); k != "a/u1/1" {
		t.Errorf("got %s, want a/u1/1", k)
	}
}

// testFanOut: two subscribers on each node; messages from both nodes reach
// all four subscribers, each exactly once.
func testFanOut(t *testing.T, newPair NewPair) {
	a, b := newPair(t)
	recs := []*recorder{newRecorder(), newRecorder(), newRecorder(), newRecorder()}
	for i, r := range recs {
		subscribe(t, []parley.Broker{a, b}[i%2], r.fn)
	}
	const n = 20
	for i := int64(1); i <= n; i++ {
		publish(t, a, marker("a", "u", i))
		publish(t, b, marker("b", "u", i))
	}
	for i, r := range recs {
		got := r.waitCount(t, 2*n)
		seen := map[string]int{}
		for _, m := range got {
			seen[key(m)]++
		}
		for i := int64(1); i <= n; i++ {
			for _, node := range []string{"a", "b"} {
				if k := fmt.Sprintf("%s/u/%d", node, i); seen[k] != 1 {
					t.Errorf("subscriber %d got %s %d times, want once", i, k, seen[k])
				}
			}
		}
		if len(got) != 2*n {
			t.Errorf("subscriber %d got %d messages, want %d", i, len(got), 2*n)
		}
	}
}

// testOrderPerPublisher: eight goroutines publish at once, half on each
// node; every subscriber sees each publisher's messages in the order it
// published them, and all of them.
func testOrderPerPublisher(t *testing.T, newPair NewPair) {
	a, b := newPair(t)
	ra, rb := newRecorder(), newRecorder()
	subscribe(t, a, ra.fn)
	subscribe(t, b, rb.fn)
	const publishers, perPublisher = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		node, br := "a", a
		if p%2 == 1 {
			node, br = "b", b
		}
		wg.Go(func() {
			for i := int64(1); i <= perPublisher; i++ {
				if err := br.Publish(context.Background(), marker(node, fmt.Sprintf("p%d", p), i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	for name, r := range map[string]*recorder{"a": ra, "b": rb} {
		got := r.waitCount(t, publishers*perPublisher)
		last := map[string]int64{}
		for _, m := range got {
			pub := m.Node + "/" + m.Events[0].UserID
			if pos := m.Events[0].Pos; pos != last[pub]+1 {
				t.Fatalf("subscriber on %s: publisher %s: got %d after %d", name, pub, pos, last[pub])
			}
			last[pub]++
		}
		if len(got) != publishers*perPublisher {
			t.Errorf("subscriber on %s got %d messages, want %d", name, len(got), publishers*perPublisher)
		}
	}
}

// testRoundTrip: every field of every kind of event, Audience included, and
// presence reports arrive as they were sent.
func testRoundTrip(t *testing.T, newPair NewPair) {
	a, b := newPair(t)
	r := newRecorder()
	subscribe(t, b, r.fn)
	at := parley.Now()
	deletedAt := at.Add(time.Second)
	msg := &parley.Message{
		ID: "m1", ConversationID: "c1", Seq: 7, SenderID: "u1", SenderName: "Ann",
		ClientID: "cid-1", Type: parley.Image, Text: "caption ✓ \"quoted\" <b>",
		Attachment: &parley.Attachment{ID: "a1", ContentType: "image/png", Size: 1234, Width: 64, Height: 32,
			URL: "/v1/attachments/a1", ThumbURL: "/v1/attachments/a1/thumb"},
		CreatedAt: at,
	}
	file := &parley.Message{
		ID: "m3", ConversationID: "c1", Seq: 9, SenderID: "u1", SenderName: "Ann",
		ClientID: "cid-3", Type: parley.File, Text: "the notes",
		Attachment: &parley.Attachment{ID: "a2", ContentType: "application/pdf", Size: 99, Name: "résumé \"v2\".pdf",
			URL: "/v1/attachments/a2"},
		CreatedAt: at,
	}
	tomb := &parley.Message{ID: "m2", ConversationID: "c1", Seq: 8, SenderID: "u1", SenderName: "Ann",
		ClientID: "cid-2", Type: parley.Text, CreatedAt: at, Deleted: true, DeletedAt: &deletedAt}
	conv := &parley.Conversation{
		ID: "c1", Kind: parley.Group, Title: "Team", CreatedBy: "u1", CreatedAt: at,
		LastSeq: 8, LastActivityAt: at,
		Members: []parley.Member{{UserID: "u1", Name: "Ann", ReadSeq: 8, DeliveredSeq: 8, DisplayName: "Ann A.", AvatarID: "av-1"},
			{UserID: "u2", Name: "Bob", ReadSeq: 3, DeliveredSeq: 5}},
		LastMessage: tomb, UnreadCount: 2, ReadSeq: 6,
	}
	sent := []parley.BrokerMessage{
		{Node: "node-a", Events: []parley.Event{
			{Pos: 41, Type: parley.EventNewMessage, ConversationID: "c1", UserID: "u1", UserName: "Ann",
				Message: msg, At: at, Audience: []string{"u1", "u2", "u3"}},
			{Pos: 42, Type: parley.EventMessageDeleted, ConversationID: "c1", UserID: "u1", UserName: "Ann",
				Message: tomb, At: at, Audience: []string{"u1", "u2"}},
			{Pos: 43, Type: parley.EventMessageRead, ConversationID: "c1", UserID: "u2", UserName: "Bob",
				ReadSeq: 8, At: at, Audience: []string{"u1", "u2"}},
			{Pos: 44, Type: parley.EventNewMessage, ConversationID: "c1", UserID: "u1", UserName: "Ann",
				Message: file, At: at, Audience: []string{"u1", "u2"}},
			{Pos: 45, Type: parley.EventMessageDelivered, ConversationID: "c1", UserID: "u2", UserName: "Bob",
				DeliveredSeq: 8, At: at, Audience: []string{"u1", "u2"}},
			{Pos: 46, Type: parley.EventProfileUpdated, ConversationID: "c1", UserID: "u1", UserName: "Ann",
				Profile: &parley.Profile{DisplayName: "Ann A.", AvatarID: "av-1"}, At: at, Audience: []string{"u1", "u2"}},
			{Pos: 1 << 40, Type: parley.EventConversationUpdated, ConversationID: "c1", UserID: "u1", UserName: "Ann",
				Conversation: conv, Change: parley.ChangeMembersRemoved, UserIDs: []string{"u3"}, At: at,
				Audience: []string{"u1", "u2", "u3"}},
		}},
		{Node: "node-a", Events: []parley.Event{
			{Type: parley.EventTypingStarted, ConversationID: "c1", UserID: "u1", UserName: "Ann", At: at,
				Audience: []string{"u2"}},
		}},
		{Node: "node-a", Presence: &parley.NodePresence{Snapshot: true, Online: []string{"u1", "u2"}}},
		{Node: "node-a", Presence: &parley.NodePresence{Online: []string{"u4"}, Offline: []string{"u2"}}},
		{Node: "node-a", Presence: &parley.NodePresence{Leaving: true, Snapshot: true}},
		{Node: "node-a", Usage: []parley.LimitUsage{{Limit: "messages", Key: "u1", N: 3}, {Limit: "ip_messages", Key: "192.0.2.1", N: 7}}},
		{Node: "node-a", Users: []parley.UserChange{{ID: "u1"}, {ID: "u2", Banned: true}}},
	}
	for _, m := range sent {
		publish(t, a, m)
	}
	got := r.waitCount(t, len(sent))
	// nil and empty slices are the same thing on the wire.
	if diff := cmp.Diff(sent, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("messages changed on the way (-sent +got):\n%s", diff)
	}
	for i, m := range got {
		for j, e := range m.Events {
			if !e.At.Equal(sent[i].Events[j].At) || e.At.Location() != time.UTC {
				t.Errorf("message %d event %d: At = %v, want %v in UTC", i, j, e.At, sent[i].Events[j].At)
			}
		}
	}
}

// testRoundTripData: an event published with Data arrives with the fields
// a node routes on (Pos, Shard, Type, ConversationID, Change, At,
// Audience) and its Data byte for byte; the other fields may be left to
// parley.Event.Decode, which gives back the event as published.
func testRoundTripData(t *testing.T, newPair NewPair) {
	a, b := newPair(t)
	r := newRecorder()
	subscribe(t, b, r.fn)
	at := parley.Now()
	sent := []parley.Event{
		{Pos: 5, Shard: 3, Type: parley.EventNewMessage, ConversationID: "c1", UserID: "u1", At: at,
			Message:  &parley.Message{ID: "m1", ConversationID: "c1", Seq: 2, SenderID: "u1", Type: parley.Text, Text: "hi <&> ✓", CreatedAt: at},
			Audience: []string{"u1", "u2"}},
		{Pos: 6, Shard: 3, Type: parley.EventConversationUpdated, ConversationID: "c1", UserID: "u1", At: at,
			Conversation: &parley.Conversation{ID: "c1", Kind: parley.Group, CreatedAt: at, LastActivityAt: at, Members: []parley.Member{{UserID: "u1"}, {UserID: "u3"}}},
			Change:       parley.ChangeMembersAdded, UserIDs: []string{"u3"}, Audience: []string{"u1", "u3"}},
		{Type: parley.EventTypingStarted, ConversationID: "c1", UserID: "u1", At: at, Audience: []string{"u2"}},
	}
	for i := range sent {
		data, err := json.Marshal(sent[i])
		if err != nil {
			t.Fatal(err)
		}
		sent[i].Data = data
	}
	publish(t, a, parley.BrokerMessage{Node: "node-a", Events: sent})
	got := r.waitCount(t, 1)
	if len(got[0].Events) != len(sent) {
		t.Fatalf("got %d events, want %d", len(got[0].Events), len(sent))
	}
	for i, e := range got[0].Events {
		w := sent[i]
		if e.Pos != w.Pos || e.Shard != w.Shard || e.Type != w.Type || e.ConversationID != w.ConversationID || e.Change != w.Change ||
			!e.At.Equal(w.At) || !bytes.Equal(e.Data, w.Data) || !cmp.Equal(e.Audience, w.Audience) {
			t.Errorf("event %d: routing fields or Data changed:\ngot  %+v\nwant %+v", i, e, w)
		}
		full, err := e.Decode()
		if err != nil {
			t.Fatalf("event %d: Decode: %v", i, err)
		}
		if d := cmp.Diff(w, full, cmpopts.EquateEmpty(), cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" {
			t.Errorf("event %d: Decode (-sent +got):\n%s", i, d)
		}
	}
}

// testOneCallAtATime: fn is never called concurrently with itself, even
// with several nodes publishing at once.
func testOneCallAtATime(t *testing.T, newPair NewPair) {
	a, b := newPair(t)
	var inFlight, overlaps atomic.Int32
	r := newRecorder()
	subscribe(t, a, func(m parley.BrokerMessage) {
		if inFlight.Add(1) > 1 {
			overlaps.Add(1)
		}
		r.fn(m)
		inFlight.Add(-1)
	})
	var wg sync.WaitGroup
	for p, br := range []parley.Broker{a, b, a, b} {
		wg.Go(func() {
			for i := int64(1); i <= 100; i++ {
				if err := br.Publish(context.Background(), marker("n", fmt.Sprint(p), i)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	r.waitCount(t, 400)
	if n := overlaps.Load(); n > 0 {
		t.Errorf("fn ran concurrently with itself %d times", n)
	}
}

// testStopWaits: stop does not return while fn is running, and fn is not
// called once stop has returned.
func testStopWaits(t *testing.T, newPair NewPair) {
	a, _ := newPair(t)
	entered := make(chan struct{})
	release := make(chan struct{})
	var stopped, calledAfterStop atomic.Bool
	var returned atomic.Bool
	var once sync.Once
	stop := subscribe(t, a, func(m parley.BrokerMessage) {
		if stopped.Load() {
			calledAfterStop.Store(true)
		}
		once.Do(func() {
			close(entered)
			<-release
			returned.Store(true)
		})
	})
	publish(t, a, marker("a", "u", 1))
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("fn was never called")
	}
	stopDone := make(chan struct{})
	go func() { // owned by this test: it waits for stopDone below
		stop()
		stopped.Store(true)
		close(stopDone)
	}()
	// Publish more while fn is blocked; none of it may be delivered after
	// stop returns.
	for i := int64(2); i <= 10; i++ {
		publish(t, a, marker("a", "u", i))
	}
	select {
	case <-stopDone:
		t.Fatal("stop returned while fn was still running")
	default:
	}
	close(release)
	<-stopDone
	if !returned.Load() {
		t.Fatal("stop returned before fn did")
	}
	barrier(t, a, marker("a", "barrier", 1))
	if calledAfterStop.Load() {
		t.Error("fn was called after stop returned")
	}
	stop() // a second stop is harmless
}

// barrier publishes m on n and waits until a fresh subscriber there has
// it: then the messages published on n before it have been dispatched
// (per-publisher order).
func barrier(t *testing.T, n parley.Broker, m parley.BrokerMessage) {
	t.Helper()
	r := newRecorder()
	subscribe(t, n, r.fn)
	publish(t, n, m)
	r.waitCount(t, 1)
}

// testClose: Close ends the node's subscriptions and fails later calls;
// the other node keeps working.
func testClose(t *testing.T, newPair NewPair) {
	a, b := newPair(t)
	var closed, calledAfterClose atomic.Bool
	stop := subscribe(t, a, func(parley.BrokerMessage) {
		if closed.Load() {
			calledAfterClose.Store(true)
		}
	})
	publish(t, a, marker("a", "u", 1))
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed.Store(true)
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	stop() // stop after Close is harmless
	if err := a.Publish(context.Background(), marker("a", "u", 2)); err == nil {
		t.Error("Publish after Close succeeded")
	}
	if _, err := a.Subscribe(func(parley.BrokerMessage) {}); err == nil {
		t.Error("Subscribe after Close succeeded")
	}
	if a == b {
		if calledAfterClose.Load() {
			t.Error("fn called after Close returned")
		}
		return
	}
	barrier(t, b, marker("b", "u", 1))
	if calledAfterClose.Load() {
		t.Error("fn called after Close returned")
	}
}

// testNoLeaks: after both nodes are closed (with subscriptions that were
// never stopped) no goroutine of theirs is left.
func testNoLeaks(t *testing.T, newPair NewPair) {
	before := goleak.IgnoreCurrent()
	a, b := newPair(t)
	for _, br := range []parley.Broker{a, b} {
		if _, err := br.Subscribe(func(parley.BrokerMessage) {}); err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
	}
	r := newRecorder()
	subscribe(t, b, r.fn)
	publish(t, a, marker("a", "u", 1))
	r.waitCount(t, 1)
	for _, br := range []parley.Broker{a, b} {
		if err := br.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	// The backend the constructor started (an embedded server) may still
	// run until cleanup; only the brokers' own goroutines must be gone.
	if err := goleak.Find(append([]goleak.Option{before}, ignoreBackends...)...); err != nil {
		t.Error(err)
	}
}

// ignoreBackends lists goroutines of backends a constructor may start for
// the test, which live until its cleanup.
var ignoreBackends = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*client).readLoop"),
	goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*client).writeLoop"),
	goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).AcceptLoop"),
	goleak.IgnoreAnyFunction("github.com/nats-io/nats-server/v2/server.(*Server).acceptConnections"),
}
