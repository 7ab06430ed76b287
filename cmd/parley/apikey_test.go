package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAPIKeyCommands: create prints a key the running server accepts for
// its scopes only, list shows it without the key, revoke ends it.
func TestAPIKeyCommands(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	cmd := testServe(dir)
	cmd.WebhookMaxBacklog, cmd.WebhookTimeout, cmd.WebhookBackoffBase, cmd.WebhookBackoffMax = 10, time.Second, time.Second, time.Second
	m := NewMain(cmd, &streams{out: &logs, err: &logs})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(args, "--data-dir", dir), nil, &out, &errb)
		return strings.TrimSpace(out.String()), err
	}
	if _, err := cli("apikey", "create", "--name", "x", "--scopes", "users,bogus"); err == nil {
		t.Error("create with an unknown scope: no error")
	}
	key, err := cli("apikey", "create", "--name", "push backend", "--scopes", "users")
	if err != nil || !strings.HasPrefix(key, "pk_") {
		t.Fatalf("create = %q, %v", key, err)
	}
	post := func(path, body string) int {
		req, _ := http.NewRequest("POST", "http://"+m.Addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post("/v1/server/users", `{"id":"zed","name":"Zed"}`); st != http.StatusOK {
		t.Errorf("users with the key: %d", st)
	}
	if st := post("/v1/server/users/zed/tokens", `{}`); st != http.StatusForbidden {
		t.Errorf("tokens with a users key: %d, want 403", st)
	}
	list, err := cli("apikey", "list")
	id := strings.TrimPrefix(key, "pk_")[:16]
	if err != nil || !strings.Contains(list, id) || !strings.Contains(list, "push backend") || strings.Contains(list, key) {
		t.Fatalf("list = %q, %v (want the id and name, never the key)", list, err)
	}
	if _, err := cli("apikey", "revoke", id); err != nil {
		t.Fatal(err)
	}
	if st := post("/v1/server/users", `{"id":"zed","name":"Zed"}`); st != http.StatusUnauthorized {
		t.Errorf("after revoke: %d, want 401", st)
	}
	if _, err := cli("apikey", "revoke", "nope"); err == nil {
		t.Error("revoking an unknown id: no error")
	}
}
