package indietest

// More corners: names (section 1), last_message, replays of edits and
// deletes, membership and what a member may read.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

var _ = check("names", func(t *testing.T, e *env) {
	a := e.newUser(t, "nm")
	base := e.unique("admin")
	tok, id := register(t, e.addr, base)
	_ = tok
	// A look-alike (Cyrillic а) is refused, and found by lookup.
	look := "а" + base[1:]
	r := e.http(t, "POST", "/v1/auth/register", "", map[string]any{"username": look, "password": "long enough pw"})
	if r.status != 409 || !strings.Contains(string(r.body), "looks like an existing one") {
		t.Errorf("register %q: %d %s", look, r.status, r.body)
	}
	r = e.http(t, "GET", "/v1/users/"+url.PathEscape(look), a.token, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"id":"`+id+`"`) {
		t.Errorf("GET /v1/users/%s: %d %s", look, r.status, r.body)
	}
	// A token whose name another user holds: shown as "name (id)".
	other := e.unique("tokuser")
	u := e.connectAs(t, other, base, mint(other, base), nil)
	var w struct {
		User struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	json.Unmarshal(u.welcome, &w)
	if want := base + " (" + other + ")"; w.User.Name != want {
		t.Errorf("a token named %q for %s: name %q, want %q", base, other, w.User.Name, want)
	}
	// create_direct by username.
	var c conv
	a.ok("create_direct", map[string]any{"username": strings.ToUpper(base)}, &c)
	if c.member(id) == nil {
		t.Errorf("create_direct by username: %s", roles(c))
	}
	a.fails("create_direct", map[string]any{"username": "nobody-" + e.unique("")}, "not_found")
})

var _ = check("sender_name is the name", func(t *testing.T, e *env) {
	// Profiles: the display name is shown from members[]; a message's
	// sender_name and a quote's stay the unique name.
	a, b := e.newUser(t, "sn"), e.newUser(t, "sn")
	g := a.group("names", b)
	a.ok("set_profile", map[string]any{"display_name": "Shown Name"}, nil)
	m := a.send(g, "hi")
	var r wmsg
	b.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "re", "reply_to": m.ID}, &r)
	if m.SenderName != a.name || r.ReplyTo == nil || r.ReplyTo.SenderName == nil || *r.ReplyTo.SenderName != a.name {
		t.Errorf("sender_name %q, quote's %v, want %q", m.SenderName, r.ReplyTo, a.name)
	}
})

var _ = check("last_message", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "lm"), e.newUser(t, "lm")
	g := a.group("last", b)
	a.send(g, "first")
	m := a.send(g, "second")
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": e.unique("e-"), "text": "second, edited"}, nil)
	if c := b.conversation(g); c.LastMessage == nil || c.LastMessage.text() != "second, edited" {
		t.Errorf("last_message after an edit: %s", mustJSON(c.LastMessage))
	}
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": m.ID}, nil)
	c := b.conversation(g)
	if c.LastMessage == nil || c.LastMessage.ID != m.ID || !c.LastMessage.Deleted {
		t.Errorf("last_message after deleting the newest: %s, want its tombstone", mustJSON(c.LastMessage))
	}
	if c.UnreadCount != 1 {
		t.Errorf("unread %d", c.UnreadCount)
	}
})

var _ = check("replays carry messages as they are now", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "rn"), e.newUser(t, "rn")
	g := a.group("replay now", b)
	var w struct {
		Head int64 `json:"head"`
	}
	b.drain(300 * time.Millisecond)
	b2 := b.reconnect(t, nil)
	json.Unmarshal(b2.welcome, &w)
	m1 := a.send(g, "one")
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m1.ID, "client_id": e.unique("e-"), "text": "one'"}, nil)
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m1.ID, "client_id": e.unique("e-"), "text": "one''"}, nil)
	m2 := a.send(g, "two")
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": m2.ID}, nil)
	b3 := b.reconnect(t, map[string]any{"resume_from": w.Head})
	if _, ok := b3.frameOf("resumed", 5*time.Second); !ok {
		t.Fatal("no resumed")
	}
	var got []string
	for _, f := range b3.buf {
		var x ev
		json.Unmarshal(f.Data, &x)
		if x.Message == nil {
			continue
		}
		s := x.Type + ":" + x.Message.text()
		if x.Message.Deleted {
			s = x.Type + ":deleted"
		}
		got = append(got, s)
	}
	want := []string{"newMessage:one''", "messageEdited:one''", "messageEdited:one''", "newMessage:deleted", "messageDeleted:deleted"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("replay %q, want %q", got, want)
	}
})

var _ = check("no resumed without resume_from", func(t *testing.T, e *env) {
	// A resumed would come before any live event: the barrier's.
	u := e.newUser(t, "nr")
	u.barrier()
	if u.resumedSeen {
		t.Errorf("a hello without resume_from got resumed")
	}
	for _, f := range u.buf {
		if f.Type == "resumed" {
			t.Errorf("a hello without resume_from got resumed %s", f.Data)
		}
	}
	u2 := u.reconnect(t, map[string]any{"resume_from": 0})
	if _, ok := u2.frameOf("resumed", 5*time.Second); !ok {
		t.Errorf("resume_from 0: no resumed")
	}
})

var _ = check("what a member reads", func(t *testing.T, e *env) {
	// Search and history cover messages from before the reader joined;
	// leaving takes them away.
	a, b := e.newUser(t, "mr"), e.newUser(t, "mr")
	g := a.group("before b")
	w := e.unique("early")
	a.send(g, w+" bird")
	a.ok("update_conversation", map[string]any{"conversation_id": g, "add": []string{b.id}}, nil)
	if h := b.history(g, nil); len(h.Messages) != 1 {
		t.Errorf("history of a new member: %d messages", len(h.Messages))
	}
	var sp searchPage
	b.ok("search", map[string]any{"query": w}, &sp)
	if len(sp.Results) != 1 {
		t.Errorf("search of a new member: %d", len(sp.Results))
	}
	b.ok("update_conversation", map[string]any{"conversation_id": g, "remove": []string{b.id}}, nil)
	b.ok("search", map[string]any{"query": w}, &sp)
	if len(sp.Results) != 0 {
		t.Errorf("search after leaving: %d", len(sp.Results))
	}
	b.fails("search", map[string]any{"query": w, "conversation_id": g}, "not_found")
	b.fails("react", map[string]any{"conversation_id": g, "message_id": "x", "emoji": "👍"}, "not_found")
})

// sendMany sends n messages pipelined (section 2: requests run in order),
// then reads the n replies.
func (u *cl) sendMany(conversation string, n int) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() {
		for i := range n {
			if u.c.write(ctx, request{Op: "send", ID: fmt.Sprint("bulk", i), Data: map[string]any{
				"conversation_id": conversation, "client_id": u.e.unique("b-"), "text": fmt.Sprint("bulk ", i)}}) != nil {
				return
			}
		}
	}()
	for got := 0; got < n; {
		f, ok := u.recv(30 * time.Second)
		if !ok {
			u.t.Fatalf("%s: %d of %d sends answered (%v)", u.id, got, n, u.closeErr)
		}
		if strings.HasPrefix(f.ID, "bulk") {
			if f.Type != "reply" {
				u.t.Fatalf("%s: %s %v", f.ID, f.Type, f.Error)
			}
			got++
		}
	}
	u.buf = nil
}

var _ = check("history over a blocked run", func(t *testing.T, e *env) {
	// Section 5, history: a page reads at most 1000 seqs; a blocked user's
	// messages are read but left out, so a page may be short or empty with
	// has_more, and following next gives every visible message once.
	a, b := e.newUser(t, "hb"), e.newUser(t, "hb")
	g := a.group("blocked run", b)
	m1 := a.send(g, "before")
	b.sendMany(g, 1200)
	m2 := a.send(g, "after")
	a.ok("block", map[string]any{"user_id": b.id}, nil)
	for _, dir := range []string{"before", "after"} {
		var got []string
		var cursor any
		if dir == "after" {
			cursor = 0
		}
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatalf("%s: more than 10 pages", dir)
			}
			extra := map[string]any{"limit": 50}
			if cursor != nil {
				extra[dir] = cursor
			}
			p := a.history(g, extra)
			for _, m := range p.Messages {
				got = append(got, m.text())
			}
			if !p.HasMore {
				break
			}
			if p.Next == nil {
				t.Fatalf("%s: has_more without next", dir)
			}
			cursor = *p.Next
		}
		want := []string{m2.text(), m1.text()}
		if dir == "after" {
			want = []string{m1.text(), m2.text()}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("paging %s: %q, want %q", dir, got, want)
		}
	}
	// last_message is taken from the newest 500: absent when all of them
	// are hidden.
	b.sendMany(g, 510)
	if c := a.conversation(g); c.LastMessage != nil || c.UnreadCount != 0 {
		t.Errorf("after 510 hidden messages: last_message %s unread %d", mustJSON(c.LastMessage), c.UnreadCount)
	}
})
