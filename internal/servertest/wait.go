package servertest

import (
	"testing"
	"time"
)

// WaitUntil polls cond until it holds, failing t after within: a bound on
// a broken run, not a timing assertion. what names what it waits for.
func WaitUntil(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: gave up after %v", what, within)
		}
		time.Sleep(20 * time.Millisecond) // a poll interval, not an assertion
	}
}
