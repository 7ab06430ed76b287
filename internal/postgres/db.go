// Package postgres is Parley's clustered store: a parley.Store on
// PostgreSQL (pgx/v5 and pgxpool), shared by every node of a cluster. It
// keeps the same contract, and passes the same internal/storetest suite, as
// the embedded SQLite store: both run the same operations (internal/sqlstore).
//
// # Positions across nodes
//
// Every node writes. Each node's batcher (batch.go) runs a batch in one
// transaction that first takes a transaction-scoped advisory lock
// (pg_advisory_xact_lock), then reads the counter row positions.head, hands
// out head+1, head+2, ... and writes the new head back before it commits.
// PostgreSQL makes a transaction visible before it releases its locks, so
// the next batch, on any node, starts after the previous one is visible:
// positions are dense and become visible in order. A reader that saw
// position P has therefore seen every position below P, which is what makes
// P a safe resume cursor (the "commit-order trap" a sequence or a
// SERIAL would fall into: two transactions take 7 and 8, 8 commits first, a
// reader resumes from 8 and never sees 7).
//
// The lock serialises writers cluster-wide; group commit is what makes that
// affordable: one lock, one round of WAL flush, for up to maxBatch writes.
//
// # Schemas
//
// A DB uses the first schema of the connection's search_path (normally
// public). The advisory lock keys are derived from that schema's name, so
// two deployments (or parallel tests) in separate schemas of one database
// neither share positions nor wait for each other.
//
// # The core
//
// Every domain operation (checks, permission rules, events, reads) is
// internal/sqlstore's, shared with internal/sqlite: DB embeds a
// *sqlstore.Store over this package's engine and dialect (engine.go).
// What stays here is PostgreSQL's own: the pool, the batcher with its
// positions lock and tuning (batch.go), the bulk sends (bulk.go) and the
// migrations.
package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"runtime"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a parley.Store on PostgreSQL. It is safe for concurrent use, and
// several DBs (one per node) may share one database. Close it when done:
// Close waits for writes under way.
type DB struct {
	// Store is every operation of parley.Store but Close, run on this
	// engine.
	*sqlstore.Store
	// Hooks gives SetBatchObserver, PublishCommits and WriteErr: it is
	// b's (batchq.Hooks).
	*batchq.Hooks

	pool *pgxpool.Pool
	b    *batcher
	// ix indexes search after the batcher's commits (indexer.go).
	ix *indexer
}

// DB is parley.Store and every optional interface the server uses.
var _ sqlstore.Complete = (*DB)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// DSN; pool settings such as pool_max_conns are honoured), applies the
// migrations and starts the batcher. Nodes starting together are safe:
// goose holds a session advisory lock while it migrates. opts may ask
// for a shard count (sqlstore.WithShards; see sqlstore.SetupShards).
func Open(ctx context.Context, url string, opts ...sqlstore.Option) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse url: %w", err)
	}
	if cfg.MaxConns < 4 {
		// One connection is the batcher's; readers need the rest.
		cfg.MaxConns = int32(max(4, 2*runtime.GOMAXPROCS(0)))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	var schema string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if schema == "" {
		pool.Close()
		return nil, fmt.Errorf("postgres: no schema on the search_path exists")
	}
	if err := migrate(ctx, pool, lockKey("migrate", schema)); err != nil {
		pool.Close()
		return nil, err
	}
	if err := fillNameKeys(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	shards, err := setupShards(ctx, pool, lockKey("migrate", schema), sqlstore.Apply(opts).Shards)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if err := setupSearchCursors(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: search cursors: %w", err)
	}
	db := &DB{pool: pool, b: newBatcher(pool, lockKeys(schema, shards))}
	db.ix = newIndexer(pool, db.b.holdIdle)
	db.b.committed = db.ix.kick
	db.ix.start()
	db.Hooks = &db.b.Hooks
	db.Store = sqlstore.New(dialect{}, (*engine)(db), shards)
	return db, nil
}

// lockKey derives an advisory lock key from a purpose and the schema.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("parley:" + purpose + ":" + schema))
	return int64(h.Sum64())
}

// migrate applies the embedded migrations under a session lock that
// serialises concurrent nodes.
func migrate(ctx context.Context, pool *pgxpool.Pool, key int64) error {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(key), lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("postgres: migrations: %w", err)
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	// 00026 is in Go (searchwords.go): it splits the texts' words.
	return sqlstore.Migrate(ctx, "postgres", goose.DialectPostgres, db, migrations, goose.WithSessionLocker(locker),
		goose.WithGoMigrations(searchWordsMigration()))
}

// fillNameKeys runs sqlstore.FillNameKeys row by row. Nodes starting
// together may race: a key another node just gave to another row is a
// unique violation this node skips.
func fillNameKeys(ctx context.Context, pool *pgxpool.Pool) error {
	return sqlstore.FillNameKeys(ctx, dialect{}, pgQuerier{pool}, isUniqueViolation)
}

// setupShards runs sqlstore.SetupShards in a transaction holding the
// migration lock (nodes starting together take turns), and gives every
// shard its positions row.
func setupShards(ctx context.Context, pool *pgxpool.Pool, key int64, want int) (int, error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: shards: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return 0, fmt.Errorf("postgres: shards: %w", err)
	}
	n, err := sqlstore.SetupShards(ctx, dialect{}, pgQuerier{tx}, want)
	if err != nil {
		return 0, err
	}
	var rows int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM positions`).Scan(&rows); err != nil {
		return 0, fmt.Errorf("postgres: shards: %w", err)
	}
	if rows == n {
		// Nothing to write (a read-only database opens too).
		return n, nil
	}
	// A new count on an empty log (SetupShards checked): every shard
	// starts at head 0.
	if _, err := tx.Exec(ctx, `DELETE FROM positions`); err != nil {
		return 0, fmt.Errorf("postgres: shards: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO positions (shard, head) SELECT g, 0 FROM generate_series(0, $1 - 1) g`, n); err != nil {
		return 0, fmt.Errorf("postgres: shards: %w", err)
	}
	return n, tx.Commit(ctx)
}

// Close stops taking writes, waits for those under way to commit and
// closes the pool. It is safe to call more than once.
func (db *DB) Close() error {
	db.b.close()
	db.ix.close()
	db.pool.Close()
	return nil
}
