package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// team is alice's group "team" with bob and carol, and mallory outside
// it, each connected once.
type team struct {
	aliceTok, bobTok, carolTok, malloryTok string
	a, b, c, m                             *wsClient
	g                                      parley.Conversation
}

func newTeam(t *testing.T, srv *servertest.Server) team {
	t.Helper()
	tm := team{aliceTok: srv.Token(t, "alice", "Alice"), bobTok: srv.Token(t, "bob", "Bob"),
		carolTok: srv.Token(t, "carol", "Carol"), malloryTok: srv.Token(t, "mallory", "Mallory")}
	tm.a, tm.b, tm.c = connect(t, srv, tm.aliceTok, nil), connect(t, srv, tm.bobTok, nil), connect(t, srv, tm.carolTok, nil)
	tm.m = connect(t, srv, tm.malloryTok, nil)
	tm.a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob", "carol"}}, &tm.g)
	return tm
}

// TestDeliveryReceipts: a member's delivered op reaches every member
// (the sender first of all) as a durable messageDelivered, is kept
// across a reconnect (in members and in a resume's replay), only moves
// forward, and a non-member's or removed member's marks change nothing
// and reveal nothing.
func TestDeliveryReceipts(t *testing.T) {
	srv := servertest.Start(t)
	tm := newTeam(t, srv)
	a, b, c, m, g, carolTok, aliceTok := tm.a, tm.b, tm.c, tm.m, tm.g, tm.carolTok, tm.aliceTok
	created := a.event(parley.EventConversationUpdated)
	a.send(g.ID, "m1", "one")
	a.send(g.ID, "m2", "two")
	b.event(parley.EventNewMessage)

	var res protocol.DeliveredResult
	b.do(protocol.OpDelivered, protocol.Delivered{Conversations: []parley.DeliveredMark{{ConversationID: g.ID, Seq: 2}}}, &res)
	if len(res.Conversations) != 1 || res.Conversations[0] != (parley.DeliveredMark{ConversationID: g.ID, Seq: 2}) {
		t.Fatalf("delivered reply = %+v", res)
	}
	ev := a.event(parley.EventMessageDelivered)
	if ev.UserID != "bob" || ev.DeliveredSeq != 2 || ev.ConversationID != g.ID || ev.Pos == 0 {
		t.Fatalf("the sender heard %+v", ev)
	}
	c.event(parley.EventMessageDelivered) // the other members too
	// Not again: a mark at or below the position moves nothing.
	b.do(protocol.OpDelivered, protocol.Delivered{Conversations: []parley.DeliveredMark{{ConversationID: g.ID, Seq: 1}}}, &res)
	if len(res.Conversations) != 0 {
		t.Errorf("a lower mark moved: %+v", res)
	}
	// Over HTTP, the same service: carol's, clamped to the newest seq.
	resp := httpDo(t, srv, "POST", "/v1/delivered", carolTok, `{"conversations":[{"conversation_id":"`+g.ID+`","seq":99}]}`)
	if resp.status != http.StatusOK || !strings.Contains(string(resp.body), `"seq":2`) {
		t.Fatalf("delivered over HTTP: %d %s", resp.status, resp.body)
	}
	if ev := a.event(parley.EventMessageDelivered); ev.UserID != "carol" || ev.DeliveredSeq != 2 {
		t.Fatalf("the sender heard %+v", ev)
	}

	// The positions are in the conversation, from the store.
	var got parley.Conversation
	a.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: g.ID}, &got)
	for _, mb := range got.Members {
		if mb.DeliveredSeq != 2 {
			t.Errorf("member %s delivered_seq = %d, want 2", mb.UserID, mb.DeliveredSeq)
		}
	}
	// A device resuming from before replays both receipts.
	tablet := connect(t, srv, aliceTok, &created.Pos)
	if e1, e2 := tablet.event(parley.EventMessageDelivered), tablet.event(parley.EventMessageDelivered); e1.UserID != "bob" || e2.UserID != "carol" {
		t.Errorf("replayed %+v then %+v", e1, e2)
	}

	// Refusals. A non-member's mark: the same empty answer as for a
	// conversation that does not exist, and no event.
	for _, id := range []string{g.ID, "no-such-conversation"} {
		m.do(protocol.OpDelivered, protocol.Delivered{Conversations: []parley.DeliveredMark{{ConversationID: id, Seq: 1}}}, &res)
		if len(res.Conversations) != 0 {
			t.Errorf("mallory's mark in %s: %+v", id, res)
		}
	}
	for name, d := range map[string]protocol.Delivered{
		"no conversations": {},
		"a missing id":     {Conversations: []parley.DeliveredMark{{Seq: 1}}},
		"a negative seq":   {Conversations: []parley.DeliveredMark{{ConversationID: g.ID, Seq: -1}}},
		"too many marks":   {Conversations: make([]parley.DeliveredMark, parley.MaxDeliveredMarks+1)},
	} {
		if code := b.fail(protocol.OpDelivered, d); code != parley.EINVALID {
			t.Errorf("%s: %s, want invalid", name, code)
		}
	}
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"bob"}}, nil)
	a.send(g.ID, "m3", "three")
	b.do(protocol.OpDelivered, protocol.Delivered{Conversations: []parley.DeliveredMark{{ConversationID: g.ID, Seq: 3}}}, &res)
	if len(res.Conversations) != 0 {
		t.Errorf("a removed member's mark moved: %+v", res)
	}
	// Alice hears carol's next receipt, and none from bob or mallory
	// before it (events come in position order).
	c.do(protocol.OpDelivered, protocol.Delivered{Conversations: []parley.DeliveredMark{{ConversationID: g.ID, Seq: 3}}}, &res)
	if ev := a.event(parley.EventMessageDelivered); ev.UserID != "carol" || ev.DeliveredSeq != 3 {
		t.Errorf("after the refusals alice heard %+v, want carol's at 3", ev)
	}
}

// TestProfiles: set_profile and PATCH /v1/me change the display name and
// avatar, everyone who shares a conversation hears profileUpdated (and
// nobody else), members show the profile, the avatar's thumbnail is
// served to them and not to others, and bad names or another's upload
// are refused.
func TestProfiles(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, bobTok, malloryTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob"), srv.Token(t, "mallory", "Mallory")
	a, b, m := connect(t, srv, aliceTok, nil), connect(t, srv, bobTok, nil), connect(t, srv, malloryTok, nil)
	var d parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &d)

	name := "Alice Liddell"
	var u parley.User
	a.do(protocol.OpSetProfile, protocol.SetProfile{DisplayName: &name}, &u)
	if u.DisplayName != name || u.ID != "alice" {
		t.Fatalf("set_profile reply = %+v", u)
	}
	ev := b.event(parley.EventProfileUpdated)
	if ev.UserID != "alice" || ev.ConversationID != d.ID || ev.Profile == nil || ev.Profile.DisplayName != name || ev.Pos == 0 {
		t.Fatalf("bob heard %+v", ev)
	}

	// An avatar: an upload of alice's, over HTTP.
	up := rawDo(t, "POST", srv.URL+"/v1/uploads", aliceTok, "image/png", testPNG(t, 64, 64))
	if up.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", up.status, up.body)
	}
	att := decodeJSON[parley.Attachment](t, up.body)
	resp := httpDo(t, srv, "PATCH", "/v1/me", aliceTok, `{"avatar_id":"`+att.ID+`"}`)
	if resp.status != http.StatusOK || decodeJSON[parley.User](t, resp.body).AvatarID != att.ID {
		t.Fatalf("PATCH /v1/me: %d %s", resp.status, resp.body)
	}
	if ev := b.event(parley.EventProfileUpdated); ev.Profile.AvatarID != att.ID || ev.Profile.DisplayName != name {
		t.Fatalf("bob heard %+v", ev)
	}
	var got parley.Conversation
	b.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: d.ID}, &got)
	for _, mb := range got.Members {
		if mb.UserID == "alice" && (mb.DisplayName != name || mb.AvatarID != att.ID) {
			t.Errorf("alice in bob's conversation = %+v", mb)
		}
	}
	if r := rawDo(t, "GET", srv.URL+att.ThumbURL, bobTok, "", nil); r.status != http.StatusOK {
		t.Errorf("bob fetching alice's avatar: %d", r.status)
	}
	if r := rawDo(t, "GET", srv.URL+att.ThumbURL, malloryTok, "", nil); r.status != http.StatusNotFound {
		t.Errorf("mallory fetching alice's avatar: %d, want 404", r.status)
	}
	// In a group with alice mallory may fetch it (the full image and
	// its thumbnail); removed from it, no longer.
	var g parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"mallory"}}, &g)
	for _, u := range []string{att.URL, att.ThumbURL} {
		if r := rawDo(t, "GET", srv.URL+u, malloryTok, "", nil); r.status != http.StatusOK {
			t.Errorf("mallory, in a group with alice, fetching %s: %d", u, r.status)
		}
	}
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"mallory"}}, nil)
	m.event(parley.EventConversationUpdated) // the group's creation
	if ev := m.event(parley.EventConversationUpdated); ev.Change != parley.ChangeMembersRemoved {
		t.Fatalf("mallory heard %+v, want her removal", ev)
	}
	for _, u := range []string{att.URL, att.ThumbURL} {
		if r := rawDo(t, "GET", srv.URL+u, malloryTok, "", nil); r.status != http.StatusNotFound {
			t.Errorf("mallory, removed, fetching %s: %d, want 404", u, r.status)
		}
	}
	var me parley.User
	if r := httpDo(t, srv, "GET", "/v1/me", aliceTok, ""); r.status != http.StatusOK {
		t.Fatalf("GET /v1/me: %d", r.status)
	} else if me = decodeJSON[parley.User](t, r.body); me.DisplayName != name || me.AvatarID != att.ID {
		t.Errorf("GET /v1/me = %+v", me)
	}

	// Refusals: bad names, another user's upload, nothing to change.
	bidi, long, empty := "evil\u202Egnp", strings.Repeat("x", parley.MaxDisplayNameRunes+1), ""
	for what, d := range map[string]protocol.SetProfile{
		"a bidi override": {DisplayName: &bidi},
		"a long name":     {DisplayName: &long},
		"another's image": {AvatarID: &att.ID},
		"nothing":         {},
	} {
		if code := m.fail(protocol.OpSetProfile, d); code != parley.EINVALID {
			t.Errorf("mallory's %s: %s, want invalid", what, code)
		}
	}
	// Clearing the name: bob hears it; mallory, who shares nothing with
	// alice, heard none of it (events come in position order).
	a.do(protocol.OpSetProfile, protocol.SetProfile{DisplayName: &empty}, &u)
	if ev := b.event(parley.EventProfileUpdated); ev.Profile.DisplayName != "" || ev.Profile.AvatarID != att.ID {
		t.Errorf("bob heard %+v", ev)
	}
	mn := "M"
	m.do(protocol.OpSetProfile, protocol.SetProfile{DisplayName: &mn}, &u) // no conversation: no event at all
	m.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, nil)
	m.event(parley.EventConversationUpdated)
	for _, f := range m.pending {
		if f.Type == protocol.TypeEvent && strings.Contains(string(f.Data), `"profileUpdated"`) {
			t.Fatalf("mallory heard a profile: %s", f.Data)
		}
	}
}

// TestWelcomeAfterProfileChange: a hello after set_profile (on this node)
// or PATCH /v1/me welcomes the user with the profile as it is now. (The
// node's user cache kept the profile of the user's first hello, so a
// reconnect showed the old display name and avatar until a restart.)
func TestWelcomeAfterProfileChange(t *testing.T) {
	srv := servertest.Start(t)
	tok := srv.Token(t, "alice", "Alice")
	a := connect(t, srv, tok, nil)
	name := "Alice Liddell"
	var u parley.User
	a.do(protocol.OpSetProfile, protocol.SetProfile{DisplayName: &name}, &u)
	if w := connect(t, srv, tok, nil).welcome.User; w.DisplayName != name {
		t.Errorf("welcome after set_profile: %+v, want display name %q", w, name)
	}
	r := rawDo(t, "PATCH", srv.URL+"/v1/me", tok, "application/json", []byte(`{"display_name":"Queen Alice"}`))
	if r.status != http.StatusOK {
		t.Fatalf("PATCH /v1/me: %d %s", r.status, r.body)
	}
	if w := connect(t, srv, tok, nil).welcome.User; w.DisplayName != "Queen Alice" {
		t.Errorf("welcome after PATCH /v1/me: %+v, want display name %q", w, "Queen Alice")
	}
}
