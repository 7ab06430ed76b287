package indietest

// Section 12: the server API with API keys.

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// apiKey makes a key with `parley apikey create` on the server's store.
func (e *env) apiKey(t *testing.T, scopes string) string {
	t.Helper()
	out, err := exec.Command(e.bin, "apikey", "create", "--name", "conformance", "--scopes", scopes, "--data-dir", e.dir).Output()
	if err != nil {
		t.Fatalf("parley apikey create: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		if strings.HasPrefix(f, "pk_") {
			return f
		}
	}
	t.Fatalf("no pk_ key in %q", out)
	return ""
}

var _ = check("server api", func(t *testing.T, e *env) {
	key := e.apiKey(t, "all")
	usersOnly := e.apiKey(t, "users")
	id, id2 := e.unique("srv"), e.unique("srv")
	for _, u := range []string{id, id2} {
		if r := e.http(t, "POST", "/v1/server/users", key, map[string]any{"id": u, "name": u}); r.status != 200 || !strings.Contains(string(r.body), `"id":"`+u+`"`) {
			t.Fatalf("POST /v1/server/users: %d %s", r.status, r.body)
		}
	}
	if r := e.http(t, "PATCH", "/v1/server/users/"+id, key, map[string]any{"name": id + "-renamed"}); r.status != 200 {
		t.Errorf("PATCH user: %d %s", r.status, r.body)
	}
	if r := e.http(t, "PATCH", "/v1/server/users/nobody-"+id, key, map[string]any{"name": "x"}); r.status != 404 {
		t.Errorf("PATCH an unknown user: %d %s", r.status, r.body)
	}
	// Auth: no key, a user's token, an unknown key, a key without the scope.
	u := e.newUser(t, "sa")
	for _, tc := range []struct {
		key    string
		status int
	}{{"", 401}, {u.token, 401}, {"pk_unknown", 401}, {usersOnly, 403}} {
		if r := e.http(t, "POST", "/v1/server/users/"+id+"/tokens", tc.key, map[string]any{}); r.status != tc.status {
			t.Errorf("tokens with key %.10q: %d %s, want %d", tc.key, r.status, r.body, tc.status)
		}
	}
	r := e.http(t, "POST", "/v1/server/users/"+id+"/tokens", key, map[string]any{"ttl_seconds": 600})
	var tok struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	json.Unmarshal(r.body, &tok)
	if r.status != 201 || tok.Token == "" {
		t.Fatalf("POST tokens: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/server/users/"+id+"/tokens", key, map[string]any{"ttl_seconds": 2592001}); r.status != 400 {
		t.Errorf("ttl_seconds over 30 days: %d %s", r.status, r.body)
	}
	r = e.http(t, "POST", "/v1/server/conversations", key, map[string]any{"kind": "group", "created_by": id, "title": "integrated", "member_ids": []string{id2}})
	var c conv
	json.Unmarshal(r.body, &c)
	if r.status != 201 || c.ID == "" || c.member(id).Role != "owner" {
		t.Fatalf("POST conversations: %d %s", r.status, r.body)
	}
	r = e.http(t, "POST", "/v1/server/conversations", key, map[string]any{"kind": "direct", "created_by": id, "member_ids": []string{id2}})
	var d conv
	json.Unmarshal(r.body, &d)
	if r.status != 201 || d.Kind != "direct" {
		t.Errorf("POST direct: %d %s", r.status, r.body)
	}
	msg := map[string]any{"as": id, "client_id": e.unique("s-"), "text": "from the backend"}
	if r := e.http(t, "POST", "/v1/server/conversations/"+c.ID+"/messages", key, msg); r.status != 201 {
		t.Errorf("POST message: %d %s", r.status, r.body)
	}
	r = e.http(t, "POST", "/v1/server/conversations/"+c.ID+"/messages", key, msg)
	var sm wmsg
	json.Unmarshal(r.body, &sm)
	if r.status != 200 {
		t.Errorf("POST the same client_id: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/server/conversations/"+c.ID+"/messages", key, map[string]any{"as": u.id, "client_id": "x", "text": "x"}); r.status != 404 {
		t.Errorf("as a non-member: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/server/conversations/"+c.ID+"/members", key, map[string]any{"as": id, "user_ids": []string{u.id}}); r.status != 200 {
		t.Errorf("POST members: %d %s", r.status, r.body)
	}
	r = e.http(t, "GET", "/v1/server/users/"+id+"/export", key, nil)
	var ex struct {
		User          map[string]any `json:"user"`
		Conversations []conv         `json:"conversations"`
		Messages      []wmsg         `json:"messages"`
		Next          *string        `json:"next"`
	}
	json.Unmarshal(r.body, &ex)
	if r.status != 200 || len(ex.Messages) != 1 || len(ex.Conversations) != 2 || ex.Next != nil {
		t.Errorf("export: %d %.400s", r.status, r.body)
	}
	r = e.http(t, "GET", "/v1/server/users/"+id+"/conversations?limit=1", key, nil)
	var cp struct {
		Conversations []conv  `json:"conversations"`
		HasMore       bool    `json:"has_more"`
		Next          *string `json:"next"`
	}
	json.Unmarshal(r.body, &cp)
	if r.status != 200 || len(cp.Conversations) != 1 || !cp.HasMore || cp.Next == nil {
		t.Errorf("GET user conversations limit 1: %d %.300s", r.status, r.body)
	}
	if r := e.http(t, "GET", "/v1/server/users/nobody-"+id+"/conversations", key, nil); r.status != 404 {
		t.Errorf("conversations of an unknown user: %d", r.status)
	}
	if r := e.http(t, "DELETE", "/v1/server/conversations/"+c.ID+"/messages/"+sm.ID, key, nil); r.status != 200 || !strings.Contains(string(r.body), `"deleted":true`) {
		t.Errorf("DELETE message: %d %s", r.status, r.body)
	}

	// Ban: the user's connections close with 4102, their tokens then get 4100.
	banned := e.connectAs(t, id, id, tok.Token, nil)
	r = e.http(t, "POST", "/v1/server/users/"+id+"/ban", key, nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"banned":true`) {
		t.Errorf("ban: %d %s", r.status, r.body)
	}
	for {
		if _, ok := banned.recv(5 * time.Second); !ok {
			break
		}
	}
	if st := websocket.CloseStatus(banned.closeErr); st != 4102 {
		t.Errorf("a banned user's connection: close %d (%v), want 4102", st, banned.closeErr)
	}
	if r := e.http(t, "GET", "/v1/me", tok.Token, nil); r.status != 401 {
		t.Errorf("a banned user's token: %d", r.status)
	}
	if r := e.http(t, "POST", "/v1/server/users/"+id+"/tokens", key, nil); r.status != 403 {
		t.Errorf("a token for a banned user: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/server/users/"+id+"/ban", key, nil); r.status != 200 {
		t.Errorf("ban again: %d %s", r.status, r.body)
	}
	// Erase: repeat until done.
	for i := 0; ; i++ {
		r := e.http(t, "DELETE", "/v1/server/users/"+id2, key, nil)
		var del struct {
			Done bool `json:"done"`
		}
		json.Unmarshal(r.body, &del)
		if r.status != 200 || i > 5 {
			t.Fatalf("DELETE user: %d %s", r.status, r.body)
		}
		if del.Done {
			break
		}
	}
})
