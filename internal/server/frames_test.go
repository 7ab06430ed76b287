package server

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// TestEncodeEventAllocs: encoding an event frame (once per event, for all
// its receivers) allocates the frame and what the event's own fields'
// encoders allocate (time.Time's MarshalJSON), not a copy of the event
// boxed for the encoder; and the bytes are the event's JSON in a frame.
func TestEncodeEventAllocs(t *testing.T) {
	if raceEnabled {
		// scripts/test runs it again without -race.
		t.Skip("the race detector drops pooled encoders at random")
	}
	at := time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)
	ev := parley.Event{Pos: 7, Type: parley.EventNewMessage, ConversationID: "01JEXAMPLECONVERSATION00000", UserID: "01JEXAMPLEUSER000000000000", UserName: "bench-user",
		Message: &parley.Message{ID: "01JEXAMPLEMESSAGE000000000", ConversationID: "01JEXAMPLECONVERSATION00000", SenderID: "01JEXAMPLEUSER000000000000", Seq: 1, Text: "a message", ClientID: "c-0001", CreatedAt: at},
		At:      at, Audience: []string{"a", "b"}}
	times := testing.AllocsPerRun(100, func() { // what the event's time fields cost the encoder
		_, _ = at.MarshalJSON()
		_, _ = at.MarshalJSON()
	})
	encodeEvent(ev) // warm the pool
	n := testing.AllocsPerRun(100, func() { encodeEvent(ev) })
	if want := times + 1; n > want {
		t.Errorf("encodeEvent: %v allocations, want at most %v (the frame and the time fields')", n, want)
	}
	n = testing.AllocsPerRun(100, func() { eventData(ev) })
	if want := times + 1; n > want {
		t.Errorf("eventData: %v allocations, want at most %v (the data and the time fields')", n, want)
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
// what the message's time field costs the encoder, not a copy of the
// message boxed for it; its bytes are encodeData's.
func TestMessageReplyAllocs(t *testing.T) {
	if raceEnabled {
		// scripts/test runs it again without -race.
		t.Skip("the race detector drops pooled encoders at random")
	}
	at := time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)
	m := parley.Message{ID: "01JEXAMPLEMESSAGE000000000", ConversationID: "01JEXAMPLECONVERSATION00000", SenderID: "01JEXAMPLEUSER000000000000", Seq: 1, Text: "a message", ClientID: "c-0001", CreatedAt: at}
	times := testing.AllocsPerRun(100, func() { _, _ = at.MarshalJSON() })
	messageReply("s1", &m) // warm the pool
	if n := testing.AllocsPerRun(100, func() { messageReply("s1", &m) }); n > times+1 {
		t.Errorf("messageReply: %v allocations, want at most %v (the frame and the time field's)", n, times+1)
	}
	if got, want := messageReply("s1", &m), encodeData(protocol.TypeReply, "s1", m); !bytes.Equal(got, want) {
		t.Fatalf("messageReply:\n%s\nencodeData:\n%s", got, want)
	}
}
