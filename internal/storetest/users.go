package storetest

import (
	"bytes"
	"errors"
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

// testLookAlikeNames: names are stored in their PRECIS form
// (parley.NormalizeUsername) and unique by parley.NameKey, so a name that
// only looks like another (another script's letters, a dotless i, full
// width) is ECONFLICT, in CreateUser and in EnsureUser alike; lookups
// find a user by any form of its name.
func testLookAlikeNames(t *testing.T, s parley.Store) {
	admin := must[parley.User](t, "CreateUser(Admin)")(s.CreateUser(ctx(t), "Admin", []byte("h")))
	if admin.Name != "admin" {
		t.Errorf("CreateUser(Admin).Name = %q, want the PRECIS form %q", admin.Name, "admin")
	}
	for _, name := range []string{"admin", "ADMIN", "\u0430dmin", "adm\u0131n", "ａｄｍｉｎ", "\u0430dm\u0131n"} {
		_, err := s.CreateUser(ctx(t), name, []byte("h"))
		wantCode(t, "CreateUser("+name+")", err, parley.ECONFLICT)
		_, err = s.EnsureUser(ctx(t), "ext-"+name, name)
		wantCode(t, "EnsureUser(ext, "+name+")", err, parley.ECONFLICT)
		got, err := s.UserByName(ctx(t), name)
		if err != nil || got != admin {
			t.Errorf("UserByName(%q) = %+v, %v; want %+v", name, got, err, admin)
		}
	}
	_, err := s.CreateUser(ctx(t), "\u0430dmin", []byte("h"))
	if e := (*parley.Error)(nil); !errors.As(err, &e) || !strings.Contains(e.Message, "looks like an existing one") {
		t.Errorf("CreateUser(look-alike): %v, want a message saying it looks like an existing name", err)
	}

	emile := must[parley.User](t, "CreateUser(Émile)")(s.CreateUser(ctx(t), "E\u0301mile", []byte("h-emile")))
	if emile.Name != "émile" {
		t.Errorf("CreateUser(E + combining acute + mile).Name = %q, want %q", emile.Name, "émile")
	}
	if _, hash, err := s.Credentials(ctx(t), "ÉMILE"); err != nil || string(hash) != "h-emile" {
		t.Errorf("Credentials(ÉMILE) = %q, %v; want émile's hash", hash, err)
	}

	// A display name from a token takes its key too: a later register of
	// a look-alike is refused, and the token user may rename to a name
	// only it holds.
	ext := must[parley.User](t, "EnsureUser(Zoë)")(s.EnsureUser(ctx(t), "ext-zoe", "Zoë"))
	_, err = s.CreateUser(ctx(t), "zoë", []byte("h"))
	wantCode(t, "CreateUser(zoë) after EnsureUser(Zoë)", err, parley.ECONFLICT)
	if r := must[parley.User](t, "EnsureUser(ZOË)")(s.EnsureUser(ctx(t), "ext-zoe", "ZOË")); r.ID != ext.ID || r.Name != "ZOË" {
		t.Errorf("EnsureUser rename to its own key = %+v", r)
	}
	must[parley.User](t, "EnsureUser(Zed)")(s.EnsureUser(ctx(t), "ext-zoe", "Zed"))
	must[parley.User](t, "CreateUser(zoë) after the rename")(s.CreateUser(ctx(t), "zoë", []byte("h")))
}
