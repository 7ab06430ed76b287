package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// wsAllows asks coder/websocket itself whether Accept lets origin through
// to a server reached as host with patterns: it answers 403 for a refused
// origin, and fails later (a recorder cannot be hijacked) for an allowed
// one.
func wsAllows(patterns []string, origin, host string) bool {
	r := httptest.NewRequest("GET", "http://parley.test/v1/ws", nil)
	r.Host = host
	r.Header.Set("Origin", origin)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	w := httptest.NewRecorder()
	_, _ = websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: patterns})
	return w.Code != http.StatusForbidden
}

var originCases = []struct {
	patterns     []string
	origin, host string
	want         bool
}{
	{nil, "http://chat.example.com", "chat.example.com", true},
	{nil, "https://CHAT.example.com", "chat.example.com", true},
	{nil, "http://evil.example", "chat.example.com", false},
	{nil, "null", "chat.example.com", false},
	{[]string{"app.example.com"}, "https://app.example.com", "chat.example.com", true},
	{[]string{"app.example.com"}, "https://app.example.com:8443", "chat.example.com", false},
	{[]string{"*.example.com"}, "https://a.example.com", "x", true},
	{[]string{"*.example.com"}, "https://a.b.example.com", "x", true}, // path.Match: * spans dots
	{[]string{"https://*.example.org"}, "http://a.example.org", "x", false},
	{[]string{"https://*.example.org"}, "https://a.example.org", "x", true},
	{[]string{"http://localhost:*"}, "http://localhost:5173", "x", true},
	{[]string{"["}, "http://a", "x", false},
	{[]string{"*"}, "null", "x", true}, // "*" is every origin, host-less ones too
	{[]string{"app.example.com"}, "null", "x", false},
}

// TestCleanOrigins: empty patterns (a trailing comma) are dropped, and a
// malformed one is an error at start.
func TestCleanOrigins(t *testing.T) {
	got, err := cleanOrigins([]string{" app.example.com ", "", "*.example.org", " "})
	if err != nil || strings.Join(got, "|") != "app.example.com|*.example.org" {
		t.Fatalf("cleanOrigins: %q %v", got, err)
	}
	if _, err := cleanOrigins([]string{"["}); err == nil {
		t.Fatal("a malformed pattern was accepted")
	}
}

// TestOriginAllowedAgreesWithWebSocket: the CORS check and the WebSocket
// upgrade's take the same decision for the same list (one --allowed-origins).
func TestOriginAllowedAgreesWithWebSocket(t *testing.T) {
	for _, c := range originCases {
		got := originAllowed(c.patterns, c.origin, c.host)
		if got != c.want {
			t.Errorf("originAllowed(%q, %q, %q) = %v, want %v", c.patterns, c.origin, c.host, got, c.want)
		}
		if ws := wsAllows(c.patterns, c.origin, c.host); ws != got {
			t.Errorf("origin %q, host %q, patterns %q: CORS says %v, WebSocket says %v", c.origin, c.host, c.patterns, got, ws)
		}
	}
}

// FuzzOriginAllowed: for any Origin header, host and pattern, the CORS
// check does not panic and agrees with coder/websocket's.
func FuzzOriginAllowed(f *testing.F) {
	for _, c := range originCases {
		f.Add(strings.Join(c.patterns, ","), c.origin, c.host)
	}
	f.Fuzz(func(t *testing.T, patterns, origin, host string) {
		// The server's patterns are cleaned (cleanOrigins) before either
		// check sees them.
		ps, err := cleanOrigins(strings.Split(patterns, ","))
		if err != nil {
			return
		}
		// Header values and hosts net/http would refuse on the wire.
		if strings.ContainsAny(origin+host, "\r\n\x00") || host == "" || strings.ContainsAny(host, " /?#@") {
			return
		}
		if origin == "" {
			return // no Origin: the cors middleware passes it without asking
		}
		got := originAllowed(ps, origin, host)
		if ws := wsAllows(ps, origin, host); ws != got {
			t.Fatalf("origin %q, host %q, patterns %q: CORS says %v, WebSocket says %v", origin, host, ps, got, ws)
		}
	})
}
