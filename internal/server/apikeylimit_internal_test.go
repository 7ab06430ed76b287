package server

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestAPIKeyFailureBudgetRefills: an IP that used its failures is blocked
// (blocked does not take a token, so waiting out the answer is enough),
// for about the time one failure takes to come back, and not after.
func TestAPIKeyFailureBudgetRefills(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiters(Limits{}.withDefaults(), nil).apiKeyFailures
		for range 10 {
			if d := l.blocked("ip"); d != 0 {
				t.Fatalf("blocked %v within the burst", d)
			}
			l.wait("ip")
		}
		d := l.blocked("ip")
		if d <= 0 || d > 6*time.Second {
			t.Fatalf("after 10 failures: blocked %v, want (0, 6s]", d)
		}
		if again := l.blocked("ip"); again != d {
			t.Errorf("blocked took a token: %v then %v", d, again)
		}
		if l.blocked("other") != 0 {
			t.Error("another IP is blocked")
		}
		time.Sleep(d)
		if d := l.blocked("ip"); d != 0 {
			t.Errorf("after waiting the Retry-After: still blocked %v", d)
		}
	})
}
