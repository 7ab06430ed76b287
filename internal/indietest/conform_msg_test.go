package indietest

// Section 5: send, edit, react, replies, delete, history.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

var _ = check("send", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "snd"), e.newUser(t, "snd")
	g := a.group("send", b)

	m := a.send(g, "hello")
	if m.Seq != 1 || m.SenderID != a.id || m.Type != "text" || m.text() != "hello" || m.ConversationID != g || m.CreatedAt == "" {
		t.Errorf("send reply %+v", m)
	}
	ne := b.expect("newMessage", nil)
	if ne.UserID != a.id || ne.Message == nil || ne.Message.ID != m.ID || ne.Pos == 0 {
		t.Errorf("newMessage %s", mustJSON(ne.raw))
	}
	a.expect("newMessage", nil) // members, sender included

	// Idempotent on client_id: the stored message, no second event.
	var again wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": m.ClientID, "text": "other"}, &again)
	if again.ID != m.ID || again.text() != "hello" {
		t.Errorf("resend: %+v, want the stored %+v", again, m)
	}
	b.none("newMessage", nil, 300*time.Millisecond)

	// The same client_id in another conversation: conflict (section 7).
	g2 := a.group("other", b)
	a.fails("send", map[string]any{"conversation_id": g2, "client_id": m.ClientID, "text": "x"}, "conflict")

	long := strings.Repeat("é", 4000)
	if mm := a.send(g, long); mm.text() != long {
		t.Errorf("4000 code points came back as %d", len([]rune(mm.text())))
	}
	for _, tc := range []struct {
		name string
		data map[string]any
		code string
	}{
		{"4001 code points", map[string]any{"text": strings.Repeat("a", 4001)}, "invalid"},
		{"blank", map[string]any{"text": " \n\t "}, "invalid"},
		{"empty", map[string]any{"text": ""}, "invalid"},
		{"no client_id", map[string]any{"client_id": nil, "text": "x"}, "invalid"},
		{"client_id of 65 bytes", map[string]any{"client_id": strings.Repeat("c", 65), "text": "x"}, "invalid"},
		{"unknown type", map[string]any{"type": "sticker", "text": "x"}, "invalid"},
		{"image without attachment", map[string]any{"type": "image", "text": "x"}, "invalid"},
		{"unknown conversation", map[string]any{"conversation_id": "nope", "text": "x"}, "not_found"},
	} {
		data := map[string]any{"conversation_id": g, "client_id": e.unique("v-")}
		for k, v := range tc.data {
			if v == nil {
				delete(data, k)
			} else {
				data[k] = v
			}
		}
		if werr := a.fails("send", data, tc.code); werr.Code != tc.code {
			t.Logf("(%s)", tc.name)
		}
	}
	if m := a.send(g, strings.Repeat("c", 1)); m.Seq == 0 {
		t.Error("no seq")
	}
	ok := a.ok("send", map[string]any{"conversation_id": g, "client_id": strings.Repeat("k", 64), "text": "x"}, nil)
	if ok == nil {
		t.Error("a client_id of 64 bytes was refused")
	}

	// A non-member: not_found, as for a conversation that does not exist.
	c := e.newUser(t, "snd")
	c.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("v-"), "text": "x"}, "not_found")

	// Sending moves the sender's read position (section 5, send).
	cv := a.conversation(g)
	if cv.ReadSeq != cv.LastSeq || cv.UnreadCount != 0 {
		t.Errorf("after sending: read_seq %d, last_seq %d, unread %d", cv.ReadSeq, cv.LastSeq, cv.UnreadCount)
	}
})

var _ = check("edit", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "ed"), e.newUser(t, "ed")
	g := a.group("edit", b)
	m := a.send(g, "first")
	b.send(g, "from b")
	before := b.conversation(g)
	a.drain(200 * time.Millisecond)
	b.drain(0)

	var ed wmsg
	editID := e.unique("e-")
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": editID, "text": "second"}, &ed)
	if ed.ID != m.ID || ed.Seq != m.Seq || ed.CreatedAt != m.CreatedAt || ed.text() != "second" || ed.EditedAt == nil {
		t.Errorf("edit reply %+v, want %s #%d edited", ed, m.ID, m.Seq)
	}
	for _, u := range []*cl{a, b} { // members, the editor included
		ee := u.expect("messageEdited", nil)
		if ee.UserID != a.id || ee.Message == nil || ee.Message.text() != "second" || ee.Message.EditedAt == nil || ee.Pos == 0 {
			t.Errorf("%s: messageEdited %s", u.id, mustJSON(ee.raw))
		}
	}
	after := b.conversation(g)
	if after.LastActivityAt != before.LastActivityAt || after.UnreadCount != before.UnreadCount {
		t.Errorf("an edit moved activity %s -> %s or unread %d -> %d", before.LastActivityAt, after.LastActivityAt, before.UnreadCount, after.UnreadCount)
	}

	// Idempotent on (editor, client_id): the message as it is now, no event.
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": e.unique("e-"), "text": "third"}, nil)
	a.expect("messageEdited", nil)
	var re wmsg
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": editID, "text": "second"}, &re)
	if re.text() != "third" {
		t.Errorf("an edit resent answers %q, want the message as it is now (third)", re.text())
	}
	a.none("messageEdited", nil, 300*time.Millisecond)

	// A client_id of an edit of another message: conflict.
	m2 := a.send(g, "two")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": m2.ID, "client_id": editID, "text": "x"}, "conflict")
	// The edits' ids are apart from the sends': a message's client_id is
	// a fine edit id.
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m2.ID, "client_id": m2.ClientID, "text": "two edited"}, nil)

	// By message_client_id.
	var byc wmsg
	a.ok("edit", map[string]any{"conversation_id": g, "message_client_id": m2.ClientID, "client_id": e.unique("e-"), "text": "by client id"}, &byc)
	if byc.ID != m2.ID || byc.text() != "by client id" {
		t.Errorf("edit by message_client_id: %+v", byc)
	}

	// Same text: no event.
	a.drain(200 * time.Millisecond)
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m2.ID, "client_id": e.unique("e-"), "text": "by client id"}, nil)
	a.none("messageEdited", nil, 300*time.Millisecond)

	// Refusals.
	bm := b.send(g, "b's")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": bm.ID, "client_id": e.unique("e-"), "text": "x"}, "forbidden")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": m2.ID, "client_id": e.unique("e-"), "text": "  "}, "invalid")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": m2.ID, "text": "x"}, "invalid")
	a.fails("edit", map[string]any{"conversation_id": g, "client_id": e.unique("e-"), "text": "x"}, "invalid")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": m2.ID, "client_id": e.unique("e-"), "text": strings.Repeat("x", 4001)}, "invalid")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": "nope", "client_id": e.unique("e-"), "text": "x"}, "not_found")
	// Another user's client_id names nothing of the caller's.
	a.fails("edit", map[string]any{"conversation_id": g, "message_client_id": bm.ClientID, "client_id": e.unique("e-"), "text": "x"}, "not_found")
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": m2.ID}, nil)
	if werr := a.fails("edit", map[string]any{"conversation_id": g, "message_id": m2.ID, "client_id": e.unique("e-"), "text": "x"}, "invalid"); werr.Message != "a deleted message cannot be edited" {
		t.Errorf("edit of a tombstone: %q", werr.Message)
	}

	// HTTP: PATCH …/messages/{mid}.
	r := e.http(t, "PATCH", "/v1/conversations/"+g+"/messages/"+m.ID, a.token, map[string]any{"client_id": e.unique("e-"), "text": "over http"})
	if r.status != 200 || !strings.Contains(string(r.body), "over http") {
		t.Errorf("PATCH message: %d %s", r.status, r.body)
	}
})

var _ = check("edit names its message once", func(t *testing.T, e *env) {
	// "message_id or message_client_id (one of them)": both at once is
	// not one of them.
	a := e.newUser(t, "ed1")
	g := a.group("one of them")
	m1, m2 := a.send(g, "one"), a.send(g, "two")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": m1.ID, "message_client_id": m2.ClientID, "client_id": e.unique("e-"), "text": "x"}, "invalid")
})

var _ = check("delete", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "del"), e.newUser(t, "del")
	g := a.group("delete", b)
	p := a.send(g, "parent")
	var r wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "reply @" + b.name, "reply_to": p.ID}, &r)
	a.ok("react", map[string]any{"conversation_id": g, "message_id": r.ID, "emoji": "👍"}, nil)
	b.fails("delete", map[string]any{"conversation_id": g, "message_id": r.ID}, "forbidden")
	b.drain(200 * time.Millisecond)
	var tomb wmsg
	raw := a.ok("delete", map[string]any{"conversation_id": g, "message_id": r.ID}, &tomb)
	if !tomb.Deleted || tomb.DeletedAt == nil || tomb.Text != nil || tomb.ReplyTo != nil || tomb.Mentions != nil || tomb.Reactions != nil || tomb.ID != r.ID || tomb.Seq != r.Seq {
		t.Errorf("tombstone %s", raw)
	}
	de := b.expect("messageDeleted", nil)
	if de.UserID != a.id || de.Message == nil || !de.Message.Deleted {
		t.Errorf("messageDeleted %s", mustJSON(de.raw))
	}
	var again wmsg
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": r.ID}, &again)
	if !again.Deleted {
		t.Errorf("deleting a tombstone again: %+v", again)
	}
	h := b.history(g, nil)
	if n := len(h.Messages); n != 2 || !h.Messages[1].Deleted || h.Messages[1].Reactions != nil {
		t.Errorf("history after a delete: %+v", h.Messages)
	}
	// A tombstone is not unread (unread_count counts messages not deleted).
	if c := b.conversation(g); c.UnreadCount != 1 {
		t.Errorf("unread after a delete: %d, want 1", c.UnreadCount)
	}
	a.fails("delete", map[string]any{"conversation_id": g, "message_id": "nope"}, "not_found")
})

var _ = check("react", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "re"), e.newUser(t, "re")
	g := a.group("react", b)
	m := a.send(g, "react to me")
	a.drain(200 * time.Millisecond)
	b.drain(0)

	type reactReply struct {
		MessageID string     `json:"message_id"`
		Reactions []reaction `json:"reactions"`
	}
	var rr reactReply
	b.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "👍"}, &rr)
	if rr.MessageID != m.ID || len(rr.Reactions) != 1 || rr.Reactions[0].Emoji != "👍" || rr.Reactions[0].Count != 1 || rr.Reactions[0].Me == nil || !*rr.Reactions[0].Me {
		t.Errorf("react reply %+v", rr)
	}
	for _, u := range []*cl{a, b} {
		re := u.expect("reactionAdded", nil)
		if re.UserID != b.id || re.UserName != b.name || re.MessageID != m.ID || re.Seq != m.Seq || re.Emoji != "👍" || re.Count == nil || *re.Count != 1 || re.Pos == 0 {
			t.Errorf("%s: reactionAdded %s", u.id, mustJSON(re.raw))
		}
	}
	// Adding again: no change, no event.
	b.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "👍"}, &rr)
	if len(rr.Reactions) != 1 || rr.Reactions[0].Count != 1 {
		t.Errorf("adding twice: %+v", rr)
	}
	a.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "👍"}, &rr)
	if rr.Reactions[0].Count != 2 || rr.Reactions[0].Me == nil || !*rr.Reactions[0].Me {
		t.Errorf("a second user: %+v", rr)
	}
	a.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "🎉"}, &rr)
	b.expect("reactionAdded", func(x ev) bool { return x.Emoji == "👍" && x.UserID == a.id })
	b.expect("reactionAdded", func(x ev) bool { return x.Emoji == "🎉" })
	b.none("reactionAdded", nil, 300*time.Millisecond)

	// Removing one not held: no event; removing one held: count down.
	b.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "🎉", "remove": true}, &rr)
	b.none("reactionRemoved", nil, 300*time.Millisecond)
	a.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "🎉", "remove": true}, nil)
	rm := b.expect("reactionRemoved", nil)
	if rm.Count != nil {
		t.Errorf("reactionRemoved of the last 🎉: count %v, want absent", *rm.Count)
	}

	// Reactions are in history pages only, with me as the caller sees it.
	h := b.history(g, nil)
	got := h.Messages[len(h.Messages)-1].Reactions
	if len(got) != 1 || got[0].Emoji != "👍" || got[0].Count != 2 || got[0].Me == nil || !*got[0].Me {
		t.Errorf("history reactions %+v", got)
	}
	m2 := b.send(g, "no reactions here")
	if m2.Reactions != nil {
		t.Errorf("send reply carries reactions %+v", m2.Reactions)
	}

	// Order: by the oldest reaction each emoji still has.
	for _, em := range []string{"😀", "🙂"} {
		a.ok("react", map[string]any{"conversation_id": g, "message_id": m2.ID, "emoji": em}, nil)
	}
	b.ok("react", map[string]any{"conversation_id": g, "message_id": m2.ID, "emoji": "😀"}, nil)
	rr = reactReply{} // a fresh value: Unmarshal would keep an old element's me
	a.ok("react", map[string]any{"conversation_id": g, "message_id": m2.ID, "emoji": "😀", "remove": true}, &rr)
	if len(rr.Reactions) != 2 || rr.Reactions[0].Emoji != "🙂" || rr.Reactions[1].Emoji != "😀" {
		t.Errorf("order after the oldest 😀 left: %+v, want 🙂 then 😀", rr.Reactions)
	}
	if rr.Reactions[1].Me != nil && *rr.Reactions[1].Me {
		t.Errorf("me on 😀 after removing: %+v", rr.Reactions[1])
	}

	// Emoji validation.
	for _, em := range []string{"a", "1", "#", "👍 ", " ", "<b>", "\u200d", "🏳️‍🌈", "1️⃣", "🇫🇷", "👍🏽", "❤", "❤️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "#⃣"} {
		valid := map[string]bool{"🏳️‍🌈": true, "1️⃣": true, "🇫🇷": true, "👍🏽": true, "❤": true, "❤️": true, "🏴󠁧󠁢󠁳󠁣󠁴󠁿": true, "#⃣": true}[em]
		b2, werr := a.req("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": em})
		switch {
		case valid && werr != nil:
			t.Errorf("emoji %q (%U) refused: %v", em, []rune(em), werr)
		case !valid && werr == nil:
			t.Errorf("emoji %q (%U) accepted: %s", em, []rune(em), b2)
		case !valid && (werr.Code != "invalid" || werr.Message != "emoji must be an emoji"):
			t.Errorf("emoji %q: %v, want invalid \"emoji must be an emoji\"", em, werr)
		}
	}
	// Lengths have their own messages.
	for em, msg := range map[string]string{"": "emoji is required", strings.Repeat("👍", 17): "emoji is longer than 16 code points or 64 bytes"} {
		if werr := a.fails("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": em}, "invalid"); werr.Message != msg {
			t.Errorf("emoji %q: %q, want %q", em, werr.Message, msg)
		}
	}
	// ❤ and ❤️ are two emoji.
	a.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "❤"}, &rr)
	n := 0
	for _, r := range rr.Reactions {
		if strings.HasPrefix(r.Emoji, "❤") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("❤ and ❤️ on one message: %+v", rr.Reactions)
	}

	// At most 20 different emoji.
	m3 := a.send(g, "twenty")
	for i := range 20 {
		a.ok("react", map[string]any{"conversation_id": g, "message_id": m3.ID, "emoji": string(rune(0x1F600 + i))}, nil)
	}
	a.fails("react", map[string]any{"conversation_id": g, "message_id": m3.ID, "emoji": "🚀"}, "invalid")
	b.ok("react", map[string]any{"conversation_id": g, "message_id": m3.ID, "emoji": string(rune(0x1F600))}, nil)

	// A tombstone takes none; removing from one is accepted.
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": m.ID}, nil)
	if werr := b.fails("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "👍"}, "invalid"); werr.Message != "a deleted message takes no reactions" {
		t.Errorf("react on a tombstone: %q", werr.Message)
	}
	b.ok("react", map[string]any{"conversation_id": g, "message_id": m.ID, "emoji": "👍", "remove": true}, nil)

	// HTTP: PUT and DELETE with the emoji percent-encoded.
	r := e.http(t, "PUT", "/v1/conversations/"+g+"/messages/"+m2.ID+"/reactions/%F0%9F%91%8D", b.token, nil)
	if r.status != 200 || !strings.Contains(string(r.body), "👍") {
		t.Errorf("PUT reaction: %d %s", r.status, r.body)
	}
	r = e.http(t, "DELETE", "/v1/conversations/"+g+"/messages/"+m2.ID+"/reactions/%F0%9F%91%8D", b.token, nil)
	if r.status != 200 || strings.Contains(string(r.body), "👍") {
		t.Errorf("DELETE reaction: %d %s", r.status, r.body)
	}
})

var _ = check("replies and quotes", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "rp"), e.newUser(t, "rp")
	g := a.group("replies", b)
	long := strings.Repeat("ü", 150)
	p := b.send(g, long)
	var r wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "a reply", "reply_to": p.ID}, &r)
	q := r.ReplyTo
	if q == nil || q.MessageID != p.ID || q.Seq != p.Seq || q.SenderID == nil || *q.SenderID != b.id || q.SenderName == nil || *q.SenderName != b.name ||
		q.Type == nil || *q.Type != "text" || q.Text == nil || *q.Text != strings.Repeat("ü", 100) || q.Hidden != nil || q.Deleted != nil {
		t.Errorf("quote %s", mustJSON(q))
	}
	ne := b.expect("newMessage", func(x ev) bool { return x.Message != nil && x.Message.ID == r.ID })
	if ne.Message.ReplyTo == nil || ne.Message.ReplyTo.MessageID != p.ID {
		t.Errorf("newMessage of a reply: %s", mustJSON(ne.raw))
	}

	// The quote is read with the reply: an edit and a delete of the parent show.
	b.ok("edit", map[string]any{"conversation_id": g, "message_id": p.ID, "client_id": e.unique("e-"), "text": "edited parent"}, nil)
	h := a.history(g, nil)
	if got := h.Messages[len(h.Messages)-1].ReplyTo; got == nil || got.Text == nil || *got.Text != "edited parent" {
		t.Errorf("quote after the parent's edit: %s", mustJSON(got))
	}
	// A resend with another reply_to returns the stored reply.
	var again wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": r.ClientID, "text": "a reply", "reply_to": r.ID}, &again)
	if again.ID != r.ID || again.ReplyTo == nil || again.ReplyTo.MessageID != p.ID {
		t.Errorf("resend with another reply_to: %s", mustJSON(again))
	}
	b.ok("delete", map[string]any{"conversation_id": g, "message_id": p.ID}, nil)
	h = a.history(g, nil)
	if got := h.Messages[len(h.Messages)-1].ReplyTo; got == nil || got.Deleted == nil || !*got.Deleted || got.Text != nil || got.MessageID != p.ID {
		t.Errorf("quote after the parent's delete: %s", mustJSON(got))
	}
	if c := a.conversation(g); c.LastMessage == nil || c.LastMessage.ReplyTo == nil || c.LastMessage.ReplyTo.Deleted == nil {
		t.Errorf("last_message's quote after the parent's delete: %s", mustJSON(c.LastMessage))
	}

	// Refusals, with the messages the doc gives.
	for _, tc := range []struct {
		replyTo, msg string
	}{
		{"nope", "reply_to does not name a message of this conversation"},
		{p.ID, "reply_to names a deleted message"},
	} {
		werr := a.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "x", "reply_to": tc.replyTo}, "invalid")
		if werr.Message != tc.msg {
			t.Errorf("reply_to %s: %q, want %q", tc.replyTo, werr.Message, tc.msg)
		}
	}
	g2 := a.group("elsewhere")
	o := a.send(g2, "in another conversation")
	if werr := a.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "x", "reply_to": o.ID}, "invalid"); werr.Message != "reply_to does not name a message of this conversation" {
		t.Errorf("reply_to of another conversation: %q", werr.Message)
	}
	c := e.newUser(t, "rp")
	c.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "x", "reply_to": "nope"}, "not_found")

	// A tombstone of a reply has no reply_to.
	var tomb wmsg
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": r.ID}, &tomb)
	if tomb.ReplyTo != nil {
		t.Errorf("tombstone of a reply keeps reply_to %s", mustJSON(tomb.ReplyTo))
	}
})

var _ = check("history paging", func(t *testing.T, e *env) {
	a := e.newUser(t, "hi")
	g := a.group("history")
	for i := 1; i <= 7; i++ {
		a.send(g, fmt.Sprint("m", i))
	}
	seqs := func(p historyPage) []int64 {
		var s []int64
		for _, m := range p.Messages {
			s = append(s, m.Seq)
		}
		return s
	}
	next := func(p historyPage) string {
		if p.Next == nil {
			return "absent"
		}
		return fmt.Sprint(*p.Next)
	}
	for _, tc := range []struct {
		extra    map[string]any
		want     string
		hasMore  bool
		wantNext string
	}{
		{map[string]any{"limit": 3}, "[5 6 7]", true, "5"},
		{map[string]any{"limit": 3, "before": 5}, "[2 3 4]", true, "2"},
		{map[string]any{"limit": 3, "before": 2}, "[1]", false, "absent"},
		{map[string]any{"limit": 3, "after": 0}, "[1 2 3]", true, "3"},
		{map[string]any{"limit": 3, "after": 3}, "[4 5 6]", true, "6"},
		{map[string]any{"limit": 3, "after": 6}, "[7]", false, "absent"},
		{map[string]any{"limit": 7, "after": 0}, "[1 2 3 4 5 6 7]", false, "absent"},
		{map[string]any{"before": nil, "after": nil}, "[1 2 3 4 5 6 7]", false, "absent"},
		{map[string]any{"before": 100, "limit": 2}, "[6 7]", true, "6"},
		{map[string]any{"after": 100}, "[]", false, "absent"},
	} {
		p := a.history(g, tc.extra)
		if got := fmt.Sprint(seqs(p)); got != tc.want || p.HasMore != tc.hasMore || next(p) != tc.wantNext {
			t.Errorf("history %v: %s has_more %v next %s; want %s %v %s", tc.extra, got, p.HasMore, next(p), tc.want, tc.hasMore, tc.wantNext)
		}
	}
	// A page whose limit exactly reaches the end: has_more "may be more".
	p := a.history(g, map[string]any{"limit": 7})
	if len(p.Messages) != 7 {
		t.Errorf("limit 7 of 7: %v", seqs(p))
	}
	for _, bad := range []map[string]any{
		{"before": 0}, {"before": -1}, {"after": -1}, {"before": 3, "after": 1}, {"limit": 101}, {"limit": -1}, {"before": "3"},
	} {
		data := map[string]any{"conversation_id": g}
		for k, v := range bad {
			data[k] = v
		}
		a.fails("history", data, "invalid")
	}
	// limit 0 is the default (absent), as for every paged op.
	if p := a.history(g, map[string]any{"limit": 0}); len(p.Messages) != 7 {
		t.Errorf("limit 0: %d messages, want the default page (all 7)", len(p.Messages))
	}
	p = a.history(g, map[string]any{"limit": 100})
	if len(p.Messages) != 7 {
		t.Errorf("limit 100: %d", len(p.Messages))
	}
	a.fails("history", map[string]any{"conversation_id": "nope"}, "not_found")

	// HTTP: the same, empty parameters not given.
	r := e.http(t, "GET", "/v1/conversations/"+g+"/messages?before=&after=&limit=2", a.token, nil)
	var hp historyPage
	json.Unmarshal(r.body, &hp)
	if r.status != 200 || fmt.Sprint(seqs(hp)) != "[6 7]" {
		t.Errorf("GET messages?before=&after=&limit=2: %d %s", r.status, r.body)
	}
	r = e.http(t, "GET", "/v1/conversations/"+g+"/messages?after=0&limit=2", a.token, nil)
	json.Unmarshal(r.body, &hp)
	if r.status != 200 || fmt.Sprint(seqs(hp)) != "[1 2]" {
		t.Errorf("GET messages?after=0&limit=2: %d %s", r.status, r.body)
	}
	if r := e.http(t, "GET", "/v1/conversations/"+g+"/messages?before=0", a.token, nil); r.status != 400 || r.errCode() != "invalid" {
		t.Errorf("GET messages?before=0: %d %s", r.status, r.body)
	}
})
