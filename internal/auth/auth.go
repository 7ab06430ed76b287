// Package auth mints and verifies Parley's bearer tokens and hashes
// passwords.
//
// Tokens are HS256 JWTs signed with the server's secret, carrying "sub"
// (the user id), "name" (the display name), "iat" and "exp". Integrators
// mint them with their copy of the secret; the server creates the user on
// first sight. Passwords are hashed with argon2id.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"

	"github.com/parleychat/parley"
)

// DefaultTTL is how long tokens from register and login last.
const DefaultTTL = 24 * time.Hour

// MinSecretLen is the shortest secret accepted for signing.
const MinSecretLen = 32

// Claims is what a verified token says.
type Claims struct {
	UserID    string
	Name      string
	ExpiresAt time.Time
}

type jwtClaims struct {
	Name string `json:"name"`
	jwt.RegisteredClaims
}

// Mint signs a token for userID that expires after ttl.
func Mint(secret []byte, userID, name string, ttl time.Duration) (string, time.Time, error) {
	if len(secret) < MinSecretLen {
		return "", time.Time{}, fmt.Errorf("auth: secret is %d bytes, want at least %d", len(secret), MinSecretLen)
	}
	if userID == "" {
		return "", time.Time{}, errors.New("auth: user id is required")
	}
	now := time.Now()
	exp := now.Add(ttl).Truncate(time.Second)
	c := jwtClaims{
		Name: name,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign: %w", err)
	}
	return tok, exp, nil
}

// Verify checks a token's signature, algorithm (HS256 only) and expiry
// (required) at time now, and returns its claims. Every failure is a
// *parley.Error with EUNAUTHORIZED; the message says which check failed
// without echoing the token.
func Verify(secret []byte, token string, now time.Time) (Claims, error) {
	token = strings.TrimSpace(token)
	if token == "" {
		return Claims{}, parley.Errorf(parley.EUNAUTHORIZED, "token is missing")
	}
	var c jwtClaims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithLeeway(5*time.Second),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, parley.Errorf(parley.EUNAUTHORIZED, "token has expired")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return Claims{}, parley.Errorf(parley.EUNAUTHORIZED, "token signature is invalid")
	case err != nil:
		return Claims{}, parley.Errorf(parley.EUNAUTHORIZED, "token is invalid")
	}
	if c.Subject == "" || len(c.Subject) > 128 {
		return Claims{}, parley.Errorf(parley.EUNAUTHORIZED, "token has no valid subject")
	}
	name := c.Name
	if name == "" {
		name = c.Subject
	}
	return Claims{UserID: c.Subject, Name: name, ExpiresAt: c.ExpiresAt.Time}, nil
}

// NewSecret returns 32 random bytes for signing tokens.
func NewSecret() ([]byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// argon2id parameters: RFC 9106's second recommended option, 64 MiB.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Hasher hashes and checks passwords with argon2id. Each hash takes 64 MiB
// for a moment, so at most maxConcurrent run at once, handed out fairly
// between keys (client IPs): a key runs one hash at a time, waiting keys
// take turns, and a hash that waits longer than MaxWait (default
// DefaultMaxWait), or whose key already has MaxQueuedPerKey waiting
// (default DefaultMaxQueuedPerKey), gets EUNAVAILABLE with RetryAfter.
// It is safe for concurrent use once built; set its fields before first
// use.
type Hasher struct {
	q *fairQueue
	// MemoryKiB and Time are the argon2id cost for new hashes (defaults
	// 64 MiB and 3 passes). Tests lower them; Check reads the cost from
	// each stored hash, so changing them never breaks old hashes.
	MemoryKiB uint32
	Time      uint32
	// MaxWait and MaxQueuedPerKey bound the wait for a slot (zero: the
	// defaults).
	MaxWait         time.Duration
	MaxQueuedPerKey int
	init            sync.Once
	dummy           []byte        // see CheckMissing
	hashes          atomic.Uint64 // argon2 computations run
}

// NewHasher returns a Hasher with the default cost that runs at most
// maxConcurrent hashes at once (at least 1).
func NewHasher(maxConcurrent int) *Hasher {
	return &Hasher{q: newFairQueue(maxConcurrent), MemoryKiB: argonMemory, Time: argonTime}
}

// MinPasswordLen and MaxPasswordLen bound passwords, in bytes.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// setup applies the fields set after NewHasher, once, and makes the
// dummy hash (see CheckMissing) with the cost of new hashes.
func (h *Hasher) setup() {
	h.init.Do(func() {
		if h.MaxWait > 0 {
			h.q.maxWait = h.MaxWait
		}
		if h.MaxQueuedPerKey > 0 {
			h.q.maxQueued = h.MaxQueuedPerKey
		}
		// A hash of nothing: random salt and key with the parameters Hash
		// writes. Checking a password against it costs what checking
		// against a real hash costs, and never matches (2^-256).
		salt, key := make([]byte, argonSaltLen), make([]byte, argonKeyLen)
		rand.Read(salt)
		rand.Read(key)
		h.dummy = h.encode(salt, key)
	})
}

// Hashes is how many argon2id computations the Hasher has run (Hash,
// Check and CheckMissing alike): the metric parley_password_hashes_total.
func (h *Hasher) Hashes() uint64 { return h.hashes.Load() }

// SetOnAdmit makes f be called with the key of each hash that gets a
// slot, in the order they get it, under the queue's lock (f must not
// block): tests read fairness from it. Safe to call at any time.
func (h *Hasher) SetOnAdmit(f func(key string)) {
	h.q.mu.Lock()
	defer h.q.mu.Unlock()
	h.q.onAdmit = f
}

// Waiting is how many hashes wait for a slot.
func (h *Hasher) Waiting() int { return h.q.waitingCount() }

// Hash returns an encoded argon2id hash of password, computed in a slot
// of key's turn (key: the client's IP; "" for local tools). EINVALID
// when the password is shorter than MinPasswordLen or longer than
// MaxPasswordLen; EUNAVAILABLE when no slot came in time.
func (h *Hasher) Hash(ctx context.Context, key, password string) ([]byte, error) {
	h.setup()
	if len(password) < MinPasswordLen || len(password) > MaxPasswordLen {
		return nil, parley.Errorf(parley.EINVALID, "password must be %d to %d bytes", MinPasswordLen, MaxPasswordLen)
	}
	if err := h.q.acquire(ctx, key); err != nil {
		return nil, err
	}
	defer h.q.release(key)
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	h.hashes.Add(1)
	return h.encode(salt, argon2.IDKey([]byte(password), salt, h.Time, h.MemoryKiB, argonThreads, argonKeyLen)), nil
}

// encode writes a hash in the format parseHash reads, with the cost of
// new hashes.
func (h *Hasher) encode(salt, key []byte) []byte {
	enc := base64.RawStdEncoding
	return fmt.Appendf(nil, "$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.MemoryKiB, h.Time, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// ErrBadCredentials is returned by Check for a wrong password.
var ErrBadCredentials = parley.Errorf(parley.EUNAUTHORIZED, "wrong username or password")

// Check compares password with an encoded hash from Hash in constant
// time, in a slot of key's turn (see Hash). It returns ErrBadCredentials
// for a mismatch, EUNAVAILABLE when no slot came in time, and an error
// without a code for a hash it cannot read (see parseHash).
func (h *Hasher) Check(ctx context.Context, key string, encoded []byte, password string) error {
	h.setup()
	p, err := parseHash(encoded)
	if err != nil {
		return err
	}
	salt, want, iters, mem, threads := p.salt, p.key, p.time, p.memory, p.threads
	if len(password) > MaxPasswordLen {
		return ErrBadCredentials
	}
	if err := h.q.acquire(ctx, key); err != nil {
		return err
	}
	defer h.q.release(key)
	h.hashes.Add(1)
	got := argon2.IDKey([]byte(password), salt, iters, mem, threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrBadCredentials
	}
	return nil
}

// CheckMissing does for a user who does not exist what Check does for one
// who does: the same argon2id work (against a dummy hash made once with
// the cost of new hashes), in the same queue, and then ErrBadCredentials
// (or what Check returns when no slot came). So a login answers in the
// same time and with the same error whether or not the user exists.
func (h *Hasher) CheckMissing(ctx context.Context, key, password string) error {
	h.setup()
	if err := h.Check(ctx, key, h.dummy, password); err != nil {
		return err
	}
	return ErrBadCredentials // unreachable but for a 2^-256 chance
}

// Bounds on the cost a stored hash may ask for. argon2.IDKey panics on
// zero passes or threads, and a corrupt or planted hash must not make a
// login allocate gigabytes or spin for minutes: these are far above
// what Hash writes (64 MiB, 3 passes, 2 threads) and below harm.
const (
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 64
	minArgonKeyLen    = 16
	maxArgonKeyLen    = 128
)

type argonHash struct {
	time, memory uint32
	threads      uint8
	salt, key    []byte
}

// parseHash reads "$argon2id$v=19$m=65536,t=3,p=2$salt$key" (unpadded
// standard base64) and checks that its cost is within bounds.
func parseHash(encoded []byte) (argonHash, error) {
	var h argonHash
	parts := strings.Split(string(encoded), "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, errors.New("auth: unknown password hash format")
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return h, errors.New("auth: unknown argon2 version")
	}
	// Sscanf would take "m=1,t=1,p=1junk" and "m=+1"; strconv is exact.
	var mem, iters, threads uint64
	kv := strings.Split(parts[3], ",")
	ok := len(kv) == 3
	for i, dst := range []*uint64{&mem, &iters, &threads} {
		if !ok {
			break
		}
		name, val, found := strings.Cut(kv[i], "=")
		n, err := strconv.ParseUint(val, 10, 32)
		ok = found && name == "mtp"[i:i+1] && err == nil
		*dst = n
	}
	if !ok {
		return h, errors.New("auth: bad argon2 parameters")
	}
	if iters < 1 || iters > maxArgonTime || threads < 1 || threads > 255 || mem > maxArgonMemoryKiB {
		return h, fmt.Errorf("auth: argon2 cost m=%d,t=%d,p=%d out of bounds", mem, iters, threads)
	}
	enc := base64.RawStdEncoding.Strict()
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return h, errors.New("auth: bad salt")
	}
	key, err := enc.DecodeString(parts[5])
	if err != nil || len(key) < minArgonKeyLen || len(key) > maxArgonKeyLen {
		return h, errors.New("auth: bad hash")
	}
	return argonHash{time: uint32(iters), memory: uint32(mem), threads: uint8(threads), salt: salt, key: key}, nil
}
