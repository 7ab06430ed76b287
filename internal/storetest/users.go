package storetest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

func testUsers(t *testing.T, s parley.Store) {
	u, err := s.CreateUser(ctx(t), "alice", []byte("h1"))
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID == "" || u.Name != "alice" || u.CreatedAt.IsZero() {
		t.Fatalf("CreateUser = %+v", u)
	}

	_, err = s.CreateUser(ctx(t), "alice", []byte("h2"))
	wantCode(t, "CreateUser with a taken name", err, parley.ECONFLICT)
	_, err = s.CreateUser(ctx(t), "ALICE", []byte("h2"))
	wantCode(t, "CreateUser with a taken name in another case", err, parley.ECONFLICT)

	for _, bad := range []string{"", "ab", strings.Repeat("x", parley.MaxUsernameRunes+1), "a b c", "bad\xffname"} {
		_, err := s.CreateUser(ctx(t), bad, []byte("h"))
		wantCode(t, "CreateUser("+bad+")", err, parley.EINVALID)
	}

	got := must[parley.User](t, "User")(s.User(ctx(t), u.ID))
	if got != u {
		t.Errorf("User = %+v, want %+v", got, u)
	}
	got = must[parley.User](t, "UserByName")(s.UserByName(ctx(t), "alice"))
	if got != u {
		t.Errorf("UserByName = %+v, want %+v", got, u)
	}
	cu, hash, err := s.Credentials(ctx(t), "alice")
	if err != nil || cu != u || !bytes.Equal(hash, []byte("h1")) {
		t.Errorf("Credentials = %+v, %q, %v; want %+v, h1", cu, hash, err, u)
	}

	_, err = s.User(ctx(t), "nobody")
	wantCode(t, "User(unknown)", err, parley.ENOTFOUND)
	_, err = s.UserByName(ctx(t), "nobody")
	wantCode(t, "UserByName(unknown)", err, parley.ENOTFOUND)
	_, _, err = s.Credentials(ctx(t), "nobody")
	wantCode(t, "Credentials(unknown)", err, parley.ENOTFOUND)
}

func testEnsureUser(t *testing.T, s parley.Store) {
	u, err := s.EnsureUser(ctx(t), "ext-1", "Ext One")
	if err != nil {
		t.Fatalf("EnsureUser: %v", err)
	}
	if u.ID != "ext-1" || u.Name != "Ext One" {
		t.Fatalf("EnsureUser = %+v", u)
	}
	again := must[parley.User](t, "EnsureUser again")(s.EnsureUser(ctx(t), "ext-1", "Ext One"))
	if again != u {
		t.Errorf("EnsureUser again = %+v, want %+v", again, u)
	}
	renamed := must[parley.User](t, "EnsureUser rename")(s.EnsureUser(ctx(t), "ext-1", "Ext Renamed"))
	if renamed.ID != u.ID || renamed.Name != "Ext Renamed" || !renamed.CreatedAt.Equal(u.CreatedAt) {
		t.Errorf("EnsureUser rename = %+v", renamed)
	}
	if got := must[parley.User](t, "User")(s.User(ctx(t), "ext-1")); got != renamed {
		t.Errorf("User after rename = %+v, want %+v", got, renamed)
	}
	// A user made by a token has no password.
	_, _, err = s.Credentials(ctx(t), "Ext Renamed")
	wantCode(t, "Credentials of a user with no password", err, parley.ENOTFOUND)

	must[parley.User](t, "CreateUser")(s.CreateUser(ctx(t), "taken", []byte("h")))
	_, err = s.EnsureUser(ctx(t), "ext-2", "taken")
	wantCode(t, "EnsureUser with another user's name", err, parley.ECONFLICT)
	_, err = s.EnsureUser(ctx(t), "", "x")
	wantCode(t, "EnsureUser with no id", err, parley.EINVALID)
	_, err = s.EnsureUser(ctx(t), "ext-3", "")
	wantCode(t, "EnsureUser with no name", err, parley.EINVALID)
}
