package postgres

import (
	"time"

	"github.com/parleychat/parley"
)

// SetBatchObserver sets f to be told about every batch the group-commit
// batcher commits: how many ops it held, how long its COMMIT took and how
// long its whole transaction took (see batchq.BatchObserver for what each
// covers). nil removes it. Safe to call at any time, concurrently with
// writes; one observer at a time (the last set wins). f runs on the
// batcher goroutine before the batch's callers are answered: it must be
// quick and must not call the store. The server records it as
// parley_store_batch_ops, parley_store_commit_seconds and
// parley_store_batch_seconds.
func (db *DB) SetBatchObserver(f func(ops int, commit, txn time.Duration)) {
	db.b.observer.Set(f)
}

// PublishCommits implements parley.CommitPublisher: the batcher hands
// each committed batch's events (this node's) to publish before it
// answers the batch's writers (see batchq.Publisher).
func (db *DB) PublishCommits(publish func(evs []parley.Event)) {
	db.b.publisher.Set(publish)
}
