package tui

import (
	"testing"

	"github.com/parleychat/parley/internal/servertest"
)

// TestSearchAndMentions: /search lists matches with the words in
// brackets, /mentions the messages naming the user, whose lines and list
// entry are marked with @.
func TestSearchAndMentions(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice := connected(t, srv, "alice", "alice", lookup)
	bob := connected(t, srv, "bob", "bob", lookup)
	alice.openDirect("bob")
	alice.typeLine("the quokka is here, @bob", true)
	alice.waitText("#1 alice: the quokka is here, @bob ✓")
	bob.waitText("#1 @alice: the quokka is here") // the line mentions bob
	bob.typeLine("/mentions", true)
	bob.waitText("mentions: alice #1 alice: the quokka is here, @bob")
	bob.typeLine("/search QUOK*", true)
	bob.waitText("alice #1 alice: the [quokka] is here, @bob")
	bob.typeLine("/search zebra", true)
	bob.waitText("nothing found")
	bob.typeLine("/search", true)
	bob.waitText("usage: /search words")
}
