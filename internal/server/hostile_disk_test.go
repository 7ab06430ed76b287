package server_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// requireRoot skips a test that must mount a file system when not root,
// and fails it under CI=true, where the tests run as root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("this test mounts a tmpfs and needs root; CI runs as root")
	}
	t.Skip("not root: cannot mount a small tmpfs to fill (run as root to test a full disk)")
}

// warnings counts the lines of log at level WARN or ERROR.
func warnings(log *servertest.LogBuffer) (n int, text string) {
	text = log.String()
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			n++
		}
	}
	return n, text
}

// smallDisk mounts a tmpfs of size (mount's syntax: "4m") on a new
// temporary directory and returns it, unmounted when the test ends (after
// a server started later has stopped). It skips the test when not root.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	// Registered before the server's: runs after it has stopped.
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestHostileDiskFull fills a 4 MiB tmpfs holding the SQLite store with
// sends until the disk refuses them. Clients must get `unavailable` with
// a retry hint (before: `internal`, 500), /readyz 503 (before: 200), a
// bounded number of log lines (before: one ERROR per failed send), and
// once space is freed, writes and /readyz recover with every acknowledged
// message kept, across a restart too.
func TestHostileDiskFull(t *testing.T) {
	dir := smallDisk(t, "4m")
	logs := &servertest.LogBuffer{}
	srv := servertest.Start(t, servertest.WithDir(dir), servertest.WithConfig(func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}))
	tok := srv.Token(t, "alice", "Alice")
	srv.Token(t, "bob", "Bob")
	a := connect(t, srv, tok, nil)
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)

	// A filler file to delete later: the space it frees lets writes resume.
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	text := strings.Repeat("x", 3000)
	var acked []string
	refused, after := 0, 0
	firstRefused := "" // a client sends it again first (the send gate)
	for i := 0; after < 200; i++ {
		if i > 20000 {
			t.Fatalf("the disk never filled: %d sends acknowledged", len(acked))
		}
		id := fmt.Sprintf("m%d", i)
		f := a.call(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: id, Text: text})
		if refused > 0 {
			after++
		}
		switch {
		case f.Type != protocol.TypeError:
			acked = append(acked, id)
		case f.Error.Code == parley.EUNAVAILABLE && f.Error.RetryAfterMS > 0:
			if refused == 0 {
				firstRefused = id
			}
			refused++
		default:
			t.Fatalf("send %s on a full disk: %s %+v, want unavailable with retry_after_ms", id, f.Type, f.Error)
		}
	}
	t.Logf("%d sends acknowledged, then %d refused unavailable", len(acked), refused)

	// Over HTTP too. A write can still fit now and then (SQLite reuses
	// freed pages), so send until one is refused.
	for i := 0; ; i++ {
		id := fmt.Sprintf("http%d", i)
		r := httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/messages", tok, `{"client_id":"`+id+`","text":"`+text+`"}`)
		if r.status == http.StatusCreated && i < 100 {
			acked = append(acked, id)
			continue
		}
		if r.status != http.StatusServiceUnavailable || r.err.Code != parley.EUNAVAILABLE || r.header.Get("Retry-After") == "" {
			t.Fatalf("HTTP send on a full disk: %d %+v Retry-After %q, want 503 unavailable with Retry-After", r.status, r.err, r.header.Get("Retry-After"))
		}
		break
	}
	if r := httpDo(t, srv, "GET", "/readyz", "", ""); r.status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz on a full disk: %d, want 503", r.status)
	}
	healthz(t, srv)
	lines, text2 := warnings(logs)
	t.Logf("%d warning/error log lines for at least %d refused writes", lines, refused+1)
	if lines > 20 {
		t.Fatalf("%d warning/error log lines for at least %d refused writes, want at most 20:\n%s", lines, refused+1, text2)
	}

	// Free space: writes and readiness recover.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The connection's sends wait for the first refused one to be sent
	// again (its order is kept): send it as a client would, then more.
	for _, id := range []string{firstRefused, "after"} {
		f := a.call(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: id, Text: "space again"})
		if f.Type == protocol.TypeError {
			t.Fatalf("send %s after freeing space: %+v", id, f.Error)
		}
		acked = append(acked, id)
	}
	if r := httpDo(t, srv, "GET", "/readyz", "", ""); r.status != http.StatusOK {
		t.Fatalf("/readyz after freeing space: %d %+v, want 200", r.status, r.err)
	}

	srv.Restart(t)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	have := map[string]bool{}
	// From the start, forward by seq.
	for after := int64(0); ; {
		var page parley.MessagePage
		b.do(protocol.OpHistory, protocol.History{ConversationID: conv.ID, After: protocol.Cursor(after), Limit: parley.MaxPageLimit}, &page)
		for _, m := range page.Messages {
			have[m.ClientID] = true
			after = max(after, m.Seq)
		}
		if !page.HasMore || len(page.Messages) == 0 {
			break
		}
	}
	for _, id := range acked {
		if !have[id] {
			t.Errorf("acknowledged message %s is missing after the restart", id)
		}
	}
}
