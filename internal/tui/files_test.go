package tui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
