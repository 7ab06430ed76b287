package postgres_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/storetest"
)

// TestRequestsInOneBatch: storetest.RequestsInOneBatch with each run of
// sends in one batch for sure: the batcher, holding the positions lock
// with the run's first send, waits (afterLock) until the whole run is
// queued, and then takes the rest of it into the same batch (fill). The
// batch observer shows that each run was one batch of two sends.
func TestRequestsInOneBatch(t *testing.T) {
	db := open(t, pgtest.Schema(t))
	var hold atomic.Pointer[chan struct{}]
	postgres.SetLockBounds(db, 5*time.Second, 5*time.Second, func() {
		if h := hold.Load(); h != nil {
			<-*h
		}
	})
	var (
		mu       sync.Mutex
		observed []int // each batch's ops, in commit order
		runs     []int // the index in observed of each run's batch
	)
	db.SetBatchObserver(func(ops int, _, _ time.Duration) {
		mu.Lock()
		observed = append(observed, ops)
		mu.Unlock()
	})
	storetest.RequestsInOneBatch(t, db, func(queue func()) {
		// Every write before the run was answered, so observed already.
		mu.Lock()
		runs = append(runs, len(observed))
		mu.Unlock()
		release := make(chan struct{})
		hold.Store(&release)
		queue()
		hold.Store(nil)
		close(release)
	})
	mu.Lock()
	defer mu.Unlock()
	if len(runs) == 0 {
		t.Fatal("no run of sends")
	}
	for _, i := range runs {
		if i >= len(observed) || observed[i] != 2 {
			t.Errorf("a run's batch: observed %v, run at %d; want a batch of its 2 sends", observed, i)
		}
	}
}
