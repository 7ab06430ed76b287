package tui

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestReceiptsAndProfile: in a group with a member who never connects,
// the sender's mark says how many read it ("read by 1/2"), not "read";
// /name shows on the other screen with the unique name beside it; /avatar
// uploads a file and a bad name is refused with the rule's words.
func TestReceiptsAndProfile(t *testing.T) {
	srv, alice, bob := connectedPair(t)
	srv.Token(t, "carol", "carol") // exists, never connects

	alice.enter("/group team bob carol", "team 3 members")
	alice.typeLine("hello team", true)
	bob.waitText("alice: hello team")
	// Bob's client received and read it (his pane is open); carol's never did.
	alice.waitText("alice: hello team ✓✓ read by 1/2")

	alice.enter("/name Alice L.", "display name set to Alice L.")
	alice.typeLine("again", true)
	bob.waitText("Alice L. (alice): again")
	alice.enter("/name evil\u202egnp", "/name: display_name holds a control, format or unassigned character")

	path := filepath.Join(t.TempDir(), "me.png")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, image.NewGray(image.Rect(0, 0, 8, 8))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	alice.enter("/avatar "+path, "avatar set")
	alice.enter("/avatar "+filepath.Join(t.TempDir(), "missing.png"), "/avatar: open")
}
