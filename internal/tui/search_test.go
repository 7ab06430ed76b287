package tui

import (
	"context"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
)

// TestSearchAndMentions: /search lists matches with the words in
// brackets, /mentions the messages naming the user, whose lines and list
// entry are marked with @.
func TestSearchAndMentions(t *testing.T) {
	srv := servertest.Start(t)
	lookup := func(ctx context.Context, name string) (parley.User, error) {
		return LookupUser(ctx, srv.URL, srv.Token(t, "admin", "admin"), name)
	}
	alice := newDriver(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), lookup)
	bob := newDriver(t, "bob", srv.URL, srv.Token(t, "bob", "bob"), lookup)
	alice.waitText("● connected as alice")
	bob.waitText("● connected as bob")
	alice.typeLine("/dm bob", true)
	alice.waitText("bob ○ offline")
	alice.typeLine("the quokka is here, @bob", true)
	alice.waitText("#1 alice: the quokka is here, @bob ✓")
	bob.waitText("#1 @alice: the quokka is here") // the line mentions bob
	bob.typeLine("/mentions", true)
	bob.waitText("mentions: alice #1 alice: the quokka is here, @bob")
	bob.typeLine("/search QUOK", true)
	bob.waitText("alice #1 alice: the [quokka] is here, @bob")
	bob.typeLine("/search zebra", true)
	bob.waitText("nothing found")
	bob.typeLine("/search", true)
	bob.waitText("usage: /search words")
}
