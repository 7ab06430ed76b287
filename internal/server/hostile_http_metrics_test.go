package server_test

import (
	"net/http"
	"testing"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestHostileMetricsTokenGuess: wrong metrics tokens are failed
// authentications like unknown API keys: past the per-IP budget
// (Limits.APIKeyFailureBurst) every /metrics request from the address,
// even with the right token, gets 429 with Retry-After until it refills.
// Before, a guesser could try tokens on the public address without end.
func TestHostileMetricsTokenGuess(t *testing.T) {
	const (
		secret = "metrics-token-for-the-test"
		burst  = 5
	)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.MetricsToken = secret
		c.Limits.APIKeyFailuresPerSecond, c.Limits.APIKeyFailureBurst = 0.001, burst
	}))
	for i := range burst {
		if r := httpDo(t, srv, "GET", "/metrics", "guess-"+string(rune('a'+i)), ""); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %+v, want 401", i, r.status, r.err)
		}
	}
	for _, tok := range []string{"one-guess-too-many", secret} {
		r := httpDo(t, srv, "GET", "/metrics", tok, "")
		if r.status != http.StatusTooManyRequests || r.err.Code != "rate_limited" || r.header.Get("Retry-After") == "" {
			t.Fatalf("GET /metrics after %d wrong tokens, token %q: %d %+v, want 429 rate_limited with Retry-After", burst, tok, r.status, r.err)
		}
	}
}
