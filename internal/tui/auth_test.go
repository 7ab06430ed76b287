package tui

import (
	"context"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/servertest"
)

func TestLoginAndLookup(t *testing.T) {
	srv := servertest.Start(t)
	_, bob := srv.Register(t, "bob", "correct horse battery")
	srv.Register(t, "alice", "another good password")
	ctx := context.Background()

	if _, err := Login(ctx, srv.URL, "alice", "wrong password"); parley.ErrorCode(err) != parley.EUNAUTHORIZED {
		t.Fatalf("wrong password: err %v, want unauthorized", err)
	}
	s, err := Login(ctx, srv.URL, "alice", "another good password")
	if err != nil || s.User.Name != "alice" || s.Token == "" {
		t.Fatalf("login: %+v, %v", s, err)
	}
	u, err := LookupUser(ctx, srv.URL, s.Token, "bob")
	if err != nil || u.ID != bob.ID {
		t.Fatalf("lookup bob: %+v, %v; want id %s", u, err, bob.ID)
	}
	if _, err := LookupUser(ctx, srv.URL, s.Token, "nobody"); parley.ErrorCode(err) != parley.ENOTFOUND {
		t.Fatalf("lookup nobody: err %v, want not_found", err)
	}

	// The token source connects a client.
	pl := NewPasswordLogin(srv.URL, "alice", "another good password", s)
	c := servertest.Connect(ctx, t, srv.URL, client.WithTokenSource(pl.Token))
	if c.User().Name != "alice" {
		t.Fatalf("connected as %+v", c.User())
	}
}
