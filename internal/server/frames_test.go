package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// TestEncodeEventAllocs: encoding a send's event frame (once per event,
// for all its receivers) allocates the frame and nothing else (not a copy
// of the event boxed for the encoder, not its times' MarshalJSON:
// appendEventJSON); eventData the data alone; and the bytes are the
// event's JSON in a frame.
func TestEncodeEventAllocs(t *testing.T) {
	if raceEnabled {
		// scripts/test runs it again without -race.
		t.Skip("the race detector drops pooled encoders at random")
	}
	at := time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)
	ev := parley.Event{Pos: 7, Type: parley.EventNewMessage, ConversationID: "01JEXAMPLECONVERSATION00000", UserID: "01JEXAMPLEUSER000000000000", UserName: "bench-user",
		Message: &parley.Message{ID: "01JEXAMPLEMESSAGE000000000", ConversationID: "01JEXAMPLECONVERSATION00000", SenderID: "01JEXAMPLEUSER000000000000", Seq: 1, Text: "a message", ClientID: "c-0001", CreatedAt: at},
		At:      at, Audience: []string{"a", "b"}}
	encodeEvent(ev) // warm the pool
	if n := testing.AllocsPerRun(100, func() { encodeEvent(ev) }); n > 1 {
		t.Errorf("encodeEvent: %v allocations, want 1 (the frame)", n)
	}
	if n := testing.AllocsPerRun(100, func() { eventData(ev) }); n > 1 {
		t.Errorf("eventData: %v allocations, want 1 (the data)", n)
	}
	data, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(encodeEvent(ev)), `{"type":"event","data":`+string(data)+`}`; got != want {
		t.Errorf("encodeEvent:\n got %s\nwant %s", got, want)
	}
	if got := string(eventData(ev)); got != string(data) {
		t.Errorf("eventData:\n got %s\nwant %s", got, data)
	}
}

// TestMessageReplyAllocs: a send's reply frame allocates the frame and
// nothing else (appendMessageJSON: no copy of the message boxed for the
// encoder, no MarshalJSON of its time); its bytes are encodeData's.
func TestMessageReplyAllocs(t *testing.T) {
	if raceEnabled {
		// scripts/test runs it again without -race.
		t.Skip("the race detector drops pooled encoders at random")
	}
	at := time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)
	m := parley.Message{ID: "01JEXAMPLEMESSAGE000000000", ConversationID: "01JEXAMPLECONVERSATION00000", SenderID: "01JEXAMPLEUSER000000000000", Seq: 1, Text: "a message", ClientID: "c-0001", CreatedAt: at}
	messageReply("s1", &m) // warm the pool
	if n := testing.AllocsPerRun(100, func() { messageReply("s1", &m) }); n > 1 {
		t.Errorf("messageReply: %v allocations, want 1 (the frame)", n)
	}
	if got, want := messageReply("s1", &m), encodeData(protocol.TypeReply, "s1", m); !bytes.Equal(got, want) {
		t.Fatalf("messageReply:\n%s\nencodeData:\n%s", got, want)
	}
}

// BenchmarkMessageReply: a send's reply frame, as the load tool's sends
// make it (compare runs in alternation: the machine is shared).
func BenchmarkMessageReply(b *testing.B) {
	m := parley.Message{ID: "019af0b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", ConversationID: "01a203cc-0904-79eb-a0fc-081096a164e0",
		SenderID: "019af0b2-0000-7e5f-8a9b-0c1d2e3f4a5b", SenderName: "bench-user-17", Seq: 12345, ClientID: "run1-17-12345",
		Type: parley.Text, Text: "pb|run1|17|0|12345|1795000000000000000", CreatedAt: time.Date(2026, 12, 6, 1, 2, 3, 456789000, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		messageReply("s12345", &m)
	}
}
