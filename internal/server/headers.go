package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/parleychat/parley"
)

// contentSecurityPolicy allows the web client's own files and nothing
// else: no inline script or style, no framing (clickjacking), no plugins,
// no <base> rewriting, forms only to the server. Images may be blob: and
// data: URLs (the client shows attachments it fetched with its token as
// blob: URLs). Everything else a page loads comes from this origin, plus
// WebSockets to any host (ws:, wss:; Origin checks guard the server side).
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' blob: data:; connect-src 'self' ws: wss:; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'self'; object-src 'none'"

// securityHeaders are set on every response: pages, static files, API
// answers and images alike (docs/protocol.md, "HTTP connections and
// headers"). The bearer token lives in the client's localStorage, so an
// injected script or a framing page must have no way in.
var securityHeaders = map[string]string{
	"Content-Security-Policy": contentSecurityPolicy,
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
}

// guard wraps the whole handler: the security headers on every response,
// and a bound on every request body (maxRequestBytes), so a handler that
// forgets its own smaller bound still cannot be sent an endless body.
//
// The bound goes on a shallow copy of the request, which the handlers
// get: net/http decides what to do with a body the handler left unread
// from the request it made, and only while that request's Body is still
// its own. An upload refused before its body is read (no receiving slot,
// rate) with Expect: 100-continue then gets its answer and the connection
// closes, no 100 Continue sent, so the client never sends the body. With
// the body wrapped in place, net/http took it for one the handler might
// want, sent 100 Continue and read up to 256 KiB of it after the refusal:
// the client sent its body after all, and one of megabytes met a closed
// connection (a reset instead of the answer).
func (s *Server) guard(h http.Handler) http.Handler {
	maxBody := s.maxRequestBytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		for k, v := range securityHeaders {
			hd[k] = []string{v}
		}
		bounded := *r
		bounded.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, &bounded)
	})
}

// uploadFraming is the room an upload's multipart framing may take over
// Uploads.MaxBytes (handleUpload bounds its body the same way).
const uploadFraming = 64 << 10

// maxRequestBytes is the largest body any endpoint takes: an upload
// (Uploads.MaxBytes or MaxFileBytes, plus room for multipart framing). JSON endpoints bound
// theirs to maxBodyBytes (decodeBody).
func (s *Server) maxRequestBytes() int64 {
	return max(maxBodyBytes, s.cfg.Uploads.MaxBytes+uploadFraming, s.cfg.Uploads.MaxFileBytes+uploadFraming)
}

// metricsRoute serves /metrics on the public handler to requests bearing
// Config.MetricsToken; without a token configured it answers 404
// not_found to everyone. A wrong token is a failed authentication like
// an unknown API key (Limits.APIKeyFailuresPerSecond, per IP): past the
// budget the address gets rate_limited before its token is compared, so
// the token cannot be guessed online. The tokens are compared as SHA-256
// digests, so the time taken tells nothing of the token's length either.
func (s *Server) metricsRoute(mux *routeMux) {
	if s.cfg.MetricsToken == "" {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, parley.ErrNotFound)
		})
		return
	}
	want := sha256.Sum256([]byte(s.cfg.MetricsToken))
	h := s.MetricsHandler()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		ip := clientIP(r)
		if d := s.limits.apiKeyFailures.blocked(ip); d > 0 {
			s.writeError(w, &parley.Error{Code: parley.ERATELIMITED, Message: "too many failed authentications from this address; slow down", RetryAfter: d})
			return
		}
		tok, _ := bearer(r)
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.limits.apiKeyFailures.wait(ip)
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley metrics"`)
			s.writeError(w, parley.Errorf(parley.EUNAUTHORIZED, "metrics need the metrics token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
