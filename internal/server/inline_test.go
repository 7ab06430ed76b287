package server_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestDeliveryOrderWhenSocketFills: events delivered to a client that
// reads nothing for a while (a 4 KiB receive buffer) are first written
// at once by the hub (the socket takes them), then in part (a frame the
// socket takes only part of) and then not at all (the socket is full),
// when they wait in the queue for the writer. The client, reading at
// last, gets every event whole, once and in order, with or without
// batching: the rest of a frame goes out before anything queued behind
// it.
func TestDeliveryOrderWhenSocketFills(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
				c.Limits.SendQueueBytes = 64 << 20 // room for all: this is about order, not the bound
			}))
			c := dialSmallBuffer(t, srv)
			c.sendOp(protocol.OpHello, "", protocol.Hello{Token: srv.Token(t, "alice", "Alice"), Batch: batch})
			if f := c.next(); f.Type != protocol.TypeWelcome {
				t.Fatalf("after hello got %s, want welcome", f.Type)
			}
			const events = 1000
			now := time.Now().UTC()
			for i := 1; i <= events; i++ {
				// Sizes vary, so frames end at every offset of the socket's buffer.
				text := strings.Repeat(string(rune('a'+i%26)), 1000+i*37%20000)
				srv.Server.DeliverForBench(parley.Event{
					Pos: int64(i), Type: parley.EventNewMessage, ConversationID: "c", UserID: "bob",
					Message: &parley.Message{ID: fmt.Sprint("m", i), ConversationID: "c", Seq: int64(i), SenderID: "bob",
						ClientID: fmt.Sprint("k", i), Type: parley.Text, Text: text, CreatedAt: now},
					At: now, Audience: []string{"alice"},
				})
			}
			frames, _ := readFrames(t, c, events, batch)
			if len(frames) != events {
				t.Fatalf("%d frames read, want %d", len(frames), events)
			}
			for k, f := range frames {
				i := k + 1
				if f.Type != protocol.TypeEvent {
					t.Fatalf("got a %s frame, want events", f.Type)
				}
				ev := decodeJSON[parley.Event](t, f.Data)
				want := strings.Repeat(string(rune('a'+i%26)), 1000+i*37%20000)
				if ev.Pos != int64(i) || ev.Message == nil || ev.Message.Text != want {
					t.Fatalf("event %d of %d: got position %d (text whole: %v)", i, events, ev.Pos, ev.Message != nil && ev.Message.Text == want)
				}
			}
		})
	}
}
