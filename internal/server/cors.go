package server

import (
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// CORS for the HTTP API (/v1/...). Config.AllowedOrigins is the one list
// for the API and the WebSocket upgrade (coder/websocket's OriginPatterns,
// matched the same way by originAllowed): a web app served from another
// origin may call both, or neither.
//
// Credentials stay off: the API authenticates with bearer tokens in the
// Authorization header, never cookies, so no response carries
// Access-Control-Allow-Credentials and a browser sends no ambient
// credentials a foreign page could ride on.

// Preflight answers (docs/protocol.md section 11, "CORS").
const (
	corsAllowMethods = "GET, POST, PUT, PATCH, DELETE"
	// Range and the validators: a page may fetch part of an
	// attachment, and revalidate it (handleAttachment).
	corsAllowHeaders  = "Authorization, Content-Type, Range, If-Range, If-None-Match, If-Match"
	corsExposeHeaders = "Retry-After, ETag, Content-Range, Accept-Ranges"
	// corsMaxAge is how long (seconds) a browser may cache a preflight.
	corsMaxAge = "600"
)

// originAllowed reports whether origin (an Origin header) may call the
// server reached as host (the request's Host): the server's own origin,
// or one matching a pattern. A pattern without "://" matches the origin's
// host[:port]; one with it matches scheme://host[:port]; both in
// path.Match syntax, case-insensitively. This is coder/websocket's
// OriginPatterns check, so HTTP and WebSocket agree.
func originAllowed(patterns []string, origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	// An origin with no host ("null": sandboxed frames, file: pages) is
	// never the server's own; only a pattern that matches "" (such as
	// "*") lets it in, as in coder/websocket.
	if u.Host != "" && strings.EqualFold(u.Host, host) {
		return true
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		ok, err := path.Match(strings.ToLower(p), strings.ToLower(target))
		if err != nil {
			return false // as coder/websocket; New refuses such patterns anyway
		}
		if ok {
			return true
		}
	}
	return false
}

// cleanOrigins trims the patterns and drops empty ones (a trailing comma
// in --allowed-origins would otherwise be a pattern matching every origin
// without a host), and refuses a malformed one.
func cleanOrigins(patterns []string) ([]string, error) {
	var out []string
	for _, p := range patterns {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("server: allowed origin pattern %q: %w", p, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// cors wraps the API: under /v1/ (but not the WebSocket upgrade, which
// checks Origin itself), a request with an Origin that is not allowed is
// refused 403 forbidden before any handler runs, a preflight (OPTIONS
// with Access-Control-Request-Method) from an allowed origin gets 204 and
// the allowed methods and headers, and an allowed request gets
// Access-Control-Allow-Origin naming its origin. Requests without Origin
// (non-browsers, same-origin GETs) pass as before. Safe for concurrent use.
func (s *Server) cors(h http.Handler) http.Handler {
	patterns := s.cfg.AllowedOrigins
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !strings.HasPrefix(r.URL.Path, "/v1/") || r.URL.Path == protocol.Path {
			h.ServeHTTP(w, r)
			return
		}
		hd := w.Header()
		hd.Add("Vary", "Origin")
		if !originAllowed(patterns, origin, r.Host) {
			s.log.Debug("cors: origin refused", "origin", origin, "path", r.URL.Path, "ip", clientIP(r))
			s.writeError(w, parley.Errorf(parley.EFORBIDDEN, "origin %q is not allowed (--allowed-origins)", truncate(origin, 100)))
			return
		}
		hd.Set("Access-Control-Allow-Origin", origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Add("Vary", "Access-Control-Request-Method")
			hd.Add("Vary", "Access-Control-Request-Headers")
			hd.Set("Access-Control-Allow-Methods", corsAllowMethods)
			hd.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			hd.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		hd.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		h.ServeHTTP(w, r)
	})
}

// truncate cuts s to at most n bytes (for echoing client input in errors).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
