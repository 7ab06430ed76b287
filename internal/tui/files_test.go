package tui

import (
	"os"
	"path/filepath"
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
