package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley/client"
)

// TestServerPingsAnswered: the server pings a connection it has not heard
// from for 1.5 heartbeat intervals (docs/protocol.md section 4), and its
// pong counts as heard. coder/websocket answers pings only inside a Read,
// so this holds only because the session reads continuously: a client
// whose own pings are off (an hour apart here) stays connected for many
// heartbeat timeouts (9 s) without a reconnect.
func TestServerPingsAnswered(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		c := b.connected(client.WithToken(b.token("alice")), client.WithHeartbeat(time.Hour, time.Hour))
		rec := &changes{}
		c.AddConnectionListener("rec", rec)
		time.Sleep(time.Minute) // fake time: 6.7 timeouts
		// The listener hears the current state (Connected) when added.
		for _, ch := range rec.list() {
			if ch.Current != client.Connected {
				t.Fatalf("status changes %+v, want none but Connected (the server closed a client answering its pings)", rec.list())
			}
		}
		if st := c.Status(); st.State != client.Connected {
			t.Fatalf("status %+v, want Connected", st)
		}
		c.Close()
	})
}
