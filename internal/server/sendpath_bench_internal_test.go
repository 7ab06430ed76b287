package server

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// BenchmarkSendPath: one send's node-side work outside the store and the
// socket: its frame decoded, the run handed to a store that answers at
// once (answeringStore), the reply frame queued, and its newMessage
// event's frame. For counts that do not depend on the machine's load, run
// it under valgrind --tool=callgrind (GODEBUG=asyncpreemptoff=1) at two
// -test.benchtime Nx and subtract.
func BenchmarkSendPath(b *testing.B) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 456789000, time.UTC)
	m := parley.Message{ID: "019af0b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", ConversationID: "01a203cc-0904-79eb-a0fc-081096a164e0",
		SenderID: "019af0b2-0000-7e5f-8a9b-0c1d2e3f4a5b", SenderName: "bench-user-17", Seq: 12345, ClientID: "run1-17-12345",
		Type: parley.Text, Text: "pb|run1|17|0|12345|1795000000000000000", CreatedAt: at}
	ev := parley.Event{Pos: 123456, Type: parley.EventNewMessage, ConversationID: m.ConversationID, UserID: m.SenderID, UserName: m.SenderName, Message: &m, At: at}
	mt := newMetrics()
	svc := &service{store: &answeringStore{m: m}, metrics: mt, storePublishes: true, typers: newTypingTracker(),
		limits: newLimiters(Limits{MessagesPerSecond: -1, IPMessagesPerSecond: -1}, func(string) {})}
	s := &Server{svc: svc, metrics: mt, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}, connCtx: context.Background()}
	c := &conn{s: s, t: &inlineSink{}, user: parley.User{ID: "u1", Name: "bench-user-17"}}
	frame := []byte(`{"op":"send","id":"s12345","data":{"conversation_id":"01a203cc-0904-79eb-a0fc-081096a164e0","client_id":"run1-17-12345","text":"pb|run1|17|0|12345|1795000000000000000"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req, err := protocol.DecodeRequest(frame)
		if err != nil {
			b.Fatal(err)
		}
		c.dispatchSends(context.Background(), []request{{req: req}})
		encodeEvent(ev)
		c.mu.Lock()
		c.q, c.qBytes = c.q[:0], 0
		c.mu.Unlock()
	}
}
