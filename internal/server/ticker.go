package server

import (
	"context"
	"time"
)

// every calls f with the tick's time every d until ctx ends, on the
// calling goroutine (its owner's: the Server's background goroutines).
func every(ctx context.Context, d time.Duration, f func(now time.Time)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			f(now)
		}
	}
}
