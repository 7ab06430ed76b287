package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestTooManyConnections: when the same user opens more connections than
// the server's per-user cap, the server closes the oldest with 4103; the
// SDK does not reconnect from it (another connection of the user is in
// use) and goes Disconnected with a terminal *CloseError the app can read.
// The newer connections stay connected.
func TestTooManyConnections(t *testing.T) {
	e := newEnv(t, servertest.WithConfig(func(c *server.Config) { c.Limits.ConnectionsPerUser = 2 }))
	oldest := e.client(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	changes := oldest.StatusChanges(ctx)
	connect(t, oldest)
	newer := []*client.Client{e.client(t, "alice"), e.client(t, "alice")}
	for _, c := range newer {
		connect(t, c)
	}
	for ch := range changes {
		if ch.Current != client.Disconnected {
			continue
		}
		var ce *client.CloseError
		if !errors.As(ch.Err, &ce) || ce.Code != protocol.CloseTooManyConnections || !ce.Terminal() {
			t.Fatalf("disconnected with %v, want a terminal 4103", ch.Err)
		}
		if got := ce.Error(); got == "" {
			t.Fatal("empty error text")
		}
		break
	}
	if ctx.Err() != nil {
		t.Fatal("the oldest connection was not closed")
	}
	for i, c := range newer {
		if st := c.Status(); st.State != client.Connected {
			t.Fatalf("newer connection %d: %v", i, st.State)
		}
	}
	if st := oldest.Status(); st.State != client.Disconnected {
		t.Fatalf("oldest: %v, want Disconnected (no automatic reconnect)", st.State)
	}
}
