// Package subscriptions keeps the subscriptions of a parley.Broker: the
// set Publish walks, closed for good by Close, and the stop func that
// Subscribe hands out. Every broker (membroker, natsbroker) has the same
// life cycle here; only how a subscription is opened, fed and stopped is
// its own.
package subscriptions

import "sync"

// Set holds a broker's subscriptions, S being the broker's own handle
// (a pointer). Its zero value is an open, empty set whose Add and Range
// report closed with a nil error: set ErrClosed to the broker's own.
//
// A Set is safe for concurrent use. Its lock is held while Add's open
// runs (so Close waits for a subscription being opened, and then stops
// it) and while Range's fn runs, and never while a stop func runs.
type Set[S comparable] struct {
	// ErrClosed is what Add and Range return after Close.
	ErrClosed error

	mu     sync.Mutex
	subs   map[S]struct{}
	closed bool
}

// Add opens a subscription with open and keeps it, unless the set is
// closed (ErrClosed) or open fails (its error). It returns the func that
// Subscribe hands out: its first call removes the subscription and then
// calls stop on it; later calls do nothing. stop may also run after Close
// already returned the subscription, so it must be idempotent.
func (t *Set[S]) Add(open func() (S, error), stop func(S)) (func(), error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, t.ErrClosed
	}
	s, err := open()
	if err != nil {
		return nil, err
	}
	if t.subs == nil {
		t.subs = make(map[S]struct{})
	}
	t.subs[s] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			delete(t.subs, s)
			t.mu.Unlock()
			stop(s)
		})
	}, nil
}

// Range calls fn for every subscription, under the set's lock, so fn must
// not block or call back into the set. After Close it returns ErrClosed.
func (t *Set[S]) Range(fn func(S)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.ErrClosed
	}
	for s := range t.subs {
		fn(s)
	}
	return nil
}

// Closed reports whether Close was called.
func (t *Set[S]) Closed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Close closes the set for good and returns the subscriptions it held,
// for the caller to stop, and true; a later Close returns none and false.
func (t *Set[S]) Close() (subs []S, first bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, false
	}
	t.closed = true
	subs = make([]S, 0, len(t.subs))
	for s := range t.subs {
		subs = append(subs, s)
	}
	t.subs = nil
	return subs, true
}
