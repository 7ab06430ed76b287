//go:build unix

package client_test

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// newOnFile is client.New with an outbox file and a token; it does not
// connect (taking the file is New's work).
func newOnFile(file string) (*client.Client, error) {
	return client.New("http://127.0.0.1:1", client.WithToken("t"), client.WithOutboxFile(file))
}

// wantInUse fails the test unless err is the refusal of an outbox file
// another client holds, naming the file.
func wantInUse(t *testing.T, err error, file string) {
	t.Helper()
	if !errors.Is(err, client.ErrOutboxInUse) || parley.ErrorCode(err) != parley.ECONFLICT || !strings.Contains(err.Error(), file) {
		t.Fatalf("second client on %s: err = %v (code %q), want ErrOutboxInUse with code conflict naming the file", file, err, parley.ErrorCode(err))
	}
}

// TestOutboxFileOneClient: one client at a time may use an outbox file.
// A second one, in this process or another, is refused at New (before it
// reads what waits there, which both would send) until the first closes;
// a New that fails after taking the lock gives it back.
func TestOutboxFileOneClient(t *testing.T) {
	file := filepath.Join(t.TempDir(), "outbox.db")
	c1, err := newOnFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := newOnFile(file)
	if err == nil {
		c2.Close()
	}
	wantInUse(t, err, file)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	c3, err := newOnFile(file)
	if err != nil {
		t.Fatalf("after the first client closed: %v", err)
	}

	// Another process: the way two parley chat sessions meet.
	c3.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOutboxLockHelper$")
	cmd.Env = append(os.Environ(), "PARLEY_OUTBOX_LOCK_HELPER="+file)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "locked\n" {
		t.Fatalf("helper process: %q, %v", line, err)
	}
	c4, err := newOnFile(file)
	if err == nil {
		c4.Close()
	}
	wantInUse(t, err, file)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper process: %v", err)
	}
	c5, err := newOnFile(file)
	if err != nil {
		t.Fatalf("after the other process ended: %v", err)
	}
	c5.Close()

	// A file that is no outbox: New fails, and leaves the lock free.
	bad := filepath.Join(t.TempDir(), "bad.db")
	if err := os.WriteFile(bad, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := newOnFile(bad); err == nil {
		c.Close()
		t.Fatal("New on a file that is not SQLite succeeded")
	} else if errors.Is(err, client.ErrOutboxInUse) {
		t.Fatalf("first New on %s: %v", bad, err)
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	c6, err := newOnFile(bad)
	if err != nil {
		t.Fatalf("New after a failed New on the same file: %v (the lock was kept)", err)
	}
	c6.Close()
}

// TestOutboxLockHelper is the other process of TestOutboxFileOneClient:
// it holds the outbox file named by PARLEY_OUTBOX_LOCK_HELPER, says
// "locked", and closes the client when its stdin ends.
func TestOutboxLockHelper(t *testing.T) {
	file := os.Getenv("PARLEY_OUTBOX_LOCK_HELPER")
	if file == "" {
		t.Skip("the helper process of TestOutboxFileOneClient")
	}
	c, err := newOnFile(file)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("locked\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
