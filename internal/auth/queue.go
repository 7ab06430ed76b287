package auth

import (
	"context"
	"sync"
	"time"

	"github.com/parleychat/parley"
)

// Defaults of the hash queue (see fairQueue).
const (
	// DefaultMaxWait is how long a hash may wait for a slot before the
	// request gets EUNAVAILABLE (HTTP 503) with RetryAfter.
	DefaultMaxWait = 5 * time.Second
	// DefaultMaxQueuedPerKey is how many hashes of one key (one client IP)
	// may wait at once; one more gets EUNAVAILABLE at once.
	DefaultMaxQueuedPerKey = 16
	// busyRetryAfter is the RetryAfter of a refusal by the queue: about
	// the time a slot takes to free up.
	busyRetryAfter = time.Second
)

// errBusy is what a hash that got no slot returns.
var errBusy = &parley.Error{Code: parley.EUNAVAILABLE, Message: "too many logins at once; try again", RetryAfter: busyRetryAfter}

// fairQueue hands out a fixed number of slots to callers identified by a
// key (the client's IP). It is fair between keys: a key runs at most one
// hash at a time, and when a slot frees up the keys that wait take turns
// (round robin), so one IP that sends a hundred logins at once delays
// its own logins, not another IP's. A wait is bounded: a caller that gets
// no slot within maxWait, or whose key already has maxQueued waiting,
// gets errBusy. Safe for concurrent use.
type fairQueue struct {
	slots     int
	maxWait   time.Duration
	maxQueued int
	// onAdmit, when set, is called (under mu) with the key of each caller
	// that gets a slot, in order: tests read fairness from it.
	onAdmit func(key string)

	mu      sync.Mutex
	busy    int                  // slots in use
	running map[string]int       // slots in use per key
	waiting map[string][]*waiter // FIFO per key
	ring    []string             // keys with waiters, in turn order
	queued  int                  // total waiters
}

type waiter struct {
	key     string
	ready   chan struct{} // closed when granted
	granted bool          // under mu
}

func newFairQueue(slots int) *fairQueue {
	return &fairQueue{
		slots: max(1, slots), maxWait: DefaultMaxWait, maxQueued: DefaultMaxQueuedPerKey,
		running: make(map[string]int), waiting: make(map[string][]*waiter),
	}
}

// acquire waits for a slot for key; the caller must call release(key)
// after a nil return. It returns errBusy when the wait would exceed
// maxWait, key has maxQueued waiting already, or ctx ends.
func (q *fairQueue) acquire(ctx context.Context, key string) error {
	q.mu.Lock()
	if q.busy < q.slots && q.running[key] == 0 && len(q.waiting[key]) == 0 {
		q.grantLocked(key)
		q.mu.Unlock()
		return nil
	}
	if len(q.waiting[key]) >= q.maxQueued {
		q.mu.Unlock()
		return errBusy
	}
	w := &waiter{key: key, ready: make(chan struct{})}
	if len(q.waiting[key]) == 0 {
		q.ring = append(q.ring, key)
	}
	q.waiting[key] = append(q.waiting[key], w)
	q.queued++
	q.mu.Unlock()

	t := time.NewTimer(q.maxWait)
	defer t.Stop()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	case <-t.C:
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if w.granted { // granted while giving up: hand the slot on
		q.releaseLocked(key)
		return errBusy
	}
	q.removeLocked(w)
	return errBusy
}

// release frees the slot key holds.
func (q *fairQueue) release(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.releaseLocked(key)
}

func (q *fairQueue) grantLocked(key string) {
	q.busy++
	q.running[key]++
	if q.onAdmit != nil {
		q.onAdmit(key)
	}
}

func (q *fairQueue) releaseLocked(key string) {
	q.busy--
	if q.running[key]--; q.running[key] <= 0 {
		delete(q.running, key)
	}
	q.dispatchLocked()
}

// dispatchLocked gives free slots to the waiting keys in turn: the first
// key of the ring that runs nothing gets a slot for its oldest waiter and
// goes to the back of the ring if it has more.
func (q *fairQueue) dispatchLocked() {
	for q.busy < q.slots {
		i := 0
		for i < len(q.ring) && q.running[q.ring[i]] > 0 {
			i++
		}
		if i == len(q.ring) {
			return
		}
		key := q.ring[i]
		q.ring = append(q.ring[:i], q.ring[i+1:]...)
		ws := q.waiting[key]
		w := ws[0]
		if len(ws) == 1 {
			delete(q.waiting, key)
		} else {
			q.waiting[key] = ws[1:]
			q.ring = append(q.ring, key)
		}
		q.queued--
		w.granted = true
		q.grantLocked(key)
		close(w.ready)
	}
}

// removeLocked takes a waiter that gave up out of its key's queue.
func (q *fairQueue) removeLocked(w *waiter) {
	ws := q.waiting[w.key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	q.queued--
	if len(ws) > 0 {
		q.waiting[w.key] = ws
		return
	}
	delete(q.waiting, w.key)
	for i, k := range q.ring {
		if k == w.key {
			q.ring = append(q.ring[:i], q.ring[i+1:]...)
			break
		}
	}
}

// waitingCount is how many callers wait for a slot.
func (q *fairQueue) waitingCount() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.queued
}
