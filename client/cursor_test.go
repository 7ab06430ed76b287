package client_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// messageIn is a newMessage event of shard's conversation "c<shard>" at
// pos (protocol 2).
func messageIn(shard int, pos int64) parley.Event {
	conv := fmt.Sprintf("c%d", shard)
	return parley.Event{Pos: pos, Shard: shard, Type: parley.EventNewMessage, ConversationID: conv,
		Message: &parley.Message{ID: fmt.Sprintf("m%d-%d", shard, pos), ConversationID: conv, Seq: pos, SenderID: "alice", Type: parley.Text, Text: "x"}}
}

func welcomeCursor(cur protocol.ShardCursor, shards int) protocol.Welcome {
	w := welcomeWith(cur[0])
	w.Cursor, w.Shards = cur, shards
	return w
}

// TestCursorPerShard: with protocol 2 the client keeps a position per
// shard: it sends its cursor in hello, drops an event at or below its
// shard's entry (and only that shard's: positions of different shards do
// not compare), and never moves an entry back on a welcome, a resumed or
// a resync with lower heads (a lagging node); only a resync that names a
// shard lost (log_lost) moves that shard's entry to the server's head.
func TestCursorPerShard(t *testing.T) {
	srv, c := startScripted(t, client.WithProtocol(protocol.Version2))
	next := replayEvents(t, c)
	message := func(shard int, pos int64) {
		t.Helper()
		ev, ok := next(fmt.Sprintf("message %d/%d", shard, pos)).(client.NewMessage)
		if !ok || ev.Pos != pos || ev.Message.ConversationID != fmt.Sprintf("c%d", shard) {
			t.Fatalf("got %+v, want the message at %d of shard %d", ev, pos, shard)
		}
	}
	hello := func(want protocol.ShardCursor) {
		t.Helper()
		<-srv.hellos
		select {
		case cur := <-srv.cursors:
			if !maps.Equal(cur, want) || (cur == nil) != (want == nil) {
				t.Fatalf("hello cursor %v, want %v", cur, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no hello")
		}
	}
	cursor := func(want protocol.ShardCursor) {
		t.Helper()
		if cur := c.Cursor(); !maps.Equal(cur, want) {
			t.Fatalf("cursor %v, want %v", cur, want)
		}
		if pos, ok := c.Position(); !ok || pos != want[0] {
			t.Fatalf("position %d (%v), want shard 0's %d", pos, ok, want[0])
		}
	}
	done := make(chan struct{}) // a script's end: the test has checked what it sent
	script := srv.holding(done)

	// First connection: heads {0:10, 3:20}; shard 3's 21 and shard 0's
	// 11 are new though 11 < 21.
	script(func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeCursor(protocol.ShardCursor{0: 10, 3: 20}, 4))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(3, 21))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(0, 11))
	})
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	hello(nil)
	message(3, 21)
	message(0, 11)
	cursor(protocol.ShardCursor{0: 11, 3: 21})

	// A node lagging in shard 0 and ahead in shard 3 answers resync
	// (resume limit) with heads {0:5, 3:30}: shard 0 stays at 11 (6..11
	// were seen), shard 3 moves to 30.
	script(func(ctx context.Context, ws *websocket.Conn) {
		heads := protocol.ShardCursor{0: 5, 3: 30}
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeCursor(heads, 4))
		writeFrame(ctx, t, ws, protocol.TypeResync, protocol.Resync{Head: 30, From: 21, Shard: 3, Cause: protocol.ResyncResumeLimit,
			Reason: "limit", Cursor: heads, Shards: 4})
		for p := int64(6); p <= 12; p++ {
			writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(0, p))
		}
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(3, 22))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(3, 31))
	})
	done <- struct{}{}
	hello(protocol.ShardCursor{0: 11, 3: 21})
	if ev := next("resync").(client.Resynced); ev.Head != 30 || ev.Reason != client.ResyncResumeLimit {
		t.Fatalf("got %+v", ev)
	}
	message(0, 12)
	message(3, 31)
	cursor(protocol.ShardCursor{0: 12, 3: 31})

	// A welcome and a resumed with lower heads, then events at or below
	// the cursor and one above it.
	script(func(ctx context.Context, ws *websocket.Conn) {
		heads := protocol.ShardCursor{0: 3, 3: 2}
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeCursor(heads, 4))
		writeFrame(ctx, t, ws, protocol.TypeResumed, protocol.Resumed{From: 12, To: 12, Cursor: heads, Shards: 4})
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(0, 4))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(3, 3))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(3, 32))
	})
	done <- struct{}{}
	hello(protocol.ShardCursor{0: 12, 3: 31})
	next("resumed")
	message(3, 32)
	cursor(protocol.ShardCursor{0: 12, 3: 32})

	// Shard 3's log really lost: only its entry follows the server's
	// head; shard 0's stays.
	script(func(ctx context.Context, ws *websocket.Conn) {
		heads := protocol.ShardCursor{0: 12, 3: 1}
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeCursor(heads, 4))
		writeFrame(ctx, t, ws, protocol.TypeResync, protocol.Resync{Head: 1, From: 32, Shard: 3, Cause: protocol.ResyncLogLost,
			Reason: "lost", Cursor: heads, Lost: []int{3}, Shards: 4})
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(0, 12))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(3, 2))
	})
	done <- struct{}{}
	hello(protocol.ShardCursor{0: 12, 3: 32})
	if ev := next("resync").(client.Resynced); ev.Head != 1 || ev.From != 32 || ev.Reason != client.ResyncAheadOfLog {
		t.Fatalf("got %+v", ev)
	}
	message(3, 2)
	cursor(protocol.ShardCursor{0: 12, 3: 2})
	close(done)
}

// TestProtocolRefusedIsTerminal: a server that refuses the hello's
// protocol (a protocol-1 client on a log of shards: unsupported, close
// 4101) leaves the client Disconnected with that error, not reconnecting.
func TestProtocolRefusedIsTerminal(t *testing.T) {
	srv, c := startScripted(t)
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
		b := []byte(`{"type":"error","error":{"code":"unsupported","message":"this server's event log has 4 shards: it needs protocol 2"}}`)
		ws.Write(ctx, websocket.MessageText, b)
		ws.Close(protocol.CloseProtocolError, "protocol 2 needed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // a liveness bound
	defer cancel()
	err := c.Connect(ctx)
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseProtocolError || !ce.Terminal() {
		t.Fatalf("Connect: %v, want a CloseError 4101", err)
	}
	if st := c.Status(); st.State != client.Disconnected {
		t.Fatalf("status %+v, want disconnected", st)
	}
	if n := len(srv.hellos); n != 1 {
		t.Fatalf("%d hellos, want 1 (no reconnect)", n)
	}
}
