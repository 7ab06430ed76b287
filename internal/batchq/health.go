package batchq

import (
	"fmt"
	"sync"
	"time"

	"github.com/parleychat/parley"
)

// RetryAfter is the retry hint given with Unavailable errors: how long a
// client waits before it retries a write the store could not make.
const RetryAfter = 5 * time.Second

// FailingFor is how long a store reports itself unable to write
// (WriteHealth.Err) after its last failed write, unless a write commits
// first. It lapses on its own so that a node a load balancer took out of
// rotation (its /readyz answering 503) gets traffic, and thus a chance to
// find out that writing works again.
const FailingFor = 10 * time.Second

// Unavailable wraps cause, an engine's error meaning "the store cannot
// write now" (disk full, I/O error, read-only), as parley.EUNAVAILABLE
// with RetryAfter: clients get `unavailable` and retry, the cause stays in
// the chain for the log.
func Unavailable(cause error) error {
	return fmt.Errorf("%w: %w", &parley.Error{
		Code:       parley.EUNAVAILABLE,
		Message:    "the store cannot write now (unreachable, disk full or failing); retry later",
		RetryAfter: RetryAfter,
	}, cause)
}

// WriteHealth remembers whether the store's writes fail for a reason the
// engine classified as Unavailable. The batcher goroutine reports each
// batch's outcome; readiness checks read Err. Safe for concurrent use.
type WriteHealth struct {
	mu       sync.Mutex
	err      error     // the last Unavailable failure, nil once a write commits
	failedAt time.Time // when err was seen last
}

// Observe records a write's outcome: committed (err nil) clears the
// failure; an error made by Unavailable records it; other errors (a bad
// request, a conflict) say nothing about the store and are ignored.
func (h *WriteHealth) Observe(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.err = nil
		return
	}
	if parley.ErrorCode(err) == parley.EUNAVAILABLE {
		h.err, h.failedAt = err, time.Now()
	}
}

// Err returns the last failed write's error while the store cannot write:
// from an Unavailable failure until a write commits or FailingFor passes
// without another failure. nil means writes are believed to work.
func (h *WriteHealth) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil && time.Since(h.failedAt) < FailingFor {
		return h.err
	}
	return nil
}
