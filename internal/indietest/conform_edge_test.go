package indietest

// Corners of section 5 where a client author has to guess: the checks
// pin down what the document says there.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

var _ = check("edit queued behind its send", func(t *testing.T, e *env) {
	// Section 5, edit: message_client_id lets a client send an edit right
	// behind a send whose reply it has not seen; requests run in order.
	a := e.newUser(t, "eq")
	g := a.group("queue")
	cid := e.unique("c-")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.c.write(ctx, request{Op: "send", ID: "s1", Data: map[string]any{"conversation_id": g, "client_id": cid, "text": "typo"}})
	a.c.write(ctx, request{Op: "edit", ID: "e1", Data: map[string]any{"conversation_id": g, "message_client_id": cid, "client_id": e.unique("e-"), "text": "fixed"}})
	got := map[string]frame{}
	for len(got) < 2 {
		f, ok := a.recv(5 * time.Second)
		if !ok {
			t.Fatalf("answers %v", got)
		}
		if f.ID == "s1" || f.ID == "e1" {
			got[f.ID] = f
		}
	}
	var m wmsg
	json.Unmarshal(got["e1"].Data, &m)
	if got["s1"].Type != "reply" || got["e1"].Type != "reply" || m.text() != "fixed" {
		t.Errorf("send then edit by client id: %s %s / %s %v", got["s1"].Type, got["s1"].Data, got["e1"].Data, got["e1"].Error)
	}
})

var _ = check("caption edits", func(t *testing.T, e *env) {
	// A file's caption is optional, as an image's: both may be edited to
	// empty (section 5, edit; section 11, Files: "like an image").
	a := e.newUser(t, "ce")
	g := a.group("captions")
	f, _ := e.upload(t, a, "/v1/files?name=a.txt", []byte("text file"))
	var m wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "type": "file", "attachment_id": f.ID, "text": "caption"}, &m)
	var ed wmsg
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": e.unique("e-"), "text": ""}, &ed)
	if ed.Text != nil {
		t.Errorf("a file's caption edited to empty: %s", mustJSON(ed))
	}
	// A text message may not become empty.
	tm := a.send(g, "text")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": tm.ID, "client_id": e.unique("e-"), "text": ""}, "invalid")
	// Mentions are read in captions too.
	b := e.newUser(t, "ce")
	a.ok("update_conversation", map[string]any{"conversation_id": g, "add": []string{b.id}}, nil)
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": e.unique("e-"), "text": "for @" + b.name}, &ed)
	if fmt.Sprint(ed.Mentions) != fmt.Sprint([]string{b.id}) {
		t.Errorf("a caption's mention: %v", ed.Mentions)
	}
})

var _ = check("hidden quote of a deleted parent", func(t *testing.T, e *env) {
	// The hidden quote says nothing of the parent, not even its delete.
	a, b, c := e.newUser(t, "hq"), e.newUser(t, "hq"), e.newUser(t, "hq")
	g := c.group("hidden", a, b)
	p := b.send(g, "parent")
	var r wmsg
	c.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "reply", "reply_to": p.ID}, &r)
	a.ok("block", map[string]any{"user_id": b.id}, nil)
	b.ok("delete", map[string]any{"conversation_id": g, "message_id": p.ID}, nil)
	h := a.history(g, nil)
	wantHidden(t, "history after the parent's delete", h.Messages[len(h.Messages)-1].ReplyTo, p)
	// Search results carry the hidden quote too.
	var sp searchPage
	a.ok("search", map[string]any{"query": "reply", "conversation_id": g}, &sp)
	if len(sp.Results) != 1 {
		t.Fatalf("search: %d", len(sp.Results))
	}
	wantHidden(t, "search result", sp.Results[0].Message.ReplyTo, p)
})

var _ = check("blocks: counts, receipts, typing, presence", func(t *testing.T, e *env) {
	a, b, c := e.newUser(t, "bc"), e.newUser(t, "bc"), e.newUser(t, "bc")
	g := c.group("counts", a, b)
	m := c.send(g, "react here")
	a.expect("userOnline", func(x ev) bool { return x.UserID == b.id })
	a.ok("block", map[string]any{"user_id": b.id}, nil)
	// The block ends presence between former contacts: a hears b go offline.
	a.expect("userOffline", func(x ev) bool { return x.UserID == b.id })
	b.expect("userOffline", func(x ev) bool { return x.UserID == a.id })
	a.drain(300 * time.Millisecond)
	b.drain(0)

	// A reaction of b's: not to a, yet in a's count.
	b.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "👍"}, nil)
	a.none("reactionAdded", nil, 300*time.Millisecond)
	h := a.history(g, nil)
	if rs := h.Messages[0].Reactions; len(rs) != 1 || rs[0].Count != 1 {
		t.Errorf("a's count of b's reaction: %+v", rs)
	}
	// Unread counts skip b's messages; typing and reads do not cross.
	before := a.conversation(g).UnreadCount
	b.send(g, "hidden one")
	if after := a.conversation(g).UnreadCount; after != before {
		t.Errorf("unread %d -> %d after a blocked user's message", before, after)
	}
	b.ok("typing", map[string]any{"conversation_id": g, "typing": true}, nil)
	a.none("typingStarted", nil, 300*time.Millisecond)
	b.ok("read", map[string]any{"conversation_id": g, "seq": 2}, nil)
	a.none("messageRead", func(x ev) bool { return x.UserID == b.id }, 300*time.Millisecond)
	if mb := a.conversation(g).member(b.id); mb.ReadSeq != 0 || mb.DeliveredSeq != 0 {
		t.Errorf("a sees b's positions %+v", mb)
	}
	// Mentions by a blocked user are not in the list.
	b.send(g, "hey @"+a.name)
	var sp searchPage
	a.ok("mentions", nil, &sp)
	if len(sp.Results) != 0 {
		t.Errorf("a blocked user's mention is listed")
	}
	if cv := a.conversation(g); cv.UnreadMentions != 0 {
		t.Errorf("unread_mentions %d from a blocked user", cv.UnreadMentions)
	}
	var p struct {
		Online []string `json:"online"`
	}
	a.ok("presence", nil, &p)
	for _, id := range p.Online {
		if id == b.id {
			t.Errorf("presence lists a blocked user")
		}
	}
})

var _ = check("requests hide receipts", func(t *testing.T, e *env) {
	r, s := e.newUser(t, "rq"), e.newUser(t, "rq")
	d := s.direct(r)
	m := s.send(d, "hi")
	s.drain(300 * time.Millisecond)
	r.ok("delivered", map[string]any{"conversations": []map[string]any{{"conversation_id": d, "seq": m.Seq}}}, nil)
	r.ok("typing", map[string]any{"conversation_id": d, "typing": true}, nil)
	s.none("messageDelivered", nil, 300*time.Millisecond)
	s.none("typingStarted", nil, 100*time.Millisecond)
	r.ok("accept_request", map[string]any{"conversation_id": d}, nil)
	if de := s.expect("messageDelivered", nil); de.DeliveredSeq != m.Seq || de.UserID != r.id {
		t.Errorf("messageDelivered on accept: %s", mustJSON(de.raw))
	}
})

var _ = check("flags restart after leaving", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "fr"), e.newUser(t, "fr")
	g := a.group("flags again", b)
	b.ok("set_flags", map[string]any{"conversation_id": g, "muted": true}, nil)
	b.ok("update_conversation", map[string]any{"conversation_id": g, "remove": []string{b.id}}, nil)
	a.ok("update_conversation", map[string]any{"conversation_id": g, "add": []string{b.id}}, nil)
	if c := b.conversation(g); c.Muted || c.Archived {
		t.Errorf("added back: muted %v archived %v", c.Muted, c.Archived)
	}
})

var _ = check("owners removed along with the remover", func(t *testing.T, e *env) {
	o1, o2, m1, m2 := e.newUser(t, "ow"), e.newUser(t, "ow"), e.newUser(t, "ow"), e.newUser(t, "ow")
	var c conv
	o1.ok("create_group", map[string]any{"title": "owners", "member_ids": []string{m1.id, o2.id, m2.id}}, &c)
	g := c.ID
	o1.ok("update_conversation", map[string]any{"conversation_id": g, "promote": []string{o2.id}}, nil)
	o1.ok("update_conversation", map[string]any{"conversation_id": g, "remove": []string{o2.id, o1.id}}, &c)
	cv := m2.conversation(g)
	if cv.member(m1.id) == nil || cv.member(m1.id).Role != "owner" || cv.member(m2.id).Role != "member" {
		t.Errorf("after every owner left: %s, want %s (longest-standing) owner", roles(cv), m1.id)
	}
})

var _ = check("group membership edges", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "gm"), e.newUser(t, "gm")
	var c conv
	// The creator named among the members, and a member named twice.
	if _, werr := a.req("create_group", map[string]any{"title": "dup", "member_ids": []string{b.id, b.id, a.id}}); werr == nil {
		a.ok("create_group", map[string]any{"title": "dup", "member_ids": []string{b.id, b.id, a.id}}, &c)
		if len(c.Members) != 2 {
			t.Errorf("member_ids with the creator and a repeat: %s", roles(c))
		}
	} else if werr.Code != "invalid" {
		t.Errorf("member_ids with the creator and a repeat: %v", werr)
	}
	// 256 members at most (the creator included).
	ids := []string{}
	for range 255 {
		u := e.unique("mass")
		e.connectAs(t, u, u, mint(u, u), nil).stop()
		ids = append(ids, u)
	}
	a.ok("create_group", map[string]any{"title": "full", "member_ids": ids}, &c)
	if len(c.Members) != 256 {
		t.Errorf("a group of the creator and 255: %d members", len(c.Members))
	}
	if werr := a.fails("update_conversation", map[string]any{"conversation_id": c.ID, "add": []string{b.id}}, "invalid"); werr.Code == "" {
		t.Errorf("a 257th member")
	}
})

var _ = check("mentions: 32 names, 99 unread", func(t *testing.T, e *env) {
	a := e.newUser(t, "mm")
	var us []*cl
	var names []string
	for range 33 {
		u := e.newUser(t, "mm")
		us = append(us, u)
		names = append(names, "@"+u.name)
	}
	var c conv
	ids := []string{}
	for _, u := range us {
		ids = append(ids, u.id)
	}
	a.ok("create_group", map[string]any{"title": "many", "member_ids": ids}, &c)
	m := a.send(c.ID, strings.Join(names, " "))
	if len(m.Mentions) != 32 || m.Mentions[0] != us[0].id || m.Mentions[31] != us[31].id {
		t.Errorf("33 names: %d mentions", len(m.Mentions))
	}
	for range 100 {
		a.send(c.ID, "@"+us[0].name)
	}
	if cv := us[0].conversation(c.ID); cv.UnreadMentions != 99 || cv.UnreadCount != 99 {
		t.Errorf("101 unread mentions: unread_mentions %d unread %d, want 99 and 99", cv.UnreadMentions, cv.UnreadCount)
	}
})

var _ = check("search highlights a prefix", func(t *testing.T, e *env) {
	a := e.newUser(t, "sp")
	g := a.group("prefix")
	w := e.unique("zebra")
	a.send(g, "The "+w+"s and one "+w)
	var sp searchPage
	a.ok("search", map[string]any{"query": url.QueryEscape(w[:4]) + "*"}, &sp)
	if len(sp.Results) != 1 {
		t.Fatalf("prefix search: %d", len(sp.Results))
	}
	var matched []string
	for _, h := range sp.Results[0].Highlight {
		if h.Match != nil && *h.Match {
			matched = append(matched, h.Text)
		}
	}
	if fmt.Sprint(matched) != fmt.Sprint([]string{w + "s", w}) {
		t.Errorf("prefix highlight %v", matched)
	}
})

var _ = check("resend after delete", func(t *testing.T, e *env) {
	a := e.newUser(t, "rd")
	g := a.group("resend")
	m := a.send(g, "soon gone")
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": m.ID}, nil)
	var again wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": m.ClientID, "text": "soon gone"}, &again)
	if again.ID != m.ID || !again.Deleted {
		t.Errorf("a resend of a deleted message: %s, want the tombstone", mustJSON(again))
	}
})

var _ = check("an accept makes contacts", func(t *testing.T, e *env) {
	// Section 6, Contacts: accepting a request counts as both having
	// written; like the second user's first message, it announces each
	// to the other when both are online.
	r, s := e.newUser(t, "ac"), e.newUser(t, "ac")
	d := s.direct(r)
	s.send(d, "hi")
	var p struct {
		Online []string `json:"online"`
	}
	r.ok("presence", nil, &p)
	if len(p.Online) != 0 {
		t.Errorf("before the accept: %v", p.Online)
	}
	r.ok("accept_request", map[string]any{"conversation_id": d}, nil)
	r.expect("userOnline", func(x ev) bool { return x.UserID == s.id })
	s.expect("userOnline", func(x ev) bool { return x.UserID == r.id })
	s.ok("presence", nil, &p)
	if fmt.Sprint(p.Online) != fmt.Sprint([]string{r.id}) {
		t.Errorf("the starter's presence after the accept: %v", p.Online)
	}
})

var _ = check("hidden quote in the mentions list", func(t *testing.T, e *env) {
	a, b, c := e.newUser(t, "hm"), e.newUser(t, "hm"), e.newUser(t, "hm")
	g := c.group("mentions quote", a, b)
	p := b.send(g, "parent")
	a.ok("block", map[string]any{"user_id": b.id}, nil)
	var r wmsg
	c.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "@" + a.name + " look", "reply_to": p.ID}, &r)
	var sp searchPage
	a.ok("mentions", nil, &sp)
	if len(sp.Results) != 1 || sp.Results[0].Message.ID != r.ID {
		t.Fatalf("mentions: %d results", len(sp.Results))
	}
	wantHidden(t, "mentions list", sp.Results[0].Message.ReplyTo, p)
})
