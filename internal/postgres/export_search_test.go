package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// ManualIndex stops db's indexer from indexing after commits (it still
// does at Close, and when a search finds more than the tail bound
// waiting), so searches match the unindexed tail. Call it before the
// first write.
func ManualIndex(db *DB) { db.ix.manual.Store(true) }

// SetSearchTail sets how many waiting events a search matches unindexed
// before it has them indexed (searchTail). Call it before the first
// search.
func SetSearchTail(db *DB, n int64) { db.ix.tail = n }

// BeforeIndexCommit sets a function each index step runs, with its
// backend's pid, before it commits. Call it before the first write.
func BeforeIndexCommit(db *DB, f func(pid uint32)) {
	db.ix.beforeCommit = func(_ context.Context, tx pgx.Tx) { f(tx.Conn().PgConn().PID()) }
}

// InIndexStep sets a function each index step runs in its transaction
// before it commits. Call it before the first write.
func InIndexStep(db *DB, f func(ctx context.Context, tx pgx.Tx)) { db.ix.beforeCommit = f }

// IndexStep runs one index step of shard on db's indexer, waiting for a
// cursor another node holds.
func IndexStep(ctx context.Context, db *DB, shard int) (more bool, err error) {
	return db.ix.step(ctx, shard, true)
}

// IndexPass runs one pass of db's indexer as after a commit (skipping
// cursors other nodes hold); again says events still wait.
func IndexPass(ctx context.Context, db *DB) (again bool) { return db.ix.pass(ctx, false) }

// SetIndexWait sets how long a pass leaves a shard with fewer than
// MinStepEvents waiting (maxIndexWait).
func SetIndexWait(db *DB, d time.Duration) {
	db.ix.sinceMu.Lock()
	db.ix.maxWait = d
	db.ix.sinceMu.Unlock()
}

// MinStepEvents is minStepEvents.
const MinStepEvents = minStepEvents

// SearchLag is how many events wait for the index, over every shard.
func SearchLag(ctx context.Context, db *DB) (int64, error) {
	lag, err := db.ix.lag(ctx)
	var n int64
	for _, l := range lag {
		n += l
	}
	return n, err
}

// DSN is the connection string db was opened with.
func DSN(db *DB) string { return db.pool.Config().ConnString() }

// IndexAll runs a pass of db's indexer as at close: every waiting event
// of every shard is indexed (a chunk per shard: tests write fewer).
func IndexAll(ctx context.Context, db *DB) { db.ix.pass(ctx, true) }
