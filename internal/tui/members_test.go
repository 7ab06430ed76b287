package tui

import (
	"context"
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
	lookup := func(ctx context.Context, name string) (parley.User, error) {
		return LookupUser(ctx, srv.URL, srv.Token(t, "admin", "admin"), name)
	}
	alice := newDriver(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), lookup)
	bob := newDriver(t, "bob", srv.URL, srv.Token(t, "u-bob", "bob"), lookup) // an id unlike the name: system lines show names
	alice.waitText("● connected as alice")
	bob.waitText("● connected as bob")

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
