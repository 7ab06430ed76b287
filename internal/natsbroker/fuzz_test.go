package natsbroker

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/parleychat/parley"
)

// encode is what publish puts on the subject for m (before any split),
// in wire version 2; encodeV1 in version 1.
func encode(m parley.BrokerMessage) ([]byte, error)   { return encodeV2(m) }
func encodeV1(m parley.BrokerMessage) ([]byte, error) { return json.Marshal(toWire(m)) }

// decode1 is decode without the count of payloads.
func decode1(data []byte) (parley.BrokerMessage, error) {
	var n int
	return decode(data, &n)
}

// withData returns m with every event's Data set to its JSON, as the
// server publishes them.
func withData(t testing.TB, m parley.BrokerMessage) parley.BrokerMessage {
	m.Events = slices.Clone(m.Events)
	for i := range m.Events {
		b, err := json.Marshal(m.Events[i])
		if err != nil {
			t.Fatal(err)
		}
		m.Events[i].Data = b
	}
	return m
}

// sameMessage compares messages the way a receiving node sees them: an
// empty list is no list, and a time is its instant (the wire keeps the
// offset it was written with, not the *time.Location).
var sameMessage = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

func wireSeeds(t testing.TB) [][]byte {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	del := at.Add(time.Minute)
	msg := &parley.Message{ID: "m1", ConversationID: "c1", Seq: 7, SenderID: "alice", SenderName: "Alice",
		ClientID: "0190f1c2-aaaa-7bbb-8ccc-123456789abc", Type: parley.Text, Text: "hi ☃ \"quoted\"\n", CreatedAt: at}
	img := &parley.Message{ID: "m2", ConversationID: "c1", Seq: 8, SenderID: "bob", Type: parley.Image, CreatedAt: at,
		Attachment: &parley.Attachment{ID: "a1", ContentType: "image/png", Size: 10, Width: 2, Height: 3}, Deleted: true, DeletedAt: &del}
	reply := &parley.Message{ID: "m3", ConversationID: "c1", Seq: 9, SenderID: "carol", SenderName: "Carol", Type: parley.Text, Text: "re", CreatedAt: at,
		ReplyTo: &parley.Quote{MessageID: "m1", Seq: 7, SenderID: "alice", SenderName: "Alice", Type: parley.Text, Text: "hi"}}
	conv := &parley.Conversation{ID: "c1", Kind: "group", Title: "t", CreatedBy: "alice", CreatedAt: at, LastSeq: 8, LastActivityAt: at,
		Members: []parley.Member{{UserID: "alice"}, {UserID: "bob"}}, LastMessage: msg}
	var out [][]byte
	for _, m := range []parley.BrokerMessage{
		{Node: "n1", Events: []parley.Event{{Pos: 1, Type: parley.EventNewMessage, ConversationID: "c1", UserID: "alice", Message: msg, At: at, Audience: []string{"alice", "bob"}}}},
		// A reply whose quote bob receives hidden, between two events
		// without the list.
		{Node: "n1", Events: []parley.Event{
			{Pos: 5, Type: parley.EventMessageRead, ConversationID: "c1", UserID: "bob", ReadSeq: 7, At: at, Audience: []string{"alice"}},
			{Pos: 6, Type: parley.EventNewMessage, ConversationID: "c1", UserID: "carol", Message: reply, At: at, Audience: []string{"alice", "bob", "carol"}, QuoteHidden: []string{"bob"}},
			{Pos: 7, Type: parley.EventMessageEdited, ConversationID: "c1", UserID: "carol", Message: reply, At: at, Audience: []string{"bob", "carol"}, QuoteHidden: []string{"bob", "carol"}},
		}},
		{Node: "n1", Events: []parley.Event{
			{Pos: 2, Type: parley.EventMessageDeleted, ConversationID: "c1", Message: img, At: at, Audience: []string{"bob"}},
			{Pos: 3, Type: parley.EventMessageRead, ConversationID: "c1", UserID: "bob", ReadSeq: 8, At: at},
			{Pos: 4, Type: parley.EventConversationUpdated, ConversationID: "c1", Conversation: conv, Change: "members_added", UserIDs: []string{"carol"}, At: at},
			{Type: parley.EventTypingStarted, ConversationID: "c1", UserID: "bob", UserName: "Bob", At: at, Audience: []string{"alice"}},
		}},
		{Node: "n2", Presence: &parley.NodePresence{Snapshot: true, Online: []string{"alice", "bob"}}},
		{Node: "n2", Presence: &parley.NodePresence{Offline: []string{"bob"}, Leaving: true}},
		{Node: "n3"},
		{Node: "n3", Usage: []parley.LimitUsage{{Limit: "messages", Key: "alice", N: 3}, {Limit: "ip_messages", Key: "2001:db8::1", N: 1 << 40}}},
		{Node: "n4", Users: []parley.UserChange{{ID: "dave"}, {ID: "eve", Banned: true}}},
		{Node: "n4", Presence: &parley.NodePresence{Online: []string{"dave"}}, Users: []parley.UserChange{{ID: "dave"}}},
	} {
		for _, enc := range []func(parley.BrokerMessage) ([]byte, error){encode, encodeV1} {
			b, err := enc(m)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		b, err := encode(withData(t, m))
		if err != nil {
			t.Fatal(err)
		}
		// Truncated and padded: refused whole.
		out = append(out, b, b[:len(b)/2], b[:len(b)-1], append(slices.Clone(b), 0))
	}
	out = append(out, []byte{0}, []byte{0, 2}, []byte{0, 3, 1, 'n'}, []byte{0, 1},
		[]byte("\x00\x02\x01n\x00\x01\x04\x01\x00\x01t\x00\x00\x00\x00\x01{"),                     // flags 4
		[]byte("\x00\x02\x01n\x00\x01\x03\x01\x00\x01t\x00\x00\x00\x00\x01\x01u\x01{"),            // flags 3: quote hidden from u
		[]byte("\x00\x02\x01n\x00\x01\x03\x01\x00\x01t\x00\x00\x00\x00\xff\xff\xff\xff\x0f\x01{"), // a huge quote-hidden list
		[]byte("\x00\x02\x01n\x00\x01\x01\x01\x00\x01t\x00\x00\x00\xff\xff\xff\xff\x0f\x01{"),     // a huge audience
		[]byte("\x00\x02\x01n\x00\x01\x01\x01\x00\x01t\x00\x00\x00\x00\x00"))                      // no payload
	return append(out, []byte(`{"v":2,"node":"future"}`), []byte(`{"v":1,"events":[{"type":"newMessage","at":"2026-11-22T10:00:00+01:00","audience":[]}]}`),
		[]byte(`{"v":1,"presence":{"online":[]}}`), []byte(`{"v":1,"usage":[{"l":"messages","k":"","n":-3},{}]}`),
		[]byte(`{"v":1,"users":[{"id":"dave"},{"id":"","banned":true},{}]}`), []byte(`{"v":1,"users":{}}`),
		[]byte("\x00\x02\x02n4\x29{\"users\":[{\"id\":\"d\",\"x\":1}],\"later\":true}\x00"), // keys unknown to this release: skipped
		[]byte(`{"v":1,"events":null}`), []byte(`[]`), []byte(`{`), []byte{0xff}, nil)
}

// FuzzDecode feeds arbitrary subject payloads to decode.
//
// Properties: never panics; a payload it accepts encodes again, and that
// encoding decodes to the same message and encodes to the same bytes
// (what one node receives, another would receive the same).
func FuzzDecode(f *testing.F) {
	for _, b := range wireSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decode1(data)
		if err != nil {
			return
		}
		b, err := encode(m)
		if err != nil {
			t.Fatalf("decode(%q) = %+v, which does not encode: %v", data, m, err)
		}
		m2, err := decode1(b)
		if err != nil {
			t.Fatalf("decode(encode(decode(%q))): %v", data, err)
		}
		if d := cmp.Diff(m, m2, sameMessage...); d != "" {
			t.Fatalf("decode(%q) does not survive a round trip (-first +second):\n%s", data, d)
		}
		if b2, _ := encode(m2); !bytes.Equal(b, b2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", b, b2)
		}
	})
}

// FuzzEncode builds messages from fuzzed fields, as a node would publish
// them, and decodes what it puts on the subject.
//
// Property: what encodes decodes to the same value, Audience and
// QuoteHidden included (hidden from clients, they must travel between
// nodes), and so do presence and user notices. Strings are
// valid UTF-8: the server refuses anything else at its edges (bad_json),
// and JSON cannot carry it.
func FuzzEncode(f *testing.F) {
	f.Add("n1", "newMessage", "c1", "alice", "Alice", "hi", int64(1), int64(7), "alice,bob", "", int64(1795000000123456789), false, false)
	f.Add("n1", "newMessage", "c1", "carol", "Carol", "re", int64(2), int64(8), "alice,bob,carol", "alice", int64(1795000000123456789), false, false)
	f.Add("n2", "typingStarted", "c1", "bob", "", "", int64(0), int64(0), "", "", int64(0), true, true)
	f.Add("", "conversationUpdated", "", "", "☃", "\"\n\\<>&\u2028", int64(-1), int64(-5), ",", ",", int64(-62135596800000000), false, true)
	f.Fuzz(func(t *testing.T, node, typ, conv, user, name, text string, pos, seq int64, audience, quoteHidden string, atNS int64, snapshot, leaving bool) {
		for _, s := range []string{node, typ, conv, user, name, text, audience, quoteHidden} {
			if !utf8.ValidString(s) {
				return
			}
		}
		if pos < 0 {
			return // no such event: positions start at 1, ephemeral events have 0
		}
		at := time.Unix(0, atNS).UTC()
		ev := parley.Event{Pos: pos, Type: parley.EventType(typ), ConversationID: conv, UserID: user, UserName: name, ReadSeq: seq, At: at}
		if audience != "" {
			ev.Audience = strings.Split(audience, ",")
		}
		if text != "" {
			ev.Message = &parley.Message{ID: name, ConversationID: conv, Seq: seq, SenderID: user, SenderName: name, ClientID: node, Type: parley.Text, Text: text, CreatedAt: at}
		}
		if quoteHidden != "" {
			ev.QuoteHidden = strings.Split(quoteHidden, ",")
			if ev.Message != nil {
				ev.Message.ReplyTo = &parley.Quote{MessageID: conv, Seq: seq - 1, SenderID: node, SenderName: node, Type: parley.Text, Text: text}
			}
		}
		m := parley.BrokerMessage{Node: node, Events: []parley.Event{ev, ev}}
		if snapshot || leaving {
			m.Presence = &parley.NodePresence{Snapshot: snapshot, Leaving: leaving, Online: ev.Audience, Offline: []string{user}}
		}
		for i, id := range ev.QuoteHidden { // user notices: every other one a ban
			m.Users = append(m.Users, parley.UserChange{ID: id, Banned: i%2 == 1})
		}
		b, err := encode(m)
		if err != nil {
			t.Fatalf("encode(%+v): %v", m, err)
		}
		got, err := decode1(b)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v\n%s", m, err, b)
		}
		if d := cmp.Diff(m, got, sameMessage...); d != "" {
			t.Fatalf("round trip changed the message (-sent +received):\n%s", d)
		}
		// With Data: the routing fields and Data travel, Data as it
		// was; Decode gives back the whole event.
		md := withData(t, m)
		b, err = encode(md)
		if err != nil {
			t.Fatalf("encode(%+v): %v", md, err)
		}
		got, err = decode1(b)
		if err != nil {
			t.Fatalf("decode(encode(%+v)): %v", md, err)
		}
		for i, e := range got.Events {
			if !bytes.Equal(e.Data, md.Events[i].Data) {
				t.Fatalf("Data changed: %q, want %q", e.Data, md.Events[i].Data)
			}
			full, err := e.Decode()
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(md.Events[i], full, sameMessage...); d != "" {
				t.Fatalf("round trip with Data changed the event (-sent +received):\n%s", d)
			}
		}
	})
}

// TestQuoteHiddenTravels: an event's QuoteHidden (who receives its
// reply's quote hidden) reaches the other nodes in both wire versions,
// with Data or without, beside events that have none; a node of a
// release before it refuses the message that holds one (an unknown
// flag) rather than deliver the quote to them.
func TestQuoteHiddenTravels(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	reply := &parley.Message{ID: "m3", ConversationID: "c1", Seq: 9, SenderID: "carol", Type: parley.Text, Text: "re", CreatedAt: at,
		ReplyTo: &parley.Quote{MessageID: "m1", Seq: 7, SenderID: "bob", SenderName: "Bob", Type: parley.Text, Text: "secret"}}
	m := parley.BrokerMessage{Node: "n1", Events: []parley.Event{
		{Pos: 1, Type: parley.EventMessageRead, ConversationID: "c1", UserID: "bob", ReadSeq: 7, At: at, Audience: []string{"carol"}},
		{Pos: 2, Type: parley.EventNewMessage, ConversationID: "c1", UserID: "carol", Message: reply, At: at,
			Audience: []string{"alice", "bob", "carol"}, QuoteHidden: []string{"alice"}},
	}}
	for name, enc := range map[string]func(parley.BrokerMessage) ([]byte, error){
		"v1": encodeV1, "v2": encode, "v2 with data": func(m parley.BrokerMessage) ([]byte, error) { return encode(withData(t, m)) },
	} {
		b, err := enc(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := decode1(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if q := got.Events[1].QuoteHidden; !slices.Equal(q, []string{"alice"}) {
			t.Errorf("%s: QuoteHidden = %q, want [alice]", name, q)
		}
		if q := got.Events[0].QuoteHidden; q != nil {
			t.Errorf("%s: an event without one got QuoteHidden %q", name, q)
		}
	}
	// The flag is set on the event that has the list, and only there:
	// the events before it stay readable by an older release's rule
	// (flags of data only).
	b, err := encode(withData(t, m))
	if err != nil {
		t.Fatal(err)
	}
	var r reader
	r.b = b[2:]
	r.string()
	r.bytes()
	r.uvarint()
	if f := r.byte(); f != flagData {
		t.Errorf("first event's flags = %#x, want data only", f)
	}
	if i := bytes.Index(b, []byte("\x05alice")); i < 0 || !bytes.Contains(b, []byte{flagData | flagQuoteHidden, 2}) {
		t.Errorf("second event: no flags %#x or no list in %q", flagData|flagQuoteHidden, b)
	}
}

// TestUsersTravel: a message's user notices (parley.BrokerMessage.Users)
// reach the other nodes in both wire versions, beside events and
// presence; a meta key this release does not know is skipped, not a
// refusal, which is how an older release reads a message with notices.
func TestUsersTravel(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	users := []parley.UserChange{{ID: "dave"}, {ID: "eve", Banned: true}}
	m := parley.BrokerMessage{Node: "n1", Users: users, Presence: &parley.NodePresence{Online: []string{"dave"}},
		Events: []parley.Event{{Pos: 1, Type: parley.EventMessageRead, ConversationID: "c1", UserID: "bob", ReadSeq: 7, At: at, Audience: []string{"carol"}}}}
	for name, enc := range map[string]func(parley.BrokerMessage) ([]byte, error){
		"v1": encodeV1, "v2": encode, "v2 with data": func(m parley.BrokerMessage) ([]byte, error) { return encode(withData(t, m)) },
		"v2 alone": func(parley.BrokerMessage) ([]byte, error) {
			return encode(parley.BrokerMessage{Node: "n1", Users: users})
		},
	} {
		b, err := enc(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := decode1(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(users, got.Users); d != "" {
			t.Errorf("%s: users changed (-sent +received):\n%s", name, d)
		}
	}
	meta := `{"users":[{"id":"d","banned":true,"since":3}],"later":[1]}`
	b := append(appendBytes(appendString([]byte{wireMagic, wireV2}, "n9"), []byte(meta)), 0)
	got, err := decode1(b)
	if err != nil {
		t.Fatalf("a message with meta keys unknown to this release: %v", err)
	}
	if want := []parley.UserChange{{ID: "d", Banned: true}}; !slices.Equal(got.Users, want) {
		t.Errorf("users = %+v, want %+v", got.Users, want)
	}
}
