package tui

import (
	"context"
	"net/http"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
)

// TestGroupCommands: the group commands on a real server. A member's
// /rename is refused with the server's words; the owner promotes, demotes
// and removes, each a system line on both screens; the removed user's
// pane says so and a message typed there is refused, not queued.
func TestGroupCommands(t *testing.T) {
	srv := servertest.Start(t)
	alice, bob := aliceAndBob(t, srv, "u-bob") // an id unlike the name: system lines show names

	alice.typeLine("/group team bob", true)
	alice.waitText("team 2 members")
	alice.typeLine("hello team", true)
	alice.waitText("alice: hello team ✓")
	bob.waitText("alice: hello team")

	bob.typeLine("/members", true)
	bob.waitText("members: alice (owner), bob")
	bob.typeLine("/rename mine", true)
	bob.waitText("/rename: only an owner of the group may rename it")

	alice.typeLine("/promote bob", true)
	bob.waitText("— alice made bob an owner")
	alice.waitText("— alice made bob an owner")
	alice.typeLine("/demote bob", true)
	bob.waitText("— alice made bob a member")

	alice.typeLine("/remove bob", true)
	alice.waitText("— alice removed bob")
	bob.waitText("— alice removed bob")
	bob.waitText("team (you are no longer a member)")
	bob.waitText("You are no longer a member of this group")
	bob.typeLine("anyone there?", true)
	bob.waitText("not sent: you are no longer a member of this conversation")
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
	lookup := func(ctx context.Context, name string) (parley.User, error) {
		return LookupUser(ctx, srv.URL, srv.Token(t, "admin", "admin"), name)
	}
	alice := newDriver(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), lookup)
	bobTok := srv.Token(t, "bob", "bob")
	srv.Token(t, "carol", "carol")
	alice.waitText("● connected as alice")
	alice.typeLine("/dm bob", true)
	alice.waitText("bob ○ offline")
	alice.typeLine("hi bob", true)
	alice.waitText("alice: hi bob ✓")
	alice.typeLine("/mute", true)
	alice.waitText("bob (muted)")

	direct := alice.m.open
	alice.typeLine("/archive", true)
	alice.waitText("archived")
	alice.typeLine("/group team carol", true)
	alice.waitText("team 2 members")
	alice.waitFor("bob out of the list", func(s string) bool { return !strings.Contains(s, "bob (muted)") })
	alice.typeLine("/archived", true)
	alice.waitText("bob (muted)")
	alice.typeLine("/archived", true)
	alice.waitFor("bob hidden again", func(s string) bool { return !strings.Contains(s, "bob (muted)") })

	// A new message ends the archive: bob is listed again.
	req, err := http.NewRequest("POST", srv.URL+"/v1/conversations/"+direct+"/messages", strings.NewReader(`{"client_id":"b-1","text":"back?"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bobTok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("bob's message: HTTP %d", resp.StatusCode)
	}
	alice.waitText("bob (muted)")
}
