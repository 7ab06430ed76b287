package server_test

import (
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestContactsFollowMembership: welcome.online comes from a contacts cache;
// membership changes must reach it. A user who becomes a contact shows up
// in the next welcome, and one who is removed no longer does.
func TestContactsFollowMembership(t *testing.T) {
	srv := servertest.Start(t)
	aTok, bTok, cTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob"), srv.Token(t, "carol", "Carol")
	a := connect(t, srv, aTok, nil)
	b := connect(t, srv, bTok, nil) // bob's contacts (none) are read and cached
	if contains(b.welcome.Online, "alice") {
		t.Fatalf("bob sees %v before sharing a conversation", b.welcome.Online)
	}
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	b.event(parley.EventConversationUpdated) // the hub delivered the change
	if b2 := connect(t, srv, bTok, nil); !contains(b2.welcome.Online, "alice") {
		t.Fatalf("bob's new welcome online %v, want alice", b2.welcome.Online)
	}

	var g parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"carol"}}, &g)
	c := connect(t, srv, cTok, nil)
	if !contains(c.welcome.Online, "alice") {
		t.Fatalf("carol's welcome online %v, want alice", c.welcome.Online)
	}
	a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"carol"}}, nil)
	c.event(parley.EventConversationUpdated)
	if c2 := connect(t, srv, cTok, nil); contains(c2.welcome.Online, "alice") {
		t.Fatalf("carol, removed, still sees alice: %v", c2.welcome.Online)
	}
}
