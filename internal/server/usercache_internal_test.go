package server

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
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
			c.store(cacheUser(i), c.generationAny())
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
		c.store(fixedUser(fmt.Sprint("a", i)), c.generationAny())
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
	c.store(fixedUser("b0"), c.generationAny())
	if got := has("a0", "a1", "b0"); got != "a0 b0" {
		t.Errorf("after a hit on a0 and one more user: %q cached, want a0 b0 (a1 evicted)", got)
	}
	for i := range 20 { // many laps of new users
		c.store(fixedUser(fmt.Sprint("n", i)), c.generationAny())
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

	if c.add(fixedUser("w"), c.generationAny()) {
		t.Errorf("add of a user with no room left kept it")
	}
	if _, ok := c.m["n19"]; !ok {
		t.Errorf("add evicted the newest user")
	}
	big := parley.User{ID: "big", Name: strings.Repeat("x", 5*one)}
	c.store(big, c.generationAny())
	if _, ok := c.load("big"); ok {
		t.Errorf("a user bigger than the budget was kept")
	}

	// Every entry connected: an insert still evicts one, after a bounded
	// walk, and stays within the budget.
	c.inUse = func(string) bool { return true }
	c.store(fixedUser("x"), c.generationAny())
	if _, ok := c.load("x"); !ok {
		t.Errorf("with every user connected, a new one was not kept")
	}
	if entries, n := c.size(); entries != 5 || n > c.budget {
		t.Errorf("%d entries, %d bytes; want 5, at most %d", entries, n, c.budget)
	}

	// A renamed user replaces its entry (store without keep), sized anew.
	c.store(parley.User{ID: "x", Name: strings.Repeat("y", 40)}, c.generationAny())
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
	svc.ensured.store(parley.User{ID: "live", Name: "live"}, svc.ensured.generation("live"))
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

// changeDuringRead is a store whose EnsureUser calls during after its
// read: a user's change lands (its notice, a forget) while a hello's
// check of that user is under way.
type changeDuringRead struct {
	parley.Store
	during func()
}

func (s *changeDuringRead) EnsureUser(ctx context.Context, id, name string) (parley.User, error) {
	u, err := s.Store.EnsureUser(ctx, id, name)
	if s.during != nil {
		s.during()
	}
	return u, err
}

// TestUserReadRacingChange: a hello's check that read a user before a
// change and ends after the change's notice (forget) does not cache what
// it read, which may be the old profile (it did, and the node welcomed
// the user with it until it forgot them); a check with no change under
// way does. Every entry goes when the broker reports it may have lost
// messages (lost moved: a notice may have been among them).
func TestUserReadRacingChange(t *testing.T) {
	ctx := t.Context()
	store, _ := hubParts(t)
	if _, err := store.EnsureUser(ctx, "dave", "Dave"); err != nil {
		t.Fatal(err)
	}
	st := &changeDuringRead{Store: store}
	var lost atomic.Uint64
	svc := &service{store: st}
	svc.ensured.lost = lost.Load
	st.during = func() { svc.ensured.forget("dave") }
	if _, err := svc.checkUserNow(ctx, "dave", "Dave"); err != nil {
		t.Fatal(err)
	}
	if u, ok := svc.ensured.load("dave"); ok {
		t.Errorf("a user read before a change to them and stored after it was cached: %+v", u)
	}
	st.during = nil
	if _, err := svc.checkUserNow(ctx, "dave", "Dave"); err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.ensured.load("dave"); !ok {
		t.Fatal("a user read with no change under way was not cached")
	}
	lost.Add(1)
	if u, ok := svc.ensured.load("dave"); ok {
		t.Errorf("after the broker lost messages, the cache still has %+v", u)
	}
	if entries, n := svc.ensured.size(); entries != 0 || n != 0 {
		t.Errorf("after the broker lost messages: %d entries, %d bytes; want none", entries, n)
	}
	// A read begun before lost moved is not cached either.
	st.during = func() { lost.Add(1) }
	if _, err := svc.checkUserNow(ctx, "dave", "Dave"); err != nil {
		t.Fatal(err)
	}
	if u, ok := svc.ensured.load("dave"); ok {
		t.Errorf("a user read before the broker lost messages was cached: %+v", u)
	}
}

// TestUserReadOtherUserChange: a change of user X stops caching only the
// reads under way of X (and of the users of X's shard), not of every
// user: a hello's check of Y that raced X's change is cached, one of X
// that raced it is not. The generation was one for the node, and any
// user's change kept every read in flight from the cache. A read whose
// user is not known before it ends (a login by name) still stops at any
// change.
func TestUserReadOtherUserChange(t *testing.T) {
	ctx := t.Context()
	store, _ := hubParts(t)
	x, y := "xavier", "yvonne"
	for i := 0; userShard(x) == userShard(y); i++ {
		y = fmt.Sprint("yvonne", i)
	}
	st := &changeDuringRead{Store: store}
	svc := &service{store: st}
	st.during = func() { svc.ensured.forget(x) }
	if _, err := svc.checkUserNow(ctx, y, "Y"); err != nil {
		t.Fatal(err)
	}
	if _, ok := svc.ensured.load(y); !ok {
		t.Errorf("a read of %s that raced a change of %s was not cached", y, x)
	}
	if _, err := svc.checkUserNow(ctx, x, "X"); err != nil {
		t.Fatal(err)
	}
	if u, ok := svc.ensured.load(x); ok {
		t.Errorf("a read of %s that raced a change of %s was cached: %+v", x, x, u)
	}
	gen := svc.ensured.generationAny()
	svc.ensured.forget(x)
	if svc.ensured.add(parley.User{ID: "zoe", Name: "Z"}, gen) {
		t.Errorf("a read of a user not known before it (generationAny) that raced a change of %s was cached", x)
	}
}
