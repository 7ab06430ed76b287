package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// TestLoginThrottle: the lock after the Nth failure lasts LoginBackoff and
// doubles with each further failure up to LoginBackoffMax; in-flight
// logins count, so concurrent guesses cannot pass the limit; a success
// forgets; the window forgets; the map stays within LoginAccounts.
func TestLoginThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	th := newLoginThrottle(AccountLimits{LoginAccounts: 3}.withDefaults())
	th.now = func() time.Time { return now }
	retry := func(err error) time.Duration {
		t.Helper()
		var pe *parley.Error
		if !asError(err, &pe) || pe.Code != parley.ERATELIMITED {
			t.Fatalf("begin: %v, want rate_limited", err)
		}
		return pe.RetryAfter
	}
	fail := func() {
		t.Helper()
		if err := th.begin("k"); err != nil {
			t.Fatalf("begin: %v", err)
		}
		th.end("k", loginFailed)
	}
	for range 4 {
		fail()
	}
	// The 5th may start, but not a 6th beside it.
	if err := th.begin("k"); err != nil {
		t.Fatal(err)
	}
	if d := retry(th.begin("k")); d != time.Second {
		t.Fatalf("a login beside the one that may lock: retry %v, want 1s", d)
	}
	th.end("k", loginFailed)
	var got []time.Duration
	for range 7 {
		d := retry(th.begin("k"))
		got = append(got, d)
		now = now.Add(d)
		fail()
	}
	want := "[30s 1m0s 2m0s 4m0s 8m0s 15m0s 15m0s]"
	if fmt.Sprint(got) != want {
		t.Fatalf("locks %v, want %v", got, want)
	}
	now = now.Add(15 * time.Minute)
	if err := th.begin("k"); err != nil {
		t.Fatal(err)
	}
	th.end("k", loginSucceeded)
	for range 4 {
		fail()
	}
	if err := th.begin("k"); err != nil {
		t.Fatalf("after a success, 4 failures: %v, want admitted", err)
	}
	th.end("k", loginNoVerdict)
	now = now.Add(time.Hour + time.Second)
	if err := th.begin("k"); err != nil {
		t.Fatal(err)
	}
	th.end("k", loginFailed)
	if e := th.m["k"]; e.failures != 1 {
		t.Fatalf("after the window: %d failures, want 1", e.failures)
	}
	for i := range 100 {
		k := fmt.Sprint("spray", i)
		if err := th.begin(k); err != nil {
			t.Fatal(err)
		}
		th.end(k, loginFailed)
	}
	if th.size() > 3 {
		t.Fatalf("throttle holds %d accounts, want at most 3", th.size())
	}
}
