package indietest

// Section 5: mentions, search, receipts, unread counts, flags.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

type searchPage struct {
	Results []struct {
		Message   wmsg `json:"message"`
		Highlight []struct {
			Text  string `json:"text"`
			Match *bool  `json:"match"`
		} `json:"highlight"`
	} `json:"results"`
	HasMore bool    `json:"has_more"`
	Next    *string `json:"next"`
}

func (p searchPage) texts() []string {
	var s []string
	for _, r := range p.Results {
		s = append(s, r.Message.text())
	}
	return s
}

var _ = check("mentions", func(t *testing.T, e *env) {
	a, b, c := e.newUser(t, "mn"), e.newUser(t, "mn"), e.newUser(t, "mn")
	out := e.newUser(t, "mn") // not a member
	g := a.group("mentions", b, c)
	for _, tc := range []struct {
		text string
		want []string
	}{
		{"hi @" + b.name, []string{b.id}},
		{"@" + c.name + " and @" + b.name + " and @" + c.name, []string{c.id, b.id}},
		{"mail " + b.name + "@example.com", nil},
		{"@@" + b.name, nil},
		{"(@" + b.name + ")", []string{b.id}},
		{"@" + b.name + ",", []string{b.id}},
		{"thanks @" + b.name + ".", []string{b.id}},
		{"line\n@" + b.name, []string{b.id}},
		{"@" + strings.ToUpper(b.name), []string{b.id}},
		{"me @" + a.name, nil},       // the sender is left out
		{"@" + out.name, nil},        // a non-member
		{"@nobody-at-all-here", nil}, // no such user
		{"@" + b.name + "x", nil},    // another name
		{"@" + b.name + "_", nil},    // _ is part of a name
		{"x@" + b.name + " y", nil},  // @ after a name character
		{"é@" + b.name, nil},         // a letter of any script
		{"-@" + b.name, nil},         // - is a name character too
		{"@" + b.name + "...", []string{b.id}},
	} {
		m := a.send(g, tc.text)
		if fmt.Sprint(m.Mentions) != fmt.Sprint(tc.want) {
			t.Errorf("%q: mentions %v, want %v", tc.text, m.Mentions, tc.want)
		}
	}
	// Full-width letters are folded as a username is.
	fw := ""
	for _, r := range b.name {
		if r >= 'a' && r <= 'z' {
			r += 0xFF41 - 'a'
		} else if r >= '0' && r <= '9' {
			r += 0xFF10 - '0'
		}
		fw += string(r)
	}
	if m := a.send(g, "@"+fw); fmt.Sprint(m.Mentions) != fmt.Sprint([]string{b.id}) {
		t.Errorf("@%s (full width): %v", fw, m.Mentions)
	}

	// Carried by events, history and last_message; absent when none.
	a.drain(300 * time.Millisecond)
	b.drain(300 * time.Millisecond)
	m := a.send(g, "ping @"+c.name)
	if ne := b.expect("newMessage", nil); fmt.Sprint(ne.Message.Mentions) != fmt.Sprint([]string{c.id}) {
		t.Errorf("newMessage mentions %v", ne.Message.Mentions)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "nobody"}, nil), &raw)
	if _, has := raw["mentions"]; has {
		t.Errorf("a message that mentions nobody carries mentions %s", raw["mentions"])
	}
	later := a.send(g, "later @"+b.name)
	// An edit resolves again: dropping a name drops the mention.
	var ed wmsg
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": e.unique("e-"), "text": "ping @" + b.name}, &ed)
	if fmt.Sprint(ed.Mentions) != fmt.Sprint([]string{b.id}) {
		t.Errorf("edit mentions %v, want [%s]", ed.Mentions, b.id)
	}
	if ee := c.expect("messageEdited", nil); fmt.Sprint(ee.Message.Mentions) != fmt.Sprint([]string{b.id}) {
		t.Errorf("messageEdited mentions %v", ee.Message.Mentions)
	}

	// unread_mentions and the mentions list.
	cb := b.conversation(g)
	if cb.UnreadMentions == 0 || cb.UnreadMentions > cb.UnreadCount {
		t.Errorf("unread_mentions %d of unread %d", cb.UnreadMentions, cb.UnreadCount)
	}
	var sp searchPage
	b.ok("mentions", map[string]any{"limit": 3}, &sp)
	if len(sp.Results) != 3 || !sp.HasMore || sp.Next == nil {
		t.Fatalf("mentions page: %d results, has_more %v", len(sp.Results), sp.HasMore)
	}
	// Newest first; the edit's mention takes the message's place.
	if sp.Results[0].Message.ID != later.ID || sp.Results[1].Message.ID != m.ID {
		t.Errorf("mentions %s, %s first, want %s (newest) then %s (an edit's mention at its message's place)", sp.Results[0].Message.ID, sp.Results[1].Message.ID, later.ID, m.ID)
	}
	for _, r := range sp.Results {
		if r.Highlight != nil {
			t.Errorf("mentions results carry highlight")
		}
	}
	seen := map[string]bool{}
	total := 0
	for cur := sp.Next; ; {
		for _, r := range sp.Results {
			if seen[r.Message.ID] {
				t.Errorf("mention %s twice", r.Message.ID)
			}
			seen[r.Message.ID] = true
			total++
		}
		if !sp.HasMore {
			break
		}
		sp = searchPage{}
		b.ok("mentions", map[string]any{"limit": 3, "cursor": *cur}, &sp)
		cur = sp.Next
	}
	if !seen[m.ID] || total < 10 {
		t.Errorf("mentions list: %d, edited message in it %v", total, seen[m.ID])
	}
	b.fails("mentions", map[string]any{"cursor": "bogus"}, "invalid")
	b.fails("mentions", map[string]any{"limit": 51}, "invalid")

	// A tombstone has no mentions; leaving takes the conversation's out.
	var tomb wmsg
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": m.ID}, &tomb)
	if tomb.Mentions != nil {
		t.Errorf("tombstone mentions %v", tomb.Mentions)
	}
	b.ok("update_conversation", map[string]any{"conversation_id": g, "remove": []string{b.id}}, nil)
	sp = searchPage{}
	b.ok("mentions", nil, &sp)
	if len(sp.Results) != 0 {
		t.Errorf("after leaving: %d mentions", len(sp.Results))
	}
	r := e.http(t, "GET", "/v1/mentions?limit=2", c.token, nil)
	if r.status != 200 {
		t.Errorf("GET /v1/mentions: %d %s", r.status, r.body)
	}
})

var _ = check("search", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "se"), e.newUser(t, "se")
	out := e.newUser(t, "se")
	g := a.group("search", b)
	g2 := a.group("search two", b)
	word := e.unique("quokka")
	a.send(g, "the "+word+" smiles")
	a.send(g, strings.ToUpper(word)+" and a café")
	m3 := b.send(g2, "one more "+word+", the last")
	a.send(g, "no match here")

	sr := func(u *cl, data map[string]any) searchPage {
		t.Helper()
		var p searchPage
		u.ok("search", data, &p)
		return p
	}
	p := sr(a, map[string]any{"query": word})
	if len(p.Results) != 3 || p.Results[0].Message.ID != m3.ID {
		t.Errorf("search %s: %q, want 3 newest first", word, p.texts())
	}
	// The highlight's parts give the text exactly.
	for _, r := range p.Results {
		var joined strings.Builder
		matched := 0
		for _, h := range r.Highlight {
			joined.WriteString(h.Text)
			if h.Match != nil && *h.Match {
				matched++
				if !strings.EqualFold(h.Text, word) {
					t.Errorf("match part %q, want %q", h.Text, word)
				}
			}
		}
		if joined.String() != r.Message.text() || matched != 1 {
			t.Errorf("highlight %+v of %q", r.Highlight, r.Message.text())
		}
	}
	if p := sr(a, map[string]any{"query": word + " café"}); len(p.Results) != 1 {
		t.Errorf("two words: %q", p.texts())
	}
	if p := sr(a, map[string]any{"query": word + " cafe"}); len(p.Results) != 0 {
		t.Errorf("accents count: cafe found %q", p.texts())
	}
	if p := sr(a, map[string]any{"query": word[:len(word)-2] + "*"}); len(p.Results) != 3 {
		t.Errorf("prefix: %q", p.texts())
	}
	if p := sr(a, map[string]any{"query": word[:len(word)-2]}); len(p.Results) != 0 {
		t.Errorf("whole words by default: %q", p.texts())
	}
	// Quotes and - are no syntax: -smiles asks for "smiles", not its absence.
	if p := sr(a, map[string]any{"query": `"` + word + `" -smiles`}); len(p.Results) != 1 || !strings.Contains(p.texts()[0], "smiles") {
		t.Errorf("quotes and - are no syntax: %q", p.texts())
	}
	if p := sr(a, map[string]any{"query": word, "conversation_id": g2}); len(p.Results) != 1 {
		t.Errorf("in one conversation: %q", p.texts())
	}
	// Paging.
	p = sr(a, map[string]any{"query": word, "limit": 2})
	if len(p.Results) != 2 || !p.HasMore || p.Next == nil {
		t.Fatalf("page of 2: %d has_more %v", len(p.Results), p.HasMore)
	}
	p2 := sr(a, map[string]any{"query": word, "limit": 2, "cursor": *p.Next})
	if len(p2.Results) != 1 || p2.HasMore || p2.Next != nil {
		t.Errorf("second page: %q has_more %v", p2.texts(), p2.HasMore)
	}
	// An edit matches as it is now; a tombstone never.
	b.ok("edit", map[string]any{"conversation_id": g2, "message_id": m3.ID, "client_id": e.unique("e-"), "text": "gone"}, nil)
	if p := sr(a, map[string]any{"query": word}); len(p.Results) != 2 {
		t.Errorf("after an edit: %q", p.texts())
	}
	if p := sr(a, map[string]any{"query": "gone"}); len(p.Results) == 0 {
		t.Errorf("the edited text does not match")
	}
	b.ok("delete", map[string]any{"conversation_id": g2, "message_id": m3.ID}, nil)
	if p := sr(a, map[string]any{"query": "gone"}); len(p.Results) != 0 {
		t.Errorf("a tombstone matches")
	}
	// Refusals.
	for _, q := range []any{"", "  ", "*", "-:", strings.Repeat("a", 257), "\xff\xfe"} {
		a.fails("search", map[string]any{"query": q}, "invalid")
	}
	a.fails("search", map[string]any{}, "invalid")
	a.fails("search", map[string]any{"query": word, "cursor": "bogus"}, "invalid")
	a.fails("search", map[string]any{"query": word, "limit": 51}, "invalid")
	a.fails("search", map[string]any{"query": word, "limit": -1}, "invalid")
	out.fails("search", map[string]any{"query": word, "conversation_id": g}, "not_found")
	if p := sr(out, map[string]any{"query": word}); len(p.Results) != 0 {
		t.Errorf("a non-member finds %q", p.texts())
	}
	// HTTP, * percent-encoded or not.
	for _, q := range []string{url.QueryEscape(word[:5]) + "*", url.QueryEscape(word[:5]) + "%2A"} {
		r := e.http(t, "GET", "/v1/search?q="+q, a.token, nil)
		var hp searchPage
		json.Unmarshal(r.body, &hp)
		if r.status != 200 || len(hp.Results) != 2 {
			t.Errorf("GET /v1/search?q=%s: %d %s", q, r.status, r.body)
		}
	}
	if r := e.http(t, "GET", "/v1/search?q=", a.token, nil); r.status != 400 {
		t.Errorf("GET /v1/search?q=: %d", r.status)
	}
})

var _ = check("read and delivered", func(t *testing.T, e *env) {
	a, b, c := e.newUser(t, "rd"), e.newUser(t, "rd"), e.newUser(t, "rd")
	g := a.group("receipts", b, c)
	for i := range 3 {
		a.send(g, fmt.Sprint("r", i))
	}
	b.drain(300 * time.Millisecond)
	a.drain(0)

	// delivered: moves positions, answers those that moved.
	var dr struct {
		Conversations []struct {
			ConversationID string `json:"conversation_id"`
			Seq            int64  `json:"seq"`
		} `json:"conversations"`
	}
	b.ok("delivered", map[string]any{"conversations": []map[string]any{{"conversation_id": g, "seq": 2}, {"conversation_id": "nope", "seq": 1}}}, &dr)
	if len(dr.Conversations) != 1 || dr.Conversations[0].Seq != 2 {
		t.Errorf("delivered reply %+v", dr)
	}
	de := a.expect("messageDelivered", nil)
	if de.UserID != b.id || de.DeliveredSeq != 2 || de.UserName != b.name || de.Pos == 0 {
		t.Errorf("messageDelivered %s", mustJSON(de.raw))
	}
	// At or below: nothing moves, no event.
	dr.Conversations = nil
	b.ok("delivered", map[string]any{"conversations": []map[string]any{{"conversation_id": g, "seq": 1}}}, &dr)
	if len(dr.Conversations) != 0 {
		t.Errorf("a mark below: %+v", dr)
	}
	a.none("messageDelivered", nil, 300*time.Millisecond)
	// Clamped to the newest message.
	dr.Conversations = nil
	b.ok("delivered", map[string]any{"conversations": []map[string]any{{"conversation_id": g, "seq": 99}}}, &dr)
	if len(dr.Conversations) != 1 || dr.Conversations[0].Seq != 3 {
		t.Errorf("a mark beyond the newest: %+v", dr)
	}
	// A conversation named twice in one op is marked once, at the larger
	// seq: the answer holds each position as it is now.
	g2 := a.group("receipts twice", b)
	for range 3 {
		a.send(g2, "r")
	}
	b.drain(300 * time.Millisecond)
	a.drain(0)
	dr.Conversations = nil
	b.ok("delivered", map[string]any{"conversations": []map[string]any{{"conversation_id": g2, "seq": 1}, {"conversation_id": g2, "seq": 3}, {"conversation_id": g2, "seq": 2}}}, &dr)
	if len(dr.Conversations) != 1 || dr.Conversations[0].Seq != 3 {
		t.Errorf("one conversation named thrice: %+v, want it once at 3", dr.Conversations)
	}
	a.expect("messageDelivered", func(x ev) bool { return x.ConversationID == g2 && x.DeliveredSeq == 3 })
	a.none("messageDelivered", func(x ev) bool { return x.ConversationID == g2 }, 300*time.Millisecond)
	b.fails("delivered", map[string]any{"conversations": []map[string]any{}}, "invalid")
	var many []map[string]any
	for range 101 {
		many = append(many, map[string]any{"conversation_id": g, "seq": 1})
	}
	b.fails("delivered", map[string]any{"conversations": many}, "invalid")
	b.fails("delivered", map[string]any{"conversations": []map[string]any{{"conversation_id": g, "seq": -1}}}, "invalid")

	// read: clamped; never below; reading implies delivery.
	var rr struct {
		ConversationID string `json:"conversation_id"`
		ReadSeq        int64  `json:"read_seq"`
	}
	c.ok("read", map[string]any{"conversation_id": g, "seq": 50}, &rr)
	if rr.ReadSeq != 3 || rr.ConversationID != g {
		t.Errorf("read 50 of 3: %+v", rr)
	}
	me := a.expect("messageRead", func(x ev) bool { return x.UserID == c.id })
	if me.ReadSeq != 3 {
		t.Errorf("messageRead %s", mustJSON(me.raw))
	}
	a.none("messageDelivered", func(x ev) bool { return x.UserID == c.id }, 300*time.Millisecond)
	cv := a.conversation(g)
	if m := cv.member(c.id); m == nil || m.ReadSeq != 3 || m.DeliveredSeq != 3 {
		t.Errorf("c after reading: %+v", m)
	}
	if m := cv.member(b.id); m == nil || m.DeliveredSeq != 3 || m.ReadSeq != 0 {
		t.Errorf("b after delivery: %+v", m)
	}
	c.ok("read", map[string]any{"conversation_id": g, "seq": 1}, &rr)
	if rr.ReadSeq != 3 {
		t.Errorf("a read below answers %d, want the position as it is (3)", rr.ReadSeq)
	}
	c.fails("read", map[string]any{"conversation_id": g, "seq": -1}, "invalid")
	e.newUser(t, "rd").fails("read", map[string]any{"conversation_id": g, "seq": 1}, "not_found")

	// A send moves the sender's read position without a messageRead.
	b.drain(300 * time.Millisecond)
	c.send(g, "c writes")
	b.none("messageRead", nil, 300*time.Millisecond)
	if bc := b.conversation(g); bc.member(c.id).ReadSeq != 4 {
		m := bc.member(c.id)
		t.Errorf("c's read_seq after c's send: %d, want 4", m.ReadSeq)
	}

	// HTTP.
	r := e.http(t, "POST", "/v1/delivered", b.token, map[string]any{"conversations": []map[string]any{{"conversation_id": g, "seq": 4}}})
	if r.status != 200 || !strings.Contains(string(r.body), `"seq":4`) {
		t.Errorf("POST /v1/delivered: %d %s", r.status, r.body)
	}
	r = e.http(t, "POST", "/v1/conversations/"+g+"/read", b.token, map[string]any{"seq": 4})
	if r.status != 200 || !strings.Contains(string(r.body), `"read_seq":4`) {
		t.Errorf("POST read: %d %s", r.status, r.body)
	}
})

var _ = check("unread counts", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "un"), e.newUser(t, "un")
	g := a.group("unread", b)
	var last wmsg
	for i := range 105 {
		last = a.send(g, fmt.Sprint("u", i))
	}
	cb := b.conversation(g)
	if cb.UnreadCount != 99 || cb.LastSeq != 105 || cb.LastMessage == nil || cb.LastMessage.ID != last.ID {
		t.Errorf("105 unread: count %d, last_seq %d", cb.UnreadCount, cb.LastSeq)
	}
	b.ok("read", map[string]any{"conversation_id": g, "seq": 100}, nil)
	if cb = b.conversation(g); cb.UnreadCount != 5 || cb.ReadSeq != 100 {
		t.Errorf("read to 100 of 105: unread %d, read_seq %d", cb.UnreadCount, cb.ReadSeq)
	}
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": last.ID}, nil)
	if cb = b.conversation(g); cb.UnreadCount != 4 {
		t.Errorf("one of 5 unread deleted: %d", cb.UnreadCount)
	}
	if ca := a.conversation(g); ca.UnreadCount != 0 {
		t.Errorf("the sender's own: %d", ca.UnreadCount)
	}
	// The viewer's fields are zero in events.
	a.ok("update_conversation", map[string]any{"conversation_id": g, "title": "renamed"}, nil)
	ue := b.expect("conversationUpdated", func(x ev) bool { return x.Change == "renamed" })
	if ue.Conversation == nil || ue.Conversation.UnreadCount != 0 || ue.Conversation.ReadSeq != 0 || ue.Conversation.LastMessage != nil {
		t.Errorf("conversationUpdated's conversation: %s", ue.raw["conversation"])
	}
	for _, m := range ue.Conversation.Members {
		if m.ReadSeq != 0 || m.DeliveredSeq != 0 {
			t.Errorf("member positions in an event: %+v", m)
		}
	}
})

var _ = check("flags", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "fl"), e.newUser(t, "fl")
	g := a.group("flags", b)
	a.send(g, "one")
	a2 := a.reconnect(t, nil)
	var cv conv
	a.ok("set_flags", map[string]any{"conversation_id": g, "muted": true}, &cv)
	if !cv.Muted || cv.Archived {
		t.Errorf("set_flags muted: %+v", cv)
	}
	for _, u := range []*cl{a, a2} {
		fe := u.expect("flagsChanged", nil)
		if fe.UserID != a.id || !fe.Flags["muted"] || fe.Flags["archived"] || fe.Pos == 0 {
			t.Errorf("flagsChanged %s", mustJSON(fe.raw))
		}
	}
	b.none("flagsChanged", nil, 300*time.Millisecond)
	a.ok("set_flags", map[string]any{"conversation_id": g, "muted": true}, nil)
	a.none("flagsChanged", nil, 300*time.Millisecond)
	a.fails("set_flags", map[string]any{"conversation_id": g}, "invalid")
	e.newUser(t, "fl").fails("set_flags", map[string]any{"conversation_id": g, "muted": true}, "not_found")

	// Archived ends with the next message, without an event.
	a.ok("set_flags", map[string]any{"conversation_id": g, "archived": true}, &cv)
	if !cv.Archived || !cv.Muted {
		t.Errorf("archived: %+v", cv)
	}
	a.drain(300 * time.Millisecond)
	b.send(g, "wakes it")
	if cv = a.conversation(g); cv.Archived || !cv.Muted {
		t.Errorf("after a new message: archived %v muted %v", cv.Archived, cv.Muted)
	}
	a.none("flagsChanged", nil, 300*time.Millisecond)
	r := e.http(t, "PATCH", "/v1/conversations/"+g+"/flags", a.token, map[string]any{"muted": false})
	if r.status != 200 || !strings.Contains(string(r.body), `"muted":false`) {
		t.Errorf("PATCH flags: %d %s", r.status, r.body)
	}
})
