package client_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
)

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
		c := b.client(opts...)
		ctx := context.Background()
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
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
