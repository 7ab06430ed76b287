package server

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleychat/parley"
)

// cacheUser is a user as the store gives one: a UUID id, a name and, for
// some, a display name and an avatar, each string of its own.
func cacheUser(i int) parley.User {
	u := parley.User{ID: uuid.NewString(), Name: fmt.Sprintf("user_%d", i), CreatedAt: time.Unix(int64(i), 0).UTC()}
	if i%2 == 0 {
		u.DisplayName = strings.Repeat("é", i%40) + fmt.Sprint(i)
	}
	if i%3 == 0 {
		u.AvatarID = uuid.NewString()
	}
	return u
}

// TestUserCacheBytesReal holds userEntryBytes to the heap: a cache
// filled with n users takes no more of the heap than it counts, at
// several sizes (the map grows by doubling).
func TestUserCacheBytesReal(t *testing.T) {
	for _, n := range []int{3000, 14400, 20000, 28700, 70000} {
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		c := &userCache{budget: 1 << 30}
		for i := range n {
			c.store(cacheUser(i), false)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		entries, counted := c.size()
		heap := int(ms1.HeapAlloc) - int(ms0.HeapAlloc)
		runtime.KeepAlive(c)
		t.Logf("%d users: counted %d bytes (%d each), heap %d (%d each)", entries, counted, counted/entries, heap, heap/entries)
		if entries != n {
			t.Fatalf("%d entries, want %d", entries, n)
		}
		if heap > counted {
			t.Errorf("%d users take %d bytes of heap, more than the %d counted", n, heap, counted)
		}
	}
}

// fixedUser is a user whose entry takes userEntryFixed + 16 bytes.
func fixedUser(id string) parley.User { return parley.User{ID: id} }

// TestUserCacheClock: past its budget the cache evicts by the clock: an
// entry hit since the hand passed is spared once, a connected user's
// always, and the first other goes; what it holds never passes the
// budget, a user bigger than the whole budget is not kept, and add (the
// warm start) evicts nothing.
func TestUserCacheClock(t *testing.T) {
	one := userEntryBytes(fixedUser("a0"))
	connected := map[string]bool{"a2": true}
	c := &userCache{budget: 5 * one, inUse: func(id string) bool { return connected[id] }}
	for i := range 5 {
		c.store(fixedUser(fmt.Sprint("a", i)), false)
	}
	has := func(ids ...string) string {
		var out []string
		for _, id := range ids {
			if _, ok := c.m[id]; ok {
				out = append(out, id)
			}
		}
		return strings.Join(out, " ")
	}
	if got := has("a0", "a1", "a2", "a3", "a4"); got != "a0 a1 a2 a3 a4" {
		t.Fatalf("within the budget: %s", got)
	}
	c.load("a0") // hit: spared once
	c.store(fixedUser("b0"), false)
	if got := has("a0", "a1", "b0"); got != "a0 b0" {
		t.Errorf("after a hit on a0 and one more user: %q cached, want a0 b0 (a1 evicted)", got)
	}
	for i := range 20 { // many laps of new users
		c.store(fixedUser(fmt.Sprint("n", i)), false)
		if _, n := c.size(); n > c.budget {
			t.Fatalf("%d bytes cached, over the budget of %d", n, c.budget)
		}
	}
	if got := has("a0", "a2", "a3", "a4", "b0"); got != "a2" {
		t.Errorf("after 20 new users: %q of the first cached, want a2 (connected)", got)
	}
	if entries, n := c.size(); entries != 5 || n != 5*one {
		t.Errorf("%d entries, %d bytes; want 5, %d", entries, n, 5*one)
	}

	if c.add(fixedUser("w")) {
		t.Errorf("add of a user with no room left kept it")
	}
	if _, ok := c.m["n19"]; !ok {
		t.Errorf("add evicted the newest user")
	}
	big := parley.User{ID: "big", Name: strings.Repeat("x", 5*one)}
	c.store(big, false)
	if _, ok := c.load("big"); ok {
		t.Errorf("a user bigger than the budget was kept")
	}

	// Every entry connected: an insert still evicts one, after a bounded
	// walk, and stays within the budget.
	c.inUse = func(string) bool { return true }
	c.store(fixedUser("x"), false)
	if _, ok := c.load("x"); !ok {
		t.Errorf("with every user connected, a new one was not kept")
	}
	if entries, n := c.size(); entries != 5 || n > c.budget {
		t.Errorf("%d entries, %d bytes; want 5, at most %d", entries, n, c.budget)
	}

	// A renamed user replaces its entry (store without keep), sized anew.
	c.store(parley.User{ID: "x", Name: strings.Repeat("y", 40)}, false)
	if u, _ := c.load("x"); len(u.Name) != 40 {
		t.Errorf("the renamed user is cached as %+v", u)
	}
	if _, n := c.size(); n > c.budget {
		t.Errorf("%d bytes after a rename, over the budget of %d", n, c.budget)
	}
}

// TestWarmUsersBudget: the warm start reads no more users than the
// cache could hold, keeps the first (the most recently active) that fit
// and evicts none of those already cached.
func TestWarmUsersBudget(t *testing.T) {
	ctx := t.Context()
	store, _ := hubParts(t)
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("w%02d", i)
		if _, err := store.EnsureUser(ctx, id, "User "+id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	one := userEntryBytes(parley.User{ID: "w00", Name: "User w00"})
	svc := &service{store: store}
	svc.ensured.budget = 10 * one
	svc.ensured.store(parley.User{ID: "live", Name: "live"}, false)
	if err := svc.warmUsers(ctx, ids); err != nil {
		t.Fatal(err)
	}
	entries, n := svc.ensured.size()
	if n > svc.ensured.budget {
		t.Errorf("warmed to %d bytes, over the budget of %d", n, svc.ensured.budget)
	}
	if _, ok := svc.ensured.load("live"); !ok {
		t.Errorf("warming evicted a user cached before")
	}
	if entries < 9 {
		t.Errorf("%d users cached after warming into room for 9 more", entries)
	}
	for _, id := range ids[svc.ensured.budget/(userEntryFixed+2*16):] {
		if _, ok := svc.ensured.load(id); ok {
			t.Errorf("%s, past what the budget could hold, was read and kept", id)
		}
	}
}
