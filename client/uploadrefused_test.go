package client_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestUploadRefusedBeforeBody: with no receiving slot free, the server
// answers 503 before it reads an upload's body and closes the connection.
// The SDK's upload sends Expect: 100-continue, so its body waits for the
// server's go-ahead: the refused attempt gets the 503 (not a reset) with
// nothing of its 8 MiB sent, and the upload is tried again after
// Retry-After and stored. Before, the body went out at once, and the
// client saw a reset or the 503 with megabytes written for nothing. The
// client talks to the server directly (no proxy): the kernel's sockets
// decide what a client still sending sees.
func TestUploadRefusedBeforeBody(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		// One slot. An upload waits a second for it: the held upload
		// below waits out the probes' turns, and is not refused.
		c.Uploads.Files, c.Uploads.DecodeWait = 1, time.Second
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tok := srv.Token(t, "alice", "User alice")
	srv.Token(t, "bob", "User bob") // makes bob, a member

	// An upload whose body never comes holds the one slot.
	held, err := net.DialTimeout("tcp", srv.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	fmt.Fprintf(held, "POST /v1/files?name=held.bin HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n", srv.Addr(), tok)
	servertest.WaitUntil(t, "the held upload takes the slot", 20*time.Second, func() bool {
		r := servertest.Do(t, "POST", "http://"+srv.Addr()+"/v1/files?name=probe.txt", tok, []byte("probe"))
		return r.Status == 503
	})

	uploads := &uploadTap{first: make(chan struct{})}
	var d net.Dialer
	c, err := client.New("http://"+srv.Addr(), client.WithToken(tok),
		client.WithDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &tappedConn{Conn: conn, tap: uploads}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	connect(t, c)
	cv := mustGroup(t, c, "bob")
	big := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	m, err := c.SendFileReader(ctx, cv.ID, "big.bin", bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-uploads.first:
	case <-ctx.Done():
		t.Fatal("no upload was answered")
	}
	held.Close() // the slot frees: the retry goes through
	stored, err := m.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a := stored.Attachment; a == nil || a.Size != int64(len(big)) {
		t.Fatalf("stored %+v, want the 8 MiB file", stored.Attachment)
	}
	first := uploads.attempt(0)
	if !strings.HasPrefix(first.answer, "HTTP/1.1 503") || first.written > 16<<10 {
		t.Fatalf("the refused upload: answer %q after %d bytes written, want a 503 before the body", first.answer, first.written)
	}
}

// uploadTap records the upload requests (POST /v1/files) made on tapped
// connections: the bytes each wrote and how the server first answered.
// Safe for concurrent use.
type uploadTap struct {
	mu       sync.Mutex
	attempts []*uploadAttempt
	first    chan struct{} // closed when the first upload has an answer
}

type uploadAttempt struct {
	written int64
	answer  string // the answer's first bytes, or the read error
}

func (u *uploadTap) attempt(i int) uploadAttempt {
	u.mu.Lock()
	defer u.mu.Unlock()
	return *u.attempts[i]
}

// tappedConn reports the uploads it carries to tap.
type tappedConn struct {
	net.Conn
	tap *uploadTap
	cur *uploadAttempt // the upload this connection carries now; guarded by tap.mu
}

func (c *tappedConn) Write(p []byte) (int, error) {
	// The attempt is known before its bytes go: the answer may come
	// before Write returns.
	c.tap.mu.Lock()
	if bytes.HasPrefix(p, []byte("POST /v1/files")) {
		c.cur = &uploadAttempt{}
		c.tap.attempts = append(c.tap.attempts, c.cur)
	} else if bytes.HasPrefix(p, []byte("GET ")) || bytes.HasPrefix(p, []byte("POST ")) {
		c.cur = nil // another request
	}
	a := c.cur
	c.tap.mu.Unlock()
	n, err := c.Conn.Write(p)
	if a != nil {
		c.tap.mu.Lock()
		a.written += int64(n)
		c.tap.mu.Unlock()
	}
	return n, err
}

func (c *tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.tap.mu.Lock()
	defer c.tap.mu.Unlock()
	if a := c.cur; a != nil && a.answer == "" && (n > 0 || err != nil) {
		if n > 0 {
			a.answer = string(p[:min(n, 40)])
		} else {
			a.answer = err.Error()
		}
		if a == c.tap.attempts[0] {
			close(c.tap.first)
		}
	}
	return n, err
}
