package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/internal/sqlstore"
)

// Group commit.
//
// Every write goes through one goroutine, the batcher, which owns the single
// write connection. A write call enqueues an op and waits. The batcher takes
// every op queued (up to maxBatch), runs them in ONE transaction, commits
// once, and only then answers each waiter. One fsync thus covers a whole
// batch, and positions are handed out by the only writer, in commit order.
//
// Two kinds of ops share a batch:
//
//   - Plain ops (every write but a message send) run inside a SAVEPOINT of
//     their own, so an op that fails (validation, not found) rolls back
//     alone.
//   - Deferred ops (SendMessage) decide everything in Go, from what the
//     batcher keeps in memory (see cache) and from reads, and write nothing
//     until they have succeeded: they then append their rows to the batch
//     (writeTx.pending). An op that fails has written nothing, so it needs
//     no savepoint. The pending rows are written with multi-row statements
//     (flush) before the next plain op and before the commit.
//
// If writing the pending rows fails (it should not: every constraint was
// checked in Go), the whole transaction is rolled back and the batch runs
// again with every op as a plain op (immediate writes in a savepoint each),
// so that only the op at fault fails.
//
// A send whose (sender, client id) is stored already is a resend: it gets
// the stored message. Sends are checked against the table with one query
// for the whole batch (writeTx.probe), but only while resends are about:
// a batch runs without the probe, its sends assumed new, unless a resend
// was seen in the last probeAfterResend batches. If such a batch held a
// resend after all, its message row breaks the messages' unique
// (sender_id, client_id) key, the batch is rolled back and runs again with
// the probe (a miss), and the batches after it probe. Resends are rare
// (a client's unacknowledged sends after a reconnect), and the probe was
// ~4% of the server's CPU per message with large batches, ~9% of the
// store's with small ones. A client that resends all the time keeps the
// probe on: it costs the others what it cost before, plus one batch run
// twice each probeAfterResend batches.

// maxBatch bounds how many ops share a transaction, so that one batch does
// not hold the write lock (and its waiters) for too long.
const maxBatch = 1000

// probeAfterResend is how many batches probe their sends' client ids after
// one that held a resend (see above).
const probeAfterResend = 1000

// op is one write waiting for the batcher.
type op struct {
	// fn runs the write inside the batch transaction. It must not keep w
	// after it returns, and it must be safe to run again (each run sets
	// every result afresh): a batch whose pending rows failed runs again.
	fn func(w *writeTx) error
	// deferred: fn writes only through w.pending, and only when it
	// returns nil (see the package comment above).
	deferred bool
	// key is a send's (sender, client id), probed for the whole batch
	// at once (writeTx.probe); zero for other ops.
	key [2]string
	// Ticket is the op's state and answer, shared with its caller.
	batchq.Ticket
}

// writeTx is what an op sees: the write connection inside the batch
// transaction, the position counter and the batch's pending rows.
type writeTx struct {
	b *batcher
	// pos hands out the batch's positions, per shard, from the
	// committed heads; only the batcher touches it.
	pos sqlstore.Heads
	// noDefer makes deferred ops write at once (the batch's second run).
	noDefer bool
	// pending is the batcher's (batcher.pend), empty at the start of
	// each run of a batch.
	pending *pending
	// probed: known holds every stored (sender, client id) pair among
	// the batch's sends' (set at the start of the batch's first run), or,
	// in a run without the probe, is assumed to (none: a resend among
	// them breaks a key at flush and the batch runs again with it).
	probed bool
	known  map[[2]string]bool
	// broken is set when a failed op could not be undone alone (a
	// savepoint could not be rolled back, a deferred op failed after
	// taking a position): the transaction may hold part of a failed op,
	// so the whole batch is rolled back instead of committed.
	broken bool
	// start is when the transaction began, commitStart when its COMMIT
	// did (for the batch and stage observers).
	start, commitStart time.Time
	// Events are the events the batch stored, for the commit hook; its
	// Stored method is sqlstore.Tx's.
	batchq.Events
}

// NextPos implements sqlstore.Tx. Positions are dense: an op that fails
// gives its positions back (runOne restores head; a deferred op takes its
// position only once it cannot fail).
func (w *writeTx) NextPos(shard int) int64 { return w.pos.Next(shard) }

// The statements run on the write connection are prepared on it once (the
// first time each is used) and reused by every batch: SQLite parses each
// once, not once per call. They run with a background context on purpose
// (the ctx the core passes is ignored): one caller's cancellation must not
// abort the others' transaction.

func (w *writeTx) exec(query string, args ...any) (sql.Result, error) {
	st, err := w.b.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.Exec(args...)
}

func (w *writeTx) queryRow(query string, args ...any) *sql.Row {
	st, err := w.b.stmt(query)
	if err != nil {
		// A *sql.Row carrying err: the conn cannot prepare, so the
		// unprepared query fails the same way.
		return w.b.conn.QueryRowContext(context.Background(), query, args...)
	}
	return st.QueryRow(args...)
}

// Exec, Query and QueryRow make writeTx a sqlstore.Tx (with NextPos and
// the cache's Audience, UserName, MembersChanged and UserRenamed).
func (w *writeTx) Exec(_ context.Context, query string, args ...any) (int64, error) {
	return rowsAffected(w.exec(query, args...))
}

func (w *writeTx) Query(_ context.Context, query string, args ...any) (sqlstore.Rows, error) {
	st, err := w.b.stmt(query)
	if err != nil {
		return nil, err
	}
	return wrapRows(st.Query(args...))
}

func (w *writeTx) QueryRow(_ context.Context, query string, args ...any) sqlstore.Row {
	return w.queryRow(query, args...)
}

// batcher owns the write connection and the goroutine that runs batches.
// DB.Close stops it: it closes the queue, the goroutine runs what was
// queued, then exits, and Close waits for it.
type batcher struct {
	conn *sql.Conn // the write pool's only connection, held for good
	ckpt *checkpointer
	wal  *fileSyncer // fsyncs each commit of ops (walsync.go)

	queue *batchq.Queue[*op]

	// batches and ops count committed batches and the ops in them;
	// retries the batches run again without deferred writes; misses the
	// batches run without the probe that held a resend, run again with
	// it.
	batches, ops, retries, misses atomic.Int64
	// Hooks is told every batch's outcome: write health (failures
	// classified by classify), the batch observer and the commit
	// publisher. DB embeds a pointer to it.
	batchq.Hooks

	// Only the batcher goroutine (or newBatcher and close, before and
	// after it runs) touches what follows.

	heads []int64 // committed heads, one per shard
	// probeFor is how many more batches probe their sends' client ids
	// (probeAfterResend after a resend; none at start).
	probeFor int
	// pend holds the deferred rows of the batch that runs; its buffers
	// are kept from batch to batch (pending.reset).
	pend  pending
	stmts map[string]*sql.Stmt // prepared on conn, by query text
	multi [nMulti][]*sql.Stmt  // multi-row statements by kind and log2(rows)
	raw   rawExec              // the multi-row writes' driver statements (raw.go)
	cache cache
	ix    indexer // the search index, written after commit (indexer.go)
	// yield lets the goroutines that are ready run between the slices of
	// a long step (runtime.Gosched; tests count its calls).
	yield func()
	wg    sync.WaitGroup

	// interval is the commit interval (sqlstore.WithCommitInterval; 0:
	// none): when ops arrived while the last batch ran (arrived, counted
	// at its commit, before its answers), the next batch takes the ops
	// that arrive until it holds want (the last batch's ops and those
	// that arrived) or until interval after the last one started
	// (lastRun). Otherwise it runs at once: writers that each wait for
	// their answer before writing again (one serial caller, or a closed
	// loop of them, all in the last batch) never wait for it, since no
	// one else would come; a closed loop some of whose writers missed
	// the last batch waits only until they are all back (want). Under a
	// steady stream of independent writes want grows each batch, and
	// interval bounds the wait.
	interval time.Duration
	lastRun  time.Time
	arrived  int
	want     int
	timer    *time.Timer
}

func newBatcher(ctx context.Context, db *sql.DB, ckpt *checkpointer, wal *fileSyncer, shards int, interval time.Duration) (*batcher, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: write connection: %w", err)
	}
	b := &batcher{conn: conn, ckpt: ckpt, wal: wal, queue: batchq.NewQueue[*op](maxBatch), stmts: map[string]*sql.Stmt{}, yield: runtime.Gosched}
	b.cache.reset()
	b.interval = interval
	b.heads = make([]int64, shards)
	for s := range b.heads {
		if err := conn.QueryRowContext(ctx, dialect{}.HeadSQL(), s).Scan(&b.heads[s]); err != nil {
			conn.Close()
			return nil, fmt.Errorf("sqlite: read head: %w", err)
		}
	}
	if err := b.ix.start(ctx, b); err != nil {
		conn.Close()
		return nil, fmt.Errorf("sqlite: read the search index's progress: %w", err)
	}
	// Owned by the batcher: close stops it and waits for it.
	b.wg.Add(1)
	go b.loop()
	return b, nil
}

// stmt returns query prepared on the write connection, preparing it on
// first use. Only the batcher goroutine calls it.
func (b *batcher) stmt(query string) (*sql.Stmt, error) {
	if st, ok := b.stmts[query]; ok {
		return st, nil
	}
	st, err := b.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	b.stmts[query] = st
	return st, nil
}

// do runs fn in the next batch and returns after the batch has committed
// (nil), or with fn's error, or the commit's. If ctx ends before the
// batcher claims the op, the op is dropped and do returns ctx.Err(): a
// context error means the write did not happen. Once claimed, do waits for
// the batch (a batch is short) so the answer is always exact.
func (b *batcher) do(ctx context.Context, fn func(w *writeTx) error) error {
	return b.enqueue(ctx, &op{fn: fn})
}

// doDeferred is do for a deferred op (see the package comment); key is
// a send's (sender, client id), or zero.
func (b *batcher) doDeferred(ctx context.Context, key [2]string, fn func(w *writeTx) error) error {
	return b.enqueue(ctx, &op{fn: fn, deferred: true, key: key})
}

func (b *batcher) enqueue(ctx context.Context, o *op) error { return b.queue.Enqueue(ctx, o) }

// close stops taking ops, lets the batcher run those already queued and
// waits for it to exit.
func (b *batcher) close() error {
	b.queue.Close()
	b.wg.Wait()
	_ = b.closeRaw() // an error closing a statement changes nothing here
	for _, st := range b.stmts {
		st.Close()
	}
	clear(b.stmts)
	for k := range b.multi {
		for _, st := range b.multi[k] {
			if st != nil {
				st.Close()
			}
		}
		b.multi[k] = nil
	}
	return b.conn.Close()
}

func (b *batcher) loop() {
	defer b.wg.Done()
	defer b.indexRest()
	batch := make([]*op, 0, maxBatch)
	for {
		o, ok := b.next()
		if !ok {
			return
		}
		// Take everything queued by now (up to maxBatch): under load the
		// queue fills while the previous batch commits, so batches grow
		// with the load.
		batch = append(batch[:0], o)
		// Let the goroutines that are ready to run (connections with
		// sends read and not yet queued) queue theirs first. The op that
		// woke the batcher made it the next goroutine to run, so on a
		// busy P it would otherwise take a batch of one connection's run:
		// in `parley bench write` on one CPU most batches held 4 to 8
		// sends, each paying a commit, its fsync and the WAL frames of
		// the pages it touched (docs/benchmarks.md). Idle, this returns
		// at once.
		runtime.Gosched()
	fill:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-b.queue.Ops():
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		batch = b.gather(batch)
		b.lastRun, b.arrived, b.want = time.Now(), 0, 0
		b.run(batch)
		clear(batch)
		b.indexDue()
		if now := time.Now(); b.ckpt.due(now) {
			// Its error makes the next write transaction fail until
			// the database file's fsync succeeds (checkpointer.ready).
			_ = b.ckpt.run(context.Background(), b.wal, now)
		}
	}
}

// gather adds to batch the ops that arrive until the commit interval
// since the last batch has passed (see batcher.interval), and returns it.
func (b *batcher) gather(batch []*op) []*op {
	if b.interval <= 0 || b.arrived == 0 || len(batch) >= min(b.want, maxBatch) {
		return batch
	}
	wait := time.Until(b.lastRun.Add(b.interval))
	if wait <= 0 {
		return batch
	}
	if b.timer == nil {
		b.timer = time.NewTimer(wait)
	} else {
		b.timer.Reset(wait)
	}
	defer b.timer.Stop()
	for len(batch) < min(b.want, maxBatch) {
		select {
		case o, ok := <-b.queue.Ops():
			if !ok {
				return batch
			}
			batch = append(batch, o)
		case <-b.timer.C:
			return batch
		}
	}
	return batch
}

// run executes one batch: one transaction, then the answers.
func (b *batcher) run(batch []*op) {
	// Claim the ops first: an op its caller gave up on is dropped here.
	live := batch[:0:0]
	for _, o := range batch {
		if o.Claim() {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	// Between batches nothing is pending, so the cache may be trimmed.
	b.cache.trim()
	errs := make([]error, len(live))
	start := time.Now()
	probe := b.probeFor > 0
	if probe {
		b.probeFor--
	}
	w, err := b.attempt(live, errs, false, probe)
	if errors.Is(err, errFlush) && !probe {
		// Perhaps a resend of a stored send (see the package comment):
		// run it again with the probe, and probe the next batches.
		b.misses.Add(1)
		b.probeFor = probeAfterResend
		w, err = b.attempt(live, errs, false, true)
	}
	if errors.Is(err, errFlush) {
		// Pending rows failed to be written: run the batch again, every
		// op writing at once in its own savepoint.
		b.retries.Add(1)
		w, err = b.attempt(live, errs, true, false)
	}
	if err != nil {
		err = classify(err)
		b.Failed(err)
		answerAll(live, err)
		return
	}
	// Ops that arrived while this batch's own callers were all waiting
	// for it came independently of its answers: the next batch may wait
	// for more (gather). A closed loop of writers (each waiting for its
	// answer before writing again) queues nothing here.
	b.arrived = len(b.queue.Ops())
	b.want = len(live) + b.arrived
	copy(b.heads, w.pos.All())
	b.ckpt.committed()
	b.batches.Add(1)
	b.ops.Add(int64(len(live)))
	batchq.Committed(&b.Hooks, &w.Events, live, errs, start, w.commitStart, classify)
}

// errFlush marks a failure to write the pending rows.
var errFlush = errors.New("sqlite: writing the batch's rows failed")

// attempt runs the ops in one transaction and commits it, filling errs
// with each op's own error. It returns an error when nothing was
// committed: then the transaction is rolled back and the cache dropped.
// probe: the sends' client ids are looked up first (writeTx.probe);
// without it (and without noDefer) they are assumed new.
func (b *batcher) attempt(live []*op, errs []error, noDefer, probe bool) (_ *writeTx, err error) {
	if err := b.ckpt.ready(); err != nil {
		return nil, internalf("%w", err)
	}
	// A failed run may have left rows behind: they were rolled back.
	b.pend.reset()
	w := &writeTx{b: b, pos: sqlstore.NewHeads(b.heads), noDefer: noDefer, pending: &b.pend, Events: b.Begin(), start: time.Now()}
	if _, err := w.exec("BEGIN IMMEDIATE"); err != nil {
		return nil, internalf("begin: %w", err)
	}
	if !noDefer && slices.ContainsFunc(live, func(o *op) bool { return o.key != [2]string{} }) {
		if !probe {
			w.known, w.probed = map[[2]string]bool{}, true
		} else {
			// The keys as the probe's arguments only when it runs: a
			// string in an any is an allocation, two a send.
			keys := b.pend.scratch[:0]
			for _, o := range live {
				if o.key != [2]string{} {
					keys = append(keys, o.key[0], o.key[1])
				}
			}
			b.pend.scratch = keys
			if err := w.probe(keys); err != nil {
				_, _ = w.exec("ROLLBACK")
				return nil, internalf("probe client ids: %w", err)
			}
		}
	}
	defer func() {
		if err != nil {
			// After a failed COMMIT SQLite may already have rolled back;
			// the error of this ROLLBACK is then "no transaction" and
			// says nothing more.
			_, _ = w.exec("ROLLBACK")
			b.cache.reset()
			// An index step of the batch (a search's) is undone too.
			b.ix.rolledBack()
		}
	}()
	for i, o := range live {
		if o.deferred && !noDefer {
			errs[i] = wrapInternal(runDeferred(w, o.fn))
		} else {
			// A plain op reads and writes the tables: the rows of the
			// deferred ops before it go first.
			if err := w.flush(); err != nil {
				return nil, err
			}
			errs[i] = wrapInternal(runOne(w, o.fn))
			if errs[i] != nil {
				// The op may have cached what it then rolled back.
				b.cache.reset()
			}
		}
		if w.broken {
			return nil, internalf("batch rolled back: an op failed and could not be undone alone")
		}
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	w.commitStart = time.Now()
	if _, err := w.exec("COMMIT"); err != nil {
		// Nothing of this batch is stored: every op fails, and the heads
		// stay where the last commit left them.
		return nil, internalf("commit: %w", err)
	}
	syncStart := time.Now()
	b.ObserveStage(batchq.StageSQL, w.commitStart.Sub(w.start))
	b.ObserveStage(batchq.StageCommit, syncStart.Sub(w.commitStart))
	// Not err: the deferred rollback reads it.
	serr := b.wal.sync()
	b.ObserveStage(batchq.StageSync, time.Since(syncStart))
	if err := serr; err != nil {
		// The batch is committed (readers see it, the heads moved) but
		// not known to be on disk: its events are published and every
		// op answers this error; a sender that retries with its client
		// id gets the stored message.
		err = internalf("commit: fsync the WAL: %w", err)
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
	}
	return w, nil
}

// runDeferred runs a deferred op. It writes nothing when it fails, so
// failing takes no rollback; its positions are taken only on success.
func runDeferred(w *writeTx, fn func(*writeTx) error) (err error) {
	pmark, mark := w.pos.Mark(), w.Mark()
	defer func() {
		if p := recover(); p != nil {
			err = internalf("panic in write: %v", p)
		}
		if err != nil {
			w.Undo(mark)
		}
		if err != nil && w.pos.Mark() != pmark {
			// A deferred op must not take positions and fail; if one
			// did, the batch cannot stay dense.
			w.broken = true
		}
	}()
	return fn(w)
}

// runOne runs fn inside a savepoint, rolling back to it when fn fails so
// the rest of the batch is unaffected.
func runOne(w *writeTx, fn func(*writeTx) error) (err error) {
	if _, err := w.exec("SAVEPOINT op"); err != nil {
		return internalf("savepoint: %w", err)
	}
	pmark, mark := w.pos.Mark(), w.Mark()
	defer func() {
		if p := recover(); p != nil {
			err = internalf("panic in write: %v", p)
		}
		if err != nil {
			w.pos.Undo(pmark)
			w.Undo(mark)
			if _, rerr := w.exec("ROLLBACK TO op"); rerr != nil {
				w.broken = true
				err = errors.Join(err, internalf("rollback to savepoint: %w", rerr))
			}
		}
		if _, rerr := w.exec("RELEASE op"); rerr != nil {
			w.broken = true
			err = errors.Join(err, internalf("release savepoint: %w", rerr))
		}
	}()
	return fn(w)
}

func answerAll(ops []*op, err error) {
	for _, o := range ops {
		o.Answer(err)
	}
}
