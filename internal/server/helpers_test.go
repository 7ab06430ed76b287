package server_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

func servertestHelloTimeout() servertest.Option {
	return servertest.WithConfig(func(c *server.Config) { c.HelloTimeout = 300 * time.Millisecond })
}

func mintExpired(t testing.TB, srv *servertest.Server) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "alice", "name": "Alice", "iat": time.Now().Add(-2 * time.Hour).Unix(),
		"exp": time.Now().Add(-time.Hour).Unix(),
	}).SignedString(srv.Secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type httpResp struct {
	status int
	body   []byte
	err    protocol.ErrorBody
	header http.Header
}

func httpDo(t testing.TB, srv *servertest.Server, method, path, token, body string) httpResp {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	return asHTTPResp(t, method, path, servertest.Do(t, method, srv.URL+path, token, b))
}

// asHTTPResp is r with the error body of a refusal decoded.
func asHTTPResp(t testing.TB, method, path string, r servertest.Response) httpResp {
	t.Helper()
	out := httpResp{status: r.Status, body: r.Body, header: r.Header}
	if r.Status >= 400 {
		var e struct{ Error protocol.ErrorBody }
		if err := json.Unmarshal(r.Body, &e); err != nil {
			t.Fatalf("%s %s: error body %q is not JSON", method, path, r.Body)
		}
		out.err = e.Error
	}
	return out
}

func httpDoHeaders(t testing.TB, srv *servertest.Server, method, path string, h http.Header) int {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func decodeJSON[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

func closeStatus(err error) int { return int(websocket.CloseStatus(err)) }

// dialSmallBuffer dials with a 4 KiB socket receive buffer, so a client
// that does not read backs the server up quickly.
func dialSmallBuffer(t testing.TB, srv *servertest.Server) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	ws, _, err := websocket.Dial(ctx, srv.WSURL(), &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow(); hc.CloseIdleConnections() })
	return &wsClient{t: t, ws: ws}
}

// scrapeMetrics reads the server's metrics as a private --metrics-addr
// listener would serve them (the public handler has no /metrics by
// default).
func scrapeMetrics(t testing.TB, srv *servertest.Server) httpResp {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return httpResp{status: rec.Code, body: rec.Body.Bytes(), header: rec.Header()}
}

// metricSeries reads one series of the server's metrics: name alone, or
// with labels (the text inside the braces, e.g. `limit="presence"`). ok
// is false when the server does not report that series.
func metricSeries(t testing.TB, srv *servertest.Server, name, labels string) (v float64, ok bool) {
	t.Helper()
	if labels != "" {
		name += "{" + labels + "}"
	}
	for line := range strings.SplitSeq(string(scrapeMetrics(t, srv).body), "\n") {
		if s, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f, true
		}
	}
	return 0, false
}

// metric reads one unlabelled metric, which must be reported.
func metric(t testing.TB, srv *servertest.Server, name string) float64 {
	t.Helper()
	v, ok := metricSeries(t, srv, name, "")
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	return v
}

// metricLabel reads a metric with labels (see metricSeries); 0 when
// absent (a labelled counter appears once it counts).
func metricLabel(t testing.TB, srv *servertest.Server, name, labels string) float64 {
	t.Helper()
	v, _ := metricSeries(t, srv, name, labels)
	return v
}

// rateLimited is how many requests the limit named (`limit` label of
// parley_rate_limited_total) refused.
func rateLimited(t testing.TB, srv *servertest.Server, limit string) float64 {
	t.Helper()
	return metricLabel(t, srv, "parley_rate_limited_total", `limit="`+limit+`"`)
}
