package server_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestGroupRoles: the role rules over the WebSocket op and the HTTP route
// alike (one service layer): a member may only leave (forbidden / 403), a
// non-member and a removed member get not_found / 404; owners promote,
// demote and remove, each change a durable event with actor and targets
// that a resume replays; the last owner leaving promotes the
// longest-standing member.
func TestGroupRoles(t *testing.T) {
	srv := servertest.Start(t)
	tm := newTeam(t, srv)
	aliceTok, bobTok, carolTok, malloryTok := tm.aliceTok, tm.bobTok, tm.carolTok, tm.malloryTok
	a, b, c, m, g := tm.a, tm.b, tm.c, tm.m, tm.g
	if r := roleOf(g, "alice"); r != parley.RoleOwner || roleOf(g, "bob") != parley.RoleMember {
		t.Fatalf("group roles: %+v", g.Members)
	}
	created := b.event(parley.EventConversationUpdated)
	c.event(parley.EventConversationUpdated)

	// Everything but leaving is refused to a member, on both transports.
	path := "/v1/conversations/" + g.ID
	refused := []struct {
		name string
		ws   protocol.UpdateConversation
		body string
	}{
		{"rename", protocol.UpdateConversation{Title: ptr("mine")}, `{"title":"mine"}`},
		{"add", protocol.UpdateConversation{Add: []string{"mallory"}}, `{"add":["mallory"]}`},
		{"remove another", protocol.UpdateConversation{Remove: []string{"carol"}}, `{"remove":["carol"]}`},
		{"promote", protocol.UpdateConversation{Promote: []string{"bob"}}, `{"promote":["bob"]}`},
		{"demote", protocol.UpdateConversation{Demote: []string{"alice"}}, `{"demote":["alice"]}`},
	}
	for _, r := range refused {
		r.ws.ConversationID = g.ID
		if code := b.fail(protocol.OpUpdateConversation, r.ws); code != parley.EFORBIDDEN {
			t.Errorf("member's %s over WebSocket: %s, want forbidden", r.name, code)
		}
		if resp := httpDo(t, srv, "PATCH", path, bobTok, r.body); resp.status != http.StatusForbidden || resp.err.Code != parley.EFORBIDDEN {
			t.Errorf("member's %s over HTTP: %d %+v, want 403 forbidden", r.name, resp.status, resp.err)
		}
		if code := m.fail(protocol.OpUpdateConversation, r.ws); code != parley.ENOTFOUND {
			t.Errorf("non-member's %s over WebSocket: %s, want not_found", r.name, code)
		}
		if resp := httpDo(t, srv, "PATCH", path, malloryTok, r.body); resp.status != http.StatusNotFound {
			t.Errorf("non-member's %s over HTTP: %d, want 404", r.name, resp.status)
		}
	}

	// An owner promotes over HTTP; the members hear it with actor and target.
	resp := httpDo(t, srv, "PATCH", path, aliceTok, `{"promote":["bob"]}`)
	if resp.status != http.StatusOK || roleOf(decodeJSON[parley.Conversation](t, resp.body), "bob") != parley.RoleOwner {
		t.Fatalf("promote over HTTP: %d %s", resp.status, resp.body)
	}
	ev := c.event(parley.EventConversationUpdated)
	if ev.Change != parley.ChangeMembersPromoted || ev.UserID != "alice" || !slices.Equal(ev.UserIDs, []string{"bob"}) ||
		roleOf(*ev.Conversation, "bob") != parley.RoleOwner || ev.Pos == 0 {
		t.Fatalf("carol heard %+v", ev)
	}

	// Bob, now an owner, removes carol: she hears it, then every op on the
	// group answers not_found, sending and leaving included.
	b.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"carol"}}, nil)
	if ev := c.event(parley.EventConversationUpdated); ev.Change != parley.ChangeMembersRemoved || ev.UserID != "bob" ||
		!slices.Equal(ev.UserIDs, []string{"carol"}) {
		t.Fatalf("carol heard %+v", ev)
	}
	if code := c.fail(protocol.OpSend, protocol.Send{ConversationID: g.ID, ClientID: "after", Text: "hello?"}); code != parley.ENOTFOUND {
		t.Errorf("removed member's send: %s, want not_found", code)
	}
	if code := c.fail(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"carol"}}); code != parley.ENOTFOUND {
		t.Errorf("removed member's leave: %s, want not_found", code)
	}
	if resp := httpDo(t, srv, "POST", path+"/messages", carolTok, `{"client_id":"after2","text":"hello?"}`); resp.status != http.StatusNotFound {
		t.Errorf("removed member's send over HTTP: %d, want 404", resp.status)
	}

	// Demoting the last owner is refused; alice demotes bob, then leaves:
	// bob, the longest-standing member, is promoted.
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Demote: []string{"bob"}}, nil)
	if code := a.fail(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Demote: []string{"alice"}}); code != parley.EINVALID {
		t.Errorf("demoting the last owner: %s, want invalid", code)
	}
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"alice"}}, nil)
	var left, promoted parley.Event
	for _, want := range []parley.Change{parley.ChangeMembersPromoted, parley.ChangeMembersRemoved, parley.ChangeMembersDemoted, parley.ChangeMembersRemoved, parley.ChangeMembersPromoted} {
		ev := b.event(parley.EventConversationUpdated)
		if ev.Change != want {
			t.Fatalf("bob heard %s, want %s", ev.Change, want)
		}
		left, promoted = promoted, ev
	}
	if !slices.Equal(left.UserIDs, []string{"alice"}) || !slices.Equal(promoted.UserIDs, []string{"bob"}) ||
		promoted.UserID != "alice" || promoted.Pos != left.Pos+1 {
		t.Fatalf("last owner leaving: %+v then %+v", left, promoted)
	}
	var now parley.Conversation
	b.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: g.ID}, &now)
	if roleOf(now, "bob") != parley.RoleOwner || len(now.Members) != 1 {
		t.Fatalf("after alice left: %+v", now.Members)
	}

	// A resume from the group's creation replays every change, in order.
	b2 := connect(t, srv, bobTok, &created.Pos)
	var changes []parley.Change
	for range 5 {
		changes = append(changes, b2.event(parley.EventConversationUpdated).Change)
	}
	want := []parley.Change{parley.ChangeMembersPromoted, parley.ChangeMembersRemoved, parley.ChangeMembersDemoted, parley.ChangeMembersRemoved, parley.ChangeMembersPromoted}
	if !slices.Equal(changes, want) {
		t.Fatalf("replayed %v, want %v", changes, want)
	}
}

func roleOf(c parley.Conversation, userID string) parley.Role {
	for _, m := range c.Members {
		if m.UserID == userID {
			return m.Role
		}
	}
	return ""
}
