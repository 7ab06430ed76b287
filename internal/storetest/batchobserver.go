package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// batchObserverSetter is the optional interface the server looks for to
// record parley_store_batch_ops and the commit times.
type batchObserverSetter interface {
	SetBatchObserver(func(ops int, commit, txn time.Duration))
}

// testBatchObserver: the store tells its batch observer about every
// committed batch, before it answers the batch's callers: after a run of
// n sends returns, the ops reported add up to n, over at least one batch,
// and each batch's COMMIT took no longer than its whole transaction.
// Removing the observer stops the reports.
func testBatchObserver(t *testing.T, s parley.Store) {
	bo := optional[batchObserverSetter](t, s)
	alice, bob := newUser(t, s, "obs"), newUser(t, s, "obs")
	g := newGroup(t, s, alice, "G", bob)

	var (
		mu           sync.Mutex
		batches, ops int
		badDur       []string
	)
	bo.SetBatchObserver(func(n int, commit, total time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		batches++
		ops += n
		if n <= 0 || commit < 0 || commit > total {
			badDur = append(badDur, fmtBatch(n, commit, total))
		}
	})
	const n = 40
	texts := make([]string, n)
	for i := range texts {
		texts[i] = "m"
	}
	replyMany(t, s, g.ID, alice, texts...)
	send(t, s, g.ID, bob, "one more")

	mu.Lock()
	gotBatches, gotOps, bad := batches, ops, badDur
	mu.Unlock()
	if gotOps != n+1 || gotBatches < 1 || gotBatches > n+1 {
		t.Errorf("after %d sends: %d batches with %d ops in all, want ops %d", n+1, gotBatches, gotOps, n+1)
	}
	if len(bad) > 0 {
		t.Errorf("batches reported with bad figures: %v", bad)
	}

	bo.SetBatchObserver(nil)
	send(t, s, g.ID, bob, "unobserved")
	mu.Lock()
	defer mu.Unlock()
	if ops != gotOps {
		t.Errorf("after SetBatchObserver(nil) a batch was still reported: ops %d -> %d", gotOps, ops)
	}
}

func fmtBatch(n int, commit, txn time.Duration) string {
	return fmt.Sprintf("%d ops, commit %v, txn %v", n, commit, txn)
}
