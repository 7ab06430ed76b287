package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// TestConnectDeadlineKeepsRetrying: Connect returns ctx's error at its
// deadline while the server is unreachable, and the client goes on trying
// in the background: it connects by itself once the server answers.
func TestConnectDeadlineKeepsRetrying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
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
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
		alice := b.client(client.WithToken(b.token("alice")), client.WithOutboxLimit(2),
			client.WithBackoff(100*time.Millisecond, time.Second), client.WithMaxAttempts(1000))
		ctx := context.Background()
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
	})
}

// TestMessageStatusChangedCarriesMessage: the event for a sent message
// carries the *Message Send returned, with the stored copy; a refused one
// carries it with the error.
func TestMessageStatusChangedCarriesMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
		alice := bubbleUsers(t, b, "alice")[0]
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
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
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
