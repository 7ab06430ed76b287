package auth

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley"
)

// FuzzVerify feeds arbitrary bearer tokens to Verify.
//
// Properties: never panics; every failure is EUNAUTHORIZED; a token it
// accepts carries an HS256 header and the HMAC-SHA256 of its first two
// parts under the secret (computed here, not by the jwt library), so it
// was signed with the secret; another secret never accepts it; the
// claims returned are the token's own.
func FuzzVerify(f *testing.F) {
	now := time.Now()
	good, _, _ := Mint(secret, "u1", "Alice", time.Hour)
	expired, _, _ := Mint(secret, "u1", "Alice", -time.Hour)
	other, _, _ := Mint([]byte("another-secret-another-secret-xx"), "u1", "Alice", time.Hour)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1"}).SignedString(secret)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u1", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "u1", "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	longSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": strings.Repeat("u", 129), "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	numSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": 5, "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, " " + good + "\n", expired, other, noExp, none, hs512, noSub, longSub, numSub, "", "not.a.token",
		parts[0] + "." + parts[1] + "x." + parts[2], parts[0] + "." + parts[1] + ".", parts[0] + ".." + parts[2],
		good + ".", "Bearer " + good, "a.b.c.d",
	} {
		f.Add(s)
	}
	otherSecret := []byte("another-secret-another-secret-xx")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Verify(secret, tok, now)
		if err != nil {
			if parley.ErrorCode(err) != parley.EUNAUTHORIZED {
				t.Fatalf("Verify(%q): %v, want unauthorized", tok, err)
			}
			return
		}
		p := strings.Split(strings.TrimSpace(tok), ".")
		if len(p) != 3 {
			t.Fatalf("Verify accepted %q: not three parts", tok)
		}
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(p[0] + "." + p[1]))
		sig, err := base64.RawURLEncoding.DecodeString(p[2])
		if err != nil || !hmac.Equal(sig, mac.Sum(nil)) {
			t.Fatalf("Verify accepted %q: its signature is not the HMAC of its parts under the secret", tok)
		}
		var hdr struct{ Alg string }
		if b, err := base64.RawURLEncoding.DecodeString(p[0]); err != nil || json.Unmarshal(b, &hdr) != nil || hdr.Alg != "HS256" {
			t.Fatalf("Verify accepted %q: header is not HS256", tok)
		}
		if _, err := Verify(otherSecret, tok, now); err == nil {
			t.Fatalf("Verify accepted %q under another secret", tok)
		}
		if c.UserID == "" || len(c.UserID) > 128 || c.Name == "" {
			t.Fatalf("Verify(%q) = %+v: bad claims", tok, c)
		}
		if c.ExpiresAt.Before(now.Add(-5 * time.Second)) {
			t.Fatalf("Verify(%q) accepted a token that expired at %v", tok, c.ExpiresAt)
		}
	})
}

// cheapCost bounds the argon2 work one fuzz input may ask for (KiB x
// passes), so the fuzzer explores the parser instead of hashing.
const cheapCost = 1 << 12

// FuzzCheck feeds arbitrary stored hashes and passwords to Hasher.Check.
//
// Properties: never panics (argon2 itself panics on zero passes or
// threads or an empty key); a hash it cannot read is an error, never a
// match; a hash it reads asks for a cost within bounds; a hash that
// matches one password does not match another.
func FuzzCheck(f *testing.F) {
	h := NewHasher(1)
	h.MemoryKiB, h.Time = 64, 1
	enc, err := h.Hash(context.Background(), "", "correct horse")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(enc), "$bcrypt$nope", "", "$argon2id$v=19$m=8,t=1,p=0$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$", "$argon2id$v=19$m=8,t=0,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		"$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		"$argon2id$v=19$m=-1,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		"$argon2id$v=19$m=8,t=1,p=256$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		"$argon2id$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
		"$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5aw",
	} {
		f.Add(s, "correct horse")
	}
	f.Fuzz(func(t *testing.T, encoded, password string) {
		p, perr := parseHash([]byte(encoded))
		if perr != nil {
			if err := h.Check(context.Background(), "", []byte(encoded), password); err == nil || errors.Is(err, ErrBadCredentials) {
				t.Fatalf("Check(%q) = %v for a hash parseHash refuses (%v)", encoded, err, perr)
			}
			return
		}
		if p.time < 1 || p.time > maxArgonTime || p.threads < 1 || p.memory > maxArgonMemoryKiB || len(p.key) < minArgonKeyLen {
			t.Fatalf("parseHash(%q) = %+v: out of bounds", encoded, p)
		}
		if uint64(p.memory)*uint64(p.time) > cheapCost {
			return
		}
		err := h.Check(context.Background(), "", []byte(encoded), password)
		if err == nil {
			if h.Check(context.Background(), "", []byte(encoded), password+"x") == nil {
				t.Fatalf("hash %q matches both %q and %q", encoded, password, password+"x")
			}
		} else if !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("Check(%q, %q) = %v, want nil or ErrBadCredentials", encoded, password, err)
		}
	})
}
