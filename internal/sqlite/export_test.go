package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	return sqlstore.MigrateDownTo(ctx, "sqlite", goose.DialectSQLite3, db, migrations, version, goose.WithGoMigrations(attachmentChunksMigration()))
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

// ExecWrite runs query on the write connection, in a batch of its own.
func ExecWrite(ctx context.Context, db *DB, query string, args ...any) error {
	return db.b.do(ctx, func(w *writeTx) error {
		_, err := w.exec(query, args...)
		return err
	})
}

// QueryRead scans the one row of query, on a read connection.
func QueryRead(ctx context.Context, db *DB, query string, dest ...any) error {
	return db.read.QueryRowContext(ctx, query).Scan(dest...)
}

// IndexWrites counts the index's leaf pages that the statements of index
// steps write; read it only after the steps.
type IndexWrites struct {
	// MaxSlice and MaxMerge are the most leaf pages one slice's
	// statement and one 'merge' piece wrote (FTS5 flushes a statement's
	// rows at the next statement's savepoint: a statement's count holds
	// the segment of the slice before it); Merges counts the pieces that
	// did work (or flushed a slice); SliceMerged counts the slices whose
	// statement changed or removed a segment (a merge in the flush).
	MaxSlice, MaxMerge, Merges, SliceMerged int
}

// CountIndexWrites has the batcher count what each statement of its index
// steps writes, from FTS5's structure record before and after it.
func CountIndexWrites(ctx context.Context, db *DB) (*IndexWrites, error) {
	c := &IndexWrites{}
	return c, db.b.do(ctx, func(w *writeTx) error {
		var last []FTSLevel
		read := func(w *writeTx) ([]FTSLevel, error) {
			var rec []byte
			err := w.queryRow(`SELECT block FROM messages_fts_data WHERE id = 10`).Scan(&rec)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			return FTSStructure(rec)
		}
		var err error
		if last, err = read(w); err != nil {
			return err
		}
		w.b.ix.wrote = func(w *writeTx, merge bool) {
			now, err := read(w)
			if err != nil {
				panic(err)
			}
			before := map[int64]FTSSegment{}
			for _, l := range last {
				for _, s := range l.Segments {
					before[s.ID] = s
				}
			}
			pages, kept := 0, 0
			for _, l := range now {
				for _, s := range l.Segments {
					b, ok := before[s.ID]
					switch {
					case !ok:
						pages += int(s.Last - s.First + 1)
					case b != s:
						pages += int(s.Last - b.Last)
					default:
						kept++
					}
				}
			}
			if merge {
				c.MaxMerge, c.Merges = max(c.MaxMerge, pages), c.Merges+1
			} else {
				c.MaxSlice = max(c.MaxSlice, pages)
				// Segments that were there before and are not as they
				// were: merged (a flush only adds segments).
				if kept != len(before) {
					c.SliceMerged++
				}
			}
			last = now
		}
		return nil
	})
}

// FTSLevel is a level of the FTS5 index: the segments being merged into
// the next (Merge, the oldest) and all its segments, oldest first.
type FTSLevel struct {
	Merge    int
	Segments []FTSSegment
}

// FTSSegment is a segment (a b-tree of the index): its id and its first
// and last leaf pages.
type FTSSegment struct{ ID, First, Last int64 }

// FTSStructure decodes FTS5's structure record (the block of id 10 in
// messages_fts_data; fts5_index.c, fts5StructureDecode): a 4-byte
// cookie, the varints nLevel, nSegment and the write counter, then per
// level nMerge, nSeg and nSeg x (segid, first page, last page).
func FTSStructure(rec []byte) ([]FTSLevel, error) {
	if len(rec) > 8 && string(rec[4:8]) == "\xff\x00\x00\x01" {
		return nil, errors.New("structure record version 2 (tombstones): not read here")
	}
	i, bad := 4, false
	varint := func() int64 { // SQLite's: 7 bits a byte, big-endian, 9 bytes at most
		var v int64
		for k := 0; k < 9; k++ {
			if i >= len(rec) {
				bad = true
				return 0
			}
			b := rec[i]
			i++
			if k == 8 {
				return v<<8 | int64(b)
			}
			v = v<<7 | int64(b&0x7f)
			if b < 0x80 {
				break
			}
		}
		return v
	}
	nLevel := varint()
	varint() // nSegment
	varint() // write counter
	if bad || nLevel > 64 {
		return nil, fmt.Errorf("structure record of %d bytes: %d levels", len(rec), nLevel)
	}
	levels := make([]FTSLevel, nLevel)
	for lvl := range levels {
		levels[lvl].Merge = int(varint())
		n := varint()
		if bad || n > 2000 {
			return nil, fmt.Errorf("structure record of %d bytes: %d segments", len(rec), n)
		}
		for range n {
			levels[lvl].Segments = append(levels[lvl].Segments, FTSSegment{varint(), varint(), varint()})
		}
	}
	if bad {
		return nil, fmt.Errorf("structure record of %d bytes cut short", len(rec))
	}
	return levels, nil
}

// FTSLevels reads the index's structure on a read connection.
func FTSLevels(ctx context.Context, db *DB) ([]FTSLevel, error) {
	var rec []byte
	if err := db.read.QueryRowContext(ctx, `SELECT block FROM messages_fts_data WHERE id = 10`).Scan(&rec); err != nil {
		return nil, err
	}
	return FTSStructure(rec)
}

// Read runs fn in one of the engine's read transactions; fn's query runs
// a query of one row and column there, scanning it into dest.
func Read(ctx context.Context, db *DB, fn func(query func(q string, dest any) error) error) error {
	return (*engine)(db).Read(ctx, func(q sqlstore.Querier) error {
		return fn(func(query string, dest any) error { return q.QueryRow(ctx, query).Scan(dest) })
	})
}

// ReadConns is the read pool's size.
func ReadConns(db *DB) int { return db.read.Stats().MaxOpenConnections }
