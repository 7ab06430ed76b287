package tui

import (
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// TestConsentCommands: a stranger's conversation shows as a request
// with how to answer it; /decline refuses their next message with the
// server's words; /accept takes it back; /block, /unblock and /privacy
// show and change the settings; under contacts a stranger's /dm is
// refused with the server's words.
func TestConsentCommands(t *testing.T) {
	srv, alice, bob := connectedPair(t)
	alice.enter("/privacy", "who may reach you: everyone · blocked: nobody")

	bob.enter("/dm alice", "alice ○ offline")
	bob.enter("hi alice", "bob: hi alice ✓")
	alice.waitText("bob (request)")
	alice.enter("/dm bob", "A message request") // opens the existing conversation

	alice.enter("/decline", "request declined")
	// Not checked: "bob (declined)" in the list. A declined request leaves
	// the server's list, so a list fetch racing the decline may drop it
	// before the mark is drawn (seen as a flake under load).
	bob.enter("please", parley.ErrUnreachable.Message)

	alice.enter("/accept", "request accepted")
	alice.waitFor("no request mark", func(s string) bool { return !strings.Contains(s, "(request)") && !strings.Contains(s, "(declined)") })

	alice.enter("/unblock bob", "bob is not blocked")
	alice.enter("/block bob", "bob blocked")
	alice.enter("/block bob", "bob is already blocked (/unblock bob undoes it)")
	alice.enter("/privacy", "who may reach you: everyone · blocked: bob")
	alice.enter("/privacy contacts", "who may reach you: contacts · blocked: bob")
	alice.enter("/privacy friends", `/privacy: consent must be "everyone" or "contacts"`)
	alice.enter("/unblock bob", "bob unblocked")
	alice.enter("/block", "usage: /block user")

	carol := connected(t, srv, "carol", "carol", adminLookup(t, srv))
	carol.enter("/dm alice", parley.ErrUnreachable.Message)
}
