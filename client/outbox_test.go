package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/protocol"
)

// TestAckLostAfterCommit: the server stores a message but its reply never
// reaches the client (the downstream is blackholed, then the link dies).
// The client sends it again on the next connection with the same client
// id; the server stores it once and the client ends with it Sent once.
func TestAckLostAfterCommit(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		c := b.client(client.WithToken(b.token("alice")), client.WithBackoff(100*time.Millisecond, time.Second))
		rec := record(c)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		cv := mustGroup(t, c)
		b.proxy.Blackhole(faultproxy.Downstream)
		m, err := c.Send(ctx, cv.ID, "once")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		page, err := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if err != nil || len(page.Messages) != 1 {
			t.Fatalf("committed before the ack: %v %+v", err, page.Messages)
		}
		if m.Status() != client.Sending {
			t.Fatalf("status %v before the ack arrived, want sending", m.Status())
		}
		b.proxy.CutAll()
		b.proxy.Heal()
		got, err := m.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		page, _ = b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if len(page.Messages) != 1 || page.Messages[0].ID != got.ID {
			t.Fatalf("stored %+v, want exactly the one message %s", page.Messages, got.ID)
		}
		synctest.Wait()
		if n := len(rec.messages()[cv.ID]); n != 1 {
			t.Fatalf("newMessage seen %d times, want 1", n)
		}
		if p := c.Pending(); len(p) != 0 {
			t.Fatalf("outbox holds %d", len(p))
		}
	})
}

// TestDurableOutbox: messages sent while offline survive closing the
// client; a new client on the same file delivers each once, in order.
func TestDurableOutbox(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		device, c1 := b.device("alice")
		cv := mustGroup(t, c1)
		b.proxy.Refuse(true)
		b.proxy.CutAll()
		synctest.Wait()
		var ids []string
		for _, text := range []string{"one", "two", "three"} {
			m, err := c1.Send(ctx, cv.ID, text)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ClientID())
		}
		if err := c1.Close(); err != nil {
			t.Fatal(err)
		}

		b.proxy.Heal()
		c2 := device()
		pending := c2.Pending()
		if len(pending) != 3 || pending[0].ClientID() != ids[0] || pending[2].Text() != "three" {
			t.Fatalf("reopened outbox: %d messages", len(pending))
		}
		if err := c2.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		for _, m := range pending {
			if _, err := m.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		page, _ := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if len(page.Messages) != 3 {
			t.Fatalf("stored %d messages, want 3", len(page.Messages))
		}
		for i, m := range page.Messages {
			if m.ClientID != ids[i] {
				t.Errorf("message %d has client id %s, want %s", i, m.ClientID, ids[i])
			}
		}
		c2.Close()
		// A third client finds the file empty.
		c3 := device()
		if n := len(c3.Pending()); n != 0 {
			t.Fatalf("outbox file still holds %d", n)
		}
	})
}

// TestListenersOrderPanicAndRemoval: listeners run in the order added,
// one at a time; a panicking one is reported to the others and does not
// stop the state machine; a removed one hears nothing more.
func TestListenersOrderPanicAndRemoval(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		c := b.client(client.WithToken(b.token("alice")))
		var order []string
		var errs []error
		c.AddConnectionListener("a", funcListener{on: func(ch client.StatusChange) { order = append(order, "a:"+ch.Current.String()) }})
		c.AddConnectionListener("boom", funcListener{on: func(client.StatusChange) { panic("listener bug") }})
		c.AddConnectionListener("b", funcListener{
			on:  func(ch client.StatusChange) { order = append(order, "b:"+ch.Current.String()) },
			err: func(err error) { errs = append(errs, err) },
		})
		if err := c.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want := []string{"a:connecting", "b:connecting", "a:connected", "b:connected"}
		if !slices.Equal(order, want) {
			t.Fatalf("order %v, want %v", order, want)
		}
		if len(errs) != 2 {
			t.Fatalf("b heard %d errors, want 2 panics reported", len(errs))
		}
		c.RemoveConnectionListener("a")
		order = nil
		b.proxy.CutAll()
		synctest.Wait()
		if len(order) != 1 || order[0] != "b:reconnecting" {
			t.Fatalf("after removing a: %v", order)
		}
	})
}

type funcListener struct {
	client.NopListener
	on  func(client.StatusChange)
	err func(error)
}

func (f funcListener) OnConnecting(ch client.StatusChange)   { f.on(ch) }
func (f funcListener) OnConnected(ch client.StatusChange)    { f.on(ch) }
func (f funcListener) OnReconnecting(ch client.StatusChange) { f.on(ch) }
func (f funcListener) OnDisconnected(ch client.StatusChange) { f.on(ch) }
func (f funcListener) OnConnectionError(err error) {
	if f.err != nil {
		f.err(err)
	}
}

// TestResendOnSameConnection: a message refused for good (Failed) and
// resent on the same connection is sent again, not skipped as "already
// sent on this connection".
func TestResendOnSameConnection(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		alice, bob := alicebob(t, b)
		// A group alice is not in (and was never removed from, which
		// would make Send refuse at once with ErrRemoved): the server
		// refuses the send for good.
		cv := mustGroup(t, bob)
		m, err := alice.Send(ctx, cv.ID, "hello")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Wait(ctx); parley.ErrorCode(err) != parley.ENOTFOUND || m.Status() != client.Failed {
			t.Fatalf("send to a group alice is not in: status %v, err %v; want failed, not_found", m.Status(), err)
		}
		if _, err := bob.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: cv.ID, Add: []string{"alice"}}); err != nil {
			t.Fatal(err)
		}
		if err := alice.Resend(ctx, m); err != nil {
			t.Fatal(err)
		}
		stored, err := m.Wait(ctx)
		if err != nil || m.Status() != client.Sent {
			t.Fatalf("resend: status %v, err %v; want sent", m.Status(), err)
		}
		page, err := b.store.Messages(ctx, "bob", cv.ID, parley.MessageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 1 || page.Messages[0].ID != stored.ID || page.Messages[0].ClientID != m.ClientID() {
			t.Fatalf("stored %+v, want the one resent message", page.Messages)
		}
	})
}

// TestConnectDeadlineKeepsRetrying: Connect returns ctx's error at its
// deadline while the server is unreachable, and the client goes on trying
// in the background: it connects by itself once the server answers.
func TestConnectDeadlineKeepsRetrying(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		b.proxy.Refuse(true)
		var asked atomic.Int32
		tok := b.token("alice")
		c := b.client(client.WithTokenSource(func(context.Context) (string, error) { asked.Add(1); return tok, nil }),
			client.WithBackoff(100*time.Millisecond, time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Connect: %v, want the deadline", err)
		}
		if c.Connected() || c.Status().State == client.Disconnected {
			t.Fatalf("after Connect's deadline: %+v, want still retrying", c.Status())
		}
		before := asked.Load()
		b.proxy.Heal()
		time.Sleep(2 * time.Second) // more than the backoff's cap
		synctest.Wait()
		if !c.Connected() || !c.Status().Connected() {
			t.Fatalf("status %+v, want connected without another Connect", c.Status())
		}
		if after := asked.Load(); after <= before || before < 2 {
			t.Fatalf("token source asked %d times before the deadline, %d in all; want once per attempt", before, after)
		}
	})
}

// TestFlushAndOutboxErrors: offline, Send queues until the outbox is full,
// then fails with ErrOutboxFull (code unavailable); Flush waits until the
// queued messages are sent, or until its ctx ends; a client not started
// refuses Send with ErrDisconnected (code unavailable; a client that gave
// up: TestBackoffScheduleAndMaxAttempts).
func TestFlushAndOutboxErrors(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		alice := b.client(client.WithToken(b.token("alice")), client.WithOutboxLimit(2),
			client.WithBackoff(100*time.Millisecond, time.Second), client.WithMaxAttempts(1000))
		if _, err := alice.Send(ctx, "x", "hi"); !errors.Is(err, client.ErrDisconnected) || errors.Is(err, client.ErrOutboxFull) ||
			parley.ErrorCode(err) != parley.EUNAVAILABLE {
			t.Fatalf("Send before Connect: %v, want ErrDisconnected with code unavailable", err)
		}
		if err := alice.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		b.token("bob")
		cv, err := alice.CreateDirect(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		b.proxy.Refuse(true)
		b.proxy.CutAll()
		synctest.Wait()
		var ms []*client.Message
		for i := range 2 {
			m, err := alice.Send(ctx, cv.ID, "queued "+string(rune('a'+i)))
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		_, err = alice.Send(ctx, cv.ID, "one too many")
		if !errors.Is(err, client.ErrOutboxFull) || errors.Is(err, client.ErrDisconnected) || parley.ErrorCode(err) != parley.EUNAVAILABLE {
			t.Fatalf("Send to a full outbox: %v, want ErrOutboxFull with code unavailable", err)
		}
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		if err := alice.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Flush while offline: %v, want the deadline", err)
		}
		b.proxy.Heal()
		if err := alice.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(alice.Pending()); n != 0 {
			t.Fatalf("%d messages still pending after Flush", n)
		}
		for _, m := range ms {
			if m.Status() != client.Sent {
				t.Fatalf("%q is %v after Flush", m.Text(), m.Status())
			}
		}
		if err := alice.Flush(ctx); err != nil {
			t.Fatalf("Flush of an empty outbox: %v", err)
		}
		// docs/sdk.md: after Close, calls return ErrClosed, these too
		// (Flush of the emptied outbox answered nil, SetTyping nil as if
		// offline, Download and SetAvatar went to the server; found by
		// internal/indietest's TestSDKDoc).
		alice.Close()
		if err := alice.Flush(ctx); !errors.Is(err, client.ErrClosed) {
			t.Errorf("Flush after Close: %v, want ErrClosed", err)
		}
		if err := alice.SetTyping(ctx, cv.ID, true); !errors.Is(err, client.ErrClosed) {
			t.Errorf("SetTyping after Close: %v, want ErrClosed", err)
		}
		if _, err := alice.Download(ctx, "any", io.Discard); !errors.Is(err, client.ErrClosed) {
			t.Errorf("Download after Close: %v, want ErrClosed", err)
		}
		if _, err := alice.SetAvatar(ctx, strings.NewReader("an image")); !errors.Is(err, client.ErrClosed) {
			t.Errorf("SetAvatar after Close: %v, want ErrClosed", err)
		}
	})
}

// TestMessageStatusChangedCarriesMessage: the event for a sent message
// carries the *Message Send returned, with the stored copy; a refused one
// carries it with the error.
func TestMessageStatusChangedCarriesMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice := aliceAlone(t)
		ctx := context.Background()
		b.token("bob")
		cv, err := alice.CreateDirect(ctx, "bob")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan client.MessageStatusChanged, 10)
		alice.AddEventHandler("status", func(ev client.Event) {
			if e, ok := ev.(client.MessageStatusChanged); ok {
				got <- e
			}
		})
		m, err := alice.Send(ctx, cv.ID, "hello")
		if err != nil {
			t.Fatal(err)
		}
		bad, err := alice.Send(ctx, "no-such-conversation", "hello")
		if err != nil {
			t.Fatal(err)
		}
		if err := alice.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		sent, failed := <-got, <-got
		if sent.Message != m || sent.Status != client.Sent || sent.Stored.ID == "" || sent.Stored.ClientID != m.ClientID() || sent.Err != nil {
			t.Fatalf("sent: %+v, want the *Message Send returned, Sent, with the stored copy", sent)
		}
		if failed.Message != bad || failed.Status != client.Failed || failed.Err == nil || bad.Status() != client.Failed {
			t.Fatalf("failed: %+v, want the refused *Message, Failed, with its error", failed)
		}
	})
}

// TestResyncedAheadOfLog: a client whose position is beyond the server's
// log (the data was wiped) gets Resynced with ResyncAheadOfLog (the
// server's cause log_lost, with the lost range from its position down to
// the head) and goes on from the server's head: the one case where the
// position moves back.
func TestResyncedAheadOfLog(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		c := b.client(client.WithToken(b.token("alice")), client.WithResumeFrom(1_000_000))
		got := make(chan client.Resynced, 1)
		c.AddEventHandler("resync", func(ev client.Event) {
			if r, ok := ev.(client.Resynced); ok {
				got <- r
			}
		})
		if err := c.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case r := <-got:
			if r.Reason != client.ResyncAheadOfLog || r.Reason.String() != "aheadOfLog" || r.Text == "" || r.Head >= 1_000_000 || r.From != 1_000_000 {
				t.Fatalf("resync %+v, want aheadOfLog", r)
			}
			if pos, _ := c.Position(); pos != r.Head {
				t.Fatalf("position %d after resync, want head %d", pos, r.Head)
			}
		default:
			t.Fatal("no Resynced event for a position beyond the log")
		}
	})
}

// TestSendOrderUnderRateLimit: over the server's message rate limit, sends
// are refused rate_limited with a retry time; the outbox waits it out and
// sends again from the refused one, so every message ends Sent, stored
// once, in Send order. (One send in flight: see docs/sdk.md for why a
// larger window needs the server to refuse every later send too.)
func TestSendOrderUnderRateLimit(t *testing.T) {
	// Window 1 sends one at a time; the default window keeps many in
	// flight, and every send after a refused one is refused too (by the
	// limiter here; the server's send gate, tested in internal/server,
	// covers a limiter that refills in between), so the SDK must resend
	// from the refused one, in order.
	for _, window := range []int{1, 0} {
		t.Run(fmt.Sprint("window=", window), func(t *testing.T) { testSendOrderUnderRateLimit(t, window) })
	}
}

func testSendOrderUnderRateLimit(t *testing.T, window int) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) {
			c.Limits.MessagesPerSecond, c.Limits.MessageBurst = 2, 3
		})
		opts := []client.Option{client.WithToken(b.token("alice"))}
		if window > 0 {
			opts = append(opts, client.WithSendWindow(window))
		}
		c := b.connected(opts...)
		ctx := context.Background()
		cv := mustGroup(t, c)
		var ms []*client.Message
		for i := range 12 {
			m, err := c.Send(ctx, cv.ID, fmt.Sprint(i))
			if err != nil {
				t.Fatal(err)
			}
			ms = append(ms, m)
		}
		for i, m := range ms {
			if _, err := m.Wait(ctx); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		page, err := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != len(ms) {
			t.Fatalf("stored %d messages, want %d", len(page.Messages), len(ms))
		}
		for i, m := range page.Messages {
			if m.Text != fmt.Sprint(i) || m.ClientID != ms[i].ClientID() {
				t.Fatalf("stored message %d is %q, want %d: order broken", i, m.Text, i)
			}
		}
	})
}
