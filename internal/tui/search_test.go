package tui

import "testing"

// TestSearchAndMentions: /search lists matches with the words in
// brackets, /mentions the messages naming the user, whose lines and list
// entry are marked with @.
func TestSearchAndMentions(t *testing.T) {
	_, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("the quokka is here, @bob", "#1 alice: the quokka is here, @bob ✓")
	bob.waitText("#1 @alice: the quokka is here") // the line mentions bob
	bob.enter("/mentions", "mentions: alice #1 alice: the quokka is here, @bob")
	bob.enter("/search QUOK*", "alice #1 alice: the [quokka] is here, @bob")
	bob.enter("/search zebra", "nothing found")
	bob.enter("/search", "usage: /search words")
}
