package client

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// BenchmarkReceiveMessage measures the client's own cost for one incoming
// message frame: JSON decode, dedupe by position, the conversation list,
// and delivery to one handler on the callback goroutine.
func BenchmarkReceiveMessage(b *testing.B) {
	c, err := New("http://127.0.0.1:1", WithToken("t"), WithDeliveredInterval(-1)) // no delivery reports: the connection has no socket
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{}, 1)
	n := 0
	c.AddEventHandler("count", func(Event) {
		n++
		if n == b.N {
			done <- struct{}{}
		}
	})
	cn := &wsConn{gen: 1}
	c.conn, c.started = cn, true
	frames := make([][]byte, 64)
	for i := range frames {
		ev := parley.Event{Type: parley.EventNewMessage, ConversationID: "c1", At: time.Now(),
			Message: &parley.Message{ID: "m", ConversationID: "c1", Seq: 1, SenderID: "bob", SenderName: "Bob",
				ClientID: "0190f1c2-aaaa-7bbb-8ccc-123456789abc", Type: parley.Text, Text: "hello there, how are you today?", CreatedAt: time.Now()}}
		data, _ := json.Marshal(ev)
		frames[i], _ = json.Marshal(protocol.Frame{Type: protocol.TypeEvent, Data: data})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Patch the position in place so each frame is new to dedupe.
		c.mu.Lock()
		c.cursor = protocol.ShardCursor{0: int64(i)}
		c.mu.Unlock()
		var f protocol.Frame
		json.Unmarshal(frames[i%len(frames)], &f)
		var ev parley.Event
		json.Unmarshal(f.Data, &ev)
		ev.Pos = int64(i + 1)
		c.handleEvent(cn, &ev)
	}
	<-done
	b.StopTimer()
	c.conn = nil
	c.Close()
}

// BenchmarkSendEncode measures building and encoding one send request and
// the optimistic message (the client-side part of Send, without network).
func BenchmarkSendEncode(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r := protocol.Send{ConversationID: "0190f1c2-aaaa-7bbb-8ccc-123456789abc", ClientID: "0190f1c2-aaaa-7bbb-8ccc-123456789abd",
			Type: parley.Text, Text: "hello there, how are you today?"}
		d, _ := json.Marshal(r)
		if _, err := json.Marshal(protocol.Request{Op: protocol.OpSend, ID: "r1", Data: d}); err != nil {
			b.Fatal(err)
		}
	}
}
