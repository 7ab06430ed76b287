package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/parleychat/parley"
)

// Group commit.
//
// Every write goes through one goroutine, the batcher, which owns the single
// write connection. A write call enqueues an op and waits. The batcher takes
// every op queued (up to maxBatch), runs them in ONE transaction with a
// SAVEPOINT around each, so an op that fails (validation, not found) rolls
// back alone, commits once, and only then answers each waiter. One fsync
// thus covers a whole batch, and positions are handed out by the only
// writer, in commit order.

// maxBatch bounds how many ops share a transaction, so that one batch does
// not hold the write lock (and its waiters) for too long.
const maxBatch = 500

// op states: a queued op can be cancelled by its caller until the batcher
// claims it.
const (
	opQueued int32 = iota
	opClaimed
	opCancelled
)

// op is one write waiting for the batcher.
type op struct {
	// fn runs the write inside the batch transaction, within its own
	// savepoint. It must not keep w after it returns.
	fn    func(w *writeTx) error
	state atomic.Int32
	// done receives fn's error, or the commit's, after the batch is
	// committed or rolled back. Buffered: the batcher never blocks on it.
	done chan error
}

// writeTx is what an op sees: the batch transaction and the position
// counter.
type writeTx struct {
	b  *batcher
	tx *sql.Tx
	// head is the newest position handed out so far, committed or not;
	// only the batcher touches it.
	head int64
	// broken is set when a savepoint could not be rolled back: the
	// transaction may hold part of a failed op, so the whole batch is
	// rolled back instead of committed.
	broken bool
}

// nextPos hands out the next global position. Positions are dense: an op
// that fails gives its positions back (run restores head).
func (w *writeTx) nextPos() int64 {
	w.head++
	return w.head
}

// The statements of the hot writes (writeQueries) are prepared once on the
// write connection, when the store opens, and reused by every batch:
// SQLite then parses them once, not once per call. Other queries run
// unprepared.

func (w *writeTx) exec(query string, args ...any) (sql.Result, error) {
	if st := w.stmt(query); st != nil {
		return st.Exec(args...)
	}
	return w.tx.Exec(query, args...)
}

func (w *writeTx) queryRow(query string, args ...any) *sql.Row {
	if st := w.stmt(query); st != nil {
		return st.QueryRow(args...)
	}
	return w.tx.QueryRow(query, args...)
}

func (w *writeTx) query(query string, args ...any) (*sql.Rows, error) {
	if st := w.stmt(query); st != nil {
		return st.Query(args...)
	}
	return w.tx.Query(query, args...)
}

// stmt returns query's prepared statement bound to the batch transaction,
// or nil. database/sql finds the statement already prepared on the
// transaction's connection (there is only one) and does not prepare it
// again. (Preparing here, inside the batch, would deadlock: the
// transaction holds the only connection.)
func (w *writeTx) stmt(query string) *sql.Stmt {
	if st, ok := w.b.stmts[query]; ok {
		return w.tx.Stmt(st)
	}
	return nil
}

// batcher owns the write connection and the goroutine that runs batches.
// DB.Close stops it: it closes the queue, the goroutine runs what was
// queued, then exits, and Close waits for it.
type batcher struct {
	db *sql.DB // one connection: SetMaxOpenConns(1)

	mu     sync.RWMutex // guards closed and sending on queue
	closed bool
	queue  chan *op

	// batches and ops count committed batches and the ops in them.
	batches, ops atomic.Int64

	head  int64                // committed head; only the batcher goroutine touches it
	stmts map[string]*sql.Stmt // writeQueries prepared on db; read-only once the loop runs
	// audience caches conversations' member ids for the events' Audience
	// (see writeTx.audience); only the batcher goroutine touches it.
	audience map[string][]string
	wg       sync.WaitGroup
}

func newBatcher(ctx context.Context, db *sql.DB) (*batcher, error) {
	b := &batcher{db: db, queue: make(chan *op, maxBatch), stmts: map[string]*sql.Stmt{}, audience: map[string][]string{}}
	if err := db.QueryRowContext(ctx, qHead).Scan(&b.head); err != nil {
		return nil, fmt.Errorf("sqlite: read head: %w", err)
	}
	for _, q := range writeQueries {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			b.closeStmts()
			return nil, fmt.Errorf("sqlite: prepare %q: %w", q, err)
		}
		b.stmts[q] = st
	}
	// Owned by the batcher: close stops it and waits for it.
	b.wg.Add(1)
	go b.loop()
	return b, nil
}

// do runs fn in the next batch and returns after the batch has committed
// (nil), or with fn's error, or the commit's. If ctx ends before the
// batcher claims the op, the op is dropped and do returns ctx.Err(): a
// context error means the write did not happen. Once claimed, do waits for
// the batch (a batch is short) so the answer is always exact.
func (b *batcher) do(ctx context.Context, fn func(w *writeTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{fn: fn, done: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.queue <- o:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()

	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opCancelled) {
			return ctx.Err()
		}
		return <-o.done
	}
}

var errClosed = &parley.Error{Code: parley.EUNAVAILABLE, Message: "store is closed"}

// close stops taking ops, lets the batcher run those already queued and
// waits for it to exit.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.queue)
	}
	b.mu.Unlock()
	b.wg.Wait()
	b.closeStmts()
}

func (b *batcher) closeStmts() {
	for _, st := range b.stmts {
		st.Close()
	}
	clear(b.stmts)
}

func (b *batcher) loop() {
	defer b.wg.Done()
	batch := make([]*op, 0, maxBatch)
	for o := range b.queue {
		batch = append(batch[:0], o)
	fill:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-b.queue:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		b.run(batch)
		clear(batch)
	}
}

// run executes one batch: one transaction, one savepoint per op.
func (b *batcher) run(batch []*op) {
	// Claim the ops first: an op its caller gave up on is dropped here.
	live := batch[:0:0]
	for _, o := range batch {
		if o.state.CompareAndSwap(opQueued, opClaimed) {
			live = append(live, o)
		}
	}
	if len(live) == 0 {
		return
	}
	errs := make([]error, len(live))

	// The statements run with a background context on purpose: one
	// caller's cancellation must not abort the others' transaction.
	ctx := context.Background()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		answerAll(live, internalf("begin: %w", err))
		return
	}
	w := &writeTx{b: b, tx: tx, head: b.head}
	for i, o := range live {
		errs[i] = wrapInternal(runOne(w, o.fn))
		if errs[i] != nil {
			// The op may have cached what it then rolled back.
			clear(b.audience)
		}
	}
	if w.broken {
		clear(b.audience)
		_ = tx.Rollback()
		answerAll(live, internalf("batch rolled back after a failed savepoint rollback"))
		return
	}
	if err := tx.Commit(); err != nil {
		// Nothing of this batch is stored: every op fails, and the head
		// stays where the last commit left it.
		clear(b.audience)
		answerAll(live, internalf("commit: %w", err))
		return
	}
	b.head = w.head
	b.batches.Add(1)
	b.ops.Add(int64(len(live)))
	for i, o := range live {
		o.done <- errs[i]
	}
}

// runOne runs fn inside a savepoint, rolling back to it when fn fails so
// the rest of the batch is unaffected.
func runOne(w *writeTx, fn func(*writeTx) error) (err error) {
	if _, err := w.exec("SAVEPOINT op"); err != nil {
		return internalf("savepoint: %w", err)
	}
	head := w.head
	defer func() {
		if p := recover(); p != nil {
			err = internalf("panic in write: %v", p)
		}
		if err != nil {
			w.head = head
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
		o.done <- err
	}
}
