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
// # Choices the contract leaves open
//
//   - Unknown user ids in CreateGroup or UpdateConversation's Add are
//     ENOTFOUND, and nothing is written.
//   - Names are unique by parley.NameKey (users.name_key, migration
//     00003), filled at open for older rows (fillNameKeys).
//   - EnsureUser with a name another user holds is ECONFLICT.
//   - Re-sending a ClientID the sender already used in another
//     conversation is ECONFLICT.
//   - Removing a user who is not a member, adding one who is, or renaming
//     to the same title changes nothing and makes no event.
//   - The MaxGroupMembers limit counts the members added by a change
//     before the ones it removes.
//   - Page limits: Messages takes 0 as DefaultPageLimit and clamps to
//     MaxPageLimit; Events and EventsFor need a positive limit and clamp
//     it to ResumeLimit+1. Negative cursors are EINVALID.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sync"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/parleychat/parley"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a parley.Store on one SQLite file. It is safe for concurrent use.
// Close it when done: Close waits for writes under way.
type DB struct {
	write *sql.DB // one connection, used only by the batcher
	read  *sql.DB // read-only pool
	b     *batcher
	ckpt  *checkpointer
	// rstmts: readQueries prepared on read, by query text; read-only
	// once Open returns.
	rstmts map[string]*sql.Stmt

	closeOnce sync.Once
	closeErr  error
}

var _ parley.Store = (*DB)(nil)

// Open opens (creating it if needed) the database at path, applies the
// migrations and starts the batcher.
func Open(ctx context.Context, path string) (*DB, error) {
	common := url.Values{}
	common.Add("_pragma", "journal_mode(WAL)")
	common.Add("_pragma", "busy_timeout(5000)")
	common.Add("_pragma", "foreign_keys(1)")

	wq := cloneValues(common)
	wq.Add("_pragma", "synchronous(FULL)")
	// The batch's multi-row statements keep a statement journal (to undo
	// one statement alone); in memory it costs no write(2) calls.
	wq.Add("_pragma", "temp_store(MEMORY)")
	// A larger page cache for the one writer: the indexes it inserts into
	// (client ids, conversations) are spread over the file.
	wq.Add("_pragma", "cache_size(-32768)")
	// BEGIN IMMEDIATE: take the write lock at the start of the batch.
	wq.Set("_txlock", "immediate")
	write, err := sql.Open("sqlite", "file:"+path+"?"+wq.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)

	if err := migrate(ctx, write); err != nil {
		write.Close()
		return nil, err
	}
	if err := fillNameKeys(ctx, write); err != nil {
		write.Close()
		return nil, err
	}

	rq := cloneValues(common)
	rq.Add("_pragma", "query_only(1)")
	read, err := sql.Open("sqlite", "file:"+path+"?"+rq.Encode())
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)

	cq := cloneValues(common)
	cq.Add("_pragma", "synchronous(FULL)")
	ckpt, err := sql.Open("sqlite", "file:"+path+"?"+cq.Encode())
	if err != nil {
		write.Close()
		read.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	db := &DB{write: write, read: read, rstmts: map[string]*sql.Stmt{}}
	for _, q := range readQueries {
		st, err := read.PrepareContext(ctx, q)
		if err != nil {
			db.closeReadStmts()
			write.Close()
			read.Close()
			ckpt.Close()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", q, err)
		}
		db.rstmts[q] = st
	}
	db.ckpt = newCheckpointer(ckpt)
	db.b, err = newBatcher(ctx, write, db.ckpt)
	if err != nil {
		db.ckpt.close()
		db.closeReadStmts()
		write.Close()
		read.Close()
		return nil, err
	}
	return db, nil
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// migrate applies the embedded migrations. It is idempotent: goose records
// what it applied.
func migrate(ctx context.Context, db *sql.DB) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, dir)
	if err != nil {
		return fmt.Errorf("sqlite: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	return nil
}

// fillNameKeys gives name_key (migration 00003) to the users who have
// none, oldest first, in one transaction. A user whose key an older user
// holds keeps none: two users who already had look-alike names keep their
// accounts, and each is still found by its exact name (qUserByName). It
// runs at every open; after the first it reads only those users.
func fillNameKeys(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: fill name keys: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, qUsersWithoutKey)
	if err != nil {
		return fmt.Errorf("sqlite: fill name keys: %w", err)
	}
	var users [][2]string
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: fill name keys: %w", err)
		}
		users = append(users, [2]string{id, name})
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlite: fill name keys: %w", err)
	}
	for _, u := range users {
		if _, err := tx.ExecContext(ctx, qSetNameKey, parley.NameKey(u[1]), u[0]); err != nil {
			return fmt.Errorf("sqlite: fill name keys: %w", err)
		}
	}
	return tx.Commit()
}

// Close stops taking writes, waits for those under way to commit and
// closes the database. It is safe to call more than once.
func (db *DB) Close() error {
	// Once: a second, concurrent Close waits for the first to finish.
	db.closeOnce.Do(func() {
		berr := db.b.close()
		cerr := db.ckpt.close()
		db.closeReadStmts()
		db.closeErr = errors.Join(berr, cerr, db.write.Close(), db.read.Close())
	})
	return db.closeErr
}

func (db *DB) closeReadStmts() {
	for _, st := range db.rstmts {
		st.Close()
	}
	clear(db.rstmts)
}

// readTx runs fn in one read transaction, so every query in it sees the
// same snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx readQ) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return internalf("begin read: %w", err)
	}
	defer tx.Rollback()
	return fn(readQ{ctx: ctx, tx: tx, db: db})
}

// Stats counts the work of the batcher since Open.
type Stats struct {
	// Batches is the number of committed write transactions, Ops the
	// writes they held: Ops/Batches is the mean batch size.
	Batches, Ops int64
	// Retries counts batches run a second time, every op writing at
	// once, after their multi-row writes failed (batch.go).
	Retries int64
}

// Stats returns the batcher's counters. It is safe for concurrent use.
func (db *DB) Stats() Stats {
	return Stats{Batches: db.b.batches.Load(), Ops: db.b.ops.Load(), Retries: db.b.retries.Load()}
}
