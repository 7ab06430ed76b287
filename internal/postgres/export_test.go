package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/parleychat/parley/internal/sqlstore"
)

// BatchStats reports how many batches the store's batcher ran and how
// many ops they held, for the benchmarks of package postgres_test.
func BatchStats(db *DB) (batches, ops int64) { return db.b.batches.Load(), db.b.ops.Load() }

// SetLockBounds sets the batcher's lock_timeout and
// idle_in_transaction_session_timeout (see lockedTx), and a function run
// each time it holds the positions lock. Call it before the first write.
func SetLockBounds(db *DB, lockWait, holdIdle time.Duration, afterLock func()) {
	db.b.lockWait, db.b.holdIdle, db.b.afterLock = lockWait, holdIdle, afterLock
}

// MigrateDownTo undoes the migrations above version on the database at
// dsn (see sqlstore.MigrateDownTo).
func MigrateDownTo(ctx context.Context, dsn string, version int64) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return sqlstore.MigrateDownTo(ctx, "postgres", goose.DialectPostgres, db, migrations, version, goose.WithGoMigrations(searchWordsMigration()))
}

// WriteShard runs fn as a write declared to take positions in shard alone
// (sqlstore.Engine.WriteShard).
func WriteShard(ctx context.Context, db *DB, shard int, fn func(w sqlstore.Tx) error) error {
	return (*engine)(db).WriteShard(ctx, shard, fn)
}

// BenchBackends lists the PostgreSQL backend pids of the benchmark's
// sessions (application_name parley-bench-send).
func BenchBackends(ctx context.Context, db *DB) ([]int32, error) {
	var pids []int32
	err := db.pool.QueryRow(ctx, `SELECT COALESCE(array_agg(pid), '{}') FROM pg_stat_activity WHERE application_name = 'parley-bench-send'`).Scan(&pids)
	return pids, err
}

// SplitSmallBatches makes the batcher split every batch of a log of
// several shards into lanes (shards.go), however small: the lanes' paths
// run in tests whose batches are small. Call it before the first write.
func SplitSmallBatches(db *DB) { db.b.minLaneOps = 1 }

// InBatch makes fn run in each batch transaction, before its COMMIT, with
// the count of batches its connection ran (this one included). Call it
// before the first write.
func InBatch(db *DB, fn func(ctx context.Context, tx pgx.Tx, batches int64)) {
	db.b.beforeCommit = func(ctx context.Context, tx pgx.Tx) {
		n, _ := tx.Conn().PgConn().CustomData()[batchesKey].(int64)
		fn(ctx, tx, n)
	}
}

// SendStatements are the send path's statements (bulk.go).
var SendStatements = []string{qBulkSendCheck, qBulkSendCheckNew, qBulkSendWrite, qBulkSendWriteHeads, qSendCheck, qSendWrite, qSendWriteHeads}

// ReplanDue is replanDue.
var ReplanDue = replanDue
