package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHostileAsideListenerLimits: the listeners beside the public one
// (here --metrics-addr; --pprof-addr and --acme-http-addr, which faces the
// internet on port 80, are served the same way) keep the public
// listener's limits. A 200 KiB header block gets 431 (before: read whole,
// net/http's default allows 1 MiB), a body sent slower than
// --http-read-timeout is cut off (before: no read timeout), and a
// connection over --conns-per-ip, counted with the public listener's, is
// closed at once (before: no cap, so one address could take every file
// descriptor the public server and the store need).
func TestHostileAsideListenerLimits(t *testing.T) {
	start := func(connsPerIP int) *Main {
		cmd := testServe(t.TempDir())
		cmd.MetricsAddr = "127.0.0.1:0"
		cmd.ConnsPerIP = connsPerIP
		cmd.HTTPReadTimeout, cmd.HTTPWriteTimeout = time.Second, 2*time.Second
		var logs bytes.Buffer
		m := NewMain(cmd, &streams{out: &logs, err: &logs})
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	// A server for the first two attacks, and one for the cap (a
	// connection closed by the server is counted until net/http's
	// lingering close ends, so the cap is tried on a fresh server).
	m, capped := start(0), start(3)
	const guard = 30 * time.Second // bounds a broken run, not an assertion on speed
	dial := func(addr string) net.Conn {
		c, err := net.DialTimeout("tcp", addr, guard)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(guard))
		return c
	}

	// Huge headers.
	c := dial(m.MetricsAddr)
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 200<<10))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 200 KiB header block on --metrics-addr: %s, want 431", resp.Status)
	}

	// A body that never ends.
	c = dial(m.MetricsAddr)
	fmt.Fprintf(c, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab")
	_, err = io.Copy(io.Discard, c) // until the server closes it, or guard
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("a stalled body on --metrics-addr was still open after %v", guard)
	}
	c.Close()

	// Connections per IP, counted with the public listener's: two there,
	// one beside; the fourth, beside, is closed at once.
	var held []net.Conn
	m = capped
	for _, addr := range []string{m.Addr, m.Addr, m.MetricsAddr} {
		c := dial(addr)
		defer c.Close()
		held = append(held, c)
	}
	// The three are accepted (a request answered on each) before the
	// fourth is dialled.
	for _, c := range held {
		fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("a connection within the cap: %v", err)
		}
		resp.Body.Close()
	}
	c = dial(m.MetricsAddr)
	defer c.Close()
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		resp.Body.Close()
		t.Errorf("a 4th connection from one IP with --conns-per-ip=3 (3 open, on both listeners): %s, want it closed", resp.Status)
	}
}
