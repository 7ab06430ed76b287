package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/servertest"
)

// TestFileCommand: /file PATH sends the file; both sides show
// "📎 name (size)"; a missing path and a directory get a notice.
func TestFileCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notes for bob.txt")
	if err := os.WriteFile(path, make([]byte, 1536), 0o600); err != nil {
		t.Fatal(err)
	}
	_, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter(`/file "`+path+`"`, "alice: 📎 notes for bob.txt (1.5 KiB) ✓")
	bob.waitText("alice: 📎 notes for bob.txt (1.5 KiB)")
	alice.enter("/file "+filepath.Join(dir, "missing.txt"), "/file: stat "+filepath.Join(dir, "missing.txt")+": no such file or directory")
	alice.enter("/file "+dir, "is not a file")
}

// TestSaveCommand: /save #seq [PATH] downloads a file message's file
// (there was no way to get a file someone sent from the terminal
// client): into a directory under its name, never over an existing
// file, and a message without a file says so.
func TestSaveCommand(t *testing.T) {
	dir, into := t.TempDir(), t.TempDir()
	want := []byte("the minutes of the meeting\n")
	path := filepath.Join(dir, "minutes.txt")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	_, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("/file "+path, "#1 alice: 📎 minutes.txt (27 B) ✓")
	alice.enter("just text", "#2 alice: just text ✓")
	bob.waitText("#2 alice: just text")

	bob.enter("/save", "usage: /save #seq [PATH]")
	bob.enter("/save #2", "/save: #2 has no file or image")
	// Under way, it says so (it said nothing until the file was saved).
	bob.typeLine("/save #1 "+into, true)
	if s := bob.screen(); !strings.Contains(s, "/save: downloading minutes.txt (27 B) to "+filepath.Join(into, "minutes.txt")+"…") {
		t.Fatalf("no word that /save is under way:\n%s", s)
	}
	bob.waitText("saved minutes.txt (27 B) to " + filepath.Join(into, "minutes.txt"))
	got, err := os.ReadFile(filepath.Join(into, "minutes.txt"))
	if err != nil || string(got) != string(want) {
		t.Fatalf("saved file = %q, %v; want %q", got, err, want)
	}
	bob.enter("/save #1 "+into, "/save: "+filepath.Join(into, "minutes.txt")+" exists; give another path")
	bob.enter("/save #1 "+filepath.Join(into, "copy.txt"), "saved minutes.txt (27 B) to "+filepath.Join(into, "copy.txt"))
	if got, err := os.ReadFile(filepath.Join(into, "copy.txt")); err != nil || string(got) != string(want) {
		t.Fatalf("copy = %q, %v; want %q", got, err, want)
	}
}

// TestOlderTarget: a #seq older than the loaded history (a terminal
// started later loads one page) is fetched for the command: /save, /edit,
// /react and /unreact act on it (each said "no such message here" of a
// message that exists), and one that does not exist is still refused.
func TestOlderTarget(t *testing.T) {
	dir, into := t.TempDir(), t.TempDir()
	path := filepath.Join(dir, "minutes.txt")
	if err := os.WriteFile(path, []byte("minutes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	token := srv.Token(t, "alice", "alice")
	first := newDriverWith(t, "alice", srv.URL, token, Config{LookupUser: lookup})
	first.waitText("● connected as alice")
	bob := connected(t, srv, "bob", "bob", lookup)
	first.openDirect("bob")
	first.enter("/file "+path, "#1 alice: 📎 minutes.txt (8 B) ✓")
	for i := 2; i <= 25; i++ { // more than a page (20)
		first.enter(fmt.Sprintf("message %d", i), fmt.Sprintf("#%d alice: message %d ✓", i, i))
	}
	alice := newDriverWith(t, "alice again", srv.URL, token, Config{LookupUser: lookup})
	alice.waitText("#25 alice: message 25")
	if !alice.m.hasMore {
		t.Fatalf("one page loaded, no older ones:\n%s", alice.screen())
	}
	alice.enter("/save #1 "+into, "saved minutes.txt (8 B) to "+filepath.Join(into, "minutes.txt"))
	alice.enter("/save #2 "+into, "/save: #2 has no file or image")
	// Not shown on alice's screen (#2 is not loaded): a notice says it
	// was done.
	alice.enter("/edit #2 message two, edited", "#2 edited")
	alice.typeLine("/react #3 👍", true)
	// The driver runs alice's loop only while the test waits on her.
	// Not shown on alice's screen (#3 is not loaded): a notice says so.
	alice.waitText("👍 added to #3")
	bob.typeLine("/dm alice", true)
	for i := 0; i < 10 && !strings.Contains(bob.screen(), "— start of the conversation —"); i++ {
		bob.press(key("pgup"))
		bob.idle(200 * time.Millisecond)
	}
	bob.waitText("#2 alice: message two, edited (edited)")
	bob.waitText("#3 alice: message 3  👍 1")
	alice.enter("/unreact #3 👍", "👍 removed from #3")
	bob.waitFor("the reaction gone", func(s string) bool { return !strings.Contains(s, "👍 1") })
	alice.enter("/react #999 👍", "/react: no such message here")
	// A deleted one is no target either (asked for once, not again).
	first.enter("/delete #4", "#4 deleted")
	alice.enter("/edit #4 gone", "/edit: no such message here")
}
