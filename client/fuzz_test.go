package client

import (
	"bytes"
	"encoding/json"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// receiver feeds WebSocket messages to a Client as its reader goroutine
// does (nextFrame, then handleFrame per frame) on a connection that is
// never dialled, and collects what the app's handlers get.
type receiver struct {
	c   *Client
	mu  sync.Mutex
	got []Event
}

func newReceiver(t testing.TB) *receiver {
	c, err := New("http://127.0.0.1:1", WithToken("t"), WithDeliveredInterval(-1)) // no delivery reports: the connection has no socket
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{c: c}
	c.AddEventHandler("fuzz", func(e Event) {
		r.mu.Lock()
		r.got = append(r.got, e)
		r.mu.Unlock()
	})
	c.started = true
	t.Cleanup(func() { c.Close() })
	return r
}

// receive hands msg to a fresh connection with no position yet and one
// request ("r1") waiting for its reply, and returns the events the
// handlers got, in order.
func (r *receiver) receive(msg []byte) []Event {
	c := r.c
	c.mu.Lock()
	c.gen++
	cn := &wsConn{gen: c.gen}
	c.conn, c.cursor = cn, nil
	c.pending["r1"] = make(chan reply, 1)
	c.mu.Unlock()
	// Nobody online, as expectedEvents starts: presence repeats are
	// dropped against what the SDK holds.
	c.state.mu.Lock()
	clear(c.state.online)
	c.state.mu.Unlock()
	for len(msg) > 0 {
		var f []byte
		f, msg = nextFrame(msg)
		c.handleFrame(cn, f)
	}
	// End the typing indicators this message started, as a lost
	// connection does (their typingStopped events have Expired set).
	c.state.onDisconnect()
	c.mu.Lock()
	c.conn = nil
	delete(c.pending, "r1")
	if c.throttle != nil {
		c.throttle.Stop()
		c.throttle = nil
	}
	c.mu.Unlock()
	// The queue runs callbacks in order: once this one ran, every event
	// queued above has been handled.
	done := make(chan struct{})
	c.q.push(func() { close(done) })
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	got := r.got
	r.got = nil
	return got
}

// wireEvent maps an SDK event back to the wire event it came from; ok is
// false for events the SDK makes itself.
func wireEvent(e Event) (ev parley.Event, ok bool) {
	switch e := e.(type) {
	case NewMessage:
		m := e.Message
		return parley.Event{Type: parley.EventNewMessage, Pos: e.Pos, Message: &m, At: e.At}, true
	case MessageRead:
		return parley.Event{Type: parley.EventMessageRead, Pos: e.Pos, ConversationID: e.ConversationID, UserID: e.UserID, UserName: e.UserName, ReadSeq: e.ReadSeq, At: e.At}, true
	case MessageDeleted:
		m := e.Message
		return parley.Event{Type: parley.EventMessageDeleted, Pos: e.Pos, Message: &m, UserID: e.UserID, At: e.At}, true
	case ConversationUpdated:
		cv := e.Conversation
		return parley.Event{Type: parley.EventConversationUpdated, Pos: e.Pos, Conversation: &cv, Change: e.Change, UserIDs: e.UserIDs, UserID: e.UserID, UserName: e.UserName, At: e.At}, true
	case TypingStarted:
		return parley.Event{Type: parley.EventTypingStarted, ConversationID: e.ConversationID, UserID: e.UserID, UserName: e.UserName, At: e.At}, true
	case TypingStopped:
		if e.Expired {
			return parley.Event{}, false // the SDK's own timeout, no frame
		}
		return parley.Event{Type: parley.EventTypingStopped, ConversationID: e.ConversationID, UserID: e.UserID, UserName: e.UserName, At: e.At}, true
	case UserOnline:
		return parley.Event{Type: parley.EventUserOnline, UserID: e.UserID, UserName: e.UserName, At: e.At}, true
	case UserOffline:
		return parley.Event{Type: parley.EventUserOffline, UserID: e.UserID, UserName: e.UserName, At: e.At}, true
	}
	return parley.Event{}, false
}

// expectedEvents decodes msg independently of the SDK: frames split on
// '\n', each decoded with encoding/json; an event frame is delivered
// unless it is durable and not past the last position (resync moves the
// position to its head), or lacks the payload its type needs. A message
// from someone typing ends their typing: the SDK sends a typingStopped
// just before it.
func expectedEvents(msg []byte) []parley.Event {
	var out []parley.Event
	// The position per shard, as the SDK keeps it: none before the
	// first durable event or resync, and then 0 for a shard not seen.
	var cur protocol.ShardCursor
	type who struct{ conv, user string }
	typing := map[who]string{}  // -> user name
	online := map[string]bool{} // handlers hear only changes of it
	for _, b := range bytes.Split(msg, []byte("\n")) {
		var f protocol.Frame
		if len(b) == 0 || json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case protocol.TypeResync:
			var r protocol.Resync
			// The position never moves back, but for a lost log.
			if json.Unmarshal(f.Data, &r) == nil {
				resyncCursor(&cur, r)
			}
			continue
		case protocol.TypeEvent:
		default:
			continue
		}
		var ev parley.Event
		if json.Unmarshal(f.Data, &ev) != nil {
			continue
		}
		switch ev.Type {
		case parley.EventNewMessage, parley.EventMessageDeleted:
			if ev.Message == nil {
				ev.Type = "" // skipped below, after the position
			}
		case parley.EventConversationUpdated:
			if ev.Conversation == nil {
				ev.Type = ""
			}
		case parley.EventMessageRead, parley.EventTypingStarted, parley.EventTypingStopped, parley.EventUserOnline, parley.EventUserOffline:
		default:
			continue
		}
		if ev.Type.Durable() || (ev.Type == "" && durableName(f.Data)) {
			// Positions start at 1: an event at 0 or below is one the
			// SDK has seen, whatever it has.
			if cur == nil {
				cur = protocol.ShardCursor{}
			}
			if !cur.Advance(ev.Shard, ev.Pos) {
				continue
			}
		}
		switch ev.Type {
		case "":
			continue
		case parley.EventTypingStarted:
			if ev.UserID != "" { // "" is the SDK's own user: no welcome here
				typing[who{ev.ConversationID, ev.UserID}] = ev.UserName
			}
		case parley.EventTypingStopped:
			delete(typing, who{ev.ConversationID, ev.UserID})
		case parley.EventUserOnline, parley.EventUserOffline:
			on := ev.Type == parley.EventUserOnline
			if online[ev.UserID] == on {
				continue // a repeat of the state the SDK holds
			}
			online[ev.UserID] = on
		case parley.EventNewMessage:
			w := who{ev.Message.ConversationID, ev.Message.SenderID}
			if name, ok := typing[w]; ok {
				delete(typing, w)
				out = append(out, parley.Event{Type: parley.EventTypingStopped, ConversationID: w.conv, UserID: w.user, UserName: name, At: ev.At})
			}
		}
		out = append(out, ev)
	}
	return out
}

// durableName reports whether an event's data names a durable type
// (used when the payload is missing, to keep the position rule).
func durableName(data []byte) bool {
	var t struct{ Type parley.EventType }
	return json.Unmarshal(data, &t) == nil && t.Type.Durable()
}

var sameEvent = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
	cmpopts.IgnoreFields(parley.Event{}, "Audience"),
}

// normalize keeps only the fields the SDK's typed event for ev's type has.
func normalize(ev parley.Event) parley.Event {
	back, _ := wireEvent(typedForCompare(ev))
	return back
}

// typedForCompare builds the SDK event a wire event should become, field
// by field from the wire event (not through the SDK's typedEvent).
func typedForCompare(ev parley.Event) Event {
	switch ev.Type {
	case parley.EventNewMessage:
		return NewMessage{Pos: ev.Pos, Message: *ev.Message, At: ev.At}
	case parley.EventMessageRead:
		return MessageRead{Pos: ev.Pos, ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, ReadSeq: ev.ReadSeq, At: ev.At}
	case parley.EventMessageDeleted:
		return MessageDeleted{Pos: ev.Pos, Message: *ev.Message, UserID: ev.UserID, At: ev.At}
	case parley.EventConversationUpdated:
		return ConversationUpdated{Pos: ev.Pos, Conversation: *ev.Conversation, Change: ev.Change, UserIDs: ev.UserIDs, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventTypingStarted:
		return TypingStarted{ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventTypingStopped:
		return TypingStopped{ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventUserOnline:
		return UserOnline{UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventUserOffline:
		return UserOffline{UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	}
	return nil
}

// checkReceive feeds msg and checks what the app got against
// expectedEvents: the same events, in order, none twice.
func checkReceive(t *testing.T, r *receiver, msg []byte) {
	t.Helper()
	var got []parley.Event
	for _, e := range r.receive(msg) {
		if ev, ok := wireEvent(e); ok {
			got = append(got, ev)
		}
	}
	want := expectedEvents(msg)
	for i := range want {
		want[i] = normalize(want[i])
		// A presence event sent without a name gets the name the SDK
		// knows for the user (Client.Online), if any.
		presence := want[i].Type == parley.EventUserOnline || want[i].Type == parley.EventUserOffline
		if presence && want[i].UserName == "" && i < len(got) && got[i].Type == want[i].Type && got[i].UserID == want[i].UserID {
			want[i].UserName = got[i].UserName
		}
	}
	if d := cmp.Diff(want, got, sameEvent...); d != "" {
		t.Fatalf("message %q: events (-decoded +delivered):\n%s", msg, d)
	}
}

func frame(t testing.TB, typ, id string, data any) []byte {
	f := protocol.Frame{Type: typ, ID: id}
	if data != nil {
		d, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		f.Data = d
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func batch(frames ...[]byte) []byte { return bytes.Join(frames, []byte("\n")) }

func receiveSeeds(t testing.TB) [][]byte {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	msg := &parley.Message{ID: "m1", ConversationID: "c1", Seq: 1, SenderID: "bob", SenderName: "Bob",
		ClientID: "0190f1c2-aaaa-7bbb-8ccc-123456789abc", Type: parley.Text, Text: "hello\nthere \"you\"", CreatedAt: at}
	conv := &parley.Conversation{ID: "c1", Kind: "group", Title: "t", CreatedBy: "bob", CreatedAt: at, LastActivityAt: at,
		Members: []parley.Member{{UserID: "alice"}, {UserID: "bob"}}}
	ev := func(e parley.Event) []byte { return frame(t, protocol.TypeEvent, "", e) }
	newMsg := ev(parley.Event{Pos: 5, Type: parley.EventNewMessage, ConversationID: "c1", Message: msg, At: at})
	return [][]byte{
		newMsg,
		batch(newMsg, newMsg, ev(parley.Event{Pos: 4, Type: parley.EventMessageRead, ConversationID: "c1", UserID: "bob", ReadSeq: 1, At: at}),
			ev(parley.Event{Pos: 6, Type: parley.EventMessageRead, ConversationID: "c1", UserID: "bob", ReadSeq: 1, At: at})),
		batch(ev(parley.Event{Pos: 7, Type: parley.EventConversationUpdated, ConversationID: "c1", Conversation: conv, Change: "members_added", UserIDs: []string{"carol"}, At: at}),
			ev(parley.Event{Type: parley.EventTypingStarted, ConversationID: "c1", UserID: "bob", UserName: "Bob", At: at}),
			ev(parley.Event{Type: parley.EventUserOnline, UserID: "bob", At: at}),
			ev(parley.Event{Pos: 8, Type: parley.EventMessageDeleted, ConversationID: "c1", Message: msg, UserID: "bob", At: at})),
		batch(newMsg, frame(t, protocol.TypeResync, "", protocol.Resync{Head: 2, Reason: "gap"}), newMsg),
		batch(newMsg, frame(t, protocol.TypeResync, "", protocol.Resync{Head: 2, From: 5, Cause: protocol.ResyncLogLost, Reason: "lost"}), newMsg),
		batch(frame(t, protocol.TypeResumed, "", protocol.Resumed{From: 1, To: 5, Count: 4}), newMsg),
		batch(frame(t, protocol.TypeReply, "r1", map[string]any{"id": "m1"}), frame(t, protocol.TypePong, "p1", nil),
			[]byte(`{"type":"error","id":"r1","error":{"code":"invalid","message":"no"}}`), []byte(`{"type":"error","error":{"code":"x","message":"y"}}`)),
		batch(frame(t, protocol.TypeThrottled, "", protocol.Throttled{Feature: "send", Until: at.Add(time.Hour)}),
			frame(t, protocol.TypeUnthrottled, "", protocol.Unthrottled{Feature: "send"}),
			frame(t, protocol.TypeGoAway, "", protocol.GoAway{ReconnectAfterMS: 10})),
		[]byte(`{"type":"event","data":{"type":"newMessage","pos":3}}`), []byte(`{"type":"event","data":{"type":"conversationUpdated","pos":3}}`),
		[]byte(`{"type":"event","data":{"type":"somethingNew","pos":3}}`), []byte(`{"type":"event","data":[]}`),
		[]byte(`{"type":"error"}`), []byte(`{"type":"resync","data":5}`), []byte("\n\n{\n"), []byte(`{"type":"event","data":{"type":"newMessage","pos":3,"message":{"created_at":"x"}}}`),
		[]byte(`{"type":"throttled","data":{"feature":"send","until":"9999-12-31T23:59:59Z"}}`), []byte{0xff}, nil,
	}
}

// FuzzReceive feeds arbitrary WebSocket messages (single frames or the
// '\n'-batched form) to the SDK's frame handling.
//
// Properties: never panics; the app gets exactly the events that
// encoding/json finds in the message, in order, each with every field it
// was sent with, a durable one only once (by position) and only with
// the payload its type needs.
func FuzzReceive(f *testing.F) {
	for _, b := range receiveSeeds(f) {
		f.Add(b)
	}
	r := newReceiver(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		checkReceive(t, r, msg)
	})
}

// FuzzReceiveRoundTrip encodes events built from fuzzed fields as the
// server does, batches them with other frames, and checks the app gets
// each one back unchanged.
func FuzzReceiveRoundTrip(f *testing.F) {
	f.Add(uint8(0), int64(5), "c1", "bob", "Bob", "hello", int64(1), int64(1795000000123456789), uint8(2))
	f.Add(uint8(3), int64(1), "", "", "", "\n\"\\\u2028<>&", int64(-1), int64(0), uint8(0))
	f.Add(uint8(7), int64(0), "☃", "\x00", "\u00e9", "", int64(1<<62), int64(-1), uint8(5))
	r := newReceiver(f)
	f.Fuzz(func(t *testing.T, kind uint8, pos int64, conv, user, name, text string, seq, atNS int64, n uint8) {
		for _, s := range []string{conv, user, name, text} {
			if !utf8.ValidString(s) {
				return // the server never sends invalid UTF-8 (JSON cannot carry it)
			}
		}
		at := time.Unix(0, atNS).UTC()
		types := []parley.EventType{parley.EventNewMessage, parley.EventMessageRead, parley.EventMessageDeleted, parley.EventConversationUpdated,
			parley.EventTypingStarted, parley.EventTypingStopped, parley.EventUserOnline, parley.EventUserOffline}
		var frames [][]byte
		presence := 0
		for i := range int(n%8) + 1 {
			ev := parley.Event{Type: types[(int(kind)+i)%len(types)], ConversationID: conv, UserID: user, UserName: name, At: at}
			if ev.Type == parley.EventUserOnline || ev.Type == parley.EventUserOffline {
				presence++
			}
			if ev.Type.Durable() {
				ev.Pos = max(pos, 1) + int64(i) // increasing, as the server sends them
			}
			switch ev.Type {
			case parley.EventNewMessage, parley.EventMessageDeleted:
				ev.Message = &parley.Message{ID: name, ConversationID: conv, Seq: seq, SenderID: user, SenderName: name, ClientID: text, Type: parley.Text, Text: text, CreatedAt: at}
			case parley.EventMessageRead:
				ev.ReadSeq = seq
			case parley.EventConversationUpdated:
				ev.Conversation = &parley.Conversation{ID: conv, Kind: "group", Title: text, CreatedBy: user, CreatedAt: at, LastSeq: seq, LastActivityAt: at,
					Members: []parley.Member{{UserID: user, Name: name, ReadSeq: seq}}}
				ev.Change, ev.UserIDs = "members_added", []string{user, name}
			}
			frames = append(frames, frame(t, protocol.TypeEvent, "", ev))
			if i%3 == 1 {
				frames = append(frames, frame(t, protocol.TypePong, "p", nil))
			}
		}
		msg := batch(frames...)
		// Every event but the presence repeats the SDK drops (a
		// userOffline of a user not online, a second userOnline).
		if sent, got := int(n%8)+1, len(expectedEvents(msg)); got > sent || got < sent-presence {
			t.Fatalf("test bug: %d frames (%d of presence) decode to %d events", sent, presence, got)
		}
		checkReceive(t, r, msg)
	})
}
