// Package batchq is the part of the stores' group-commit batchers that does
// not depend on the database: handing a caller's run of ops to the batcher
// goroutine in order, and answering or cancelling them. Both stores
// (internal/sqlite, internal/postgres) use it for their SendMessages.
package batchq

import (
	"context"
	"sync"
)

// Op is one queued write as its caller sees it.
type Op interface {
	// Cancel marks the op cancelled if the batcher has not claimed it
	// yet, and reports whether it did; a cancelled op never runs.
	Cancel() bool
	// Done delivers the op's result once the batcher has run it (or
	// rolled it back). It must be buffered: the batcher never blocks.
	Done() <-chan error
}

// EnqueueMany queues ops on ch in order and calls done(i, err) for each,
// in order, with the op's result; it returns when every op is answered.
// mu guards *closed and every send on ch (the batcher's close takes it
// for writing before it stops reading ch); when *closed is set, every op
// is answered closedErr.
//
// Queued together, the ops share a batch or follow each other in
// consecutive ones. If ctx ends, the ops not yet claimed are cancelled from
// the last one back: the batcher claims ops in queue order, so the
// cancelled ones are always a suffix of ops, and no op runs after a later
// one of the same call was dropped.
func EnqueueMany[O Op](ctx context.Context, mu *sync.RWMutex, closed *bool, ch chan<- O, closedErr error, ops []O, done func(i int, err error)) {
	n := 0 // ops queued
	failed := ctx.Err()
	if failed == nil {
		mu.RLock()
		if *closed {
			failed = closedErr
		}
	queue:
		for failed == nil && n < len(ops) {
			select {
			case ch <- ops[n]:
				n++
			case <-ctx.Done():
				failed = ctx.Err()
				break queue
			}
		}
		mu.RUnlock()
	}
	cut := n // ops[cut:n] were cancelled
	for i := range n {
		var err error
		if i < cut {
			select {
			case err = <-ops[i].Done():
			case <-ctx.Done():
				for cut > i && ops[cut-1].Cancel() {
					cut--
				}
				if i < cut {
					err = <-ops[i].Done()
				}
			}
		}
		if i >= cut {
			err = ctx.Err()
		}
		done(i, err)
	}
	for i := n; i < len(ops); i++ {
		done(i, failed)
	}
}

// InOrder answers len(pre) items in order through done. Items with
// pre[i] != nil (refused before queueing) are answered that error in
// their place; the others go to run, which must answer the k-th of them
// through answer, in order (as EnqueueMany does). So a caller's replies
// keep the order of its requests even though only some were queued.
// run may answer after it returns, on another goroutine
// (EnqueueManyAsync): the refused items after the last one run are
// answered with it, and when none is run, every item is answered before
// run is called.
func InOrder(pre []error, run func(answer func(k int, err error)), done func(i int, err error)) {
	idx := make([]int, 0, len(pre)) // the k-th item run answers is pre[idx[k]]
	for i, err := range pre {
		if err == nil {
			idx = append(idx, i)
		}
	}
	next := 0                   // the next item to answer
	refused := func(upTo int) { // answers the refused items before upTo
		for ; next < upTo; next++ {
			done(next, pre[next])
		}
	}
	if len(idx) == 0 {
		refused(len(pre))
	}
	run(func(k int, err error) {
		i := idx[k]
		refused(i)
		done(i, err)
		next = i + 1
		if k == len(idx)-1 {
			refused(len(pre))
		}
	})
}
