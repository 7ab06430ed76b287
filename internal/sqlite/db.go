// Package sqlite is Parley's embedded store: a parley.Store on one SQLite
// file (modernc.org/sqlite, pure Go, WAL mode).
//
// # Connections
//
// A DB holds one write connection, owned by the batcher goroutine (see
// batch.go), a separate pool of read-only connections, and one connection
// for WAL checkpoints (checkpoint.go). In WAL mode readers never block the
// writer or each other, and each read transaction sees a consistent
// snapshot of committed data. Every query is prepared once per connection
// (batch.go, read.go).
//
// # Durability
//
// The write connection runs with synchronous=FULL: a write is on disk
// (fsynced) before the call that made it returns, so an acknowledged
// message survives a power loss, not only a process crash. Group commit
// makes that affordable: one fsync covers a whole batch of writes.
// (synchronous=NORMAL would skip the fsync at commit in WAL mode and could
// lose the last acknowledged writes on power loss; we do not trade that.)
//
// # Positions
//
// Positions are handed out by the batcher, the only writer, while it holds
// SQLite's write lock, so they are dense and in commit order.
//
// # The core
//
// Every domain operation (checks, permission rules, events, reads) is
// internal/sqlstore's, shared with internal/postgres: DB embeds a
// *sqlstore.Store over this package's engine (engine.go) and SQL dialect
// (dialect.go). What stays here is SQLite's own: the connections, the
// batcher and its deferred sends (batch.go, cache.go, send.go), the
// checkpointer and the migrations.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a parley.Store on one SQLite file. It is safe for concurrent use.
// Close it when done: Close waits for writes under way.
type DB struct {
	// Store is every operation of parley.Store but Close, run on this
	// engine.
	*sqlstore.Store
	// Hooks gives SetBatchObserver, PublishCommits and WriteErr: it is
	// b's (batchq.Hooks).
	*batchq.Hooks

	write *sql.DB // one connection, used only by the batcher
	read  *sql.DB // read-only pool
	b     *batcher
	ckpt  *checkpointer
	// rstmts: the read queries prepared on read, by query text, each the
	// first time it runs (engine.go).
	rstmts sync.Map // string -> *sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

// DB is parley.Store and every optional interface the server uses.
var _ sqlstore.Complete = (*DB)(nil)

// Open opens (creating it if needed) the database at path, applies the
// migrations and starts the batcher. opts may ask for a shard count
// (sqlstore.WithShards; see sqlstore.SetupShards).
func Open(ctx context.Context, path string, opts ...sqlstore.Option) (*DB, error) {
	common := url.Values{}
	common.Add("_pragma", "journal_mode(WAL)")
	common.Add("_pragma", "busy_timeout(5000)")
	common.Add("_pragma", "foreign_keys(1)")

	wq := cloneValues(common)
	// NORMAL: in WAL mode a COMMIT then makes no fsync; the batcher
	// fsyncs the WAL itself before it answers (walsync.go).
	wq.Add("_pragma", "synchronous(NORMAL)")
	// A statement that may have to be undone alone keeps a statement
	// journal (a plain op's multi-row write under foreign keys; since
	// 00017 the batch's sends keep none); in memory it costs no write(2)
	// calls.
	wq.Add("_pragma", "temp_store(MEMORY)")
	// A larger page cache for the one writer: the indexes it inserts into
	// (client ids, conversations) are spread over the file.
	wq.Add("_pragma", "cache_size(-32768)")
	// Checkpoint less often (checkpoint.go).
	wq.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", walAutocheckpoint))
	// BEGIN IMMEDIATE: take the write lock at the start of the batch.
	wq.Set("_txlock", "immediate")
	if err := createWithPageSize(ctx, path); err != nil {
		return nil, err
	}
	write, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	if err := sqlstore.Migrate(ctx, "sqlite", goose.DialectSQLite3, write, migrations, goose.WithGoMigrations(attachmentChunksMigration())); err != nil {
		write.Close()
		return nil, err
	}
	if err := fillNameKeys(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	o := sqlstore.Apply(opts)
	shards, err := setupShards(ctx, write, o.Shards)
	if err != nil {
		write.Close()
		return nil, err
	}
	wal, err := openSyncer(path + "-wal")
	if err == nil {
		// What Open wrote so far, as synchronous=FULL would have.
		err = wal.sync()
		if err != nil {
			wal.close()
		}
	}
	if err != nil {
		write.Close()
		return nil, err
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	read, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		wal.close()
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	cq := cloneValues(common)
	// OFF: the batcher fsyncs around its checkpoints (checkpoint.go).
	cq.Add("_pragma", "synchronous(OFF)")
	ckpt, err := sql.Open("sqlite", "file:"+path+"?"+cq.Encode())
	var dbFile *fileSyncer
	if err == nil {
		dbFile, err = openSyncer(path)
		if err != nil {
			ckpt.Close()
		}
	}
	if err != nil {
		wal.close()
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	db := &DB{write: write, read: read}
	db.Store = sqlstore.New(dialect{}, (*engine)(db), shards)
	db.ckpt = &checkpointer{db: ckpt, file: dbFile, last: time.Now()}
	db.b, err = newBatcher(ctx, write, db.ckpt, wal, shards, o.CommitInterval)
	if err != nil {
		db.ckpt.close()
		wal.close()
		write.Close()
		read.Close()
		return nil, err
	}
	db.Hooks = &db.b.Hooks
	return db, nil
}

// pageSize is the page size of a new database file (SQLite's default is
// 4096). A file keeps the size it was created with: an existing one is
// opened as it is.
//
// Larger pages make the send path cheaper where it inserts at random
// places: the indexes keyed by conversation or sender ((conversation_id,
// seq), (sender_id, client_id), events (conversation_id, pos)) hold
// twice the entries a leaf, so a send splits a leaf half as often, and
// the writer's page cache (cache_size is in bytes) holds half as many
// pages. Both matter at every COMMIT after such a split: SQLite
// rebalances the leaves with the pending-byte page's number as a
// temporary key (balance_nonroot), which leaves the cache's highest key
// there, and the commit then walks every page of the writer's cache to
// drop the pages above the file's end (pcache1TruncateUnsafe, from
// pager_end_transaction), ~100 ns a page here: with 4096 that was 20-28%
// of the store's CPU with 4 sends a batch and 15% with 32, and 7% of the
// whole server's at 1800 msg/s of fan-out (docs/benchmarks.md, "SQLite
// CPU per stored message: the page cache's walk at commit"). A file
// larger than 1 GiB is past the pending-byte page and has no such walk.
const pageSize = 8192

// createWithPageSize creates the database at path with pageSize pages
// when it does not exist yet (or is empty); the page size of a file is
// set before its first table, and the WAL mode after it.
func createWithPageSize(ctx context.Context, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
		return nil
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{fmt.Sprintf("PRAGMA page_size = %d", pageSize), "PRAGMA journal_mode = WAL"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlite: create %s: %w", path, err)
		}
	}
	return db.Close()
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// fillNameKeys runs sqlstore.FillNameKeys in one transaction.
func fillNameKeys(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: fill name keys: %w", err)
	}
	defer tx.Rollback()
	if err := sqlstore.FillNameKeys(ctx, dialect{}, &readTx{tx: tx}, func(error) bool { return false }); err != nil {
		return err
	}
	return tx.Commit()
}

// setupShards runs sqlstore.SetupShards in one transaction.
func setupShards(ctx context.Context, db *sql.DB, want int) (int, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: shards: %w", err)
	}
	defer tx.Rollback()
	n, err := sqlstore.SetupShards(ctx, dialect{}, &readTx{tx: tx}, want)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// Close stops taking writes, waits for those under way to commit and
// closes the database. It is safe to call more than once.
func (db *DB) Close() error {
	// Once: a second, concurrent Close waits for the first to finish.
	db.closeOnce.Do(func() {
		berr := db.b.close()
		werr := db.b.wal.close()
		cerr := db.ckpt.close()
		db.closeReadStmts()
		db.closeErr = errors.Join(berr, werr, cerr, db.write.Close(), db.read.Close())
	})
	return db.closeErr
}

func (db *DB) closeReadStmts() {
	db.rstmts.Range(func(q, st any) bool {
		st.(*sql.Stmt).Close()
		db.rstmts.Delete(q)
		return true
	})
}

// Stats counts the work of the batcher since Open.
type Stats struct {
	// Batches is the number of committed write transactions, Ops the
	// writes they held: Ops/Batches is the mean batch size.
	Batches, Ops int64
	// Retries counts batches run a second time, every op writing at
	// once, after their multi-row writes failed (batch.go).
	Retries int64
	// Misses counts batches written without probing their sends' client
	// ids that held a resend, run again with the probe (batch.go).
	Misses int64
}

// Stats returns the batcher's counters. It is safe for concurrent use.
func (db *DB) Stats() Stats {
	return Stats{Batches: db.b.batches.Load(), Ops: db.b.ops.Load(), Retries: db.b.retries.Load(), Misses: db.b.misses.Load()}
}
