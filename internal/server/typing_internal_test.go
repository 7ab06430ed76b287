package server

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestTypingTrackerForgetsExpired: a user who starts typing in a new
// conversation every half second for a minute (what the typing limit
// lets through) holds the few indicators still on, not one per
// conversation ever typed in while their connection lives.
func TestTypingTrackerForgetsExpired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := newTypingTracker()
		for i := range 120 {
			tr.start("u", fmt.Sprint("c", i))
			time.Sleep(500 * time.Millisecond)
		}
		if n, most := len(tr.active["u"]), int(TypingExpiry/(500*time.Millisecond))+1; n > most {
			t.Fatalf("the tracker holds %d conversations of a user, want at most %d (those within TypingExpiry)", n, most)
		}
	})
}
