package tui

import (
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
)

// TestConsentCommands: a stranger's conversation shows as a request
// with how to answer it; /decline refuses their next message with the
// server's words; /accept takes it back; /block, /unblock and /privacy
// show and change the settings; under contacts a stranger's /dm is
// refused with the server's words.
func TestConsentCommands(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice, bob := connected(t, srv, "alice", "alice", lookup), connected(t, srv, "bob", "bob", lookup)
	alice.typeLine("/privacy", true)
	alice.waitText("who may reach you: everyone · blocked: nobody")

	bob.typeLine("/dm alice", true)
	bob.waitText("alice ○ offline")
	bob.typeLine("hi alice", true)
	bob.waitText("bob: hi alice ✓")
	alice.waitText("bob (request)")
	alice.typeLine("/dm bob", true) // opens the existing conversation
	alice.waitText("A message request")

	alice.typeLine("/decline", true)
	alice.waitText("request declined")
	// Not checked: "bob (declined)" in the list. A declined request leaves
	// the server's list, so a list fetch racing the decline may drop it
	// before the mark is drawn (seen as a flake under load).
	bob.typeLine("please", true)
	bob.waitText(parley.ErrUnreachable.Message)

	alice.typeLine("/accept", true)
	alice.waitText("request accepted")
	alice.waitFor("no request mark", func(s string) bool { return !strings.Contains(s, "(request)") && !strings.Contains(s, "(declined)") })

	alice.typeLine("/block bob", true)
	alice.waitText("bob blocked")
	alice.typeLine("/privacy", true)
	alice.waitText("who may reach you: everyone · blocked: bob")
	alice.typeLine("/privacy contacts", true)
	alice.waitText("who may reach you: contacts · blocked: bob")
	alice.typeLine("/privacy friends", true)
	alice.waitText(`/privacy: consent must be "everyone" or "contacts"`)
	alice.typeLine("/unblock bob", true)
	alice.waitText("bob unblocked")
	alice.typeLine("/block", true)
	alice.waitText("usage: /block user")

	carol := connected(t, srv, "carol", "carol", lookup)
	carol.typeLine("/dm alice", true)
	carol.waitText(parley.ErrUnreachable.Message)
}
