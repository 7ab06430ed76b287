package sqlite

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/batchq"
)

// TestGatherWaitsAfterBusyBatch: after a batch of several ops, the next
// one takes the ops that arrive within the commit interval (an hour here,
// so only a full batch ends the wait), instead of committing the first
// op alone.
func TestGatherWaitsAfterBusyBatch(t *testing.T) {
	b := &batcher{queue: batchq.NewQueue[*op](maxBatch), interval: time.Hour, lastRun: time.Now(), lastOps: 2}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ops := make([]*op, maxBatch-1)
	var wg sync.WaitGroup
	for i := range ops {
		ops[i] = &op{}
		wg.Go(func() { _ = b.queue.Enqueue(ctx, ops[i]) })
	}
	got := b.gather([]*op{{}})
	if len(got) != maxBatch {
		t.Errorf("gathered %d ops, want a full batch of %d", len(got), maxBatch)
	}
	cancel() // the ops were not claimed: their callers give up
	wg.Wait()
}

// TestGatherNoWaitAfterLoneOp: after a batch of one op (a caller that
// waits for each answer before writing again) the next batch runs at
// once, whatever the interval: a serial writer never waits for it.
func TestGatherNoWaitAfterLoneOp(t *testing.T) {
	for _, lastOps := range []int{0, 1} {
		b := &batcher{queue: batchq.NewQueue[*op](maxBatch), interval: time.Hour, lastRun: time.Now(), lastOps: lastOps}
		if got := b.gather([]*op{{}}); len(got) != 1 {
			t.Errorf("after a batch of %d: gathered %d ops, want 1", lastOps, len(got))
		}
	}
	b := &batcher{queue: batchq.NewQueue[*op](maxBatch), interval: -1, lastRun: time.Now(), lastOps: 2}
	if got := b.gather([]*op{{}}); len(got) != 1 {
		t.Errorf("without an interval: gathered %d ops, want 1", len(got))
	}
}
