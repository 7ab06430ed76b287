package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestRestartWithBatching: clients that asked for batched frames are sent
// goaway and follow the server through a restart, resuming what they
// missed.
func TestRestartWithBatching(t *testing.T) {
	e := newEnv(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 50 * time.Millisecond }))
	ctx := context.Background()
	var cs []*client.Client
	for _, id := range []string{"alice", "bob", "carol"} {
		c := e.client(t, id) // batching is on by default
		connect(t, c)
		cs = append(cs, c)
	}
	cv, err := cs[0].CreateGroup(ctx, "g", []string{"bob", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	rec := record(cs[1])
	for i := range 3 {
		for range 20 {
			if _, err := cs[0].Send(ctx, cv.ID, "hi"); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		go func() { e.srv.Restart(t); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("restart %d: the server's Shutdown did not return in 30 s with batching clients", i+1)
		}
	}
	rec.waitMessages(t, "bob has every message", 60, 30*time.Second)
}
