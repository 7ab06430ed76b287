package tui

import (
	"net/http"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley/internal/servertest"
)

// TestGroupCommands: the group commands on a real server. A member's
// /rename is refused with the server's words; the owner promotes, demotes
// and removes, each a system line on both screens; the removed user's
// pane says so and a message typed there is refused, not queued.
func TestGroupCommands(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice := connected(t, srv, "alice", "alice", lookup)
	bob := connected(t, srv, "u-bob", "bob", lookup) // an id unlike the name: system lines show names

	alice.enter("/group team bob", "team 2 members")
	alice.enter("hello team", "alice: hello team ✓")
	bob.waitText("alice: hello team")

	bob.enter("/members", "members: alice (owner), bob")
	bob.enter("/rename mine", "/rename: only an owner of the group may rename it")

	alice.typeLine("/promote bob", true)
	bob.waitText("— alice made bob an owner")
	alice.waitText("— alice made bob an owner")
	alice.typeLine("/demote bob", true)
	bob.waitText("— alice made bob a member")

	alice.enter("/remove bob", "— alice removed bob")
	bob.waitText("— alice removed bob")
	bob.waitText("team (you are no longer a member)")
	bob.waitText("You are no longer a member of this group")
	bob.enter("anyone there?", "not sent: you are no longer a member of this conversation")
	if n := len(bob.c.Pending()); n != 0 {
		t.Errorf("a refused message was queued: %d pending", n)
	}
	// The refused text stays in the input (nothing typed is lost); a
	// group command there is refused too.
	bob.m.input.Reset()
	bob.typeLine("/leave", false)
	bob.press(tea.KeyPressMsg{Code: tea.KeyEnter})
	bob.waitText("you are no longer a member of this group")
	if strings.Contains(alice.screen(), "anyone there?") {
		t.Error("alice sees the refused message")
	}
}

// TestMuteArchiveCommands: /mute marks the conversation in the list;
// /archive takes it out of the list once another is open, /archived shows
// it, and a new message brings it back.
func TestMuteArchiveCommands(t *testing.T) {
	srv := servertest.Start(t)
	alice := connected(t, srv, "alice", "alice", adminLookup(t, srv))
	bobTok := srv.Token(t, "bob", "bob")
	srv.Token(t, "carol", "carol")
	alice.openDirect("bob")
	alice.enter("hi bob", "alice: hi bob ✓")
	alice.enter("/mute", "bob (muted)")

	direct := alice.m.open
	alice.enter("/archive", "archived")
	alice.enter("/group team carol", "team 2 members")
	alice.waitFor("bob out of the list", func(s string) bool { return !strings.Contains(s, "bob (muted)") })
	alice.enter("/archived", "bob (muted)")
	alice.typeLine("/archived", true)
	alice.waitFor("bob hidden again", func(s string) bool { return !strings.Contains(s, "bob (muted)") })

	// A new message ends the archive: bob is listed again.
	servertest.Call(t, "POST", srv.URL+"/v1/conversations/"+direct+"/messages", bobTok, []byte(`{"client_id":"b-1","text":"back?"}`), http.StatusCreated)
	alice.waitText("bob (muted)")
}
