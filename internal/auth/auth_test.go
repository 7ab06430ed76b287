package auth

import (
	"context"
	"fmt"
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
	enc, err := h.Hash(ctx, "", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Check(ctx, "", enc, "correct horse"); err != nil {
		t.Fatalf("Check(right password) = %v", err)
	}
	if err := h.Check(ctx, "", enc, "wrong horse"); err != ErrBadCredentials {
		t.Fatalf("Check(wrong password) = %v, want ErrBadCredentials", err)
	}
	if _, err := h.Hash(ctx, "", "short"); parley.ErrorCode(err) != parley.EINVALID {
		t.Fatalf("Hash(short) = %v, want invalid", err)
	}
	if err := h.Check(ctx, "", []byte("$bcrypt$nope"), "x"); err == nil {
		t.Fatal("Check(unknown format): no error")
	}
}

func TestHasherGivesUpWhenBusy(t *testing.T) {
	h := NewHasher(1)
	if err := h.q.acquire(context.Background(), "other"); err != nil { // every slot taken
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "ip", "correct horse"); parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Fatalf("Hash while busy with a done ctx = %v, want unavailable", err)
	}
	if h.Waiting() != 0 {
		t.Fatalf("Waiting() = %d after giving up, want 0", h.Waiting())
	}
}

// TestCheckMissing: a missing user costs one argon2 computation, like a
// wrong password, and the same error.
func TestCheckMissing(t *testing.T) {
	h := NewHasher(1)
	h.MemoryKiB, h.Time = 1024, 1
	ctx := context.Background()
	enc, err := h.Hash(ctx, "", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	before := h.Hashes()
	wrong := h.Check(ctx, "", enc, "wrong horse")
	missing := h.CheckMissing(ctx, "", "wrong horse")
	if wrong != ErrBadCredentials || missing != ErrBadCredentials {
		t.Fatalf("Check(wrong) = %v, CheckMissing = %v; want ErrBadCredentials both", wrong, missing)
	}
	if got := h.Hashes() - before; got != 2 {
		t.Fatalf("hashes run = %d, want 2 (one each)", got)
	}
	p, err := parseHash(h.dummy)
	if err != nil || p.memory != h.MemoryKiB || p.time != h.Time || len(p.key) != argonKeyLen {
		t.Fatalf("dummy hash %q (%v): not the cost of new hashes", h.dummy, err)
	}
}

// TestFairQueue: with one slot held, keys that wait take turns; a key runs
// one hash at a time; a key over MaxQueuedPerKey and a wait over MaxWait
// are refused with EUNAVAILABLE.
func TestFairQueue(t *testing.T) {
	q := newFairQueue(2)
	q.maxQueued = 3
	var order []string
	q.onAdmit = func(k string) { order = append(order, k) }
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(q.acquire(ctx, "flood"))
	must(q.acquire(ctx, "other")) // both slots busy
	done := make(chan string, 16)
	// queue starts a waiter for key and returns once it waits.
	queue := func(key string) {
		n := q.waitingCount()
		go func() {
			if err := q.acquire(ctx, key); err != nil {
				done <- "err " + key
				return
			}
			done <- key
		}()
		for q.waitingCount() != n+1 {
			time.Sleep(time.Millisecond)
		}
	}
	for range 3 {
		queue("flood")
	}
	if err := q.acquire(ctx, "flood"); parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Fatalf("a 4th waiter of one key: %v, want unavailable", err)
	}
	queue("late")
	// "other" frees its slot: "flood" already runs one, so "late" gets it
	// although three flood hashes waited before it.
	q.release("other")
	if got := <-done; got != "late" {
		t.Fatalf("first admitted after release = %q, want late", got)
	}
	q.release("late")
	select {
	case got := <-done:
		t.Fatalf("%q admitted while flood runs one: want none", got)
	case <-time.After(10 * time.Millisecond):
	}
	for range 3 {
		q.release("flood")
		if got := <-done; got != "flood" {
			t.Fatalf("admitted %q, want flood", got)
		}
	}
	q.release("flood")
	if want := []string{"flood", "other", "late", "flood", "flood", "flood"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("admission order %v, want %v", order, want)
	}
	if q.busy != 0 || len(q.running) != 0 || len(q.waiting) != 0 || len(q.ring) != 0 || q.queued != 0 {
		t.Fatalf("queue not empty: %+v", q)
	}

	q.maxWait = time.Millisecond
	must(q.acquire(ctx, "a"))
	must(q.acquire(ctx, "b"))
	if err := q.acquire(ctx, "c"); parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Fatalf("a wait over maxWait: %v, want unavailable", err)
	}
	if q.waitingCount() != 0 {
		t.Fatalf("waiting after a timeout: %d", q.waitingCount())
	}
}
