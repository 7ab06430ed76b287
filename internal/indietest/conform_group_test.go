package indietest

// Section 5: conversations, groups and roles, profiles; section 6:
// typing and presence.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func roles(c conv) string {
	var s []string
	for _, m := range c.Members {
		s = append(s, m.UserID+":"+m.Role)
	}
	return strings.Join(s, " ")
}

var _ = check("group roles", func(t *testing.T, e *env) {
	o, m1, m2, m3 := e.newUser(t, "gr"), e.newUser(t, "gr"), e.newUser(t, "gr"), e.newUser(t, "gr")
	var c conv
	o.ok("create_group", map[string]any{"title": "roles", "member_ids": []string{m1.id, m2.id}}, &c)
	g := c.ID
	if want := fmt.Sprintf("%s:owner %s:member %s:member", o.id, m1.id, m2.id); roles(c) != want || c.Kind != "group" || c.CreatedBy != o.id || c.Title != "roles" {
		t.Errorf("new group: %s (%s %s), want %s", roles(c), c.Kind, c.CreatedBy, want)
	}
	ce := m1.expect("conversationUpdated", func(x ev) bool { return x.ConversationID == g })
	if ce.Change != "created" || ce.UserID != o.id || ce.UserName != o.name || ce.Conversation == nil {
		t.Errorf("created event %s", mustJSON(ce.raw))
	}

	// A member may do nothing but leave.
	for _, d := range []map[string]any{{"title": "x"}, {"add": []string{m3.id}}, {"remove": []string{m2.id}}, {"promote": []string{m2.id}}, {"demote": []string{o.id}}} {
		d["conversation_id"] = g
		m1.fails("update_conversation", d, "forbidden")
	}
	o.fails("update_conversation", map[string]any{"conversation_id": g}, "invalid")
	o.fails("update_conversation", map[string]any{"conversation_id": g, "promote": []string{m3.id}}, "invalid")
	o.fails("update_conversation", map[string]any{"conversation_id": g, "promote": []string{m1.id}, "demote": []string{m1.id}}, "invalid")
	o.fails("update_conversation", map[string]any{"conversation_id": g, "demote": []string{o.id}}, "invalid")
	o.fails("update_conversation", map[string]any{"conversation_id": g, "title": strings.Repeat("t", 101)}, "invalid")
	o.fails("update_conversation", map[string]any{"conversation_id": g, "add": []string{"nobody-" + e.unique("")}}, "not_found")
	m3.fails("update_conversation", map[string]any{"conversation_id": g, "title": "x"}, "not_found")

	// One request, one event per kind of change, in the doc's order.
	o.drain(300 * time.Millisecond)
	o.ok("update_conversation", map[string]any{"conversation_id": g, "title": "renamed", "add": []string{m3.id}, "promote": []string{m1.id, m3.id}}, &c)
	var changes []string
	var pos []int64
	for _, want := range []string{"renamed", "members_added", "members_promoted"} {
		x := o.expect("conversationUpdated", func(x ev) bool { return x.ConversationID == g && x.Change == want })
		changes = append(changes, x.Change)
		pos = append(pos, x.Pos)
		if want == "members_promoted" && fmt.Sprint(x.UserIDs) != fmt.Sprint([]string{m1.id, m3.id}) {
			t.Errorf("members_promoted user_ids %v", x.UserIDs)
		}
	}
	if pos[1] != pos[0]+1 || pos[2] != pos[1]+1 {
		t.Errorf("one request's events at %v, want consecutive positions", pos)
	}
	// Nothing changed: no event.
	o.ok("update_conversation", map[string]any{"conversation_id": g, "add": []string{m3.id}, "promote": []string{m1.id}}, nil)
	o.none("conversationUpdated", nil, 300*time.Millisecond)

	// An owner demotes and removes another owner.
	m1.ok("update_conversation", map[string]any{"conversation_id": g, "demote": []string{o.id}}, &c)
	if c.member(o.id).Role != "member" {
		t.Errorf("demoted: %s", roles(c))
	}
	m1.ok("update_conversation", map[string]any{"conversation_id": g, "remove": []string{m3.id}}, nil)
	re := m3.expect("conversationUpdated", func(x ev) bool { return x.Change == "members_removed" })
	if fmt.Sprint(re.UserIDs) != fmt.Sprint([]string{m3.id}) {
		t.Errorf("the removed user's event: %s", mustJSON(re.raw))
	}
	m3.fails("history", map[string]any{"conversation_id": g}, "not_found")
	m1.send(g, "after the removal")
	m3.none("newMessage", nil, 300*time.Millisecond)

	// The last owner leaves: the longest-standing member becomes owner,
	// in a members_removed then a members_promoted by the leaver.
	o.drain(300 * time.Millisecond)
	m1.ok("update_conversation", map[string]any{"conversation_id": g, "remove": []string{m1.id}}, &c)
	rm := o.expect("conversationUpdated", func(x ev) bool { return x.Change == "members_removed" })
	pr := o.expect("conversationUpdated", func(x ev) bool { return x.Change == "members_promoted" })
	if rm.UserID != m1.id || pr.UserID != m1.id || fmt.Sprint(pr.UserIDs) != fmt.Sprint([]string{o.id}) || pr.Pos != rm.Pos+1 {
		t.Errorf("last owner left: %s then %s", mustJSON(rm.raw), mustJSON(pr.raw))
	}
	if pr.Conversation != nil && pr.Conversation.member(m1.id) != nil {
		t.Errorf("the leaver is still in the event's members")
	}
	if cv := o.conversation(g); cv.member(o.id).Role != "owner" {
		t.Errorf("after the last owner left: %s", roles(cv))
	}
	// A user added back is a member.
	o.ok("update_conversation", map[string]any{"conversation_id": g, "add": []string{m1.id}}, &c)
	if c.member(m1.id).Role != "member" || c.Members[len(c.Members)-1].UserID != m1.id {
		t.Errorf("added back: %s", roles(c))
	}

	// Direct conversations: no update, both members.
	d := o.direct(m2)
	o.fails("update_conversation", map[string]any{"conversation_id": d, "title": "x"}, "invalid")
	if dc := o.conversation(d); roles(dc) != fmt.Sprintf("%s:member %s:member", o.id, m2.id) && roles(dc) != fmt.Sprintf("%s:member %s:member", m2.id, o.id) {
		t.Errorf("direct roles: %s", roles(dc))
	}
	// HTTP: create 201, PATCH.
	r := e.http(t, "POST", "/v1/conversations/group", o.token, map[string]any{"title": "over http", "member_ids": []string{m2.id}})
	var hc conv
	json.Unmarshal(r.body, &hc)
	if r.status != 201 || hc.ID == "" {
		t.Fatalf("POST group: %d %s", r.status, r.body)
	}
	if r := e.http(t, "PATCH", "/v1/conversations/"+hc.ID, m2.token, map[string]any{"title": "x"}); r.status != 403 || r.errCode() != "forbidden" {
		t.Errorf("PATCH by a member: %d %s", r.status, r.body)
	}
	if r := e.http(t, "PATCH", "/v1/conversations/"+hc.ID, o.token, map[string]any{"title": "x"}); r.status != 200 {
		t.Errorf("PATCH by the owner: %d %s", r.status, r.body)
	}
})

var _ = check("create conversations", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "cc"), e.newUser(t, "cc")
	d1 := a.direct(b)
	var c conv
	b.ok("create_direct", map[string]any{"user_id": a.id}, &c)
	if c.ID != d1 || c.Kind != "direct" {
		t.Errorf("create_direct is not idempotent: %s %s", c.ID, d1)
	}
	a.fails("create_direct", map[string]any{"user_id": "nobody-" + e.unique("")}, "not_found")
	a.fails("create_direct", map[string]any{}, "invalid")
	a.fails("create_direct", map[string]any{"user_id": b.id, "username": b.name}, "invalid")
	a.fails("create_direct", map[string]any{"user_id": a.id}, "invalid")
	a.fails("create_group", map[string]any{"title": "", "member_ids": []string{}}, "invalid")
	a.fails("create_group", map[string]any{"title": "x", "member_ids": []string{"nobody-" + e.unique("")}}, "not_found")
	// A title of 100 code points is fine, 101 not.
	a.ok("create_group", map[string]any{"title": strings.Repeat("é", 100)}, &c)
	a.fails("create_group", map[string]any{"title": strings.Repeat("é", 101)}, "invalid")
	var many []string
	for i := range 256 {
		many = append(many, fmt.Sprint("m", i))
	}
	a.fails("create_group", map[string]any{"title": "big", "member_ids": many}, "invalid")

	// By username (a registered user: names of minted tokens are display
	// names, not usernames).
	tok, id := register(t, e.addr, e.unique("reg"))
	_ = tok
	var u struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if r := e.http(t, "GET", "/v1/users/"+id, a.token, nil); r.status != 404 {
		// The route takes a username; an id that is no name is not found.
		json.Unmarshal(r.body, &u)
	}
	if r := e.http(t, "POST", "/v1/conversations/direct", a.token, map[string]any{"user_id": id}); r.status != 200 {
		t.Errorf("POST direct: %d %s", r.status, r.body)
	}
})

var _ = check("conversations paging", func(t *testing.T, e *env) {
	a := e.newUser(t, "cp")
	var ids []string
	for i := range 5 {
		ids = append(ids, a.group(fmt.Sprint("list ", i)))
	}
	a.send(ids[1], "bumps list 1")
	type page struct {
		Conversations []conv  `json:"conversations"`
		HasMore       *bool   `json:"has_more"`
		Next          *string `json:"next"`
	}
	var got []string
	var p page
	a.ok("conversations", map[string]any{"limit": 2}, &p)
	for {
		if p.HasMore == nil {
			t.Fatalf("no has_more")
		}
		for _, c := range p.Conversations {
			got = append(got, c.ID)
		}
		if !*p.HasMore {
			if p.Next != nil {
				t.Errorf("next %q on the last page", *p.Next)
			}
			break
		}
		if len(p.Conversations) != 2 {
			t.Errorf("a page of %d, want 2", len(p.Conversations))
		}
		a.ok("conversations", map[string]any{"limit": 2, "cursor": *p.Next}, &p)
	}
	want := []string{ids[1], ids[4], ids[3], ids[2], ids[0]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("conversations %v, want %v (newest activity first)", got, want)
	}
	a.fails("conversations", map[string]any{"cursor": "bogus"}, "invalid")
	a.fails("conversations", map[string]any{"limit": 1001}, "invalid")
	a.fails("conversations", map[string]any{"limit": -1}, "invalid")
	r := e.http(t, "GET", "/v1/conversations?limit=2", a.token, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"has_more":true`) {
		t.Errorf("GET /v1/conversations?limit=2: %d %.200s", r.status, r.body)
	}
	if r := e.http(t, "GET", "/v1/conversations/nope", a.token, nil); r.status != 404 || r.errCode() != "not_found" {
		t.Errorf("GET an unknown conversation: %d %s", r.status, r.body)
	}
})

var _ = check("profile", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "pf"), e.newUser(t, "pf")
	g1, g2 := a.group("p1", b), a.group("p2", b)
	b.drain(300 * time.Millisecond)
	var u struct {
		ID          string  `json:"id"`
		Name        string  `json:"name"`
		DisplayName *string `json:"display_name"`
		AvatarID    *string `json:"avatar_id"`
	}
	a.ok("set_profile", map[string]any{"display_name": "  Ada Lovelace  "}, &u)
	if u.DisplayName == nil || *u.DisplayName != "Ada Lovelace" || u.ID != a.id {
		t.Errorf("set_profile: %+v", u)
	}
	seen := map[string]bool{}
	for range 2 {
		pe := b.expect("profileUpdated", nil)
		seen[pe.ConversationID] = true
		if pe.UserID != a.id || pe.Profile["display_name"] != "Ada Lovelace" || pe.Profile["avatar_id"] != "" || pe.Pos == 0 {
			t.Errorf("profileUpdated %s", mustJSON(pe.raw))
		}
	}
	if !seen[g1] || !seen[g2] {
		t.Errorf("profileUpdated in %v, want one per conversation", seen)
	}
	a.ok("set_profile", map[string]any{"display_name": "Ada Lovelace"}, nil)
	b.none("profileUpdated", nil, 300*time.Millisecond)
	if m := b.conversation(g1).member(a.id); m.DisplayName == nil || *m.DisplayName != "Ada Lovelace" {
		t.Errorf("members[] display_name %+v", m)
	}
	r := e.http(t, "GET", "/v1/me", a.token, nil)
	if !strings.Contains(string(r.body), `"display_name":"Ada Lovelace"`) {
		t.Errorf("GET /v1/me: %s", r.body)
	}
	for _, bad := range []string{"a\u202Eb", "a\u200Bb", "a\nb", "a\x00b", strings.Repeat("x", 65), "a\u2028b", "\U000F0000"} {
		werr := a.fails("set_profile", map[string]any{"display_name": bad}, "invalid")
		if bad != strings.Repeat("x", 65) && !strings.HasPrefix(werr.Message, "display_name holds a control, format or unassigned character") {
			t.Errorf("display_name %q: %q", bad, werr.Message)
		}
	}
	a.ok("set_profile", map[string]any{"display_name": strings.Repeat("é", 64)}, nil)
	a.fails("set_profile", map[string]any{}, "invalid")
	if werr := a.fails("set_profile", map[string]any{"avatar_id": "nope"}, "invalid"); werr.Message != "avatar_id does not name an image you uploaded" {
		t.Errorf("avatar_id nope: %q", werr.Message)
	}
	// A file upload is no image.
	fr := e.http(t, "POST", "/v1/files?name=a.txt", a.token, []byte("plain text"))
	var att attachment
	json.Unmarshal(fr.body, &att)
	if werr := a.fails("set_profile", map[string]any{"avatar_id": att.ID}, "invalid"); werr.Message != "avatar_id does not name an image you uploaded" {
		t.Errorf("avatar_id of a file: %q", werr.Message)
	}
	raw := a.ok("set_profile", map[string]any{"display_name": ""}, &u)
	if u.DisplayName != nil {
		t.Errorf("cleared display_name: %s", raw)
	}
	if r := e.http(t, "PATCH", "/v1/me", a.token, map[string]any{"display_name": "Ada"}); r.status != 200 {
		t.Errorf("PATCH /v1/me: %d %s", r.status, r.body)
	}
})

var _ = check("typing", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "ty"), e.newUser(t, "ty")
	g := a.group("typing", b)
	b.drain(300 * time.Millisecond)
	var empty map[string]any
	a.ok("typing", map[string]any{"conversation_id": g, "typing": true}, &empty)
	if len(empty) != 0 {
		t.Errorf("typing reply %v, want {}", empty)
	}
	te := b.expect("typingStarted", nil)
	if te.UserID != a.id || te.UserName != a.name || te.ConversationID != g || te.Pos != 0 {
		t.Errorf("typingStarted %s", mustJSON(te.raw))
	}
	a.none("typingStarted", nil, 300*time.Millisecond)
	a.ok("typing", map[string]any{"conversation_id": g, "typing": false}, nil)
	b.expect("typingStopped", nil)
	e.newUser(t, "ty").fails("typing", map[string]any{"conversation_id": g, "typing": true}, "not_found")
	// The last connection closing stops its typing.
	c := e.newUser(t, "ty")
	g2 := c.group("typing 2", b)
	b.drain(300 * time.Millisecond)
	c.ok("typing", map[string]any{"conversation_id": g2, "typing": true}, nil)
	b.expect("typingStarted", nil)
	c.stop()
	b.expect("typingStopped", func(x ev) bool { return x.UserID == c.id })
})

var _ = check("presence", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "pr"), e.newUser(t, "pr")
	d := a.direct(b)
	a.send(d, "one side")
	var p struct {
		Online []string `json:"online"`
	}
	a.ok("presence", nil, &p)
	if len(p.Online) != 0 {
		t.Errorf("a stranger who never answered is online for a: %v", p.Online)
	}
	b.send(d, "both wrote")
	on := a.expect("userOnline", func(x ev) bool { return x.UserID == b.id })
	if on.Pos != 0 {
		t.Errorf("userOnline carries pos %d", on.Pos)
	}
	a.ok("presence", nil, &p)
	if fmt.Sprint(p.Online) != fmt.Sprint([]string{b.id}) {
		t.Errorf("presence %v, want [%s]", p.Online, b.id)
	}
	a2 := a.reconnect(t, nil)
	var w struct {
		Online []string `json:"online"`
	}
	json.Unmarshal(a2.welcome, &w)
	if fmt.Sprint(w.Online) != fmt.Sprint([]string{b.id}) {
		t.Errorf("welcome.online %v", w.Online)
	}
	// Offline once b's last connection closed (after the grace period).
	b.stop()
	a.expectWithin("userOffline", func(x ev) bool { return x.UserID == b.id }, 30*time.Second)
	r := e.http(t, "GET", "/v1/presence", a.token, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"online":[]`) {
		t.Errorf("GET /v1/presence: %d %s", r.status, r.body)
	}
})
