package batchq

import (
	"sync/atomic"
	"time"
)

// BatchObserver is told about each committed batch: ops is how many ops
// it committed (claimed ops, whether each succeeded or failed alone),
// commit how long the COMMIT statement took, and txn the whole
// transaction, from BEGIN (including, in PostgreSQL, the wait for the
// positions lock) to the end of the COMMIT, including a second run of
// the batch after its bulk rows failed. A batch that was rolled back is
// not reported.
//
// It is called on the batcher goroutine, between the commit and the
// answers to the batch's callers: it must be quick, must not block and
// must not call the store (the batcher would wait for itself).
type BatchObserver func(ops int, commit, txn time.Duration)

// Observer holds a store's optional BatchObserver. Set may be called at
// any time, concurrently with batches (the pointer is atomic): a batch
// committing meanwhile reports to the old or the new one. Observe costs
// one atomic load when none is set and allocates nothing either way.
// The zero value has none.
type Observer struct{ f atomic.Pointer[BatchObserver] }

// Set replaces the observer; nil removes it.
func (o *Observer) Set(f BatchObserver) {
	if f == nil {
		o.f.Store(nil)
		return
	}
	o.f.Store(&f)
}

// Observe reports one committed batch to the observer, if any; start is
// when its transaction began, commitStart when its COMMIT did.
func (o *Observer) Observe(ops int, start, commitStart time.Time) {
	f := o.f.Load()
	if f == nil {
		return
	}
	end := time.Now()
	(*f)(ops, end.Sub(commitStart), end.Sub(start))
}
