package server

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestObsHooksDoNotAllocate: the metric hooks on the delivery and error
// paths cost no allocation (series are resolved at start).
func TestObsHooksDoNotAllocate(t *testing.T) {
	s := &Server{metrics: newMetrics()}
	c := &conn{s: s}
	at := time.Now().UnixNano()
	if n := testing.AllocsPerRun(1000, func() {
		c.markLag(at)
		c.markLag(at + 1)
		c.observeLag()
		s.metrics.obs.countError("not_found")
		s.metrics.obs.countClose(4001)
		s.metrics.obs.sendAckWS.Observe(0.001)
	}); n != 0 {
		t.Fatalf("%v allocations per delivery, want 0", n)
	}
	// The oldest event's time is the one observed: a second mark before
	// the write does not replace it.
	c.markLag(at)
	c.markLag(at + int64(time.Hour))
	if got := c.lagSince.Load(); got != at {
		t.Fatalf("lagSince = %d, want the first mark %d", got, at)
	}
	c.observeLag()
	if got := c.lagSince.Load(); got != 0 {
		t.Fatalf("lagSince after a write = %d, want 0", got)
	}
}

// TestCloseCodesCounted: every close code in docs/protocol.md's table
// (section 8) has its own parley_closes_total series, not "other".
func TestCloseCodesCounted(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, _ := strings.Cut(string(doc), "## 8. Close codes")
	sec, _, _ = strings.Cut(sec, "\n## ")
	codes := regexp.MustCompile(`(?m)^\| (\d{4}) \|`).FindAllStringSubmatch(sec, -1)
	if len(codes) < 10 {
		t.Fatalf("found only %d close codes in protocol.md section 8", len(codes))
	}
	o := newMetrics().obs
	for _, m := range codes {
		code, _ := strconv.Atoi(m[1])
		if _, ok := o.closes[code]; !ok {
			t.Errorf("close code %d (docs/protocol.md) has no series of its own", code)
		}
	}
}
