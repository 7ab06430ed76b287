package server_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// FuzzServerAPI sends arbitrary bodies and path segments to every route
// of the server API (/v1/server/...) with a key of every scope: the
// answer is never a 5xx and always JSON. A key is trusted, but what it
// sends is parsed all the same (decodeBody, the path's ids, the
// export's after= and the conversations' cursor=), and a backend with a
// bug sends anything. "$conv" in a body or segment stands for a real
// group of alice's and bob's.
func FuzzServerAPI(f *testing.F) {
	for _, s := range [][2]string{
		{`{"id":"u1","name":"User One"}`, "u1"},
		{`{"name":"Renamed"}`, "bob"},
		{`{"kind":"group","created_by":"alice","title":"t","member_ids":["bob"]}`, "alice"},
		{`{"kind":"direct","created_by":"alice","member_ids":["bob"]}`, "$conv"},
		{`{"as":"alice","client_id":"c1","text":"hi"}`, "$conv"},
		{`{"as":"alice","user_ids":["u1","nobody"]}`, "$conv"},
		{`{"ttl_seconds":60}`, "bob"}, {`{"ttl_seconds":-1}`, "bob"}, {`{"ttl_seconds":1e99}`, "bob"},
		{`{"as":5}`, "%00"}, {`{"id":"` + strings.Repeat("a", 200) + `"}`, strings.Repeat("a", 200)},
		{`[]`, "x/y"}, {`{`, "\xff"}, {"\xff", ""}, {``, "1:x"}, {`null`, "-"},
	} {
		f.Add(s[0], s[1])
	}
	srv := servertest.Start(f, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	tok := srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	conv := decodeJSON[parley.Conversation](f, httpDo(f, srv, "POST", "/v1/conversations/group", tok,
		`{"title":"g","member_ids":["bob"]}`).body).ID
	_, key := newAPIKey(f, srv, auth.Scopes...)
	f.Fuzz(func(t *testing.T, body, seg string) {
		body = strings.ReplaceAll(body, "$conv", conv)
		seg = strings.ReplaceAll(seg, "$conv", conv)
		p, q := url.PathEscape(seg), url.QueryEscape(seg)
		for _, r := range []struct{ method, path, body string }{
			{"POST", "/v1/server/users", body},
			{"PATCH", "/v1/server/users/" + p, body},
			{"GET", "/v1/server/users/" + p + "/export?after=" + q, ""},
			{"GET", "/v1/server/users/" + p + "/conversations?cursor=" + q, ""},
			{"POST", "/v1/server/users/" + p + "/tokens", body},
			{"POST", "/v1/server/conversations", body},
			{"POST", "/v1/server/conversations/" + p + "/members", body},
			{"POST", "/v1/server/conversations/" + p + "/messages", body},
			{"DELETE", "/v1/server/conversations/" + conv + "/messages/" + p, ""},
			{"POST", "/v1/server/users/" + p + "/ban", ""},
			{"DELETE", "/v1/server/users/" + p, ""},
		} {
			requireJSONNot5xx(t, srv, key, r.method, r.path, r.body)
		}
	})
}
