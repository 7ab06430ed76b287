package indietest

// Section 5, Consent and blocks: blocks, hidden quotes, consent, requests.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

type privacy struct {
	Consent string `json:"consent"`
	Blocked []struct {
		UserID string `json:"user_id"`
		Name   string `json:"name"`
	} `json:"blocked"`
}

const refusal = "this user does not accept this from you"

// wantHidden checks a quote hidden from its reader: message_id, seq and
// hidden: true, nothing else.
func wantHidden(t *testing.T, where string, q *quote, parent wmsg) {
	t.Helper()
	if q == nil || q.MessageID != parent.ID || q.Seq != parent.Seq || q.Hidden == nil || !*q.Hidden ||
		q.SenderID != nil || q.SenderName != nil || q.Type != nil || q.Text != nil || q.Deleted != nil {
		t.Errorf("%s: quote %s, want {message_id: %s, seq: %d, hidden: true} only", where, mustJSON(q), parent.ID, parent.Seq)
	}
}

var _ = check("block", func(t *testing.T, e *env) {
	a, b, c := e.newUser(t, "bl"), e.newUser(t, "bl"), e.newUser(t, "bl")
	g := c.group("blocks", a, b)
	d := a.direct(b)
	a.send(d, "a to b")
	b.send(d, "b to a") // both wrote: contacts
	old := b.send(g, "b before the block")
	a2 := a.reconnect(t, nil)
	a.drain(300 * time.Millisecond)
	b.drain(0)

	var br struct {
		UserID  string `json:"user_id"`
		Blocked bool   `json:"blocked"`
	}
	a.ok("block", map[string]any{"user_id": b.id}, &br)
	if br.UserID != b.id || !br.Blocked {
		t.Errorf("block reply %+v", br)
	}
	for _, u := range []*cl{a, a2} {
		be := u.expect("userBlocked", nil)
		if be.UserID != a.id || fmt.Sprint(be.UserIDs) != fmt.Sprint([]string{b.id}) || be.ConversationID != "" || be.Pos == 0 {
			t.Errorf("userBlocked %s", mustJSON(be.raw))
		}
	}
	b.none("userBlocked", nil, 200*time.Millisecond)
	a.ok("block", map[string]any{"user_id": b.id}, nil)
	a.none("userBlocked", nil, 200*time.Millisecond)

	// The privacy list: blocked oldest first, with names.
	a.ok("block", map[string]any{"user_id": c.id}, nil)
	var pv privacy
	a.ok("privacy", nil, &pv)
	if pv.Consent != "everyone" || len(pv.Blocked) != 2 || pv.Blocked[0].UserID != b.id || pv.Blocked[0].Name != b.name || pv.Blocked[1].UserID != c.id {
		t.Errorf("privacy %+v", pv)
	}
	a.ok("unblock", map[string]any{"user_id": c.id}, nil)
	a.fails("block", map[string]any{"user_id": a.id}, "invalid")
	a.fails("block", map[string]any{"user_id": "no-such-user-" + e.unique("")}, "not_found")
	a.ok("unblock", map[string]any{"user_id": e.newUser(t, "bl").id}, &br)
	if br.Blocked {
		t.Errorf("unblock of one not blocked: %+v", br)
	}
	a.drain(300 * time.Millisecond)

	// B cannot write in the direct conversation nor start one; A can.
	if werr := b.fails("send", map[string]any{"conversation_id": d, "client_id": e.unique("c-"), "text": "x"}, "forbidden"); werr.Message != refusal {
		t.Errorf("blocked send: %q", werr.Message)
	}
	// create_direct of the pair's existing conversation finds it (b is a
	// member already); a new one with a user who blocked b is refused.
	if got := b.direct(a); got != d {
		t.Errorf("create_direct of the existing pair: %s, want %s", got, d)
	}
	x := e.newUser(t, "bl")
	x.ok("block", map[string]any{"user_id": b.id}, nil)
	if werr := b.fails("create_direct", map[string]any{"user_id": x.id}, "forbidden"); werr.Message != refusal {
		t.Errorf("create_direct with a blocker: %q", werr.Message)
	}
	b.fails("create_group", map[string]any{"title": "with a", "member_ids": []string{a.id}}, "forbidden")
	a.send(d, "a still writes")

	// B's messages are hidden from A everywhere.
	bm := b.send(g, "b after the block "+e.unique("w"))
	a.none("newMessage", func(x ev) bool { return x.UserID == b.id }, 300*time.Millisecond)
	h := a.history(g, nil)
	for _, m := range h.Messages {
		if m.SenderID == b.id {
			t.Errorf("history shows b's %q", m.text())
		}
	}
	var sp searchPage
	a.ok("search", map[string]any{"query": strings.Fields(bm.text())[4]}, &sp)
	if len(sp.Results) != 0 {
		t.Errorf("search finds b's message")
	}
	if cv := a.conversation(g); cv.LastMessage != nil && cv.LastMessage.SenderID == b.id {
		t.Errorf("last_message is b's")
	}

	// A reply of C's to B's message reaches A with the quote hidden.
	var r wmsg
	c.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "c replies", "reply_to": old.ID}, &r)
	if r.ReplyTo == nil || r.ReplyTo.Hidden != nil || r.ReplyTo.Text == nil {
		t.Errorf("c's own quote: %s", mustJSON(r.ReplyTo))
	}
	ne := a.expect("newMessage", func(x ev) bool { return x.Message != nil && x.Message.ID == r.ID })
	wantHidden(t, "newMessage", ne.Message.ReplyTo, old)
	h = a.history(g, nil)
	wantHidden(t, "history", h.Messages[len(h.Messages)-1].ReplyTo, old)
	wantHidden(t, "last_message", a.conversation(g).LastMessage.ReplyTo, old)
	// A's own reply to an old message of B's: the answer's quote hidden too.
	var own wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "a replies", "reply_to": old.ID}, &own)
	wantHidden(t, "A's send reply", own.ReplyTo, old)
	b.expect("newMessage", func(x ev) bool {
		if x.Message != nil && x.Message.ID == own.ID && (x.Message.ReplyTo == nil || x.Message.ReplyTo.Hidden != nil) {
			t.Errorf("b reads a's reply with quote %s, want it whole", mustJSON(x.Message.ReplyTo))
		}
		return x.Message != nil && x.Message.ID == own.ID
	})
	var ed wmsg
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": own.ID, "client_id": e.unique("e-"), "text": "a edits"}, &ed)
	wantHidden(t, "A's edit reply", ed.ReplyTo, old)
	// Reactions on B's message do not reach A.
	c.ok("react", map[string]any{"conversation_id": g, "message_id": old.ID, "emoji": "👍"}, nil)
	a.none("reactionAdded", nil, 300*time.Millisecond)

	// Unblocking restores history and quotes.
	a.ok("unblock", map[string]any{"user_id": b.id}, &br)
	if br.Blocked || br.UserID != b.id {
		t.Errorf("unblock reply %+v", br)
	}
	a.expect("userUnblocked", nil)
	h = a.history(g, nil)
	seenB := false
	for _, m := range h.Messages {
		seenB = seenB || m.SenderID == b.id
		if m.ID == r.ID && (m.ReplyTo == nil || m.ReplyTo.Hidden != nil) {
			t.Errorf("after unblocking, the quote is %s", mustJSON(m.ReplyTo))
		}
	}
	if !seenB {
		t.Errorf("after unblocking, history still hides b")
	}
	b.send(d, "b writes again")
	// HTTP.
	if r := e.http(t, "PUT", "/v1/me/blocked/"+b.id, a.token, nil); r.status != 200 || !strings.Contains(string(r.body), `"blocked":true`) {
		t.Errorf("PUT blocked: %d %s", r.status, r.body)
	}
	if r := e.http(t, "DELETE", "/v1/me/blocked/"+b.id, a.token, nil); r.status != 200 || !strings.Contains(string(r.body), `"blocked":false`) {
		t.Errorf("DELETE blocked: %d %s", r.status, r.body)
	}
	if r := e.http(t, "GET", "/v1/me/privacy", a.token, nil); r.status != 200 {
		t.Errorf("GET privacy: %d %s", r.status, r.body)
	}
})

var _ = check("block replay", func(t *testing.T, e *env) {
	// What is hidden follows the blocks when read: a replay while blocked
	// leaves B's events out; GET /v1/events too.
	a, b := e.newUser(t, "br"), e.newUser(t, "br")
	g := a.group("replay", b)
	var w struct {
		Head int64 `json:"head"`
	}
	json.Unmarshal(a.welcome, &w)
	p := b.send(g, "parent")
	a.ok("block", map[string]any{"user_id": b.id}, nil)
	b.send(g, "hidden")
	b.ok("react", map[string]any{"conversation_id": g, "message_id": p.ID, "emoji": "👍"}, nil)
	var r wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "reply", "reply_to": p.ID}, &r)
	a3 := a.reconnect(t, map[string]any{"resume_from": w.Head})
	fr, ok := a3.frameOf("resumed", 5*time.Second)
	if !ok {
		t.Fatalf("no resumed")
	}
	var rs resumedData
	json.Unmarshal(fr.Data, &rs)
	var types []string
	count := 0
	for _, f := range a3.buf {
		var x ev
		json.Unmarshal(f.Data, &x)
		if f.Type != "event" || x.Pos == 0 {
			continue
		}
		count++
		types = append(types, x.Type)
		if x.UserID == b.id && x.Type != "conversationUpdated" {
			t.Errorf("replay holds b's %s", x.Type)
		}
		if x.Type == "newMessage" && x.Message.ID == r.ID {
			wantHidden(t, "replayed newMessage", x.Message.ReplyTo, p)
		}
	}
	if rs.Count != count {
		t.Errorf("resumed.count %d, %d durable events replayed (%v)", rs.Count, count, types)
	}
	resp := e.http(t, "GET", fmt.Sprintf("/v1/events?after=%d", w.Head), a.token, nil)
	var evs struct {
		Events []ev `json:"events"`
	}
	json.Unmarshal(resp.body, &evs)
	for _, x := range evs.Events {
		if x.UserID == b.id && x.Type != "conversationUpdated" {
			t.Errorf("GET /v1/events holds b's %s", x.Type)
		}
		if x.Type == "newMessage" && x.Message.ID == r.ID {
			wantHidden(t, "GET /v1/events newMessage", x.Message.ReplyTo, p)
		}
	}
})

var _ = check("consent and requests", func(t *testing.T, e *env) {
	a, s := e.newUser(t, "cs"), e.newUser(t, "cs") // a receives, s is a stranger
	var pv privacy
	a.ok("set_privacy", map[string]any{"consent": "contacts"}, &pv)
	if pv.Consent != "contacts" {
		t.Errorf("set_privacy %+v", pv)
	}
	pe := a.expect("privacyChanged", nil)
	if pe.Consent != "contacts" || pe.UserID != a.id || pe.ConversationID != "" {
		t.Errorf("privacyChanged %s", mustJSON(pe.raw))
	}
	a.ok("set_privacy", map[string]any{"consent": "contacts"}, nil)
	a.none("privacyChanged", nil, 200*time.Millisecond)
	a.fails("set_privacy", map[string]any{"consent": "nobody"}, "invalid")
	if werr := s.fails("create_direct", map[string]any{"user_id": a.id}, "forbidden"); werr.Message != refusal {
		t.Errorf("contacts-only create_direct: %q", werr.Message)
	}
	s.fails("create_group", map[string]any{"title": "x", "member_ids": []string{a.id}}, "forbidden")
	sg := s.group("mine")
	s.fails("update_conversation", map[string]any{"conversation_id": sg, "add": []string{a.id}}, "forbidden")

	// everyone: a stranger's direct conversation is a request.
	a.ok("set_privacy", map[string]any{"consent": "everyone"}, nil)
	a.drain(200 * time.Millisecond)
	d := s.direct(a)
	m := s.send(d, "hello stranger")
	ca := a.conversation(d)
	if ca.Request == nil || *ca.Request != "pending" || ca.UnreadCount != 1 {
		t.Errorf("recipient's view: request %v unread %d", ca.Request, ca.UnreadCount)
	}
	if cs := s.conversation(d); cs.Request != nil {
		t.Errorf("starter's view has request %q", *cs.Request)
	}
	// Reads stay hidden from the starter until the accept.
	a.ok("read", map[string]any{"conversation_id": d, "seq": m.Seq}, nil)
	s.none("messageRead", nil, 300*time.Millisecond)
	if cs := s.conversation(d); cs.member(a.id).ReadSeq != 0 || cs.member(a.id).DeliveredSeq != 0 {
		t.Errorf("starter sees the recipient at %+v", cs.member(a.id))
	}
	s.fails("accept_request", map[string]any{"conversation_id": d}, "invalid")
	e.newUser(t, "cs").fails("accept_request", map[string]any{"conversation_id": d}, "not_found")
	a.ok("accept_request", map[string]any{"conversation_id": d}, &ca)
	if ca.Request != nil {
		t.Errorf("after accepting: request %q", *ca.Request)
	}
	ae := a.expect("requestAccepted", nil)
	if ae.UserID != a.id || fmt.Sprint(ae.UserIDs) != fmt.Sprint([]string{s.id}) {
		t.Errorf("requestAccepted %s", mustJSON(ae.raw))
	}
	if re := s.expect("messageRead", nil); re.ReadSeq != m.Seq || re.UserID != a.id {
		t.Errorf("messageRead on accept %s", mustJSON(re.raw))
	}
	// Accepting an accepted request changes nothing (a client retrying
	// an accept whose reply it lost); declining it is invalid.
	a.ok("accept_request", map[string]any{"conversation_id": d}, &ca)
	if ca.Request != nil {
		t.Errorf("accepting again: request %q", *ca.Request)
	}
	a.none("requestAccepted", nil, 200*time.Millisecond)
	if werr := a.fails("decline_request", map[string]any{"conversation_id": d}, "invalid"); !strings.Contains(werr.Message, "cannot be declined") {
		t.Errorf("declining an accepted request: %q", werr.Message)
	}
	// A member of a direct conversation that was never a request.
	f1, f2 := e.newUser(t, "cs"), e.newUser(t, "cs")
	g := f1.group("friends", f2)
	_ = g
	fd := f1.direct(f2)
	if werr := f2.fails("accept_request", map[string]any{"conversation_id": fd}, "invalid"); werr.Message != "this conversation is not a request to you" {
		t.Errorf("accept of no request: %q", werr.Message)
	}

	// Decline: out of the list, the starter's sends refused.
	s2 := e.newUser(t, "cs")
	d2 := s2.direct(a)
	s2.send(d2, "spam")
	a.ok("decline_request", map[string]any{"conversation_id": d2}, &ca)
	if ca.Request == nil || *ca.Request != "declined" {
		t.Errorf("declined: %v", ca.Request)
	}
	a.expect("requestDeclined", nil)
	var list struct {
		Conversations []conv `json:"conversations"`
	}
	a.ok("conversations", nil, &list)
	for _, c := range list.Conversations {
		if c.ID == d2 {
			t.Errorf("a declined request is in the list")
		}
	}
	a.conversation(d2) // still found
	if werr := s2.fails("send", map[string]any{"conversation_id": d2, "client_id": e.unique("c-"), "text": "again"}, "forbidden"); werr.Message != refusal {
		t.Errorf("send after decline: %q", werr.Message)
	}
	a.ok("decline_request", map[string]any{"conversation_id": d2}, nil)
	a.none("requestDeclined", nil, 200*time.Millisecond)
	// A reply accepts, a declined request too: it is back in the list and
	// the starter may answer.
	a.send(d2, "changed my mind")
	if c := a.conversation(d2); c.Request != nil {
		t.Errorf("after writing in a declined request: request %q", *c.Request)
	}
	a.ok("conversations", nil, &list)
	found := false
	for _, c := range list.Conversations {
		found = found || c.ID == d2
	}
	if !found {
		t.Errorf("a declined request its recipient wrote in is not back in the list")
	}
	s2.send(d2, "thanks")
	// A reply accepts.
	s3 := e.newUser(t, "cs")
	d3 := s3.direct(a)
	s3.send(d3, "hi")
	a.send(d3, "hi back")
	if c := a.conversation(d3); c.Request != nil {
		t.Errorf("after replying: request %q", *c.Request)
	}
	// HTTP.
	s4 := e.newUser(t, "cs")
	d4 := s4.direct(a)
	if r := e.http(t, "POST", "/v1/conversations/"+d4+"/accept", a.token, nil); r.status != 200 {
		t.Errorf("POST accept: %d %s", r.status, r.body)
	}
	if r := e.http(t, "PATCH", "/v1/me/privacy", a.token, map[string]any{"consent": "contacts"}); r.status != 200 || !strings.Contains(string(r.body), "contacts") {
		t.Errorf("PATCH privacy: %d %s", r.status, r.body)
	}
})
