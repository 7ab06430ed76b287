package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestRegisterAndLogin: Register and Login over the real HTTP API give
// tokens a client connects with, and the server's refusals arrive as
// their parley error codes.
func TestRegisterAndLogin(t *testing.T) {
	srv := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	reg, err := client.Register(ctx, srv.URL, "Alice", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if reg.Token == "" || reg.User.Name != "alice" || reg.User.ID == "" || !reg.ExpiresAt.After(time.Now()) {
		t.Fatalf("register: %+v", reg)
	}
	if _, err := client.Register(ctx, srv.URL, "alice", "another password"); parley.ErrorCode(err) != parley.ECONFLICT {
		t.Fatalf("second register: %v, want conflict", err)
	}
	// Any form New takes names the server, the WebSocket URL included.
	in, err := client.Login(ctx, srv.WSURL(), "alice", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if in.User.ID != reg.User.ID || in.Token == "" {
		t.Fatalf("login: %+v, want user %s", in, reg.User.ID)
	}
	if _, err := client.Login(ctx, srv.URL, "alice", "wrong password"); parley.ErrorCode(err) != parley.EUNAUTHORIZED {
		t.Fatalf("wrong password: %v, want unauthorized", err)
	}
	c := servertest.Connect(ctx, t, srv.URL, client.WithToken(in.Token))
	if c.User().ID != reg.User.ID {
		t.Fatalf("connected as %+v, want %s", c.User(), reg.User.ID)
	}

	closed := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Accounts.Registration = server.RegistrationClosed }))
	if _, err := client.Register(ctx, closed.URL, "bob", "correct horse battery"); parley.ErrorCode(err) != parley.EFORBIDDEN {
		t.Fatalf("register on a closed server: %v, want forbidden", err)
	}
}

// TestCreateDirectByIDAndName: CreateDirect (by id) and CreateDirectByName
// (any form of the name) find the same conversation; empty arguments are
// refused before any request.
func TestCreateDirectByIDAndName(t *testing.T) {
	srv := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, alice := srv.Register(t, "alice", "correct horse battery")
	_, bob := srv.Register(t, "bob", "correct horse battery")
	c := servertest.Connect(ctx, t, srv.URL, client.WithToken(srv.Token(t, alice.ID, alice.Name)))
	byID, err := c.CreateDirect(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	byName, err := c.CreateDirectByName(ctx, "BOB")
	if err != nil {
		t.Fatal(err)
	}
	if byID.ID == "" || byID.ID != byName.ID || byID.Kind != parley.Direct {
		t.Fatalf("by id %+v, by name %+v: want one direct conversation", byID, byName)
	}
	if _, err := c.CreateDirectByName(ctx, "nobody"); parley.ErrorCode(err) != parley.ENOTFOUND {
		t.Fatalf("unknown name: %v, want not_found", err)
	}
	if _, err := c.CreateDirect(ctx, ""); parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("empty id: %v, want invalid", err)
	}
	if _, err := c.CreateDirectByName(ctx, ""); parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("empty name: %v, want invalid", err)
	}
}
