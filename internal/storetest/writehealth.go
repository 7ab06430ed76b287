package storetest

import (
	"testing"

	"github.com/parleychat/parley"
)

// testWriteHealth: a store reports whether it can write (WriteErr, read
// by the server's /readyz): nil on a fresh store and after writes that
// committed, and writes the store refused for the caller's own fault (a
// conflict, a missing user) do not make it report a failure. Each
// engine's tests make writes fail for the engine's own reasons (a full
// disk, a read-only database) and check the failure side.
func testWriteHealth(t *testing.T, s parley.Store) {
	wh := optional[interface{ WriteErr() error }](t, s)
	if err := wh.WriteErr(); err != nil {
		t.Fatalf("a fresh store reports %v", err)
	}
	alice := newUser(t, s, "health")
	_, _, err := s.CreateGroup(ctx(t), alice.ID, "g", []string{"nobody-" + alice.ID})
	wantCode(t, "a group with an unknown member", err, parley.ENOTFOUND)
	if err := wh.WriteErr(); err != nil {
		t.Fatalf("after a refused write and a committed one: %v", err)
	}
}
