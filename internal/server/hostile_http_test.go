package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
	"github.com/parleychat/parley/web"
)

// hangGuard bounds a read that the server must end; reaching it means the
// server kept the connection open. It bounds a broken run, it is not an
// assertion on speed.
const hangGuard = 30 * time.Second

// shortHTTP gives plain HTTP 1 s timeouts, so that the attacks below are
// cut off within the test and a WebSocket must outlive them.
func shortHTTP() servertest.Option {
	return servertest.WithConfig(func(c *server.Config) {
		c.HTTP.ReadHeaderTimeout = time.Second
		c.HTTP.ReadTimeout = time.Second
		c.HTTP.WriteTimeout = time.Second
		c.HTTP.IdleTimeout = time.Second
	})
}

func dialTCP(t testing.TB, srv *servertest.Server, local string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: testWait}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	c, err := d.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads c until the server closes it, and fails if it does not
// within hangGuard. Bytes the server sends first (a response) are skipped.
func waitClosed(t testing.TB, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(hangGuard))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: still open after %v", what, hangGuard)
	}
}

// healthz asserts that another client, from 127.0.0.1, is still served.
func healthz(t testing.TB, srv *servertest.Server) {
	t.Helper()
	hc := &http.Client{Timeout: hangGuard}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("/healthz for another client: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz for another client: %s", resp.Status)
	}
}

// TestHostileIdleKeepAlive: a keep-alive connection left idle after a
// request is closed after IdleTimeout (before, it stayed open for good).
func TestHostileIdleKeepAlive(t *testing.T) {
	srv := servertest.Start(t, shortHTTP())
	c := dialTCP(t, srv, "")
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: parley\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(hangGuard))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("first request: %s, close %v; want 200 keep-alive", resp.Status, resp.Close)
	}
	waitClosed(t, c, "an idle keep-alive connection")
	healthz(t, srv)
}

// TestHostileSlowBody: a body sent one byte at a time is cut off by
// ReadTimeout, well before it is complete (before, the server waited for
// every byte, however slow).
func TestHostileSlowBody(t *testing.T) {
	srv := servertest.Start(t, shortHTTP())
	c := dialTCP(t, srv, "")
	const size = 100 // at one byte per 100 ms, 10 s: ten ReadTimeouts
	fmt.Fprintf(c, "POST /v1/auth/login HTTP/1.1\r\nHost: parley\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", size)
	closed := make(chan struct{})
	go func() { // owned by the test: it ends when c is closed by either side
		defer close(closed)
		io.Copy(io.Discard, c)
	}()
	sent := 0
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for sent < size {
		select {
		case <-closed:
		case <-tick.C:
			if _, err := c.Write([]byte{' '}); err == nil {
				sent++
				continue
			}
		}
		break
	}
	if sent == size {
		// The server read the whole slow body: wait for its answer, so
		// the failure names the old behaviour.
		c.SetReadDeadline(time.Now().Add(hangGuard))
		<-closed
		t.Fatalf("the server took a %d-byte body sent at 1 byte per 100 ms to the end", size)
	}
	t.Logf("connection ended after %d of %d body bytes", sent, size)
	healthz(t, srv)
}

// TestHostileWebSocketOutlivesHTTPTimeouts: with 1 s HTTP timeouts, a
// WebSocket that pings lives on for 3 s and still answers, while an idle
// keep-alive connection opened beside it is closed: the timeouts are
// cleared on upgrade (net/http leaves them on the hijacked socket).
func TestHostileWebSocketOutlivesHTTPTimeouts(t *testing.T) {
	srv := servertest.Start(t, shortHTTP())
	ws := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	idle := dialTCP(t, srv, "")
	idleClosed := make(chan struct{})
	go func() { // owned by the test: ends when idle closes
		defer close(idleClosed)
		idle.SetReadDeadline(time.Now().Add(hangGuard))
		io.Copy(io.Discard, idle)
	}()
	// Three times every timeout, pinging as a client does (the
	// heartbeat's own timeout, 9 s, is not what is tested here).
	for i := 0; i < 10; i++ {
		time.Sleep(300 * time.Millisecond)
		if f := ws.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
			t.Fatalf("ping %d: got %s %+v", i, f.Type, f.Error)
		}
	}
	var convs protocol.ConversationList
	ws.do(protocol.OpConversations, nil, &convs)
	select {
	case <-idleClosed:
	case <-time.After(hangGuard):
		t.Fatal("an idle connection stayed open beside the WebSocket")
	}
}

// TestHostileConnsPerIP: one address holding its cap of idle sockets gets
// its next connection closed at once; another address is still served
// (before, such sockets took every descriptor and /healthz timed out).
func TestHostileConnsPerIP(t *testing.T) {
	const perIP = 32
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.HTTP.ConnsPerIP = perIP }))
	for range perIP {
		dialTCP(t, srv, "127.0.0.2")
	}
	over := dialTCP(t, srv, "127.0.0.2")
	waitClosed(t, over, "a connection over the per-IP cap")
	healthz(t, srv)
	m := string(scrapeMetrics(t, srv).body)
	if !strings.Contains(m, `parley_http_connections_refused_total{reason="per_ip"} 1`) {
		t.Fatalf("the refused connection is not counted:\n%s", grepLines(m, "parley_http_connections"))
	}
	// The server holds the cap's sockets from 127.0.0.2, no more; the
	// healthz connection from 127.0.0.1 may still be open too.
	if !strings.Contains(m, fmt.Sprintf("parley_http_connections_open %d", perIP)) &&
		!strings.Contains(m, fmt.Sprintf("parley_http_connections_open %d", perIP+1)) {
		t.Fatalf("open connections:\n%s", grepLines(m, "parley_http_connections"))
	}
}

func grepLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestHostileSecurityHeaders: every page, static file and API answer
// carries the CSP, nosniff, X-Frame-Options and Referrer-Policy.
func TestHostileSecurityHeaders(t *testing.T) {
	srv := servertest.Start(t)
	tok := srv.Token(t, "alice", "Alice")
	paths := []string{"/", "/healthz", "/readyz", "/metrics", "/v1/me", "/v1/nope", "/no-such-file.js", "/v1/ws"}
	err := fs.WalkDir(web.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			paths = append(paths, "/"+p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
			"connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	}
	for _, p := range paths {
		for _, token := range []string{"", tok} {
			req, _ := http.NewRequest("GET", srv.URL+p, nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("GET %s (token %v): %s = %q, want %q", p, token != "", k, got, v)
				}
			}
		}
	}
}

// TestHostileMetricsAccess: /metrics is not public by default; with a
// metrics token it needs that token.
func TestHostileMetricsAccess(t *testing.T) {
	open := servertest.Start(t)
	if r := httpDo(t, open, "GET", "/metrics", "", ""); r.status != http.StatusNotFound || strings.Contains(string(r.body), "parley_") {
		t.Fatalf("GET /metrics by default: %d %.80q, want 404 without metrics", r.status, r.body)
	}
	const secret = "metrics-token-for-the-test"
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.MetricsToken = secret }))
	for _, tok := range []string{"", "wrong", secret + "x"} {
		r := httpDo(t, srv, "GET", "/metrics", tok, "")
		if r.status != http.StatusUnauthorized || r.err.Code != "unauthorized" {
			t.Fatalf("GET /metrics with token %q: %d %+v, want 401", tok, r.status, r.err)
		}
	}
	if r := httpDo(t, srv, "GET", "/metrics", secret, ""); r.status != http.StatusOK || !strings.Contains(string(r.body), "parley_http_connections_open") {
		t.Fatalf("GET /metrics with the token: %d %.80q", r.status, r.body)
	}
}

// TestHostileBodyLimit: a JSON body over 64 KiB is refused 413 without
// being read to its end, on every endpoint that takes one.
func TestHostileBodyLimit(t *testing.T) {
	srv := servertest.Start(t)
	tok := srv.Token(t, "alice", "Alice")
	big := `{"x":"` + strings.Repeat("a", 70<<10) + `"}`
	for _, p := range []string{"/v1/auth/register", "/v1/auth/login", "/v1/conversations/direct", "/v1/conversations/group",
		"/v1/conversations/c/messages", "/v1/conversations/c/read", "/v1/conversations/c/typing"} {
		if r := httpDo(t, srv, "POST", p, tok, big); r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with a 70 KiB body: %d %+v, want 413", p, r.status, r.err)
		}
	}
	if r := httpDo(t, srv, "PATCH", "/v1/conversations/c", tok, big); r.status != http.StatusRequestEntityTooLarge {
		t.Errorf("PATCH with a 70 KiB body: %d %+v, want 413", r.status, r.err)
	}
}
