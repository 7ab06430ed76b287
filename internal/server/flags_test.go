package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestFlagsAcrossDevices: mute and archive over the op and the HTTP route
// alike reach every connection of the user (another device) as a durable
// flagsChanged, and nobody else; a resume replays it; a new message ends
// the archive; a non-member and a removed member get not_found.
func TestFlagsAcrossDevices(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, bobTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	malloryTok := srv.Token(t, "mallory", "Mallory")
	phone, laptop := connect(t, srv, aliceTok, nil), connect(t, srv, aliceTok, nil)
	b := connect(t, srv, bobTok, nil)
	m := connect(t, srv, malloryTok, nil)

	var g parley.Conversation
	phone.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob"}}, &g)
	created := laptop.event(parley.EventConversationUpdated)
	b.event(parley.EventConversationUpdated)

	yes := true
	var got parley.Conversation
	phone.do(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID, Muted: &yes}, &got)
	if !got.Muted || got.Archived {
		t.Fatalf("mute reply: %+v", got)
	}
	phone.event(parley.EventFlagsChanged) // the device that asked hears it too
	ev := laptop.event(parley.EventFlagsChanged)
	if ev.Flags == nil || !ev.Flags.Muted || ev.Flags.Archived || ev.UserID != "alice" || ev.Pos == 0 {
		t.Fatalf("the other device heard %+v", ev)
	}
	resp := httpDo(t, srv, "PATCH", "/v1/conversations/"+g.ID+"/flags", aliceTok, `{"archived":true}`)
	if resp.status != http.StatusOK || !decodeJSON[parley.Conversation](t, resp.body).Archived {
		t.Fatalf("archive over HTTP: %d %s", resp.status, resp.body)
	}
	if ev := phone.event(parley.EventFlagsChanged); !ev.Flags.Archived || !ev.Flags.Muted {
		t.Fatalf("the phone heard %+v", ev)
	}
	// Bob hears none of it: events come in position order, so any would
	// be among the frames before his own message's event.
	b.send(g.ID, "b1", "news")
	b.event(parley.EventNewMessage)
	for _, f := range b.pending {
		if f.Type == protocol.TypeEvent && strings.Contains(string(f.Data), `"flagsChanged"`) {
			t.Fatalf("bob heard alice's flags: %s", f.Data)
		}
	}
	// The message ended the archive; the mute stays.
	laptop.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: g.ID}, &got)
	if got.Archived || !got.Muted {
		t.Errorf("after a new message: %+v", got)
	}
	// A device resuming from before replays both changes.
	tablet := connect(t, srv, aliceTok, &created.Pos)
	if e1, e2 := tablet.event(parley.EventFlagsChanged), tablet.event(parley.EventFlagsChanged); e1.Flags.Archived || !e2.Flags.Archived {
		t.Errorf("replayed %+v then %+v", e1.Flags, e2.Flags)
	}

	// Refusals: nothing to change, a non-member, a removed member.
	if code := phone.fail(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID}); code != parley.EINVALID {
		t.Errorf("empty set_flags: %s, want invalid", code)
	}
	if code := m.fail(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID, Muted: &yes}); code != parley.ENOTFOUND {
		t.Errorf("non-member: %s, want not_found", code)
	}
	if resp := httpDo(t, srv, "PATCH", "/v1/conversations/"+g.ID+"/flags", malloryTok, `{"muted":true}`); resp.status != http.StatusNotFound {
		t.Errorf("non-member over HTTP: %d, want 404", resp.status)
	}
	phone.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"bob"}}, nil)
	if code := b.fail(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID, Archived: &yes}); code != parley.ENOTFOUND {
		t.Errorf("removed member: %s, want not_found", code)
	}
}
