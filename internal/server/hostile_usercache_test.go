package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestHostileUserCacheBound: open registration (or an integrator's
// tokens) lets anyone make users for ever, and every user a node checks
// in the store is cached. With a budget of 24 KiB, 400 new users each
// making a request leave the cache within the budget, while the user
// connected all along stays cached; a user the cache forgot is read
// from the store again, name and all (a renamed "name (id)" one too).
// Before the bound the cache held every user: 400 entries, ~100 KiB.
func TestHostileUserCacheBound(t *testing.T) {
	const budget = 24 << 10
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Unlimited()
		c.Limits.UserCacheBytes = budget
	}))
	mint := func(id, name string) string {
		tok, _, err := auth.Mint(srv.Secret, id, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	keeper := connect(t, srv, mint("keeper", "Keeper"), nil)
	if keeper.welcome.User.ID != "keeper" {
		t.Fatalf("welcome user %+v", keeper.welcome.User)
	}
	// Another user holds the name "Early": the flood's first user is
	// shown as "Early (u000)".
	srv.Token(t, "other", "Early")

	const users = 400
	maxBytes := 0
	for i := range users {
		id, name := fmt.Sprintf("u%03d", i), fmt.Sprintf("Flood user %d", i)
		if i == 0 {
			name = "Early"
		}
		r := httpDo(t, srv, http.MethodGet, "/v1/me", mint(id, name), "")
		if r.status != http.StatusOK {
			t.Fatalf("GET /v1/me as %s: %d %s", id, r.status, r.body)
		}
		_, n := srv.Server.UserCache()
		maxBytes = max(maxBytes, n)
	}
	entries, n := srv.Server.UserCache()
	t.Logf("after %d users: %d cached, %d bytes (at most %d)", users+1, entries, n, maxBytes)
	if maxBytes > budget {
		t.Errorf("the user cache held %d bytes, over its budget of %d", maxBytes, budget)
	}
	if entries >= users {
		t.Errorf("the user cache holds %d users of %d: nothing was evicted", entries, users+1)
	}
	if !srv.Server.UserCached("keeper") {
		t.Errorf("the connected user was evicted")
	}

	// The miss path: the first users are forgotten, and their tokens
	// work as before, with the user as stored.
	if srv.Server.UserCached("u000") || srv.Server.UserCached("u001") {
		t.Fatalf("the flood's first users are still cached: no miss to test")
	}
	for _, w := range []struct{ id, name, want string }{
		{"u000", "Early", "Early (u000)"},
		{"u001", "Flood user 1", "Flood user 1"},
	} {
		r := httpDo(t, srv, http.MethodGet, "/v1/me", mint(w.id, w.name), "")
		var u parley.User
		if r.status != http.StatusOK || json.Unmarshal(r.body, &u) != nil || u.ID != w.id || u.Name != w.want {
			t.Errorf("GET /v1/me as forgotten %s: %d %s, want %q", w.id, r.status, r.body, w.want)
		}
		c := connect(t, srv, mint(w.id, w.name), nil)
		if got := c.welcome.User; got.ID != w.id || got.Name != w.want {
			t.Errorf("welcome of forgotten %s: %+v, want name %q", w.id, got, w.want)
		}
	}
	if _, n := srv.Server.UserCache(); n > budget {
		t.Errorf("the user cache holds %d bytes, over its budget of %d", n, budget)
	}
}
