package bench

import (
	"testing"
	"time"
)

// TestDueBy: message k of a paced run is due at its scheduled time
// start + k*interval, not one interval later.
func TestDueBy(t *testing.T) {
	const interval = float64(2 * time.Millisecond)
	for _, c := range []struct {
		elapsed time.Duration
		want    int
	}{
		{0, 1},                      // message 0 at the start
		{2*time.Millisecond - 1, 1}, // message 1 not yet
		{2 * time.Millisecond, 2},   // message 1 at its time
		{10*time.Millisecond + time.Microsecond, 6}, // messages 0-5
	} {
		if got := dueBy(c.elapsed, interval); got != c.want {
			t.Errorf("dueBy(%v) = %d, want %d", c.elapsed, got, c.want)
		}
	}
}
