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
	// A declined request leaves the server's list (the notice comes
	// after the list is fetched again), but while it is open it stays,
	// marked, with how to take it back (its pane lost its title, "…",
	// and said nothing of the decline).
	alice.waitText("You declined this request: /accept to take it back.")
	// The list fetched again (as many events make it be), without the
	// decline's event racing it.
	alice.run(alice.m.fetchList())
	alice.waitFor("the list fetched", func(string) bool { return !alice.m.loading })
	if s := alice.screen(); !strings.Contains(s, "bob (declined)") || !strings.Contains(s, "│bob ") {
		t.Fatalf("the declined request, open:\n%s", s)
	}
	bob.enter("please", parley.ErrUnreachable.Message)
	// Opened again with /dm once another was open, the same (it had no
	// title and said nothing of the decline).
	srv.Token(t, "dave", "dave")
	alice.enter("/group solo dave", "solo 2 members")
	alice.waitFor("the declined request out of the list", func(s string) bool { return !strings.Contains(s, "bob (declined)") })
	alice.enter("/dm bob", "You declined this request: /accept to take it back.")
	alice.waitText("bob (declined)")
	if s := alice.screen(); !strings.Contains(s, "│bob ") {
		t.Fatalf("the declined request, opened with /dm:\n%s", s)
	}

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
