package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

func corsServer(t *testing.T) *servertest.Server {
	return servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.AllowedOrigins = []string{"app.example.com", "https://*.example.org"}
	}))
}

func corsDo(t *testing.T, srv *servertest.Server, method, path string, h map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestCORSPreflight: a preflight from an allowed origin gets 204 with the
// methods and headers the API takes and no credentials; one from a refused
// origin gets 403 and no CORS header, so the browser refuses the call.
func TestCORSPreflight(t *testing.T) {
	srv := corsServer(t)
	pre := func(origin string) map[string]string {
		return map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization, content-type",
		}
	}
	for _, origin := range []string{"https://app.example.com", "http://app.example.com", "https://chat.example.org"} {
		resp := corsDo(t, srv, "OPTIONS", "/v1/conversations/group", pre(origin))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight from %s: %d, want 204", origin, resp.StatusCode)
		}
		for k, want := range map[string]string{
			"Access-Control-Allow-Origin":      origin,
			"Access-Control-Allow-Methods":     "GET, POST, PUT, PATCH, DELETE",
			"Access-Control-Allow-Headers":     "Authorization, Content-Type, Range, If-Range, If-None-Match, If-Match",
			"Access-Control-Max-Age":           "600",
			"Access-Control-Allow-Credentials": "",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("preflight from %s: %s = %q, want %q", origin, k, got, want)
			}
		}
	}
	for _, origin := range []string{"https://evil.example", "http://chat.example.org", "https://app.example.com.evil.example", "null"} {
		resp := corsDo(t, srv, "OPTIONS", "/v1/conversations/group", pre(origin))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("preflight from %s: %d, want 403", origin, resp.StatusCode)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("preflight from %s: Access-Control-Allow-Origin %q, want none", origin, got)
		}
	}
}

// TestCORSRequests: the actual requests. An allowed origin's answer names
// it (and exposes Retry-After); a refused origin's request is not run; a
// request without Origin (a non-browser) is served as always, with no
// CORS headers.
func TestCORSRequests(t *testing.T) {
	srv := corsServer(t)
	tok := srv.Token(t, "alice", "Alice")
	auth := "Bearer " + tok

	resp := corsDo(t, srv, "GET", "/v1/me", map[string]string{"Origin": "https://app.example.com", "Authorization": auth})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" ||
		resp.Header.Get("Access-Control-Expose-Headers") != "Retry-After, ETag, Content-Range, Accept-Ranges" || resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	if v := resp.Header.Values("Vary"); len(v) == 0 || v[0] != "Origin" {
		t.Errorf("allowed origin: Vary %q, want Origin", v)
	}
	// An error answer carries the header too, so the app can read it.
	resp = corsDo(t, srv, "GET", "/v1/me", map[string]string{"Origin": "https://app.example.com"})
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Fatalf("allowed origin, no token: %d %v", resp.StatusCode, resp.Header)
	}

	r := httpDoOrigin(t, srv, "POST", "/v1/conversations/group", tok, "https://evil.example", `{"title":"x","member_ids":[]}`)
	if r.status != 403 || r.err.Code != parley.EFORBIDDEN || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("refused origin: %d %+v %v", r.status, r.err, r.header)
	}
	if convs := httpDo(t, srv, "GET", "/v1/conversations", tok, ""); len(decodeJSON[protocol.ConversationList](t, convs.body).Conversations) != 0 {
		t.Fatalf("the refused origin's request was run: %s", convs.body)
	}

	resp = corsDo(t, srv, "GET", "/v1/me", map[string]string{"Authorization": auth})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no origin: %d %v", resp.StatusCode, resp.Header)
	}
	// The server's own origin needs no list.
	resp = corsDo(t, srv, "GET", "/v1/me", map[string]string{"Origin": "http://" + srv.Addr(), "Authorization": auth})
	if resp.StatusCode != 200 {
		t.Fatalf("same origin: %d", resp.StatusCode)
	}
}

// TestCORSWebSocketSameList: --allowed-origins is one list for HTTP and
// WebSocket: an origin allowed to call the API may open a WebSocket, a
// refused one may do neither.
func TestCORSWebSocketSameList(t *testing.T) {
	srv := corsServer(t)
	if got := httpDoHeaders(t, srv, "GET", protocol.Path, map[string][]string{"Origin": {"https://evil.example"}}); got != 403 {
		t.Fatalf("refused origin upgrade: %d, want 403", got)
	}
	c := dial(t, srv, map[string][]string{"Origin": {"https://chat.example.org"}})
	c.sendOp(protocol.OpHello, "", protocol.Hello{Token: srv.Token(t, "alice", "A")})
	if f := c.next(); f.Type != protocol.TypeWelcome {
		t.Fatalf("allowed origin: %+v", f)
	}
}

func httpDoOrigin(t *testing.T, srv *servertest.Server, method, path, token, origin, body string) httpResp {
	t.Helper()
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	// No Content-Type: a page of another origin sends such a request
	// without asking first.
	return asHTTPResp(t, method, path, servertest.Do(t, method, srv.URL+path, token, b, "Origin", origin, "Content-Type", ""))
}

// TestCORSRanges: a page of an allowed origin may ask for part of an
// attachment with its token: the preflight allows Range and the
// validators, and the answer lets the page read ETag and Content-Range.
// Before, the preflight allowed only Authorization and Content-Type, so
// a browser refused the ranged fetch, and ETag was hidden from the page.
func TestCORSRanges(t *testing.T) {
	srv := corsServer(t)
	tok := srv.Token(t, "alice", "Alice")
	a := uploadFile(t, srv, tok, "r.bin", []byte("0123456789"))
	const origin = "https://app.example.com"
	resp := corsDo(t, srv, "OPTIONS", a.URL, map[string]string{"Origin": origin, "Access-Control-Request-Method": "GET",
		"Access-Control-Request-Headers": "authorization, if-none-match, range"})
	allowed := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
	for _, h := range []string{"authorization", "range", "if-range", "if-none-match", "if-match"} {
		if !slices.Contains(strings.Split(strings.ReplaceAll(allowed, " ", ""), ","), h) {
			t.Errorf("preflight: Access-Control-Allow-Headers %q lacks %s", allowed, h)
		}
	}
	resp = corsDo(t, srv, "GET", a.URL, map[string]string{"Origin": origin, "Authorization": "Bearer " + tok, "Range": "bytes=2-4"})
	exposed := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
	if resp.StatusCode != 206 || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("ranged GET from %s: %d %v", origin, resp.StatusCode, resp.Header)
	}
	for _, h := range []string{"retry-after", "etag", "content-range", "accept-ranges"} {
		if !slices.Contains(strings.Split(strings.ReplaceAll(exposed, " ", ""), ","), h) {
			t.Errorf("ranged GET: Access-Control-Expose-Headers %q lacks %s", exposed, h)
		}
	}
}

// TestCORSPreflightEveryMethod: a preflight from an allowed origin
// allows every method the API serves, for each route of it. PUT (add a
// reaction, block a user) was missing from Access-Control-Allow-Methods,
// so a browser on another origin refused those calls before sending
// them, with nothing in the answer to say why.
func TestCORSPreflightEveryMethod(t *testing.T) {
	srv := corsServer(t)
	for _, p := range srv.Server.RoutePatterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/v1/") || path == protocol.Path || method == http.MethodGet {
			continue // GET is a simple request, preflighted only for its headers
		}
		path = strings.NewReplacer("{id}", "x", "{mid}", "m", "{emoji}", "%F0%9F%91%8D", "{name}", "n", "{user_id}", "u").Replace(path)
		resp := corsDo(t, srv, "OPTIONS", path, map[string]string{
			"Origin": "https://app.example.com", "Access-Control-Request-Method": method,
			"Access-Control-Request-Headers": "authorization, content-type",
		})
		allowed := strings.Split(resp.Header.Get("Access-Control-Allow-Methods"), ", ")
		if resp.StatusCode != http.StatusNoContent || !slices.Contains(allowed, method) {
			t.Errorf("preflight of %s: %d, Access-Control-Allow-Methods %q", p, resp.StatusCode, allowed)
		}
	}
}
