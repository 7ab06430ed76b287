package sqlite

import (
	"context"
	"sync/atomic"
	"time"
)

// The search indexer (migration 00013).
//
// The FTS5 index (messages_fts) is written by the batcher, after commit,
// in transactions of its own: each indexes the messages whose rowid is
// above search_indexed.upto (the batcher is the only writer and inserts
// in rowid order, so that is exactly what waits) and moves upto in the
// same transaction. A crash loses nothing and indexes nothing twice; the
// next start goes on from upto. Indexing hundreds of rows at once costs
// FTS5 far less than a few per batch did inside the send's transaction
// (each commit flushed a small segment that the index then had to merge),
// and the send path's transaction no longer holds the work at all.
//
// When the batcher indexes: after a committed batch once about indexRows
// messages wait; when no op came for indexIdle while some wait; at Close;
// and when a search asks (SyncSearch), so a search sees every message
// whose send returned. Edits and deletes of an indexed message change the
// index in their own transaction (the trigger of 00016, as 00023 made it,
// which deletes the old entry with the values it was indexed with:
// parley_search_text of the old text, searchwords.go), of one not indexed
// yet they change nothing: it is indexed later with its text as it is
// then. So a search never matches a tombstone or a text before its edit.

const (
	// indexRows is how many stored messages (about: see indexer.waiting)
	// make the batcher index them after a batch. Each index step is a
	// commit (and fsync) of its own and a new FTS5 segment that later
	// merges rewrite, so fewer, larger steps cost less per message
	// (about 3% of the server's CPU per message in `parley bench write`
	// against 1024: docs/benchmarks.md); a search that comes while they
	// wait indexes at most this many first (tens of milliseconds).
	indexRows = 4096
	// indexIdle is how long the batcher waits for an op, while messages
	// wait for the index, before it indexes them.
	indexIdle = 250 * time.Millisecond
	// indexChunk bounds the rows one index transaction (or one search's
	// catch-up) takes, so the write lock is never held for long: a larger
	// backlog (a file written by something else) goes in several.
	indexChunk = 20000
	// indexSlice bounds the rows one statement of an index step inserts;
	// the batcher yields between statements (batcher.yield). An index
	// step of indexRows messages is 15-40 ms of FTS5 work in pure Go: as
	// one statement, with one P (GOMAXPROCS=1) it kept every other
	// goroutine off the P for 15-20 ms of CPU, 7-13 ms sliced
	// (BenchmarkIndexStepHold; docs/benchmarks.md, "Fan-out tail on one
	// P"). The statements share the step's transaction, but FTS5 flushes
	// its pending rows at each statement's savepoint: each statement
	// writes a segment of its own (3 segments for a step of 3 slices,
	// 2026-12-06). FTS5 no longer merges segments inside that flush
	// (migration 00018): the step does, in pieces (mergePages).
	indexSlice = 256
	// mergePages bounds the index pages one 'merge' command writes (FTS5
	// stops at the first term boundary past it: a term's whole doclist
	// goes in one piece). Before each slice the step merges in such
	// pieces, yielding between two, until FTS5 finds no level with
	// 'usermerge' (4) segments. With automerge, the flush of a slice
	// merged 64 pages per level of the index in one call: 15-16 ms of CPU
	// with one P on a 40k-message index (BenchmarkIndexStepHold).
	mergePages = 16
	// searchMerges bounds the merge pieces before each slice of a
	// search's catch-up (SyncSearch), which no op cuts short: merging
	// until none is due could be a whole level of a large index (seconds
	// for the top of 1M messages) that the search would wait for. About
	// what automerge did per flush (64 pages per level per 64 flushed);
	// the batcher's next index step merges the rest.
	searchMerges = 4
	// indexHold is how long an index step may keep queued ops waiting:
	// past it, at the end of a slice, the step commits what it indexed
	// (moving upto) and the batcher runs the waiting ops' batch before it
	// indexes the rest (the next step, after that batch). Sends wait for
	// a step: it holds the write lock, and its transaction has to end
	// before theirs begins. A whole step of indexRows is 15-50 ms of
	// FTS5 work, which every send queued meanwhile waited for: at 1800
	// sends/s on one core that was the p99 of their acks and deliveries
	// (docs/benchmarks.md, "Fan-out p99 at 18k deliveries/s"). Cutting a
	// step writes no more FTS5 segments (each slice writes its own, see
	// indexSlice), but each part is a commit of its own, which writes the
	// index pages it touched to the WAL again: so a step is cut only once
	// it has run this long, a few slices, not at every slice.
	indexHold = 4 * time.Millisecond
)

const (
	qIndexed    = `SELECT upto FROM search_indexed WHERE id = 1`
	qMaxRowid   = `SELECT COALESCE(MAX(rowid), 0) FROM messages`
	qSetIndexed = `UPDATE search_indexed SET upto = $1 WHERE id = 1`
	// qIndexRange indexes the messages in (upto, to], as 00008's insert
	// trigger did one by one: tombstones and empty texts are left out.
	// The index holds the text's words as Go splits them (migration
	// 00023, searchwords.go).
	qIndexRange = `INSERT INTO messages_fts (rowid, text, conv)
		SELECT rowid, parley_search_text(text), 'c' || replace(conversation_id, '-', '') FROM messages
		WHERE rowid > $1 AND rowid <= $2 AND deleted_at IS NULL AND text != ''`
	// qMerge has FTS5 merge segments until about $1 pages are written, if
	// a level holds 'usermerge' segments or a merge is under way; it
	// changes no row when there is none (qChanges tells).
	qMerge   = `INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', $1)`
	qChanges = `SELECT total_changes()`
)

// indexer is the batcher's state of the index. Only the batcher goroutine
// touches it.
type indexer struct {
	// waiting estimates the messages stored and not indexed: the rows
	// the batches wrote since the last index (a rolled-back batch's too,
	// so it may be high; an index step reads the real range).
	waiting int
	// idle fires indexIdle after the batcher found no op while messages
	// waited.
	idle *time.Timer
	// hold is indexHold (tests set it).
	hold time.Duration
	// steps counts the index transactions committed (tests read it).
	steps int
	// behind mirrors waiting > 0 for SyncSearch, which runs on the
	// searcher's goroutine: set when a batch writes messages (before its
	// commit, so before any of its sends returns), cleared when an index
	// step catches up. A search that finds it clear needs no batch.
	behind atomic.Bool
	// Tests only (export_test.go): manual indexes only when a search
	// asks and at Close; crashy leaves the waiting messages at Close, as
	// a crash does; wrote, if set, is called after each statement that
	// writes the index in a step (a slice or a merge piece), merge says
	// which.
	manual, crashy bool
	wrote          func(w *writeTx, merge bool)
}

// start reads how far the index is behind the messages (a crash or a
// file written by another program left them so).
func (ix *indexer) start(ctx context.Context, b *batcher) error {
	var upto, last int64
	if err := b.conn.QueryRowContext(ctx, qIndexed).Scan(&upto); err != nil {
		return err
	}
	if err := b.conn.QueryRowContext(ctx, qMaxRowid).Scan(&last); err != nil {
		return err
	}
	ix.waiting = int(min(last-upto, 1<<30))
	ix.behind.Store(ix.waiting > 0)
	ix.idle = time.NewTimer(indexIdle)
	ix.idle.Stop()
	ix.hold = indexHold
	return nil
}

// next returns the next queued op, as receiving from the queue does;
// while messages wait for the index, it indexes them when no op came for
// indexIdle.
func (b *batcher) next() (*op, bool) {
	for b.ix.waiting > 0 && !b.ix.manual {
		b.ix.idle.Reset(indexIdle)
		select {
		case o, ok := <-b.queue.Ops():
			b.ix.idle.Stop()
			return o, ok
		case <-b.ix.idle.C:
			_ = b.indexStep() // a failure leaves them waiting
		}
	}
	o, ok := <-b.queue.Ops()
	return o, ok
}

// rolledBack is told that a batch was rolled back: a search's index
// step in it was undone, so messages may wait again.
func (ix *indexer) rolledBack() {
	ix.waiting = max(ix.waiting, 1)
	ix.behind.Store(true)
}

// indexDue indexes after a batch once enough messages wait.
func (b *batcher) indexDue() {
	if b.ix.waiting >= indexRows && !b.ix.manual {
		_ = b.indexStep() // a failure leaves them waiting
	}
}

// indexStep indexes up to indexChunk waiting messages in a transaction of
// its own, or fewer if ops wait (indexHold): then the rest waits for the
// next step, after their batch. A failure (the disk is full, say) leaves
// them waiting: they are tried again after the next indexRows messages or
// the next idle time, and a search still finds every message indexed
// before.
func (b *batcher) indexStep() error {
	if err := b.ckpt.ready(); err != nil {
		b.ix.waiting = 1
		return err
	}
	w := &writeTx{b: b, pending: &b.pend} // takes no positions; nothing is pending between batches
	if _, err := w.exec("BEGIN IMMEDIATE"); err != nil {
		b.ix.waiting = 1
		return err
	}
	start := time.Now()
	more, err := w.indexWaiting(func() bool {
		return len(b.queue.Ops()) > 0 && time.Since(start) >= b.ix.hold
	})
	if err == nil {
		_, err = w.exec("COMMIT")
	}
	if err == nil {
		b.ix.steps++
	}
	switch {
	case err != nil:
		_, _ = w.exec("ROLLBACK")
		b.ix.waiting = 1
	case more:
		b.ix.waiting = indexRows
	default:
		b.ix.waiting = 0
		b.ix.behind.Store(false)
	}
	return err
}

// indexWaiting indexes up to indexChunk waiting messages inside the
// current transaction, indexSlice rowids per statement, and moves
// search_indexed.upto past them; more says messages still wait. Before
// each slice it merges the index's segments (mergeIndex: with stop, until
// none is due; without, searchMerges pieces at most). Between two
// statements (slices or merge pieces) it stops if stop (nil: never) says
// so, once the first slice is in: the rest waits.
func (w *writeTx) indexWaiting(stop func() bool) (more bool, err error) {
	var upto, last int64
	if err := w.queryRow(qIndexed).Scan(&upto); err != nil {
		return false, err
	}
	if err := w.queryRow(qMaxRowid).Scan(&last); err != nil {
		return false, err
	}
	to := min(last, upto+indexChunk)
	if to <= upto {
		return false, nil
	}
	for lo := upto; lo < to; lo += indexSlice {
		if lo > upto {
			w.b.yield()
			if stop != nil && stop() {
				to = lo
				break
			}
		}
		// Merge what is due first, so the segments stay few however
		// many slices follow (a step of indexRows writes 16).
		pieces := 0 // no bound: stop cuts the step's merges
		if stop == nil {
			pieces = searchMerges
		}
		stopped, err := w.mergeIndex(stop, pieces)
		if err != nil {
			return false, err
		}
		if stopped && lo > upto { // the first slice goes on: each step indexes some
			to = lo
			break
		}
		if _, err := w.exec(qIndexRange, lo, min(lo+indexSlice, to)); err != nil {
			return false, err
		}
		if w.b.ix.wrote != nil {
			w.b.ix.wrote(w, false)
		}
	}
	if _, err := w.exec(qSetIndexed, to); err != nil {
		return false, err
	}
	return to < last, nil
}

// mergeIndex merges the index's segments inside the current transaction,
// mergePages at a time, yielding after each piece that did work, until
// FTS5 has none to do (no level holds 'usermerge' segments and no merge
// is under way), stop (nil: never) says so after a yield, or pieces (0:
// no bound) pieces did work: a merge left under way goes on in the next
// step (FTS5 keeps its state in the index). stopped says stop did.
// FTS5 merges nothing in its flushes (automerge = 0, migration 00018),
// except a level that reaches 'crisismerge' (16) segments.
func (w *writeTx) mergeIndex(stop func() bool, pieces int) (stopped bool, err error) {
	var before, after int64
	if err := w.queryRow(qChanges).Scan(&before); err != nil {
		return false, err
	}
	for {
		if _, err := w.exec(qMerge, mergePages); err != nil {
			return false, err
		}
		if err := w.queryRow(qChanges).Scan(&after); err != nil {
			return false, err
		}
		// The command counts as one change; FTS5's writes of pages and
		// of its structure add more (FTS5's documentation: 2 or more
		// when it did work). The first piece after a slice also flushes
		// the slice's rows (FTS5 does at a statement's savepoint), which
		// counts as work too: the next piece tells whether a merge is due.
		if after-before < 2 {
			return false, nil
		}
		if w.b.ix.wrote != nil {
			w.b.ix.wrote(w, true)
		}
		before = after
		w.b.yield()
		if stop != nil && stop() {
			return true, nil
		}
		if pieces--; pieces == 0 {
			return false, nil
		}
	}
}

// indexRest indexes every waiting message before the batcher exits, so
// a clean Close leaves none (a crash, or a failure here, leaves them to
// the next start).
func (b *batcher) indexRest() {
	for b.ix.waiting > 0 && !b.ix.crashy {
		if b.indexStep() != nil {
			return
		}
	}
}

// SyncSearch implements sqlstore.SearchSyncer: it has the batcher index
// what waits (up to indexChunk messages) in the next batch, so a search
// that follows sees every message whose send returned before.
func (e *engine) SyncSearch(ctx context.Context) error {
	if !e.b.ix.behind.Load() {
		return nil // every message committed so far is indexed
	}
	return e.b.do(ctx, func(w *writeTx) error {
		// A search waits for all of it: no stop.
		more, err := w.indexWaiting(nil)
		if err == nil && !more {
			// Rows the batch writes after this op count again (flush
			// sets behind again).
			w.b.ix.waiting = 0
			w.b.ix.behind.Store(false)
		}
		return err
	})
}
