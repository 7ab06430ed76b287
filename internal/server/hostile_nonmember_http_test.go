package server_test

import (
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestHostileNonMemberHTTP calls every HTTP route of a conversation (each
// pattern under /v1/conversations/{id}) as a user who is not in it: each
// answers exactly as for a conversation that does not exist, so the
// answers tell nothing of it, and nothing in it changes.
func TestHostileNonMemberHTTP(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	alice := srv.Token(t, "alice", "Alice")
	srv.Token(t, "bob", "Bob")
	mallory := srv.Token(t, "mallory", "Mallory")
	conv := decodeJSON[parley.Conversation](t, httpDo(t, srv, "POST", "/v1/conversations/group", alice, `{"title":"secret","member_ids":["bob"]}`).body).ID
	msg := decodeJSON[parley.Message](t, httpDo(t, srv, "POST", "/v1/conversations/"+conv+"/messages", alice, `{"client_id":"c1","text":"private"}`).body).ID
	bodies := map[string]string{
		"POST /v1/conversations/{id}/messages":        `{"client_id":"m1","text":"hi"}`,
		"PATCH /v1/conversations/{id}/messages/{mid}": `{"client_id":"e1","text":"mine"}`,
		"PATCH /v1/conversations/{id}":                `{"title":"mine"}`,
		"PATCH /v1/conversations/{id}/flags":          `{"muted":true}`,
		"POST /v1/conversations/{id}/read":            `{"seq":1}`,
		"POST /v1/conversations/{id}/typing":          `{"typing":true}`,
	}
	n := 0
	for _, p := range srv.Server.RoutePatterns() {
		method, path, ok := strings.Cut(p, " ")
		if !ok || !strings.HasPrefix(path, "/v1/conversations/{id}") {
			continue
		}
		n++
		var got [2]string
		for i, id := range []string{conv, "no-such-conversation"} {
			u := strings.NewReplacer("{id}", id, "{mid}", msg, "{emoji}", "%F0%9F%91%8D").Replace(path)
			r := httpDo(t, srv, method, u, mallory, bodies[p])
			got[i] = r.err.Code
			if r.status < 400 {
				got[i] = string(r.body)
			}
		}
		if got[0] != got[1] || got[0] != parley.ENOTFOUND {
			t.Errorf("%s by a non-member: %q, for no conversation %q; want not_found for both", p, got[0], got[1])
		}
	}
	if n < 10 {
		t.Fatalf("only %d routes of a conversation", n)
	}
	page := decodeJSON[parley.MessagePage](t, httpDo(t, srv, "GET", "/v1/conversations/"+conv+"/messages", alice, "").body)
	if len(page.Messages) != 1 || page.Messages[0].Text != "private" || page.Messages[0].EditedAt != nil {
		t.Fatalf("the conversation changed: %+v", page)
	}
}
