package sqlite

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/batchq"
)

// TestGatherWaitsAfterBusyBatch: when ops arrived while the last batch
// ran, the next one takes the ops that arrive within the commit interval
// (an hour here, so only a full batch ends the wait), instead of
// committing the first op alone.
func TestGatherWaitsAfterBusyBatch(t *testing.T) {
	b := &batcher{queue: batchq.NewQueue[*op](maxBatch), interval: time.Hour, lastRun: time.Now(), arrived: 1, want: 2 * maxBatch}
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

// TestGatherNoWaitInClosedLoop: when nothing arrived while the last
// batch ran (its writers, each waiting for its answer, were all in it)
// the next batch runs at once, whatever the interval: a serial writer, or
// a closed loop of them, never waits for it.
func TestGatherNoWaitInClosedLoop(t *testing.T) {
	b := &batcher{queue: batchq.NewQueue[*op](maxBatch), interval: time.Hour, lastRun: time.Now()}
	if got := b.gather([]*op{{}}); len(got) != 1 {
		t.Errorf("nothing arrived during the last batch: gathered %d ops, want 1", len(got))
	}
	b = &batcher{queue: batchq.NewQueue[*op](maxBatch), interval: -1, lastRun: time.Now(), arrived: 1}
	if got := b.gather([]*op{{}}); len(got) != 1 {
		t.Errorf("without an interval: gathered %d ops, want 1", len(got))
	}
}

// TestGatherUntilWant: the wait ends once the batch holds as many ops as
// the last batch plus those that arrived while it ran (want): a closed
// loop whose writers are all back goes at once, the interval (an hour
// here) notwithstanding.
func TestGatherUntilWant(t *testing.T) {
	b := &batcher{queue: batchq.NewQueue[*op](maxBatch), interval: time.Hour, lastRun: time.Now(), arrived: 1, want: 3}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = b.queue.Enqueue(ctx, &op{}) })
	}
	if got := b.gather([]*op{{}}); len(got) != 3 {
		t.Errorf("gathered %d ops, want 3", len(got))
	}
	cancel()
	wg.Wait()
}
