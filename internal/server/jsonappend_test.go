package server

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// jsonString draws strings that exercise every branch of JSON string
// escaping: HTML characters, quotes, control characters, multi-byte and
// invalid UTF-8, U+2028/U+2029, and long plain runs.
func jsonString(t *rapid.T, label string) string {
	pieces := []string{"", "a", "plain text ", "<b>&amp;</b>", `"`, `\`, "\n", "\t", "\r", "\b", "\f", "\x00", "\x1f", "\x7f",
		"é", "日本語", "🙂", "\u2028", "\u2029", "\xff", "\xe2\x80", "@alice", "ü\xc3", "/api/files/x"}
	parts := rapid.SliceOfN(rapid.SampledFrom(pieces), 0, 6).Draw(t, label)
	s := ""
	for _, p := range parts {
		s += p
	}
	return s
}

// jsonTime draws times in and out of RFC 3339's range, in UTC and in
// zones of whole and odd offsets.
func jsonTime(t *rapid.T, label string) time.Time {
	sec := rapid.Int64Range(-70000000000, 260000000000).Draw(t, label+".sec")
	nsec := rapid.SampledFrom([]int64{0, 1, 120000000, 999999999, 4}).Draw(t, label+".nsec")
	tt := time.Unix(sec, nsec)
	switch rapid.IntRange(0, 3).Draw(t, label+".zone") {
	case 0:
		return tt.UTC()
	case 1:
		return tt.In(time.FixedZone("x", rapid.IntRange(-25*3600, 25*3600).Draw(t, label+".off")))
	case 2:
		return tt.In(time.FixedZone("y", 5*3600+30*60))
	}
	return tt.Local()
}

func jsonMessage(t *rapid.T) *parley.Message {
	m := &parley.Message{
		ID: jsonString(t, "id"), ConversationID: jsonString(t, "conv"), Seq: rapid.Int64().Draw(t, "seq"),
		SenderID: jsonString(t, "sender"), SenderName: jsonString(t, "name"), ClientID: jsonString(t, "client"),
		Type: parley.MessageType(jsonString(t, "type")), Text: jsonString(t, "text"),
		CreatedAt: jsonTime(t, "created"), Deleted: rapid.Bool().Draw(t, "deleted"),
	}
	if rapid.Bool().Draw(t, "att") {
		m.Attachment = &parley.Attachment{ID: jsonString(t, "att.id"), ContentType: jsonString(t, "att.ct"),
			Size: rapid.Int64().Draw(t, "att.size"), Width: rapid.Int().Draw(t, "att.w"), Height: rapid.Int().Draw(t, "att.h"),
			Name: jsonString(t, "att.name"), URL: jsonString(t, "att.url"), ThumbURL: jsonString(t, "att.thumb")}
	}
	if rapid.Bool().Draw(t, "hasDeletedAt") {
		at := jsonTime(t, "deletedAt")
		m.DeletedAt = &at
	}
	if rapid.Bool().Draw(t, "hasEditedAt") {
		at := jsonTime(t, "editedAt")
		m.EditedAt = &at
	}
	if rapid.Bool().Draw(t, "quote") {
		m.ReplyTo = &parley.Quote{MessageID: jsonString(t, "q.id"), Seq: rapid.Int64().Draw(t, "q.seq"), SenderID: jsonString(t, "q.sender"),
			SenderName: jsonString(t, "q.name"), Type: parley.MessageType(jsonString(t, "q.type")), Text: jsonString(t, "q.text"),
			Deleted: rapid.Bool().Draw(t, "q.deleted"), Hidden: rapid.Bool().Draw(t, "q.hidden")}
		if rapid.Bool().Draw(t, "q.hide") {
			m.ReplyTo = m.ReplyTo.Hide()
		}
	}
	for range rapid.IntRange(0, 3).Draw(t, "reactions") {
		m.Reactions = append(m.Reactions, parley.Reaction{Emoji: jsonString(t, "r.emoji"), Count: rapid.Int64().Draw(t, "r.count"), Me: rapid.Bool().Draw(t, "r.me")})
	}
	switch rapid.IntRange(0, 2).Draw(t, "mentions") {
	case 1:
		m.Mentions = []string{}
	case 2:
		m.Mentions = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) string { return jsonString(t, "mention") }), 1, 3).Draw(t, "m")
	}
	return m
}

// TestAppendJSONLikeEncodingJSON: appendMessageJSON and appendEventJSON
// write json.Marshal's bytes, and refuse exactly what it cannot marshal
// (and the events they leave to it).
func TestAppendJSONLikeEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := jsonMessage(t)
		want, werr := json.Marshal(m)
		got, ok := appendMessageJSON([]byte("prefix"), m)
		if ok != (werr == nil) {
			t.Fatalf("message: ok %v, json.Marshal: %v", ok, werr)
		}
		if ok && string(got) != "prefix"+string(want) {
			t.Fatalf("message:\n got %s\nwant prefix%s", got, want)
		}

		ev := &parley.Event{Pos: rapid.Int64().Draw(t, "pos"), Shard: rapid.IntRange(0, 3).Draw(t, "shard"),
			Type: parley.EventType(jsonString(t, "evtype")), ConversationID: jsonString(t, "ev.conv"), UserID: jsonString(t, "ev.user"),
			UserName: jsonString(t, "ev.name"), MessageID: jsonString(t, "ev.mid"), Seq: rapid.Int64().Draw(t, "ev.seq"),
			Emoji: jsonString(t, "ev.emoji"), Count: rapid.Int64().Draw(t, "ev.count"), ReadSeq: rapid.Int64().Draw(t, "ev.read"),
			DeliveredSeq: rapid.Int64().Draw(t, "ev.delivered"), Change: parley.Change(jsonString(t, "ev.change")),
			Consent: parley.Consent(jsonString(t, "ev.consent")), At: jsonTime(t, "ev.at"),
			Recipient: "never on the wire", Audience: []string{"nor this"}, Data: []byte("nor this")}
		if rapid.Bool().Draw(t, "ev.msg") {
			ev.Message = m
		}
		if rapid.Bool().Draw(t, "ev.userIDs") {
			ev.UserIDs = rapid.SliceOfN(rapid.Custom(func(t *rapid.T) string { return jsonString(t, "uid") }), 0, 3).Draw(t, "ev.uids")
		}
		switch rapid.IntRange(0, 5).Draw(t, "ev.slow") {
		case 1:
			ev.Profile = &parley.Profile{DisplayName: "p"}
		case 2:
			ev.Conversation = &parley.Conversation{ID: "c"}
		case 3:
			ev.Flags = &parley.MemberFlags{}
		}
		want, werr = json.Marshal(ev)
		got, ok = appendEventJSON(nil, ev)
		slow := ev.Profile != nil || ev.Conversation != nil || ev.Flags != nil
		if ok != (werr == nil && !slow) {
			t.Fatalf("event: ok %v, json.Marshal: %v, left to encoding/json: %v", ok, werr, slow)
		}
		if ok && string(got) != string(want) {
			t.Fatalf("event:\n got %s\nwant %s", got, want)
		}
	})
}

// TestAppendJSONFields: the hand-written encoders write every JSON member
// of the types they cover, in order. A field added to one of them fails
// this test until appendMessageJSON or appendEventJSON writes it too.
func TestAppendJSONFields(t *testing.T) {
	names := func(v any) []string {
		var ns []string
		for f := range reflect.TypeOf(v).Fields() {
			if tag := f.Tag.Get("json"); tag != "-" {
				ns = append(ns, tag)
			}
		}
		return ns
	}
	for _, c := range []struct {
		v    any
		want []string
	}{
		{parley.Message{}, []string{"id", "conversation_id", "seq", "sender_id", "sender_name", "client_id", "type", "text,omitempty",
			"attachment,omitempty", "created_at", "deleted,omitempty", "deleted_at,omitempty", "edited_at,omitempty", "reply_to,omitempty",
			"reactions,omitempty", "mentions,omitempty"}},
		{parley.Attachment{}, []string{"id", "content_type", "size", "width", "height", "name,omitempty", "url,omitempty", "thumb_url,omitempty"}},
		{parley.Quote{}, []string{"message_id", "seq", "sender_id,omitempty", "sender_name,omitempty", "type,omitempty", "text,omitempty", "deleted,omitempty", "hidden,omitempty"}},
		{parley.Reaction{}, []string{"emoji", "count", "me,omitempty"}},
		// profile, conversation and flags: appendEventJSON leaves such
		// events to encoding/json.
		{parley.Event{}, []string{"pos,omitempty", "shard,omitempty", "type", "conversation_id,omitempty", "user_id,omitempty",
			"user_name,omitempty", "message,omitempty", "message_id,omitempty", "seq,omitempty", "emoji,omitempty", "count,omitempty",
			"read_seq,omitempty", "delivered_seq,omitempty", "profile,omitempty", "conversation,omitempty", "change,omitempty",
			"user_ids,omitempty", "flags,omitempty", "consent,omitempty", "at"}},
	} {
		if got := names(c.v); !slices.Equal(got, c.want) {
			t.Errorf("%T's JSON members changed; update appendMessageJSON/appendEventJSON and this list:\n got %q\nwant %q", c.v, got, c.want)
		}
	}
}

// TestMessageReplyBytes: a send's reply is byte for byte the frame
// encoding/json made of it, for messages with every optional part.
func TestMessageReplyBytes(t *testing.T) {
	at := time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)
	later := time.Date(2026, 12, 6, 1, 2, 3, 0, time.FixedZone("CET", 3600))
	base := parley.Message{ID: "01JEXAMPLEMESSAGE000000000", ConversationID: "01JEXAMPLECONVERSATION00000", SenderID: "u1", SenderName: "alice",
		Seq: 42, ClientID: "c-0001", Type: parley.Text, Text: "hello", CreatedAt: at}
	cases := map[string]func(m *parley.Message){
		"plain": func(m *parley.Message) {},
		"unicode": func(m *parley.Message) {
			m.Text, m.SenderName = "héllo 日本語 🙂 \u2028 <script>&\"\\\n\t\x01 \xff", "Zoë <&>"
		},
		"image": func(m *parley.Message) {
			m.Type, m.Text = parley.Image, ""
			m.Attachment = &parley.Attachment{ID: "a1", ContentType: "image/png", Size: 1234, Width: 640, Height: 480, URL: "/files/a1", ThumbURL: "/files/a1/thumb"}
		},
		"file": func(m *parley.Message) {
			m.Type = parley.File
			m.Attachment = &parley.Attachment{ID: "a2", ContentType: "application/pdf", Size: 99, Name: "report <final>.pdf", URL: "/files/a2"}
		},
		"reply_to": func(m *parley.Message) {
			m.ReplyTo = &parley.Quote{MessageID: "m0", Seq: 41, SenderID: "u2", SenderName: "bob", Type: parley.Text, Text: "earlier"}
		},
		"reply_to deleted": func(m *parley.Message) {
			m.ReplyTo = &parley.Quote{MessageID: "m0", Seq: 41, SenderID: "u2", SenderName: "bob", Type: parley.Text, Deleted: true}
		},
		"reply_to hidden": func(m *parley.Message) {
			m.ReplyTo = (&parley.Quote{MessageID: "m0", Seq: 41, SenderID: "u2", SenderName: "bob", Type: parley.Text, Text: "earlier"}).Hide()
		},
		"mentions":       func(m *parley.Message) { m.Text, m.Mentions = "hi @bob @carol", []string{"u2", "u3"} },
		"empty mentions": func(m *parley.Message) { m.Mentions = []string{} },
		"edited":         func(m *parley.Message) { m.EditedAt = &later },
		"deleted": func(m *parley.Message) {
			m.Text, m.Deleted, m.DeletedAt = "", true, &later
		},
		"reactions": func(m *parley.Message) {
			m.Reactions = []parley.Reaction{{Emoji: "👍", Count: 2, Me: true}, {Emoji: "❤️", Count: 1}}
		},
		"zero time": func(m *parley.Message) { m.CreatedAt = time.Time{} },
	}
	for name, edit := range cases {
		m := base
		edit(&m)
		data, err := json.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"type":"reply","id":"s1","data":` + string(data) + `}`
		if got := string(messageReply("s1", &m)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", name, got, want)
		}
		if got := string(encodeData(protocol.TypeReply, "s1", m)); got != want {
			t.Errorf("%s: encodeData:\n got %s\nwant %s", name, got, want)
		}
		ev := parley.Event{Pos: 9, Type: parley.EventNewMessage, ConversationID: m.ConversationID, UserID: m.SenderID, UserName: m.SenderName, Message: &m, At: at}
		evData, err := json.Marshal(withURLs(ev))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(encodeEvent(ev)), `{"type":"event","data":`+string(evData)+`}`; got != want {
			t.Errorf("%s: event:\n got %s\nwant %s", name, got, want)
		}
	}
}

// FuzzAppendJSONString: the hand-written escaping writes every string a
// client can send (a message's text, a name, an id) exactly as
// encoding/json does, HTML escaping, invalid UTF-8 and U+2028/U+2029
// included, so a text never breaks out of its JSON string in a frame.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "hi", `"\`, "<b>&</b>", "\x00\x1f\x7f", "\u2028\u2029", "\xff\xc3", "é𝄞", "a\"b\\c\nd"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}
