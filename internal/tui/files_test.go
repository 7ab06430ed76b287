package tui

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
)

// TestFileCommand: /file PATH sends the file; both sides show
// "📎 name (size)"; a missing path and a directory get a notice.
func TestFileCommand(t *testing.T) {
	srv := servertest.Start(t)
	lookup := func(ctx context.Context, name string) (parley.User, error) {
		return LookupUser(ctx, srv.URL, srv.Token(t, "admin", "admin"), name)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "notes for bob.txt")
	if err := os.WriteFile(path, make([]byte, 1536), 0o600); err != nil {
		t.Fatal(err)
	}
	alice := newDriver(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), lookup)
	bob := newDriver(t, "bob", srv.URL, srv.Token(t, "bob", "bob"), lookup)
	alice.waitText("● connected as alice")
	bob.waitText("● connected as bob")
	alice.typeLine("/dm bob", true)
	alice.waitText("bob ○ offline")
	alice.typeLine(`/file "`+path+`"`, true)
	alice.waitText("alice: 📎 notes for bob.txt (1.5 KiB) ✓")
	bob.waitText("alice: 📎 notes for bob.txt (1.5 KiB)")
	alice.typeLine("/file "+filepath.Join(dir, "missing.txt"), true)
	alice.waitText("/file: stat " + filepath.Join(dir, "missing.txt") + ": no such file or directory")
	alice.typeLine("/file "+dir, true)
	alice.waitText("is not a file")
}
