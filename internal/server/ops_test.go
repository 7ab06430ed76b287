package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

func ptr[T any](v T) *T { return &v }

// TestOps runs every op over a real connection.
func TestOps(t *testing.T) {
	srv := servertest.Start(t)
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	srv.Token(t, "carol", "Carol")

	if f := a.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("ping: got %s", f.Type)
	}

	// create_direct by id and by username is idempotent.
	var d1, d2 parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &d1)
	b.do(protocol.OpCreateDirect, protocol.CreateDirect{Username: "Alice"}, &d2)
	if d1.ID == "" || d1.ID != d2.ID || d1.Kind != parley.Direct {
		t.Fatalf("direct: %+v then %+v, want the same direct conversation", d1, d2)
	}
	if ev := b.event(parley.EventConversationUpdated); ev.Change != parley.ChangeCreated || ev.ConversationID != d1.ID {
		t.Fatalf("bob got %+v, want created", ev)
	}

	// send, then the same client_id again: one message.
	m1 := a.send(d1.ID, "c-1", "hi bob")
	again := a.send(d1.ID, "c-1", "hi bob")
	if again.ID != m1.ID || again.Seq != m1.Seq {
		t.Fatalf("resend stored a second message: %+v vs %+v", again, m1)
	}
	ev := b.event(parley.EventNewMessage)
	if ev.Message.ID != m1.ID || ev.Pos == 0 {
		t.Fatalf("bob got %+v", ev)
	}
	// conversations: unread derived; bob has alice's message unread.
	var list protocol.ConversationList
	b.do(protocol.OpConversations, nil, &list)
	if len(list.Conversations) != 1 || list.Conversations[0].UnreadCount != 1 || list.Conversations[0].LastMessage == nil {
		t.Fatalf("bob's conversations: %+v", list)
	}
	m2 := b.send(d1.ID, "c-2", "hi alice")

	// history: both messages once, in order.
	page := a.history(d1.ID)
	if len(page.Messages) != 2 || page.Messages[0].ID != m1.ID || page.Messages[1].ID != m2.ID || page.HasMore {
		t.Fatalf("history: %+v", page)
	}

	// read: alice read bob's message; bob gets messageRead.
	var rr protocol.ReadResult
	a.do(protocol.OpRead, protocol.Read{ConversationID: d1.ID, Seq: m2.Seq}, &rr)
	if rr.ReadSeq != m2.Seq {
		t.Fatalf("read: %+v", rr)
	}
	if ev := b.event(parley.EventMessageRead); ev.UserID != "alice" || ev.ReadSeq != m2.Seq {
		t.Fatalf("bob got %+v", ev)
	}

	var one parley.Conversation
	a.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: d1.ID}, &one)
	if one.ID != d1.ID || one.UnreadCount != 0 || len(one.Members) != 2 {
		t.Fatalf("conversation: %+v", one)
	}

	// delete own message -> tombstone; someone else's -> forbidden.
	var tomb parley.Message
	a.do(protocol.OpDelete, protocol.Delete{ConversationID: d1.ID, MessageID: m1.ID}, &tomb)
	if !tomb.Deleted || tomb.Text != "" || tomb.Seq != m1.Seq {
		t.Fatalf("tombstone: %+v", tomb)
	}
	if ev := b.event(parley.EventMessageDeleted); ev.Message.ID != m1.ID || !ev.Message.Deleted {
		t.Fatalf("bob got %+v", ev)
	}
	if code := a.fail(protocol.OpDelete, protocol.Delete{ConversationID: d1.ID, MessageID: m2.ID}); code != parley.EFORBIDDEN {
		t.Fatalf("deleting bob's message: %s", code)
	}

	// typing: bob sees it, alice (the typist) does not.
	a.do(protocol.OpTyping, protocol.Typing{ConversationID: d1.ID, Typing: true}, nil)
	if ev := b.event(parley.EventTypingStarted); ev.UserID != "alice" || ev.ConversationID != d1.ID {
		t.Fatalf("bob got %+v", ev)
	}
	a.do(protocol.OpTyping, protocol.Typing{ConversationID: d1.ID, Typing: false}, nil)
	b.event(parley.EventTypingStopped)

	// groups: create, rename, add, remove.
	var g parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob"}}, &g)
	if g.Kind != parley.Group || g.Title != "team" || len(g.Members) != 2 {
		t.Fatalf("group: %+v", g)
	}
	b.event(parley.EventConversationUpdated)
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Title: ptr("team 2")}, &g)
	if ev := b.event(parley.EventConversationUpdated); ev.Change != parley.ChangeRenamed || ev.Conversation.Title != "team 2" {
		t.Fatalf("rename event %+v", ev)
	}
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Add: []string{"carol"}}, &g)
	if len(g.Members) != 3 {
		t.Fatalf("after add: %+v", g.Members)
	}
	if ev := b.event(parley.EventConversationUpdated); ev.Change != parley.ChangeMembersAdded {
		t.Fatalf("add event %+v", ev)
	}
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"bob"}}, &g)
	if ev := b.event(parley.EventConversationUpdated); ev.Change != parley.ChangeMembersRemoved {
		t.Fatalf("remove event %+v", ev)
	}
	if code := b.fail(protocol.OpHistory, protocol.History{ConversationID: g.ID}); code != parley.ENOTFOUND {
		t.Fatalf("removed member reads history: %s", code)
	}

	// presence: bob is online for alice (they share a conversation).
	var pl protocol.PresenceList
	a.do(protocol.OpPresence, nil, &pl)
	if !contains(pl.Online, "bob") {
		t.Fatalf("presence: %+v, want bob online", pl)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestNonMember tries every conversation op as a user who is not a member:
// each answers not_found, the same as for a conversation that does not
// exist.
func TestNonMember(t *testing.T) {
	srv := servertest.Start(t)
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	srv.Token(t, "bob", "Bob")
	m := connect(t, srv, srv.Token(t, "mallory", "Mallory"), nil)
	var conv parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "secret", MemberIDs: []string{"bob"}}, &conv)
	msg := a.send(conv.ID, "c1", "private")

	for _, id := range []string{conv.ID, "no-such-conversation"} {
		ops := []struct {
			op   string
			data any
		}{
			{protocol.OpSend, protocol.Send{ConversationID: id, ClientID: "x", Text: "hi"}},
			{protocol.OpHistory, protocol.History{ConversationID: id}},
			{protocol.OpDelete, protocol.Delete{ConversationID: id, MessageID: msg.ID}},
			{protocol.OpRead, protocol.Read{ConversationID: id, Seq: 1}},
			{protocol.OpTyping, protocol.Typing{ConversationID: id, Typing: true}},
			{protocol.OpConversation, protocol.ConversationRef{ConversationID: id}},
			{protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: id, Title: ptr("mine")}},
			{protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: id, Add: []string{"mallory"}}},
		}
		for _, o := range ops {
			if code := m.fail(o.op, o.data); code != parley.ENOTFOUND {
				t.Errorf("%s on %s by a non-member: %s, want not_found", o.op, id, code)
			}
		}
	}
	var list protocol.ConversationList
	m.do(protocol.OpConversations, nil, &list)
	if len(list.Conversations) != 0 {
		t.Fatalf("mallory lists %+v", list)
	}
	page := a.history(conv.ID)
	if len(page.Messages) != 1 || page.Messages[0].Text != "private" {
		t.Fatalf("the conversation changed: %+v", page)
	}
}

// TestBadInput: every bad frame gets an error frame with a code and the
// connection stays up.
func TestBadInput(t *testing.T) {
	srv := servertest.Start(t)
	a, conv := aliceToBob(t, srv)
	long := strings.Repeat("é", parley.MaxTextRunes+1)
	tests := []struct {
		name  string
		frame string
		id    string // the id the error must carry
		code  string
	}{
		{"not json", `{"op":`, "", parley.EBADJSON},
		{"not an object", `[1,2]`, "", parley.EBADJSON},
		{"invalid utf-8", "{\"op\":\"send\",\"id\":\"u\",\"data\":{\"text\":\"\xff\xfe\"}}", "", parley.EBADJSON},
		{"unknown op", `{"op":"fly","id":"f1"}`, "f1", parley.EUNKNOWNOP},
		{"missing op", `{"id":"m1"}`, "m1", parley.EINVALID},
		// A request id over 64 bytes: the error carries its first 64
		// bytes, cut before a UTF-8 character that would not fit.
		{"long id", `{"op":"ping","id":"` + strings.Repeat("x", 65) + `"}`, strings.Repeat("x", 64), parley.EINVALID},
		{"long id, cut at a character", `{"op":"ping","id":"x` + strings.Repeat("é", 32) + `"}`, "x" + strings.Repeat("é", 31), parley.EINVALID},
		{"second hello", `{"op":"hello","id":"h2","data":{"token":"x"}}`, "h2", parley.EINVALID},
		{"missing conversation", `{"op":"send","id":"s1","data":{"client_id":"c","text":"hi"}}`, "s1", parley.EINVALID},
		{"missing client id", `{"op":"send","id":"s2","data":{"conversation_id":"` + conv.ID + `","text":"hi"}}`, "s2", parley.EINVALID},
		{"wrong type", `{"op":"send","id":"s3","data":{"conversation_id":5,"client_id":"c","text":"hi"}}`, "s3", parley.EINVALID},
		{"data not object", `{"op":"send","id":"s4","data":"hi"}`, "s4", parley.EINVALID},
		{"empty text", `{"op":"send","id":"s5","data":{"conversation_id":"` + conv.ID + `","client_id":"c","text":""}}`, "s5", parley.EINVALID},
		{"blank text", `{"op":"send","id":"s6","data":{"conversation_id":"` + conv.ID + `","client_id":"c","text":"  "}}`, "s6", parley.EINVALID},
		{"long text", `{"op":"send","id":"s7","data":{"conversation_id":"` + conv.ID + `","client_id":"c","text":"` + long + `"}}`, "s7", parley.EINVALID},
		{"long client id", `{"op":"send","id":"s8","data":{"conversation_id":"` + conv.ID + `","client_id":"` + strings.Repeat("c", 65) + `","text":"x"}}`, "s8", parley.EINVALID},
		{"bad type", `{"op":"send","id":"s9","data":{"conversation_id":"` + conv.ID + `","client_id":"c","type":"video","text":"x"}}`, "s9", parley.EINVALID},
		{"unknown conversation", `{"op":"send","id":"s10","data":{"conversation_id":"nope","client_id":"c","text":"x"}}`, "s10", parley.ENOTFOUND},
		{"history limit", `{"op":"history","id":"h1","data":{"conversation_id":"` + conv.ID + `","limit":101}}`, "h1", parley.EINVALID},
		{"history both", `{"op":"history","id":"h2b","data":{"conversation_id":"` + conv.ID + `","before":5,"after":1}}`, "h2b", parley.EINVALID},
		{"negative read", `{"op":"read","id":"r1","data":{"conversation_id":"` + conv.ID + `","seq":-1}}`, "r1", parley.EINVALID},
		{"empty group title", `{"op":"create_group","id":"g1","data":{"title":"","member_ids":[]}}`, "g1", parley.EINVALID},
		{"long group title", `{"op":"create_group","id":"g2","data":{"title":"` + strings.Repeat("t", 101) + `"}}`, "g2", parley.EINVALID},
		{"direct with self", `{"op":"create_direct","id":"d1","data":{"user_id":"alice"}}`, "d1", parley.EINVALID},
		{"direct unknown", `{"op":"create_direct","id":"d2","data":{"username":"nobody"}}`, "d2", parley.ENOTFOUND},
		{"update nothing", `{"op":"update_conversation","id":"u1","data":{"conversation_id":"` + conv.ID + `"}}`, "u1", parley.EINVALID},
		{"rename direct", `{"op":"update_conversation","id":"u2","data":{"conversation_id":"` + conv.ID + `","title":"x"}}`, "u2", parley.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.t = t
			if err := a.writeRaw(1, []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			f := a.waitFor(func(f protocol.Frame) bool { return f.Type != protocol.TypeEvent })
			if f.Type != protocol.TypeError || f.Error == nil || f.Error.Code != tt.code || f.ID != tt.id {
				t.Fatalf("got %s id=%q %+v, want error %s id=%q", f.Type, f.ID, f.Error, tt.code, tt.id)
			}
			if f.Error.Message == "" {
				t.Error("error without a message")
			}
			// Still up.
			if f := a.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
				t.Fatalf("after a bad frame: %s", f.Type)
			}
		})
	}
	a.t = t
	page := a.history(conv.ID)
	if len(page.Messages) != 0 {
		t.Fatalf("bad input wrote %d messages", len(page.Messages))
	}
}

// TestFatalFrames: frames that break the protocol close the connection
// with the documented code.
func TestFatalFrames(t *testing.T) {
	srv := servertest.Start(t, servertestHelloTimeout())
	tok := srv.Token(t, "alice", "Alice")
	t.Run("oversized", func(t *testing.T) {
		c := connect(t, srv, tok, nil)
		big := `{"op":"ping","id":"` + strings.Repeat("x", parley.MaxFrameBytes) + `"}`
		c.writeRaw(1, []byte(big))
		if code := c.closeCode(); code != 1009 {
			t.Fatalf("close %d, want 1009", code)
		}
	})
	t.Run("binary", func(t *testing.T) {
		c := connect(t, srv, tok, nil)
		c.writeRaw(2, []byte(`{"op":"ping"}`))
		if code := c.closeCode(); code != protocol.CloseProtocolError {
			t.Fatalf("close %d, want 4101", code)
		}
	})
	t.Run("binary hello", func(t *testing.T) {
		c := dial(t, srv, nil)
		c.writeRaw(2, []byte(`{"op":"hello"}`))
		if code := c.closeCode(); code != protocol.CloseProtocolError {
			t.Fatalf("close %d, want 4101", code)
		}
	})
	t.Run("not hello first", func(t *testing.T) {
		c := dial(t, srv, nil)
		c.sendOp(protocol.OpPing, "p", nil)
		if f := c.next(); f.Type != protocol.TypeError || f.Error.Code != parley.EINVALID {
			t.Fatalf("got %+v", f)
		}
		if code := c.closeCode(); code != protocol.CloseProtocolError {
			t.Fatalf("close %d, want 4101", code)
		}
	})
}

// TestHelloNeverArrives: a connection whose hello never arrives (lost on
// a half-open link, or held by a stalled proxy or node) is closed after
// the hello timeout with a code that tells the client to reconnect: a
// network fault is never terminal.
func TestHelloNeverArrives(t *testing.T) {
	srv := servertest.Start(t, servertestHelloTimeout())
	c := dial(t, srv, nil)
	code := int(c.closeCode())
	if code != protocol.CloseHelloTimeout || !protocol.ShouldReconnect(code) {
		t.Fatalf("close %d (reconnect: %v), want %d, a reconnect code", code, protocol.ShouldReconnect(code), protocol.CloseHelloTimeout)
	}
}

func TestTokens(t *testing.T) {
	srv := servertest.Start(t)
	good := srv.Token(t, "alice", "Alice")
	forged := good[:len(good)-4] + "AAAA"
	other := servertest.Start(t) // another secret
	foreign := other.Token(t, "alice", "Alice")
	for name, tok := range map[string]string{"missing": "", "forged": forged, "foreign": foreign, "garbage": "a.b.c"} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, srv, nil)
			c.sendOp(protocol.OpHello, "h", protocol.Hello{Token: tok})
			f := c.next()
			if f.Type != protocol.TypeError || f.Error.Code != parley.EUNAUTHORIZED {
				t.Fatalf("got %+v, want unauthorized", f)
			}
			if code := c.closeCode(); code != protocol.CloseUnauthorized {
				t.Fatalf("close %d, want 4100", code)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		tok := mintExpired(t, srv)
		c := dial(t, srv, nil)
		c.sendOp(protocol.OpHello, "h", protocol.Hello{Token: tok})
		if f := c.next(); f.Type != protocol.TypeError || f.Error.Code != parley.EUNAUTHORIZED || !strings.Contains(f.Error.Message, "expired") {
			t.Fatalf("got %+v", f.Error)
		}
		if code := c.closeCode(); code != protocol.CloseUnauthorized {
			t.Fatalf("close %d, want 4100", code)
		}
	})
	t.Run("bearer header", func(t *testing.T) {
		c := dial(t, srv, map[string][]string{"Authorization": {"Bearer " + good}})
		c.sendOp(protocol.OpHello, "h", protocol.Hello{})
		if f := c.next(); f.Type != protocol.TypeWelcome {
			t.Fatalf("got %+v", f)
		}
	})
	t.Run("bad bearer header", func(t *testing.T) {
		resp := httpDo(t, srv, "GET", "/v1/ws", forged, "")
		if resp.status != 401 || resp.err.Code != parley.EUNAUTHORIZED {
			t.Fatalf("upgrade with a forged header: %d %+v", resp.status, resp.err)
		}
	})
}

func TestOrigin(t *testing.T) {
	srv := servertest.Start(t)
	h := map[string][]string{"Origin": {"http://evil.example"}}
	resp := httpDoHeaders(t, srv, "GET", "/v1/ws", h)
	if resp != 403 {
		t.Fatalf("foreign origin: %d, want 403", resp)
	}
	h["Origin"] = []string{"http://" + srv.Addr()}
	c := dial(t, srv, h)
	c.sendOp(protocol.OpHello, "", protocol.Hello{Token: srv.Token(t, "alice", "A")})
	if f := c.next(); f.Type != protocol.TypeWelcome {
		t.Fatalf("same origin: %+v", f)
	}
}

// TestPaginationWhileSending pages backwards through history while new
// messages keep arriving: every message of the first snapshot is seen
// once, in order.
func TestPaginationWhileSending(t *testing.T) {
	srv := servertest.Start(t)
	a, b, conv := directPair(t, srv)
	for i := range 120 {
		a.send(conv.ID, fmt.Sprintf("c%d", i), fmt.Sprintf("m%d", i))
	}
	var page parley.MessagePage
	b.do(protocol.OpHistory, protocol.History{ConversationID: conv.ID, Limit: 25}, &page)
	newest := page.Messages[len(page.Messages)-1].Seq
	seen := map[int64]bool{}
	var seqs []int64
	k := 0
	for {
		for _, m := range page.Messages {
			if seen[m.Seq] {
				t.Fatalf("seq %d seen twice", m.Seq)
			}
			seen[m.Seq] = true
			seqs = append(seqs, m.Seq)
		}
		// New messages land between pages.
		for range 3 {
			a.send(conv.ID, fmt.Sprintf("n%d", k), "new")
			k++
		}
		if !page.HasMore {
			break
		}
		b.do(protocol.OpHistory, protocol.History{ConversationID: conv.ID, Before: protocol.Cursor(page.Messages[0].Seq), Limit: 25}, &page)
	}
	if int64(len(seqs)) != newest {
		t.Fatalf("saw %d messages, want %d", len(seqs), newest)
	}
	for s := int64(1); s <= newest; s++ {
		if !seen[s] {
			t.Fatalf("seq %d missing", s)
		}
	}
	// Forward from the newest seen: exactly the ones sent meanwhile.
	b.do(protocol.OpHistory, protocol.History{ConversationID: conv.ID, After: protocol.Cursor(newest), Limit: 100}, &page)
	if len(page.Messages) != k || page.Messages[0].Seq != newest+1 {
		t.Fatalf("after %d: %d messages from %d, want %d", newest, len(page.Messages), page.Messages[0].Seq, k)
	}
}

func decodeEvent(t testing.TB, f protocol.Frame) parley.Event {
	var ev parley.Event
	if err := json.Unmarshal(f.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}
