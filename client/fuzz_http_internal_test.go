package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/parleychat/parley"
)

// roundTripFunc is an http.RoundTripper that answers every request itself.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzHTTPAnswer feeds doJSON, which reads every plain HTTP answer of
// the SDK (Register, Login, uploads; Download's errors take the same
// path), any status, Retry-After and body a broken or hostile server may
// send. Properties: no panic; a 2xx decodes into the session when its
// body is JSON of at most maxHTTPReplyBytes, else fails; any other
// status is a *parley.Error whose RetryAfter is never negative (a wait
// an app may sleep on: a negative one was a Retry-After past int64
// nanoseconds, or a negative retry_after_ms, passed on as it came).
func FuzzHTTPAnswer(f *testing.F) {
	for _, s := range []struct {
		status      int
		retry, body string
	}{
		{200, "", `{"token":"t","user":{"id":"u"}}`}, {200, "", `{"token":`}, {200, "", ``}, {201, "", `[]`},
		{429, "3", ``}, {429, "9223372037", ``}, {503, "-1", `{"error":{"code":"unavailable","message":"x","retry_after_ms":-5}}`},
		{503, "", `{"error":{"code":"unavailable","message":"x","retry_after_ms":9223372036854775807}}`},
		{401, "", `{"error":{"code":"unauthorized","message":"no"}}`}, {413, "", "<html>"}, {502, "x", "\xff"},
		{404, "", `{"error":{"code":"","message":"x"}}`}, {400, "", `{"error":null}`},
	} {
		f.Add(s.status, s.retry, s.body)
	}
	f.Fuzz(func(t *testing.T, status int, retry, body string) {
		if status < 100 || status > 999 {
			return
		}
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			if retry != "" {
				h.Set("Retry-After", retry)
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader([]byte(body))), Request: r}, nil
		})}
		req, _ := http.NewRequest(http.MethodPost, "http://parley.test/v1/auth/login", nil)
		var s Session
		err := doJSON(hc, req, &s)
		if status/100 == 2 {
			if ok := len(body) <= maxHTTPReplyBytes && json.Unmarshal([]byte(body), new(Session)) == nil; ok != (err == nil) {
				t.Fatalf("%d %q: %v", status, body, err)
			}
			return
		}
		var pe *parley.Error
		if !errors.As(err, &pe) {
			t.Fatalf("%d %q: %v is no *parley.Error", status, body, err)
		}
		if pe.RetryAfter < 0 {
			t.Fatalf("%d Retry-After %q %q: RetryAfter %v", status, retry, body, pe.RetryAfter)
		}
	})
}
