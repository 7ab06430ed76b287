package servertest

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// Response is an HTTP answer read whole by Do.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends an HTTP request for a test, as another device or a script
// would, and reads the whole answer. token, when not empty, is sent as a
// bearer token; body, when not nil, as application/json unless header
// names another Content-Type; header is name, value pairs (an empty value
// removes the header). A request that
// cannot be built or sent fails t; the status is the caller's to check
// (Call checks it).
func Do(t testing.TB, method, url, token string, body []byte, header ...string) Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Call is Do for a request that must succeed: it fails t unless the
// answer's status is want (0: any 2xx), and returns the body.
func Call(t testing.TB, method, url, token string, body []byte, want int) []byte {
	t.Helper()
	r := Do(t, method, url, token, body)
	if want == 0 && r.Status/100 != 2 || want != 0 && r.Status != want {
		t.Fatalf("%s %s: HTTP %d %s", method, url, r.Status, r.Body)
	}
	return r.Body
}
