package server

import (
	"context"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
)

// userCache maps user ids to users; safe for concurrent use, the zero
// value is empty. A map under a RWMutex, not a sync.Map: it holds an
// entry per user who ever connected, and a sync.Map entry (trie nodes and
// the boxed User) cost about twice as much memory as a map slot.
type userCache struct {
	mu sync.RWMutex
	m  map[string]parley.User
}

func (c *userCache) load(id string) (parley.User, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.m[id]
	return u, ok
}

// store records u; with keep, an entry already there stays.
func (c *userCache) store(u parley.User, keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]parley.User)
	}
	if _, ok := c.m[u.ID]; ok && keep {
		return
	}
	c.m[u.ID] = u
}

// warmUsers reads the users ids at once, when the store can
// (parley.BulkReader), and remembers them as ensured: their next hello
// needs no user read (a node does it at start, see hub.warm). A user
// stored meanwhile by a hello is newer and stays.
func (s *service) warmUsers(ctx context.Context, ids []string) error {
	bulk, ok := s.store.(parley.BulkReader)
	if !ok || len(ids) == 0 {
		return nil
	}
	users, err := bulk.UsersOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, u := range users {
		s.ensured.store(u, true)
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
		return parley.User{}, nil, parley.Errorf(parley.EUNAUTHORIZED, "this user's access was revoked")
	}
	if u, ok := s.cachedUser(cl.UserID, cl.Name); ok {
		return u, nil, nil
	}
	return parley.User{}, &cl, nil
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

func (s *service) issue(u parley.User) (authResult, error) {
	tok, exp, err := auth.Mint(s.secret, u.ID, u.Name, s.ttl)
	if err != nil {
		return authResult{}, err
	}
	s.ensured.store(u, false)
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
