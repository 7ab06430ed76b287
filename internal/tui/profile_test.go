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
// uploads a file and a bad name is refused with the rule's words; alone,
// /name and /avatar show their usage and change nothing.
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

	// Alone, /name and /avatar say what they take, like the other
	// commands (they cleared the name and removed the avatar); clearing
	// is asked for by name.
	alice.enter("/name", "usage: /name display name (/name --clear removes it)")
	alice.enter("/avatar", "usage: /avatar image-file (/avatar --remove removes it)")
	if u := alice.c.User(); u.DisplayName != "Alice L." || u.AvatarID == "" {
		t.Fatalf("a bare /name or /avatar changed the profile: %+v", u)
	}
	alice.enter("/avatar --remove", "avatar removed")
	alice.enter("/name --clear", "display name cleared")
	if u := alice.c.User(); u.DisplayName != "" || u.AvatarID != "" {
		t.Fatalf("after --clear and --remove: %+v", u)
	}
}
