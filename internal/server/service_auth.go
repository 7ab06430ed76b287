package server

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
)

// userCache maps user ids to the users this node has ensured (their
// token's name is in the store), so that their next hello costs no store
// call. Safe for concurrent use; the zero value is empty and holds
// DefaultUserCacheBytes.
//
// It is bounded in bytes (userEntryBytes: the entry, its share of the
// map and the bytes of the user's strings), because open registration
// lets anyone add users for ever. Past the budget it evicts by the
// clock (second chance): a hit marks its entry, and the hand, going
// round the entries in insertion order, spares a marked entry once
// (clearing the mark) and an entry of a user with a connection on this
// node (inUse), and evicts the first other. A miss costs what no cache
// would: the store's check (checkUser), a read for a known user.
//
// An entry is dropped when its user changes (forget: a profile changed
// here, or a notice or a profileUpdated event from another node says it
// changed there), and every entry is dropped when the broker may have
// lost other nodes' notices (lost moved: a reconnect to NATS, a slow
// consumer), so no node keeps an old profile for ever. A user read from
// the store is cached only if nothing of theirs was forgotten since the
// read began (generation): a read that raced a change of its user may
// hold the old profile. Forgets are counted per shard of users
// (userGenShards), so a change of one user stops caching only the reads
// under way of the users of its shard, not every read on the node.
type userCache struct {
	// budget is the most bytes of entries held (0: DefaultUserCacheBytes);
	// inUse, when set, says a user is connected to this node; lost, when
	// set, is the broker's count of times it may have lost messages
	// (natsbroker.Broker.Lost). All are set before the cache is shared.
	// inUse is called with mu held: it must not call the cache.
	budget int
	inUse  func(id string) bool
	lost   func() uint64

	// lostSeen is the value of lost the entries were cached under.
	lostSeen atomic.Uint64

	mu    sync.RWMutex // guards the fields below (an entry's ref is atomic)
	m     map[string]*userEntry
	hand  *userEntry // the next entry the clock looks at; nil when empty
	bytes int        // userEntryBytes of the entries, at most the budget
	// epoch counts clears and resyncs, forgets every forget, and
	// shardGens the forgets of each shard's users (userShard): a user
	// read from the store under an older value may be stale, and is not
	// cached (put). A fixed array, so the memory is bounded however
	// many users change.
	epoch     uint64
	forgets   uint64
	shardGens [userGenShards]uint64
}

// userGenShards is how many shards of users the cache counts forgets in
// (8 KiB of counters): a change of one user stops caching the reads
// under way of 1/userGenShards of the users, not of all.
const userGenShards = 1024

// userShard is id's shard of userCache.shardGens (FNV-1a, as
// parley.ShardOf, without its allocation).
func userShard(id string) int {
	h := uint32(2166136261)
	for i := range len(id) {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % userGenShards)
}

// userGen is a generation of the cache, as generation or generationAny
// returned it, for store or add with a user read after it.
type userGen struct {
	epoch uint64
	n     uint64 // the forgets of the user's shard; with any, of all users
	any   bool
}

// userEntry is a cached user, in the clock's ring.
type userEntry struct {
	u          parley.User
	size       int         // userEntryBytes(u)
	ref        atomic.Bool // hit since the hand last passed
	prev, next *userEntry
}

// DefaultUserCacheBytes is the default Limits.UserCacheBytes: some
// 200,000 users (about 300 bytes each with a display name), enough for a
// node's connections and the users of its warm start (at most
// maxWarmUsers).
const DefaultUserCacheBytes = 64 << 20

// userEntryFixed is what an entry costs besides its strings' bytes: the
// userEntry (128 bytes in Go's size classes) and its map slot (a key's
// string header and a pointer, with the map's spare room; up to ~64
// bytes). TestUserCacheBytesReal holds the estimate to the heap.
const userEntryFixed = 208

// maxSpared bounds the entries the hand spares for one eviction: past
// them it evicts the entry it is at, so an insert costs a bounded walk
// even when every entry is marked or connected (a budget too small for
// the users online).
const maxSpared = 32

// userEntryBytes estimates the heap an entry for u holds: userEntryFixed
// and each of its strings (cloned on insert, so none shares a larger
// buffer) in whole allocation size classes. The map's key is u.ID's
// bytes, not a copy.
func userEntryBytes(u parley.User) int {
	return userEntryFixed + strBytes(u.ID) + strBytes(u.Name) + strBytes(u.DisplayName) + strBytes(u.AvatarID)
}

// strBytes is the heap a string of s's length takes, rounded up as Go's
// small size classes are (to 16 bytes up to 256; above, where no user's
// string goes, a class wastes at most an eighth).
func strBytes(s string) int {
	switch n := len(s); {
	case n == 0:
		return 0
	case n <= 256:
		return (n + 15) &^ 15
	default:
		return n + n/8 + 128
	}
}

func (c *userCache) limit() int {
	if c.budget > 0 {
		return c.budget
	}
	return DefaultUserCacheBytes
}

func (c *userCache) load(id string) (parley.User, bool) {
	c.resync()
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[id]
	if !ok {
		return parley.User{}, false
	}
	if !e.ref.Load() { // a hit writes the entry only once per lap
		e.ref.Store(true)
	}
	return e.u, true
}

// resync drops every entry if the broker may have lost messages since
// they were cached (lost moved): a notice of a changed user among them
// would have dropped one. An atomic load when nothing was lost.
func (c *userCache) resync() {
	if c.lost == nil {
		return
	}
	n := c.lost()
	if n == c.lostSeen.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == c.lostSeen.Load() {
		return
	}
	c.m, c.hand, c.bytes = nil, nil, 0
	c.epoch++
	c.lostSeen.Store(n)
}

// generation returns the cache's generation for user id, to pass to
// store or add with id read from the store after this call: a change of
// another user (of another shard) does not make it stale.
func (c *userCache) generation(id string) userGen {
	c.resync()
	c.mu.RLock()
	defer c.mu.RUnlock()
	return userGen{epoch: c.epoch, n: c.shardGens[userShard(id)]}
}

// generationAny is generation for a read whose user is not known before
// it ends (a login by name, a registration, the warm start's many):
// a change of any user makes it stale.
func (c *userCache) generationAny() userGen {
	c.resync()
	c.mu.RLock()
	defer c.mu.RUnlock()
	return userGen{epoch: c.epoch, n: c.forgets, any: true}
}

// current reports whether a read of user id under gen may be cached:
// nothing that could change id was forgotten since. mu must be held.
func (c *userCache) current(gen userGen, id string) bool {
	n := c.shardGens[userShard(id)]
	if gen.any {
		n = c.forgets
	}
	return gen.epoch == c.epoch && gen.n == n
}

// store records u, read from the store after generation returned gen,
// replacing any entry, unless u (or, with generationAny's gen, any user)
// was forgotten since (u may be stale). It evicts what it must to stay within the budget; a user too
// big for the whole budget is not kept.
func (c *userCache) store(u parley.User, gen userGen) {
	c.put(u, gen, false, true)
}

// add records u (read after generation returned gen) if it fits in what
// the budget has left, evicting nothing, and reports whether it did (or
// u was there already): the warm start, whose guesses must not push out
// users in use.
func (c *userCache) add(u parley.User, gen userGen) bool {
	return c.put(u, gen, true, false)
}

// put is store and add: with keep, an entry already there stays.
func (c *userCache) put(u parley.User, gen userGen, keep, evict bool) bool {
	u = parley.User{
		ID: strings.Clone(u.ID), Name: strings.Clone(u.Name), CreatedAt: u.CreatedAt,
		DisplayName: strings.Clone(u.DisplayName), AvatarID: strings.Clone(u.AvatarID),
	}
	n := userEntryBytes(u)
	c.resync()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.current(gen, u.ID) {
		return false
	}
	if c.m == nil {
		c.m = make(map[string]*userEntry)
	}
	budget := c.limit()
	if e, ok := c.m[u.ID]; ok {
		if keep {
			return true
		}
		c.unlink(e) // replaced below, as a new entry
	}
	if n > budget || !evict && c.bytes+n > budget {
		return false
	}
	for spared := 0; c.bytes+n > budget; {
		e := c.hand
		c.hand = e.next
		if spared < maxSpared && (e.ref.Swap(false) || c.inUse != nil && c.inUse(e.u.ID)) {
			spared++
			continue
		}
		c.unlink(e)
	}
	// Unmarked: a user looked up once (a flood of new users) is the
	// first to go; one connected or hit since is spared.
	e := &userEntry{u: u, size: n}
	if c.hand == nil {
		e.prev, e.next = e, e
		c.hand = e
	} else { // just behind the hand: the last the hand reaches
		e.prev, e.next = c.hand.prev, c.hand
		e.prev.next = e
		c.hand.prev = e
	}
	c.m[u.ID] = e
	c.bytes += n
	return true
}

// forget drops id's entry, if any: its profile changed (a display name
// or avatar the welcome shows), so the next hello reads the user again.
// A read of the store under way of id (or of a user of its shard, or of
// one not known, generationAny) is not cached when it ends.
func (c *userCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgets++
	c.shardGens[userShard(id)]++
	if e, ok := c.m[id]; ok {
		c.unlink(e)
	}
}

// clear drops every entry (and, as forget, the caching of reads under
// way).
func (c *userCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m, c.hand, c.bytes = nil, nil, 0
	c.epoch++
}

// unlink removes e from the map and the ring. mu must be held.
func (c *userCache) unlink(e *userEntry) {
	delete(c.m, e.u.ID)
	c.bytes -= e.size
	if e.next == e {
		c.hand = nil
	} else {
		e.prev.next = e.next
		e.next.prev = e.prev
		if c.hand == e {
			c.hand = e.next
		}
	}
	e.prev, e.next = nil, nil
}

// size returns the entries and their bytes.
func (c *userCache) size() (entries, bytes int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.bytes
}

// warmUsers reads the users ids at once, when the store can
// (parley.BulkReader), and remembers them as ensured: their next hello
// needs no user read (a node does it at start, see hub.warm; ids come
// most recently active first). It reads no more of them than could fit
// in the cache's budget, and keeps only those that fit in what is left
// of it (add): a user stored meanwhile by a hello is newer and stays.
func (s *service) warmUsers(ctx context.Context, ids []string) error {
	bulk, ok := s.store.(parley.BulkReader)
	if !ok || len(ids) == 0 {
		return nil
	}
	ids = ids[:min(len(ids), s.ensured.limit()/(userEntryFixed+2*16))]
	gen := s.ensured.generationAny()
	users, err := bulk.UsersOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, u := range users {
		s.ensured.add(u, gen)
	}
	return nil
}

// authenticate verifies a token and returns its user, creating the user on
// first sight (tokens minted by integrators).
func (s *service) authenticate(ctx context.Context, token string) (parley.User, error) {
	u, check, err := s.verify(token)
	if err != nil || check == nil {
		return u, err
	}
	return s.ensureUser(ctx, check.UserID, check.Name)
}

// verify checks a token (no store call) for a hello: it returns the
// token's user when this node has it cached, else the claims whose user
// the store must check (checkUser).
func (s *service) verify(token string) (parley.User, *auth.Claims, error) {
	cl, err := auth.Verify(s.secret, token, time.Now())
	if err != nil {
		s.metrics.obs.authFailures["token"].Inc()
		s.log.Debug("auth: token refused", "err", parley.ErrorMessage(err))
		return parley.User{}, nil, err
	}
	if s.bans.has(cl.UserID) {
		return parley.User{}, nil, errRevoked()
	}
	if u, ok := s.cachedUser(cl.UserID, cl.Name); ok {
		return u, nil, nil
	}
	return parley.User{}, &cl, nil
}

// errRevoked is the refusal of a banned user's token, and of a banned
// user's right password at login.
func errRevoked() error {
	return parley.Errorf(parley.EUNAUTHORIZED, "this user's access was revoked")
}

// altName is the name an integrator's user gets when its token's name is
// taken by another user: "name (id)", the name cut to fit
// parley.MaxUsernameRunes, or the id alone (cut) when the id is too long
// to leave room for the name.
func altName(name, id string) string {
	suffix := []rune(" (" + id + ")")
	if len(suffix) > parley.MaxUsernameRunes-4 {
		r := []rune(id)
		return string(r[:min(len(r), parley.MaxUsernameRunes)])
	}
	r := []rune(name)
	return string(r[:min(len(r), parley.MaxUsernameRunes-len(suffix))]) + string(suffix)
}

// authResult is the body of register and login responses.
type authResult struct {
	Token     string      `json:"token"`
	User      parley.User `json:"user"`
	ExpiresAt time.Time   `json:"expires_at"`
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// issue mints a token for u, read from the store after the user cache's
// generation was gen, and caches u for its first hello.
func (s *service) issue(u parley.User, gen userGen) (authResult, error) {
	tok, exp, err := auth.Mint(s.secret, u.ID, u.Name, s.ttl)
	if err != nil {
		return authResult{}, err
	}
	s.ensured.store(u, gen)
	return authResult{Token: tok, User: u, ExpiresAt: exp.UTC()}, nil
}

// me returns u as stored (GET /v1/me).
func (s *service) me(ctx context.Context, u parley.User) (parley.User, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return parley.User{}, err
	}
	return s.store.User(ctx, u.ID)
}

// userByName looks a user up by name for u (GET /v1/users/{name}).
func (s *service) userByName(ctx context.Context, u parley.User, name string) (parley.User, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return parley.User{}, err
	}
	return s.userNamed(ctx, name)
}

// maxNameLookupBytes bounds a name looked up (GET /v1/users/{name},
// create_direct's username): no user's name, nor any form of one that
// finds it (another case or width, decomposed, a look-alike), is longer,
// as parley.NormalizeUsername bounds a name before its PRECIS work.
const maxNameLookupBytes = 4 * parley.MaxUsernameRunes * utf8.UTFMax

// userNamed is the store's UserByName for a name from a client: a name
// longer than any can be is not found at once. The lookup folds the name
// into its uniqueness key (parley.NameKey: PRECIS and the confusables
// skeleton), whose work grows with the name: a path or a frame of 64 KiB
// cost tens of milliseconds of CPU a request.
func (s *service) userNamed(ctx context.Context, name string) (parley.User, error) {
	if len(name) > maxNameLookupBytes {
		return parley.User{}, parley.ErrNotFound
	}
	return s.store.UserByName(ctx, name)
}
