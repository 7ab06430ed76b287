package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// TestHostileServerGoawayForAnHour: a goaway whose reconnect_after_ms
// says an hour waits no longer than the backoff's ceiling, then the
// client connects again by itself. It waited the hour: a server (or a
// man in the middle on plain ws) could park a client until the app
// called Reconnect.
func TestHostileServerGoawayForAnHour(t *testing.T) {
	const ceiling = 200 * time.Millisecond
	srv, c := startScripted(t, client.WithBackoff(time.Millisecond, ceiling))
	changes := c.StatusChanges(t.Context())
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		writeFrame(ctx, t, ws, protocol.TypeGoAway, protocol.GoAway{Reason: "restart", ReconnectAfterMS: time.Hour.Milliseconds()})
	}
	again := make(chan struct{})
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		close(again)
		for { // until the client closes
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	for ch := range changes {
		if ch.Current != client.Reconnecting {
			continue
		}
		if wait := ch.NextRetryAt.Sub(ch.At); wait > ceiling {
			t.Fatalf("after a goaway of an hour the client waits %v, more than the backoff's ceiling %v", wait, ceiling)
		}
		break
	}
	select {
	case <-again:
	case <-time.After(20 * time.Second): // a liveness bound, not a timing assertion
		t.Fatal("no second connection after the goaway")
	}
}
