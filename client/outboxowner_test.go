package client_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// TestOutboxFileOwner: an outbox file records whose messages it holds. A
// client welcomed as another user leaves them in the file, unsent (they
// would be stored as that user's), and sends its own; the owner's next
// client sends them as the owner's.
func TestOutboxFileOwner(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "outbox.db")
	onFile := func(user string, opts ...client.Option) *client.Client {
		all := append([]client.Option{client.WithOutboxFile(file)}, opts...)
		return e.client(t, user, all...)
	}
	for _, user := range []string{"alice", "bob"} {
		c := e.client(t, user) // a hello makes the user
		connect(t, c)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	admin := e.client(t, "carol")
	connect(t, admin)
	cv := mustGroup(t, admin, "alice", "bob")

	// Alice starts offline (never welcomed: only WithOutboxUser says
	// who she is), queues a message and quits.
	e.proxy.Refuse(true)
	a1 := onFile("alice", client.WithOutboxUser("alice"))
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if err := a1.Connect(short); err == nil {
		t.Fatal("connected through a proxy that refuses")
	}
	if _, err := a1.Send(ctx, cv.ID, "from alice"); err != nil {
		t.Fatal(err)
	}
	if err := a1.Close(); err != nil {
		t.Fatal(err)
	}

	e.proxy.Heal()

	// Bob opens the same file: his own message goes, alice's stays.
	b := onFile("bob")
	connect(t, b)
	m, err := b.Send(ctx, cv.ID, "from bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// The outbox sends in queue order, alice's message first: had bob's
	// client sent it, it was stored before bob's own was acknowledged.
	page, err := admin.History(ctx, cv.ID, parley.MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range page.Messages {
		if msg.Text == "from alice" {
			t.Fatalf("alice's queued message was sent by bob's client, as %s", msg.SenderID)
		}
	}
	if n := len(b.Pending()); n != 0 {
		t.Fatalf("bob's client holds %d pending messages, want 0", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	// Alice's next client sends it, as hers.
	a2 := onFile("alice")
	pending := a2.Pending()
	if len(pending) != 1 || pending[0].Text() != "from alice" {
		t.Fatalf("alice's reopened outbox holds %d messages, want her 1", len(pending))
	}
	connect(t, a2)
	stored, err := pending[0].Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stored.SenderID != "alice" {
		t.Fatalf("stored as %s, want alice", stored.SenderID)
	}
}
