package client

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// TestProxyAnswers: an answer that is not the server's error body (a
// reverse proxy's or load balancer's page, or no body) is a *parley.Error
// with the code its status means in docs/protocol.md and Retry-After's
// wait. It was a plain error, which the outbox takes for a lost link: a
// proxy's 413 sent the file again every second for ever, and a bare 429
// or 503 was tried again after a second whatever Retry-After said. The
// server here is a stand-in for the proxy, a few canned answers.
func TestProxyAnswers(t *testing.T) {
	cases := []struct {
		status     int
		header     string
		body       string
		code       string
		retryAfter time.Duration
	}{
		{http.StatusTooManyRequests, "3", "", parley.ERATELIMITED, 3 * time.Second},
		{http.StatusBadGateway, "", "<html><body>Bad Gateway</body></html>", parley.EUNAVAILABLE, 0},
		{http.StatusServiceUnavailable, "2", "", parley.EUNAVAILABLE, 2 * time.Second},
		{http.StatusRequestEntityTooLarge, "", "<html>413 Request Entity Too Large</html>", parley.ETOOLARGE, 0},
		{http.StatusRequestTimeout, "", "", parley.EUNAVAILABLE, 0},
		{http.StatusForbidden, "", "denied", parley.EFORBIDDEN, 0},
		{http.StatusBadRequest, "", "<html>400</html>", parley.EINVALID, 0},
	}
	for _, tc := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.header != "" {
				w.Header().Set("Retry-After", tc.header)
			}
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		_, err := Login(t.Context(), srv.URL, "alice", "correct horse battery")
		srv.Close()
		var pe *parley.Error
		if !errors.As(err, &pe) || pe.Code != tc.code || pe.RetryAfter != tc.retryAfter {
			t.Errorf("HTTP %d: %v (%#v), want code %s, RetryAfter %v", tc.status, err, pe, tc.code, tc.retryAfter)
		}
	}
}
