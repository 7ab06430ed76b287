package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// FuzzReceiptsAndProfile: any body to POST /v1/delivered and PATCH
// /v1/me gets a JSON answer below 500, and a profile the server accepted
// holds a display name NormalizeProfileName keeps as it is.
func FuzzReceiptsAndProfile(f *testing.F) {
	for _, s := range []string{
		`{"conversations":[{"conversation_id":"x","seq":1}]}`, `{"conversations":[{"conversation_id":"$conv","seq":1}]}`, `{"conversations":[]}`, `{"conversations":null}`,
		`{"conversations":[{"conversation_id":"","seq":-1}]}`, `{"conversations":[{"seq":9223372036854775807}]}`,
		`{"display_name":"Alice"}`, `{"display_name":"a\u202eb"}`, `{"avatar_id":""}`, `{"avatar_id":"nope"}`,
		`{"display_name":"  x  ","avatar_id":null}`, `{"display_name":5}`, `{}`, `[]`, `{`, "\xff", ``, `null`,
	} {
		f.Add(s)
	}
	srv := servertest.Start(f, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	tok := srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	conv := decodeJSON[parley.Conversation](f, httpDo(f, srv, "POST", "/v1/conversations/direct", tok, `{"user_id":"bob"}`).body).ID
	httpDo(f, srv, "POST", "/v1/conversations/"+conv+"/messages", tok, `{"client_id":"f1","text":"m"}`)
	f.Fuzz(func(t *testing.T, body string) {
		body = strings.ReplaceAll(body, "$conv", conv)
		for _, r := range []struct{ method, path string }{{"POST", "/v1/delivered"}, {"PATCH", "/v1/me"}} {
			req, _ := http.NewRequest(r.method, srv.URL+r.path, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var u parley.User
			err = json.NewDecoder(resp.Body).Decode(&u)
			resp.Body.Close()
			if resp.StatusCode >= 500 || err != nil {
				t.Fatalf("%s %s %q: %d (json err %v)", r.method, r.path, body, resp.StatusCode, err)
			}
			if r.path == "/v1/me" && resp.StatusCode == http.StatusOK {
				if n, err := parley.NormalizeProfileName(u.DisplayName); err != nil || n != u.DisplayName {
					t.Fatalf("accepted display name %q: normalised %q, %v", u.DisplayName, n, err)
				}
			}
		}
	})
}
