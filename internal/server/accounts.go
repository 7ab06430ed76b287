package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
)

// Registration says who may create an account with POST
// /v1/auth/register.
type Registration string

const (
	// RegistrationOpen: anyone (the default).
	RegistrationOpen Registration = "open"
	// RegistrationClosed: nobody; register answers EFORBIDDEN. Users come
	// from `parley user create` and from integrators' tokens, which still
	// work.
	RegistrationClosed Registration = "closed"
)

// AccountLimits protect logins and registration. A zero field takes the
// default its comment states.
type AccountLimits struct {
	// Registration is RegistrationOpen (default) or RegistrationClosed.
	Registration Registration

	// LoginFailures is how many failed logins of one account (wrong
	// password, or a name with no such user) within LoginWindow are
	// allowed before the account is locked (default 5). Locked, a login
	// of it gets ERATELIMITED with RetryAfter, and no password hash runs.
	// The lock after the Nth failure lasts LoginBackoff, and doubles with
	// each further failure, up to LoginBackoffMax (defaults 30 s and
	// 15 min). A successful login forgets the account's failures; so does
	// LoginWindow (default 1 h) without a failure.
	LoginFailures   int
	LoginBackoff    time.Duration
	LoginBackoffMax time.Duration
	LoginWindow     time.Duration
	// LoginAccounts bounds how many accounts the node remembers failures
	// of (default 100,000, about 150 bytes each). When full, the expired
	// entries go, then random ones.
	LoginAccounts int

	// HashWait is how long a password hash (login or register) may wait
	// for one of Config.PasswordHashes slots before the request gets
	// EUNAVAILABLE (HTTP 503) with RetryAfter (default
	// auth.DefaultMaxWait, 5 s). Slots are shared fairly between client
	// IPs: an IP runs one hash at a time, and waiting IPs take turns. An
	// IP with HashQueuePerIP hashes waiting already gets EUNAVAILABLE at
	// once (default auth.DefaultMaxQueuedPerKey, 16).
	HashWait       time.Duration
	HashQueuePerIP int
}

func (l AccountLimits) withDefaults() AccountLimits {
	if l.Registration == "" {
		l.Registration = RegistrationOpen
	}
	orDefault(&l.LoginFailures, 5)
	orDefault(&l.LoginBackoff, 30*time.Second)
	orDefault(&l.LoginBackoffMax, 15*time.Minute)
	orDefault(&l.LoginWindow, time.Hour)
	orDefault(&l.LoginAccounts, 100_000)
	orDefault(&l.HashWait, auth.DefaultMaxWait)
	orDefault(&l.HashQueuePerIP, auth.DefaultMaxQueuedPerKey)
	return l
}

// newHasher is the server's password hasher: slots shared fairly between
// IPs, with its counters as metrics.
func newHasher(slots int, l AccountLimits, reg prometheus.Registerer) *auth.Hasher {
	h := auth.NewHasher(slots)
	h.MaxWait, h.MaxQueuedPerKey = l.HashWait, l.HashQueuePerIP
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "parley_password_hashes_total", Help: "argon2id computations run (register, login, and logins of missing users).",
		}, func() float64 { return float64(h.Hashes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "parley_password_hashes_waiting", Help: "Password hashes waiting for a slot.",
		}, func() float64 { return float64(h.Waiting()) }),
	)
	return h
}

// loginThrottle is the per-account back-off of failed logins (see
// AccountLimits.LoginFailures). Accounts are keyed by parley.NameKey, so
// a look-alike or another case of a name shares its account's count, and
// a name with no user is counted the same way (its answers do not reveal
// that it has none). It is per node: a cluster of n nodes allows up to n
// times the failures. Safe for concurrent use.
type loginThrottle struct {
	l   AccountLimits
	now func() time.Time

	mu sync.Mutex
	m  map[string]*loginEntry
}

type loginEntry struct {
	failures int       // since the last success, within the window
	inFlight int       // logins admitted and not finished
	last     time.Time // last failure
	until    time.Time // locked until
}

func newLoginThrottle(l AccountLimits) *loginThrottle {
	return &loginThrottle{l: l, now: time.Now, m: make(map[string]*loginEntry)}
}

// loginOutcome is how an admitted login ended.
type loginOutcome int

const (
	loginNoVerdict loginOutcome = iota // no hash ran (store error, no slot)
	loginFailed
	loginSucceeded
)

// begin admits a login of the account key, or returns ERATELIMITED with
// RetryAfter while the account is locked. The caller must call end with
// the outcome of an admitted login. Logins still in flight count as
// failures to come: an account at its last allowed failure takes one
// login at a time, so concurrent guesses cannot overshoot the limit.
func (t *loginThrottle) begin(key string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e != nil && e.inFlight == 0 && now.Sub(e.last) > t.l.LoginWindow && !now.Before(e.until) {
		delete(t.m, key) // forgotten: the window passed without a failure
		e = nil
	}
	if e == nil {
		t.makeRoomLocked(now)
		e = &loginEntry{}
		t.m[key] = e
	}
	switch {
	case now.Before(e.until):
		return t.refusal(e.until.Sub(now))
	case e.failures+e.inFlight >= t.l.LoginFailures && e.inFlight > 0:
		// The next failure would lock the account: wait for the one in
		// flight (about a hash's time).
		return t.refusal(time.Second)
	}
	e.inFlight++
	return nil
}

// end records how an admitted login of key ended.
func (t *loginThrottle) end(key string, o loginOutcome) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[key]
	if e == nil { // evicted meanwhile
		return
	}
	e.inFlight--
	switch o {
	case loginSucceeded:
		delete(t.m, key)
	case loginFailed:
		e.failures++
		e.last = now
		if n := e.failures - t.l.LoginFailures; n >= 0 {
			d := t.l.LoginBackoffMax
			if n < 30 && t.l.LoginBackoff<<n < d {
				d = t.l.LoginBackoff << n
			}
			e.until = now.Add(d)
		}
	default:
		if e.inFlight == 0 && e.failures == 0 {
			delete(t.m, key)
		}
	}
}

func (t *loginThrottle) refusal(d time.Duration) error {
	return &parley.Error{Code: parley.ERATELIMITED,
		Message: "too many failed logins for this account; try again later", RetryAfter: d}
}

// makeRoomLocked keeps the map under LoginAccounts entries: it drops the
// expired ones and, if none was, random ones (Go's map order), never one
// with a login in flight.
func (t *loginThrottle) makeRoomLocked(now time.Time) {
	if len(t.m) < t.l.LoginAccounts {
		return
	}
	for k, e := range t.m {
		if e.inFlight == 0 && now.Sub(e.last) > t.l.LoginWindow && !now.Before(e.until) {
			delete(t.m, k)
		}
	}
	for k, e := range t.m {
		if len(t.m) < t.l.LoginAccounts {
			return
		}
		if e.inFlight == 0 {
			delete(t.m, k)
		}
	}
}

// size is how many accounts the throttle remembers.
func (t *loginThrottle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// maxLoginNameBytes bounds the name of a login: longer, no user can have
// it (usernames and token names are at most parley.MaxUsernameRunes
// runes), so it is refused before any work.
const maxLoginNameBytes = 4 * parley.MaxUsernameRunes

// errRegistrationClosed is register's answer with RegistrationClosed.
var errRegistrationClosed = parley.Errorf(parley.EFORBIDDEN,
	"registration is closed on this server; ask its administrator for an account")

func (s *service) register(ctx context.Context, ip string, c credentials) (authResult, error) {
	if s.accounts.Registration == RegistrationClosed {
		return authResult{}, errRegistrationClosed
	}
	if err := s.limits.connects.check(ip); err != nil {
		return authResult{}, err
	}
	name, err := parley.NormalizeUsername(c.Username)
	if err != nil {
		return authResult{}, err
	}
	// A taken name (or a look-alike of one) needs no hash to be refused;
	// the store checks again under its write lock.
	if u, err := s.store.UserByName(ctx, name); err == nil {
		return authResult{}, parley.NameTaken(name, u.Name)
	} else if parley.ErrorCode(err) != parley.ENOTFOUND {
		return authResult{}, err
	}
	hash, err := s.hasher.Hash(ctx, ip, c.Password)
	if err != nil {
		return authResult{}, err
	}
	gen := s.ensured.generationAny() // the new user's id is not known yet
	u, err := s.store.CreateUser(ctx, name, hash)
	if err != nil {
		return authResult{}, err
	}
	return s.issue(u, gen)
}

// login checks a username and password. Whether or not the user exists,
// it does the same work (one argon2id check, a dummy one for a missing
// user) and answers the same error, and both count against the name's
// back-off (loginThrottle).
func (s *service) login(ctx context.Context, ip string, c credentials) (authResult, error) {
	if err := s.limits.connects.check(ip); err != nil {
		return authResult{}, err
	}
	if c.Username == "" || c.Password == "" || len(c.Username) > maxLoginNameBytes {
		s.metrics.obs.authFailures["login"].Inc()
		return authResult{}, auth.ErrBadCredentials
	}
	key := parley.NameKey(c.Username)
	if err := s.logins.begin(key); err != nil {
		s.metrics.rateLimited.WithLabelValues("login_account").Inc()
		return authResult{}, err
	}
	gen := s.ensured.generationAny() // the user's id is not known yet
	u, hash, err := s.store.Credentials(ctx, c.Username)
	switch {
	case parley.ErrorCode(err) == parley.ENOTFOUND:
		err = s.hasher.CheckMissing(ctx, ip, c.Password)
	case err != nil:
		s.logins.end(key, loginNoVerdict)
		return authResult{}, err
	default:
		err = s.hasher.Check(ctx, ip, hash, c.Password)
	}
	switch {
	case err == nil:
		s.logins.end(key, loginSucceeded)
		if s.bans.has(u.ID) {
			// As the user's tokens are refused (verify), and only once
			// the password is right: a wrong one answers as for anyone,
			// so a login reveals a ban only to who could use the account.
			return authResult{}, errRevoked()
		}
		return s.issue(u, gen)
	case parley.ErrorCode(err) == parley.EUNAVAILABLE:
		s.logins.end(key, loginNoVerdict)
		return authResult{}, err
	case err != auth.ErrBadCredentials:
		// A stored hash it cannot read: the user cannot log in; say so in
		// the log, answer as for a wrong password.
		s.log.Error("login: unreadable password hash", "user", u.ID, "err", fmt.Sprint(err))
	}
	s.logins.end(key, loginFailed)
	s.metrics.obs.authFailures["login"].Inc()
	s.log.Debug("auth: login failed", "ip", ip, "user", u.ID)
	return authResult{}, auth.ErrBadCredentials
}
