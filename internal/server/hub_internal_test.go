package server

import (
	"slices"
	"testing"

	"github.com/parleychat/parley"
)

// userConns lists the connections the hub would deliver uid's events to.
func (h *hub) userConns(uid string) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cs []*conn
	for c := h.users[uid]; c != nil; c = c.hubNext {
		cs = append(cs, c)
	}
	return cs
}

// TestHubUserList registers several connections per user and removes them
// in every position of the per-user list: each remaining connection must
// still receive its user's events exactly once, and unregister must say
// when the user's last connection went.
func TestHubUserList(t *testing.T) {
	h := newHub(nil, nil, nil)
	h.start([]int64{0})
	newC := func(uid string) *conn { return &conn{user: parley.User{ID: uid}} }
	a1, a2, a3, a4, b1 := newC("a"), newC("a"), newC("a"), newC("a"), newC("b")
	for _, c := range []*conn{a1, a2, b1, a3, a4} {
		h.register(c, nil, nil)
	}
	same := func(got, want []*conn) bool {
		return len(got) == len(want) && !slices.ContainsFunc(want, func(c *conn) bool { return !slices.Contains(got, c) })
	}
	check := func(uid string, want ...*conn) {
		t.Helper()
		if got := h.userConns(uid); !same(got, want) {
			t.Fatalf("%s's connections: got %d %v, want %d %v", uid, len(got), got, len(want), want)
		}
	}
	check("a", a1, a2, a3, a4)
	check("b", b1)
	if got := h.conns(); !same(got, []*conn{a1, a2, a3, a4, b1}) {
		t.Fatalf("conns: got %v", got)
	}
	steps := []struct {
		c    *conn
		last bool
		left []*conn
	}{
		{a2, false, []*conn{a1, a3, a4}}, // the middle
		{a4, false, []*conn{a1, a3}},     // the first (registered last)
		{a1, false, []*conn{a3}},         // the tail
		{a3, true, nil},                  // the only one
	}
	for _, st := range steps {
		if last := h.unregister(st.c); last != st.last {
			t.Fatalf("unregister: last = %v, want %v", last, st.last)
		}
		check("a", st.left...)
	}
	check("b", b1)
	if _, ok := h.users["a"]; ok {
		t.Fatal("a user with no connection is still in the map")
	}
	if !h.unregister(b1) {
		t.Fatal("b1 was b's last connection")
	}
	if len(h.users) != 0 {
		t.Fatalf("users left: %v", h.users)
	}
}
