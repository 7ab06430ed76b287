package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestSendAckWithOwnEvent: with a store that answers sends from its
// batcher (SQLite here), a send's reply and the sender's own newMessage
// event leave the server in one write: with batching they arrive in one
// WebSocket message, for every send, whether one is in flight or several.
// Before commitFlush the reply was written by a writer goroutine and the
// event by the hub after the broker brought it back: two writes.
func TestSendAckWithOwnEvent(t *testing.T) {
	srv := servertest.Start(t)
	a := hello(t, srv, protocol.Hello{Token: srv.Token(t, "alice", "Alice"), Batch: true})
	var conv parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "alone"}, &conv)
	a.event(parley.EventConversationUpdated) // the group's creation, before the sends

	// messages reads one WebSocket message and returns its frames.
	message := func() []protocol.Frame {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		_, b, err := a.ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var fs []protocol.Frame
		for part := range bytes.SplitSeq(b, []byte("\n")) {
			var f protocol.Frame
			if err := json.Unmarshal(part, &f); err != nil {
				t.Fatalf("frame %s: %v", part, err)
			}
			fs = append(fs, f)
		}
		return fs
	}
	send := func(i int) {
		a.sendOp(protocol.OpSend, fmt.Sprintf("s%d", i), protocol.Send{ConversationID: conv.ID, ClientID: fmt.Sprintf("c%d", i), Text: "hi"})
	}
	// A message holds each send's reply and event both, or neither.
	check := func(fs []protocol.Frame, replies, events map[string]bool) {
		t.Helper()
		got := map[string]int{}
		for _, f := range fs {
			switch f.Type {
			case protocol.TypeReply:
				replies[f.ID] = true
				got[f.ID]++
			case protocol.TypeEvent:
				var ev parley.Event
				if err := json.Unmarshal(f.Data, &ev); err != nil || ev.Type != parley.EventNewMessage || ev.Message == nil {
					t.Fatalf("event %s: %v", f.Data, err)
				}
				id := "s" + ev.Message.ClientID[1:]
				events[id] = true
				got[id]++
			default:
				t.Fatalf("unexpected frame %s %+v", f.Type, f.Error)
			}
		}
		for id, n := range got {
			if n != 2 {
				t.Errorf("send %s: %d of its reply and event in a message of %d frames, want both", id, n, len(fs))
			}
		}
	}

	// One send at a time.
	for i := range 20 {
		send(i)
		replies, events := map[string]bool{}, map[string]bool{}
		check(message(), replies, events)
		if !replies[fmt.Sprintf("s%d", i)] {
			t.Fatalf("send %d: no reply in its message", i)
		}
	}
	// Several in flight: each message holds whole pairs.
	const n = 16
	for i := 100; i < 100+n; i++ {
		send(i)
	}
	replies, events := map[string]bool{}, map[string]bool{}
	for len(replies) < n {
		check(message(), replies, events)
	}
	if len(events) != n {
		t.Fatalf("%d events for %d replies", len(events), n)
	}
	if t.Failed() {
		return
	}
	a.ws.Close(websocket.StatusNormalClosure, "")
}
