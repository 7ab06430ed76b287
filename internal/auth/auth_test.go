package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestMintVerify(t *testing.T) {
	tok, exp, err := Mint(secret, "u1", "Alice", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verify(secret, tok, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != "u1" || c.Name != "Alice" || !c.ExpiresAt.Equal(exp) {
		t.Fatalf("got %+v, want u1/Alice/%v", c, exp)
	}
}

func TestVerifyRejects(t *testing.T) {
	good, _, _ := Mint(secret, "u1", "Alice", time.Hour)
	expired, _, _ := Mint(secret, "u1", "Alice", -time.Hour)
	other, _, _ := Mint([]byte("another-secret-another-secret-xx"), "u1", "Alice", time.Hour)
	noExp, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "u1"}).SignedString(secret)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "u1", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	noSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	parts := strings.Split(good, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]

	for name, tok := range map[string]string{
		"empty": "", "garbage": "not.a.token", "expired": expired, "forged": other,
		"no exp": noExp, "alg none": none, "alg HS512": hs512, "no sub": noSub, "tampered": tampered,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(secret, tok, time.Now())
			if got := parley.ErrorCode(err); got != parley.EUNAUTHORIZED {
				t.Fatalf("Verify: code %q (err %v), want %q", got, err, parley.EUNAUTHORIZED)
			}
		})
	}
}

func TestMintNeedsSecret(t *testing.T) {
	if _, _, err := Mint([]byte("short"), "u1", "A", time.Hour); err == nil {
		t.Fatal("Mint with a short secret: no error")
	}
}

func TestHasher(t *testing.T) {
	h := NewHasher(2)
	h.MemoryKiB, h.Time = 1024, 1 // cheap for tests; Check reads the cost from the hash
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Check(ctx, enc, "correct horse"); err != nil {
		t.Fatalf("Check(right password) = %v", err)
	}
	if err := h.Check(ctx, enc, "wrong horse"); err != ErrBadCredentials {
		t.Fatalf("Check(wrong password) = %v, want ErrBadCredentials", err)
	}
	if _, err := h.Hash(ctx, "short"); parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("Hash(short) = %v, want invalid", err)
	}
	if err := h.Check(ctx, []byte("$bcrypt$nope"), "x"); err == nil {
		t.Fatal("Check(unknown format): no error")
	}
}

func TestHasherGivesUpWhenBusy(t *testing.T) {
	h := NewHasher(1)
	h.sem <- struct{}{} // every slot taken
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "correct horse"); parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Fatalf("Hash while busy with a done ctx = %v, want unavailable", err)
	}
}
