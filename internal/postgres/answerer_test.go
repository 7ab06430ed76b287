package postgres_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// TestNextBatchRunsWhileAnswering: a committed batch is published and
// answered while the next batch already runs (batch.go, the answerer).
// The answer hooks of the first batch wait until the next batch holds the
// positions lock; when answering is the batcher's own work, that batch
// cannot start, and the wait ends only at its bound (20 s, a deadlock
// detector: nothing is timed). Both writes succeed.
func TestNextBatchRunsWhileAnswering(t *testing.T) {
	db := open(t, pgtest.Schema(t))
	var (
		armed      atomic.Bool
		locks      atomic.Int32
		second     = make(chan struct{}) // closed when the second batch holds the lock
		answering  = make(chan struct{}) // closed when the first batch's answers begin
		once       sync.Once
		overlapped atomic.Bool
	)
	postgres.SetLockBounds(db, 5*time.Second, 5*time.Second, func() {
		if armed.Load() && locks.Add(1) == 2 {
			close(second)
		}
	})
	db.SetAnswerHooks(func() {
		if !armed.Load() {
			return
		}
		once.Do(func() {
			close(answering)
			select {
			case <-second:
				overlapped.Store(true)
			case <-time.After(20 * time.Second):
			}
		})
	}, func() {})
	armed.Store(true)

	done := make(chan error, 1)
	go func() {
		_, err := db.EnsureUser(t.Context(), "user-first", "First")
		done <- err
	}()
	<-answering
	if _, err := db.EnsureUser(t.Context(), "user-second", "Second"); err != nil {
		t.Fatalf("the second write: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the first write: %v", err)
	}
	if !overlapped.Load() {
		t.Fatal("the next batch did not take the positions lock while the first batch was being answered")
	}
}
