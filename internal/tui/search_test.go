package tui

import "testing"

// TestSearchAndMentions: /search lists matches with the words in
// brackets, /mentions the messages naming the user, whose lines and list
// entry are marked with @.
func TestSearchAndMentions(t *testing.T) {
	alice, bob := directPair(t)
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
