package tui

import (
	"os"
	"path/filepath"
	"testing"

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
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice := connected(t, srv, "alice", "alice", lookup)
	bob := connected(t, srv, "bob", "bob", lookup)
	alice.openDirect("bob")
	alice.typeLine(`/file "`+path+`"`, true)
	alice.waitText("alice: 📎 notes for bob.txt (1.5 KiB) ✓")
	bob.waitText("alice: 📎 notes for bob.txt (1.5 KiB)")
	alice.typeLine("/file "+filepath.Join(dir, "missing.txt"), true)
	alice.waitText("/file: stat " + filepath.Join(dir, "missing.txt") + ": no such file or directory")
	alice.typeLine("/file "+dir, true)
	alice.waitText("is not a file")
}
