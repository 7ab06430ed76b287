package server

import (
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
func (s *Server) guard(h http.Handler) http.Handler {
	maxBody := s.maxRequestBytes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		for k, v := range securityHeaders {
			hd[k] = []string{v}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
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
// not_found to everyone.
func (s *Server) metricsRoute(mux *routeMux) {
	if s.cfg.MetricsToken == "" {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, parley.ErrNotFound)
		})
		return
	}
	want := []byte(s.cfg.MetricsToken)
	h := s.MetricsHandler()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		tok, _ := bearer(r)
		if subtle.ConstantTimeCompare([]byte(tok), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley metrics"`)
			s.writeError(w, parley.Errorf(parley.EUNAUTHORIZED, "metrics need the metrics token"))
			return
		}
		h.ServeHTTP(w, r)
	})
}
