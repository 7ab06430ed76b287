package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/servertest"
)

// FuzzConsentHTTP: arbitrary privacy bodies and user or conversation path
// segments on the consent routes never get a 5xx, and always JSON.
func FuzzConsentHTTP(f *testing.F) {
	for _, s := range [][2]string{
		{`{"consent":"contacts"}`, "bob"}, {`{"consent":"everyone"}`, "alice"}, {`{"consent":""}`, ""},
		{`{"consent":5}`, "nobody"}, {`[]`, "%00"}, {`{`, "x/y"}, {"\xff", "\xff"}, {`null`, strings.Repeat("a", 300)},
	} {
		f.Add(s[0], s[1])
	}
	srv := servertest.Start(f)
	tok := srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	f.Fuzz(func(t *testing.T, body, seg string) {
		seg = url.PathEscape(seg)
		for _, r := range []struct{ method, path, body string }{
			{"PATCH", "/v1/me/privacy", body},
			{"PUT", "/v1/me/blocked/" + seg, ""},
			{"DELETE", "/v1/me/blocked/" + seg, ""},
			{"POST", "/v1/conversations/" + seg + "/accept", ""},
			{"POST", "/v1/conversations/" + seg + "/decline", ""},
		} {
			req, err := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(r.body))
			if err != nil {
				return // not a URL at all: nothing reaches the server
			}
			requireJSONNot5xx(t, req, tok, r.body)
		}
	})
}
