package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley"
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

// wsClient is a bare protocol client for tests: it writes requests and
// reads frames in order, with no reconnect logic of its own.
type wsClient struct {
	t       testing.TB
	ws      *websocket.Conn
	ids     atomic.Int64
	welcome protocol.Welcome
	// pending holds frames read while waiting for something else.
	pending []protocol.Frame
	// wait bounds each read (0: testWait).
	wait time.Duration
}

const testWait = 10 * time.Second

// dial connects without sending hello.
func dial(t testing.TB, srv *servertest.Server, h http.Header) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WSURL(), &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &wsClient{t: t, ws: ws}
}

// connect dials and says hello with token, resuming from resume when not
// nil, and returns the client after the welcome.
func connect(t testing.TB, srv *servertest.Server, token string, resume *int64) *wsClient {
	t.Helper()
	return hello(t, srv, protocol.Hello{Token: token, ResumeFrom: resume})
}

// hello dials, says h and returns the client after the welcome.
func hello(t testing.TB, srv *servertest.Server, h protocol.Hello) *wsClient {
	t.Helper()
	return helloWait(t, srv, h, testWait)
}

// helloWait is hello with each read of the client bounded by wait.
func helloWait(t testing.TB, srv *servertest.Server, h protocol.Hello, wait time.Duration) *wsClient {
	t.Helper()
	c := dial(t, srv, nil)
	c.wait = wait
	c.sendOp(protocol.OpHello, "", h)
	f := c.next()
	if f.Type != protocol.TypeWelcome {
		t.Fatalf("after hello got %s %+v, want welcome", f.Type, f.Error)
	}
	if err := json.Unmarshal(f.Data, &c.welcome); err != nil {
		t.Fatal(err)
	}
	return c
}

// startLimited starts a server with no rate limits but those set sets
// (nil: none at all).
func startLimited(t testing.TB, set func(l *server.Limits)) *servertest.Server {
	t.Helper()
	return servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Unlimited()
		if set != nil {
			set(&c.Limits)
		}
	}))
}

// aliceToBob connects alice ("Alice"), makes sure bob ("Bob") exists and
// has alice start a direct conversation with him.
func aliceToBob(t testing.TB, srv *servertest.Server) (*wsClient, parley.Conversation) {
	t.Helper()
	srv.Token(t, "bob", "Bob")
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	return a, conv
}

// directPair connects alice and bob, and alice starts a direct
// conversation with him.
func directPair(t testing.TB, srv *servertest.Server) (a, b *wsClient, conv parley.Conversation) {
	t.Helper()
	a = connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b = connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	return a, b, conv
}

func (c *wsClient) writeRaw(typ websocket.MessageType, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	return c.ws.Write(ctx, typ, b)
}

func (c *wsClient) sendOp(op, id string, data any) {
	c.t.Helper()
	var raw json.RawMessage
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			c.t.Fatal(err)
		}
		raw = b
	}
	b, _ := json.Marshal(protocol.Request{Op: op, ID: id, Data: raw})
	if err := c.writeRaw(websocket.MessageText, b); err != nil {
		c.t.Fatalf("write %s: %v", op, err)
	}
}

// read reads the next frame from the wire, or returns the close error.
func (c *wsClient) read() (protocol.Frame, error) {
	wait := c.wait
	if wait == 0 {
		wait = testWait
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return protocol.Frame{}, err
	}
	if typ != websocket.MessageText {
		return protocol.Frame{}, errors.New("binary frame from server")
	}
	var f protocol.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		return protocol.Frame{}, fmt.Errorf("bad frame %s: %w", b, err)
	}
	return f, nil
}

// next returns the next frame (pending first).
func (c *wsClient) next() protocol.Frame {
	c.t.Helper()
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f
	}
	f, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return f
}

// waitFor returns the first frame that match accepts, keeping the others
// in pending, in order.
func (c *wsClient) waitFor(match func(protocol.Frame) bool) protocol.Frame {
	c.t.Helper()
	for i, f := range c.pending {
		if match(f) {
			c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
			return f
		}
	}
	for {
		f, err := c.read()
		if err != nil {
			c.t.Fatalf("waiting for a frame: %v", err)
		}
		if match(f) {
			return f
		}
		c.pending = append(c.pending, f)
	}
}

// call sends a request and waits for its reply or error frame.
func (c *wsClient) call(op string, data any) protocol.Frame {
	c.t.Helper()
	id := fmt.Sprintf("r%d", c.ids.Add(1))
	c.sendOp(op, id, data)
	return c.waitFor(func(f protocol.Frame) bool {
		return f.ID == id && (f.Type == protocol.TypeReply || f.Type == protocol.TypeError || f.Type == protocol.TypePong)
	})
}

// do calls op and decodes a successful reply into out.
func (c *wsClient) do(op string, data, out any) {
	c.t.Helper()
	f := c.call(op, data)
	if f.Type != protocol.TypeReply && f.Type != protocol.TypePong {
		c.t.Fatalf("%s: got %s %+v", op, f.Type, f.Error)
	}
	if out != nil {
		if err := json.Unmarshal(f.Data, out); err != nil {
			c.t.Fatalf("%s: decoding reply %s: %v", op, f.Data, err)
		}
	}
}

// fail calls op and returns the error code it fails with.
func (c *wsClient) fail(op string, data any) string {
	c.t.Helper()
	f := c.call(op, data)
	if f.Type != protocol.TypeError || f.Error == nil {
		c.t.Fatalf("%s: got %s %s, want an error", op, f.Type, f.Data)
	}
	return f.Error.Code
}

// history asks for the newest page of conversation id.
func (c *wsClient) history(id string) parley.MessagePage {
	c.t.Helper()
	var page parley.MessagePage
	c.do(protocol.OpHistory, protocol.History{ConversationID: id}, &page)
	return page
}

// event waits for the next event frame of type typ.
func (c *wsClient) event(typ parley.EventType) parley.Event {
	c.t.Helper()
	f := c.waitFor(func(f protocol.Frame) bool {
		if f.Type != protocol.TypeEvent {
			return false
		}
		var ev parley.Event
		json.Unmarshal(f.Data, &ev)
		return ev.Type == typ
	})
	var ev parley.Event
	json.Unmarshal(f.Data, &ev)
	return ev
}

// closeCode reads until the connection closes and returns its close code.
func (c *wsClient) closeCode() websocket.StatusCode {
	c.t.Helper()
	for {
		_, err := c.read()
		if err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func (c *wsClient) send(convID, clientID, text string) parley.Message {
	c.t.Helper()
	var m parley.Message
	c.do(protocol.OpSend, protocol.Send{ConversationID: convID, ClientID: clientID, Text: text}, &m)
	return m
}
