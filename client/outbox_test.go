package client_test

import (
	"context"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/faultproxy"
)

// TestAckLostAfterCommit: the server stores a message but its reply never
// reaches the client (the downstream is blackholed, then the link dies).
// The client sends it again on the next connection with the same client
// id; the server stores it once and the client ends with it Sent once.
func TestAckLostAfterCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
		c := b.client(client.WithToken(b.token("alice")), client.WithBackoff(100*time.Millisecond, time.Second))
		rec := record(c)
		ctx := context.Background()
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
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
		file := filepath.Join(t.TempDir(), "outbox.db")
		tok := b.token("alice")
		ctx := context.Background()
		c1 := b.client(client.WithToken(tok), client.WithOutboxFile(file))
		if err := c1.Connect(ctx); err != nil {
			t.Fatal(err)
		}
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
		c2 := b.client(client.WithToken(tok), client.WithOutboxFile(file))
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
		c3 := b.client(client.WithToken(tok), client.WithOutboxFile(file))
		if n := len(c3.Pending()); n != 0 {
			t.Fatalf("outbox file still holds %d", n)
		}
	})
}

// TestListenersOrderPanicAndRemoval: listeners run in the order added,
// one at a time; a panicking one is reported to the others and does not
// stop the state machine; a removed one hears nothing more.
func TestListenersOrderPanicAndRemoval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
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
		if !equalStrings(order, want) {
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

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
