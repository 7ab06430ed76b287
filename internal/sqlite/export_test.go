package sqlite

import (
	"context"
	"database/sql"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/parleychat/parley/internal/sqlstore"
)

// MigrateDownTo undoes the migrations above version on the database at
// path (see sqlstore.MigrateDownTo).
func MigrateDownTo(ctx context.Context, path string, version int64) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	// One connection, as Open's: a migration that sets a pragma around
	// its own transaction (00017) must run on one.
	db.SetMaxOpenConns(1)
	return sqlstore.MigrateDownTo(ctx, "sqlite", goose.DialectSQLite3, db, migrations, version)
}

// QIndexRange is the indexer's statement, for the search benchmark's
// file, written with raw inserts.
const QIndexRange = qIndexRange

// ManualIndex makes the batcher index only when a search asks and at
// Close; with crash, Close leaves the waiting messages too, as a crash
// does. Set by an op, so the batcher goroutine sees it in order.
func ManualIndex(ctx context.Context, db *DB, crash bool) error {
	return db.b.do(ctx, func(w *writeTx) error {
		w.b.ix.manual, w.b.ix.crashy = true, crash
		return nil
	})
}

// IndexLag reads how far the search index is (search_indexed.upto) and
// the newest message's rowid.
func IndexLag(ctx context.Context, db *DB) (upto, last int64, err error) {
	if err := db.read.QueryRowContext(ctx, qIndexed).Scan(&upto); err != nil {
		return 0, 0, err
	}
	err = db.read.QueryRowContext(ctx, qMaxRowid).Scan(&last)
	return upto, last, err
}

// SyncIndex indexes what waits, as a search does first.
func SyncIndex(ctx context.Context, db *DB) error { return (*engine)(db).SyncSearch(ctx) }

// InsertOpcodes returns the opcodes of the batch's multi-row INSERT into
// messages (or events) for two rows, as the write connection compiles it,
// and how many arguments it binds.
func InsertOpcodes(ctx context.Context, db *DB, events bool) (ops []string, args int, err error) {
	kind := multiMessages
	if events {
		kind = multiEvents
	}
	args = strings.Count(multiSQL(kind, 2, true), "?")
	err = db.b.do(ctx, func(w *writeTx) error {
		// Literals for the variables: EXPLAIN runs nothing, and
		// database/sql would want an argument for each.
		rows, err := w.b.conn.QueryContext(ctx, "EXPLAIN "+strings.ReplaceAll(multiSQL(kind, 2, true), "?", "0"))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var addr, p1, p2, p3, p5 int64
			var op string
			var p4, comment sql.NullString
			if err := rows.Scan(&addr, &op, &p1, &p2, &p3, &p4, &p5, &comment); err != nil {
				return err
			}
			ops = append(ops, op)
		}
		return rows.Err()
	})
	return ops, args, err
}

// ForeignKeys reads the write connection's foreign_keys.
func ForeignKeys(ctx context.Context, db *DB) (on bool, err error) {
	err = db.b.do(ctx, func(w *writeTx) error {
		return w.queryRow("PRAGMA foreign_keys").Scan(&on)
	})
	return on, err
}

// WALAutocheckpoint reads the write connection's wal_autocheckpoint.
func WALAutocheckpoint(ctx context.Context, db *DB) (n int, err error) {
	err = db.b.do(ctx, func(w *writeTx) error {
		return w.queryRow("PRAGMA wal_autocheckpoint").Scan(&n)
	})
	return n, err
}

// SetWALAutocheckpoint sets the wal_autocheckpoint of the stores opened
// after it (tests that must see the WAL start over within a few thousand
// writes) and returns a func that restores it. Not for parallel tests.
func SetWALAutocheckpoint(pages int) (restore func()) {
	old := walAutocheckpoint
	walAutocheckpoint = pages
	return func() { walAutocheckpoint = old }
}

// IndexSlice is how many rowids one statement of an index step covers.
const IndexSlice = indexSlice

// CountYields has the batcher count its yields (and still yield) from
// its next op on.
func CountYields(ctx context.Context, db *DB) (*atomic.Int64, error) {
	var n atomic.Int64
	err := db.b.do(ctx, func(w *writeTx) error {
		y := w.b.yield
		w.b.yield = func() { n.Add(1); y() }
		return nil
	})
	return &n, err
}

// Synchronous reads the write connection's synchronous setting.
func Synchronous(ctx context.Context, db *DB) (n int, err error) {
	err = db.b.do(ctx, func(w *writeTx) error {
		return w.queryRow("PRAGMA synchronous").Scan(&n)
	})
	return n, err
}

// WALSyncs counts the batcher's fsyncs of the WAL, asynchronous and
// plain (walsync.go).
func WALSyncs(db *DB) (async, plain int64) {
	return db.b.wal.aioSyncs.Load(), db.b.wal.plainSyncs.Load()
}

// StepIndexWhenQueued makes the batcher run its own index step (as after
// indexRows messages) after the next batch, with hold as indexHold and,
// at the step's first yield, one op queued: queue starts it (a send on
// another goroutine) and the batcher waits there until the op is queued.
// steps reads how many index transactions committed so far.
func StepIndexWhenQueued(ctx context.Context, db *DB, hold time.Duration, queue func()) (steps func() int, err error) {
	var n atomic.Int64
	err = db.b.do(ctx, func(w *writeTx) error {
		b := w.b
		b.ix.manual, b.ix.hold, b.ix.waiting = false, hold, indexRows
		y, once := b.yield, false
		b.yield = func() {
			if !once {
				once = true
				queue()
				for len(b.queue.Ops()) == 0 {
					runtime.Gosched()
				}
			}
			y()
		}
		return nil
	})
	return func() int {
		_ = db.b.do(ctx, func(w *writeTx) error { n.Store(int64(w.b.ix.steps)); return nil })
		return int(n.Load())
	}, err
}
