package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/internal/sqlstore"
)

// Group commit.
//
// Every write of a node goes through one goroutine, its batcher. A write
// call enqueues an op and waits. The batcher begins a transaction, takes
// the positions advisory lock and reads the head, then takes every op
// queued by then (up to maxBatch) and runs them in that ONE transaction:
// the sends together in two bulk statements (bulk.go), every other op
// inside a SAVEPOINT (an op that fails rolls back alone). It writes the
// new head (in the sends' write when the batch holds nothing else: four
// round trips for a batch of sends, BEGIN with the lock and the head, the
// check, the write and COMMIT), commits once, and only then answers each
// waiter. Batches of different nodes take turns on the lock, so positions
// stay dense and in commit order cluster-wide; the writes that queue while
// a node waits for the lock all go into its next batch.
//
// A committed batch is published and answered by a second goroutine, the
// answerer, while the batcher already runs the next batch: publishing
// (encoding every event for the broker) and answering (writing the
// replies to the connections) were a quarter to a third of the batcher's
// CPU, during which the batch connection and its lock sat idle. The
// answerer takes batches one at a time, in the order they were handed
// over (commit order), so events are still published in position order
// and a batch's answers come after the previous batch's; the hand-over
// waits while the answerer is busy, so at most one batch is being
// answered while the next one runs. When ops are queued at a commit, the
// hand-over waits for the next batch's write (hold), so the answers run
// while PostgreSQL runs that statement rather than while the batcher
// waits to be scheduled for its short ones.

// maxBatch bounds how many ops share a transaction, so one batch does not
// hold the cluster-wide lock for too long. Sends cost about the same two
// bulk statements whatever their number, so under load a large batch is
// what keeps the lock's cost per message low: with the server handing
// each connection's pipelined sends over at once (parley.MultiSender),
// `parley bench write --rooms 1000 --window 4` keeps 4000 in flight, and
// 2000 here took the server's CPU per message from ~0.085 to ~0.06 ms
// against 500 (PostgreSQL's own CPU not counted).
const maxBatch = 2000

// maxSavepoints bounds how many ops of a batch run in savepoints (every op
// but the bulk sends, bulk.go). It is below 64 on purpose: each op that
// writes in a savepoint gets a subtransaction xid, and a transaction with
// more than 64 of them overflows PostgreSQL's per-backend subxid cache,
// which slows every other session's snapshots while it runs.
const maxSavepoints = 60

// op is one write waiting for the batcher.
type op struct {
	// fn runs the write inside the batch transaction, within its own
	// savepoint. It must not keep w after it returns. A send has none.
	fn func(w *writeTx) error
	// send, when set, lets the batcher run this op with the batch's other
	// sends in two statements (bulk.go); run runs it alone, in a savepoint
	// (when a batch runs again after its bulk statements failed).
	send *sendOp
	// shard is the only shard whose positions fn takes (a send's
	// conversation's), or anyShard (shards.go).
	shard int
	// Ticket is the op's state and answer, shared with its caller.
	batchq.Ticket
}

// writeTx is what an op sees: the batch transaction and the position
// counter.
type writeTx struct {
	tx pgx.Tx
	// ctx bounds every statement of the batch (batcher.batchWait): the
	// ctx an op passes is ignored (it is bg: one caller's cancellation
	// must not abort the others' transaction).
	ctx context.Context
	// shards is the log's shard count; pos hands out the batch's
	// positions, per shard.
	shards int
	pos    sqlstore.Heads
	// locked marks the shards whose lock the transaction holds; nil:
	// every shard.
	locked []bool
	// Savepoint statements wait to travel in one pipeline with the op's
	// first statement, saving a round trip or two per op: release is set
	// while the savepoint of an op that succeeded is not yet released,
	// open while the current op's savepoint is not yet created, and
	// inSavepoint once it is.
	release, open, inSavepoint bool
	// beforeWrite, when set, runs just before the send write is sent
	// (batcher.hold).
	beforeWrite func()
	// foldHeads: the batch's ops are all sends, run in bulk, so its send
	// write also writes the new heads (qBulkSendWriteHeads), and sets
	// headsWritten; runTx then has no qSetHeads to run.
	foldHeads, headsWritten bool
	// noProbe: the bulk check of several sends assumes them new (no
	// lookup of their client ids; batcher.probeUntil). resent is set
	// when a check found a send already stored.
	noProbe, resent bool
	// probes counts the bulk checks that looked up client ids (tests).
	probes int
	// broken is the error of a savepoint that could not be rolled back:
	// the transaction may hold part of a failed op, so the whole batch is
	// rolled back instead of committed. It is kept for classify (a
	// connection lost mid-batch is what usually breaks a rollback).
	broken error
	// Events are the events the batch stored, for the commit hook; its
	// Stored method is sqlstore.Tx's.
	batchq.Events
}

// bg is the context ops give the batch's statements (writeTx runs them
// under the batch's deadline instead): one caller's cancellation
// must not abort the others' transaction.
var bg = context.Background()

// NextPos implements sqlstore.Tx. Positions are dense: an op that fails
// gives its positions back (runOne undoes them).
func (w *writeTx) NextPos(shard int) int64 {
	if w.locked != nil && !w.locked[shard] {
		// A write that declared another shard (engine.WriteShard): a
		// bug. runOne recovers the panic and fails that write alone.
		panic(fmt.Sprintf("a write takes a position in shard %d, which its transaction did not lock", shard))
	}
	return w.pos.Next(shard)
}

// prefix returns the savepoint statements waiting to be sent, and marks
// them sent.
func (w *writeTx) prefix() []string {
	var pre []string
	if w.release {
		pre = append(pre, "RELEASE SAVEPOINT op")
		w.release = false
	}
	if w.open {
		pre = append(pre, "SAVEPOINT op")
		w.open, w.inSavepoint = false, true
	}
	return pre
}

// pipeline sends the waiting savepoint statements and then sql in one
// round trip.
func (w *writeTx) pipeline(ctx context.Context, pre []string, sql string, args []any) pgx.BatchResults {
	b := &pgx.Batch{}
	for _, p := range pre {
		b.Queue(p)
	}
	b.Queue(sql, args...)
	return w.tx.SendBatch(ctx, b)
}

// exec, queryRow and query run every statement of an op, so the
// savepoint is in place before the first.
func (w *writeTx) exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	ctx := w.ctx
	pre := w.prefix()
	if len(pre) == 0 {
		return w.tx.Exec(ctx, sql, args...)
	}
	br := w.pipeline(ctx, pre, sql, args)
	defer br.Close()
	for range pre {
		if _, err := br.Exec(); err != nil {
			return pgconn.CommandTag{}, err
		}
	}
	return br.Exec()
}

func (w *writeTx) queryRow(_ context.Context, sql string, args ...any) pgx.Row {
	ctx := w.ctx
	pre := w.prefix()
	if len(pre) == 0 {
		return w.tx.QueryRow(ctx, sql, args...)
	}
	return &pipelinedRow{br: w.pipeline(ctx, pre, sql, args), pre: len(pre)}
}

func (w *writeTx) query(_ context.Context, sql string, args ...any) (pgx.Rows, error) {
	ctx := w.ctx
	if pre := w.prefix(); len(pre) > 0 {
		if _, err := w.tx.Exec(ctx, strings.Join(pre, "; ")); err != nil {
			return nil, err
		}
	}
	return w.tx.Query(ctx, sql, args...)
}

// Exec, Query and QueryRow make writeTx a sqlstore.Tx, with NextPos and
// the methods below: PostgreSQL keeps no cache (another node may write),
// so Audience and UserName read.
func (w *writeTx) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	tag, err := w.exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}

func (w *writeTx) Query(ctx context.Context, sql string, args ...any) (sqlstore.Rows, error) {
	rows, err := w.query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (w *writeTx) QueryRow(ctx context.Context, sql string, args ...any) sqlstore.Row {
	return w.queryRow(ctx, sql, args...)
}

func (w *writeTx) Audience(conversationID string) ([]string, error) {
	return sqlstore.MemberIDs(bg, w, conversationID)
}

func (w *writeTx) UserName(userID string) (string, error) {
	var name string
	err := w.queryRow(bg, `SELECT name FROM users WHERE id = $1`, userID).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", parley.ErrNotFound
	}
	return name, err
}

func (w *writeTx) MembersChanged(string) {}
func (w *writeTx) UserRenamed(string)    {}

// writing runs beforeWrite, if set: the send write is about to go.
func (w *writeTx) writing() {
	if w.beforeWrite != nil {
		w.beforeWrite()
	}
}

// pipelinedRow is the row of a query sent after savepoint statements.
type pipelinedRow struct {
	br  pgx.BatchResults
	pre int
}

func (r *pipelinedRow) Scan(dest ...any) error {
	defer r.br.Close()
	for range r.pre {
		if _, err := r.br.Exec(); err != nil {
			return err
		}
	}
	return r.br.QueryRow().Scan(dest...)
}

// batcher runs batches on connections of the pool. DB.Close stops it: it
// closes the queue, the goroutine runs what was queued, then exits, and
// Close waits for it.
type batcher struct {
	pool *pgxpool.Pool
	// keys are the positions locks' advisory keys, one per shard;
	// shards is the log's shard count (one positions row each).
	keys   []int64
	shards int
	// parallel is how many transactions (lanes) a batch of a log of
	// several shards is split into at most, all run at once (shards.go);
	// batchq.Hooks keeps their publishes from overlapping.
	parallel int
	// minLaneOps is the const minLaneOps; tests lower it to split small
	// batches into lanes.
	minLaneOps int

	// lockWait and holdIdle bound a stalled node's hold on the cluster
	// (see lockedTx); tests shorten them. afterLock, when set, runs once
	// the lock is held (tests stall a batcher there). All three are set
	// before the first write.
	lockWait, holdIdle time.Duration
	afterLock          func()
	// committed, when set, is told after each commit that wrote
	// something (the search indexer's kick; set before the first write).
	committed func()
	// beforeCommit, when set, runs in each batch transaction that ran
	// ops, before its COMMIT (tests: the plans its connection keeps).
	beforeCommit func(ctx context.Context, tx pgx.Tx)

	queue *batchq.Queue[*op]
	// answers carries the answers of batches (a committed batch's publish
	// and answers, or a failed batch's error) to the answerer goroutine,
	// in the order they are to be given (see deliver). Unbuffered: a
	// batch is handed over only once the previous one is answered.
	answers chan func()
	// holdMu guards held and every send on answers, so the answers go in
	// the order they were held or delivered, whoever hands them over
	// (the batcher, a lane or holdTimer's goroutine).
	holdMu sync.Mutex
	// held is a committed batch's answers kept back (hold); holdTimer
	// hands them over after maxHold (defaultMaxHold; tests set it
	// before the first write). lanesRunning is set by runSharded
	// while its lanes run (they deliver, never hold).
	held         func()
	holdTimer    *time.Timer
	maxHold      time.Duration
	lanesRunning bool

	wg sync.WaitGroup

	// batches and ops count what run did, for tests and benchmarks.
	batches, ops atomic.Int64
	// probeUntil: while batches is below it, a batch's bulk check looks
	// up each send's (sender, client id) among the stored messages (the
	// probe, qBulkSendCheck); from then on it assumes its sends new
	// (qBulkSendCheckNew) until a resend is seen again (see run).
	// Atomic: the lanes of a batch (shards.go) run at once.
	probeUntil atomic.Int64
	// misses counts the batches run again with the probe because their
	// sends, assumed new, were not (tests).
	misses atomic.Int64
	// probes counts the bulk checks of several sends that looked up their
	// client ids (writeTx.probes; tests).
	probes atomic.Int64
	// Hooks is told every batch's outcome: write health (failures
	// classified by classify), the batch observer and the commit
	// publisher. DB embeds a pointer to it.
	batchq.Hooks
}

func newBatcher(pool *pgxpool.Pool, keys []int64) *batcher {
	b := &batcher{pool: pool, keys: keys, shards: len(keys), parallel: max(1, int(pool.Config().MaxConns)/2),
		minLaneOps: minLaneOps, queue: batchq.NewQueue[*op](maxBatch), answers: make(chan func()),
		lockWait: defaultLockWait, holdIdle: defaultHoldIdle, maxHold: defaultMaxHold}
	b.holdTimer = time.AfterFunc(time.Hour, b.flushHeld) // owned by b: stopped in loop, before answers closes
	b.holdTimer.Stop()
	b.wg.Add(2)
	go b.answerer() // owned by b: loop closes answers when it exits, close waits
	go b.loop()     // owned by b: close stops and waits for it
	return b
}

// answerer runs the answers handed over by deliver, one at a time, in
// order, until loop closes b.answers.
func (b *batcher) answerer() {
	defer b.wg.Done()
	for f := range b.answers {
		f()
	}
}

// deliver hands f, which answers a batch's ops, to the answerer, waiting
// while it answers the previous batch. Every answer of a batch goes this
// way, success or failure, so ops are answered in the order their
// batches finished. Called by the batcher goroutine and its lanes, never
// after loop returned.
func (b *batcher) deliver(f func()) {
	b.holdMu.Lock()
	defer b.holdMu.Unlock()
	b.sendHeldLocked()
	b.answers <- f
}

// defaultMaxHold bounds how long hold keeps a batch's answers back: the next
// batch's lock can take long (other nodes' batches hold it, or a stalled
// one, up to lockWait), and a committed batch must not wait for it to be
// answered.
const defaultMaxHold = 10 * time.Millisecond

// hold keeps f, a committed batch's answers, back from the answerer until
// the next batch sends its send write (writeTx.beforeWrite, if the
// answerer is free then), the batcher finds no op queued (loop), or
// b.maxHold has passed, whichever comes first; any other hand-over
// (deliver) gives it first. Why: on one P, the answerer (the replies and
// the publish to each connection of a batch) held the P for milliseconds
// right after each commit, so the next batch's short statements (the lock
// and the head, the check) waited that long for the batcher to be
// scheduled again, PostgreSQL's batch connection idle in its transaction
// meanwhile; given as the write is sent, the answers run while PostgreSQL
// runs the batch's longest statement. (With thousands of writes in flight,
// the lock and the check take longer than maxHold, and most answers go at
// the bound: still after the short round trips that follow a commit. The
// handover stage of parley_store_stage_seconds shows it.) The batcher
// goroutine only, never its lanes.
func (b *batcher) hold(f func()) {
	b.holdMu.Lock()
	defer b.holdMu.Unlock()
	b.sendHeldLocked()
	b.held = f
	b.holdTimer.Reset(b.maxHold)
}

// flushHeld hands the held answers, if any, to the answerer.
func (b *batcher) flushHeld() {
	b.holdMu.Lock()
	defer b.holdMu.Unlock()
	b.sendHeldLocked()
}

// offerHeld hands the held answers to the answerer if it is free now,
// without waiting: the batcher calls it inside a batch transaction,
// holding the positions lock, which must not wait for the answerer (a
// slow publish would hold every node's writes); when the answerer is
// busy they go with the next hand-over, or holdTimer's.
func (b *batcher) offerHeld() {
	if !b.holdMu.TryLock() {
		return // holdTimer is handing them over
	}
	defer b.holdMu.Unlock()
	if f := b.held; f != nil {
		select {
		case b.answers <- f:
			b.held = nil
		default:
		}
	}
}

func (b *batcher) sendHeldLocked() {
	if f := b.held; f != nil {
		b.held = nil
		b.answers <- f
	}
}

// enqueue runs o in the next batch and returns after the batch has
// committed (nil), or with o's error, or the commit's. If ctx ends before
// the batcher claims the op, the op is dropped and enqueue returns
// ctx.Err(): a context error means the write did not happen. Once
// claimed, it waits for the batch so the answer is always exact.
func (b *batcher) enqueue(ctx context.Context, o *op) error { return b.queue.Enqueue(ctx, o) }

// close stops taking ops, lets the batcher run those already queued and
// waits for it to exit.
func (b *batcher) close() {
	b.queue.Close()
	b.wg.Wait()
}

func (b *batcher) loop() {
	defer b.wg.Done()
	// Every batch (and each of its lanes) has handed its answers over by
	// the time it returns here: the answerer drains them and exits.
	defer close(b.answers)
	defer func() {
		b.holdTimer.Stop()
		b.flushHeld() // after Stop: a timer running now hands them over first, in turn
	}()
	batch := make([]*op, 0, maxBatch)
	// carry holds the ops a batch of a log of several shards took from
	// the queue but left for the next batch (runSharded): they go first.
	var carry []*op
	for {
		batch = batch[:0]
		if len(carry) > 0 {
			batch = append(batch, carry...)
			clear(carry)
			carry = carry[:0]
		} else {
			var (
				o  *op
				ok bool
			)
			select {
			case o, ok = <-b.queue.Ops():
			default:
				// Nothing to run: the held answers go now.
				b.flushHeld()
				o, ok = <-b.queue.Ops()
			}
			if !ok {
				return
			}
			batch = append(batch, o)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(bg, b.batchWait())
		if b.shards == 1 {
			// Take the lock first, then the ops that queued meanwhile:
			// while other nodes hold the lock, this node's writes
			// gather into one batch instead of waiting in many.
			tx, heads, err := b.lockedTx(ctx, nil)
			batch = b.fill(batch)
			b.run(ctx, b.claim(batch), nil, tx, heads, err, start)
		} else {
			batch = b.fill(batch)
			carry = b.runSharded(ctx, b.claim(batch), start, carry)
		}
		cancel()
		clear(batch)
	}
}

// fill adds the ops queued now to batch, up to maxBatch ops and
// maxSavepoints ops that need a savepoint.
func (b *batcher) fill(batch []*op) []*op {
	savepoints := 0
	for _, o := range batch {
		if o.send == nil {
			savepoints++
		}
	}
	for len(batch) < maxBatch && savepoints < maxSavepoints {
		select {
		case o, ok := <-b.queue.Ops():
			if !ok {
				return batch
			}
			batch = append(batch, o)
			if o.send == nil {
				savepoints++
			}
		default:
			return batch
		}
	}
	return batch
}

// defaultLockWait is how long a batch waits for the positions lock before
// its writes fail with `unavailable` (lock_timeout, SQLSTATE 55P03): the
// lock is normally held for one batch (milliseconds), so a wait this long
// means the holder is stalled, and callers are better told to retry than
// left hanging.
const defaultLockWait = 5 * time.Second

// defaultHoldIdle is how long a batch transaction may sit idle (its node
// sends nothing: the process stopped, its link to PostgreSQL half-open)
// before PostgreSQL ends its session (idle_in_transaction_session_timeout,
// 25P03), rolling the batch back and releasing the positions lock for the
// other nodes. A running batcher is idle only between its statements'
// round trips.
const defaultHoldIdle = 5 * time.Second

// lockedTx begins a transaction and takes the positions locks of shards
// (nil: every shard), in shard order, returning the heads, one per shard
// (0 for a shard not locked). The transaction's lock_timeout and
// idle_in_transaction_session_timeout are set first (b.lockWait,
// b.holdIdle): a node that stalls while it holds the lock, which every
// node's writes need, holds it for at most holdIdle, and the others'
// batches fail (`unavailable`, retried by clients) instead of hanging.
// BEGIN and the statements are pipelined in one round trip (pgx's
// Batch.BeginTx): a BEGIN of its own cost the batcher a round trip right
// after the previous batch's commit, when the node's P is busiest with its
// answers, and PostgreSQL's batch connection sat idle in that transaction
// for a sixth of the time under `parley bench write` (docs/benchmarks.md,
// "PostgreSQL writes: BEGIN in the lock's round trip"). Under READ
// COMMITTED each statement takes its snapshot when it starts, and
// PostgreSQL runs a pipeline's statements one after the other, so the head
// is read by a statement that starts once the lock is held and cannot miss
// the batch that committed just before. (One statement doing both would
// read the head from a snapshot taken before the lock.)
func (b *batcher) lockedTx(ctx context.Context, shards []int) (pgx.Tx, []int64, error) {
	c, err := b.pool.Acquire(ctx)
	if err != nil {
		return nil, nil, internalf("begin: %w", err)
	}
	var heads []int64
	lb := &pgx.Batch{}
	lb.BeginTx(pgx.TxOptions{})
	lb.Queue(`SELECT set_config('lock_timeout', $1, true), set_config('idle_in_transaction_session_timeout', $2, true)`,
		millis(b.lockWait), millis(b.holdIdle))
	if replanDue(countBatch(c.Conn().PgConn())) {
		lb.Queue(`DISCARD PLANS`)
	}
	switch {
	case len(b.keys) == 1:
		lb.Queue(qLock, b.keys[0])
		lb.Queue(qHeads)
	case shards == nil:
		lb.Queue(qLocks, b.keys)
		lb.Queue(qHeads)
	case len(shards) == 1:
		lb.Queue(qLock, b.keys[shards[0]])
		lb.Queue(qHeadsOf, shards)
	default:
		keys := make([]int64, len(shards))
		for i, s := range shards {
			keys[i] = b.keys[s]
		}
		lb.Queue(qLocks, keys)
		lb.Queue(qHeadsOf, shards)
	}
	br := c.SendBatch(ctx, lb)
	tx := &pooledTx{Tx: br.Tx(), c: c}
	for range lb.Len() - 1 {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if err == nil {
		err = br.QueryRow().Scan(&heads)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		heads, err = b.allHeads(shards, heads)
	}
	if err != nil {
		tx.Rollback(ctx)
		return nil, nil, internalf("take positions lock and read head: %w", err)
	}
	if b.afterLock != nil {
		b.afterLock()
	}
	return tx, heads, nil
}

// pooledTx is a transaction begun in a batch on c (pgx.Batch.BeginTx),
// which gives c back to the pool when it ends, as pgxpool's own Tx does
// for a transaction begun by pgxpool.Conn.Begin.
type pooledTx struct {
	pgx.Tx
	c *pgxpool.Conn
}

func (t *pooledTx) Commit(ctx context.Context) error {
	defer t.release()
	return t.Tx.Commit(ctx)
}

// Rollback is safe after Commit and twice, as pgx.Tx's.
func (t *pooledTx) Rollback(ctx context.Context) error {
	defer t.release()
	return t.Tx.Rollback(ctx)
}

// release gives c back (pgxpool drops a connection not idle).
func (t *pooledTx) release() {
	if t.c != nil {
		t.c.Release()
		t.c = nil
	}
}

// Plans kept too long.
//
// pgx prepares each statement once per connection, and from its sixth
// execution on PostgreSQL may run it with a generic plan, which it keeps
// for as long as nothing invalidates it (an ANALYZE of a table it reads:
// autovacuum's, minutes after a table has grown; never where autovacuum
// is off). A connection whose first batches ran while the tables held a
// few rows (a new database) keeps the plans made for those sizes: the
// send write's update of conversations through a sequential scan of
// conversations (TestSendPlansFollowGrowth), and a read of members'
// whole partial index (docs/benchmarks.md, "PostgreSQL CPU per message
// on 16 shards", the send path's hazard), for every later batch on
// tables of any size. So a batch connection drops its cached plans
// (DISCARD PLANS: the statements stay prepared, each is planned again at
// its next execution, for the tables as they are then) at its 16th batch,
// its 64th, 256th, ... each 4 times the last, and every 16384th from
// there: a plan is made again before the tables it was made for can have
// grown much, and the planning costs ~1 ms a time, a few times per
// connection's life.

// batchesKey is the key of a batch connection's batch count in its
// pgconn.PgConn CustomData.
const batchesKey = "parley.batches"

// countBatch counts a batch on the connection pc and returns its count.
// A connection runs one batch at a time (its CustomData needs no lock).
func countBatch(pc *pgconn.PgConn) int64 {
	n, _ := pc.CustomData()[batchesKey].(int64)
	n++
	pc.CustomData()[batchesKey] = n
	return n
}

// replanAfter is the last count of replanDue's growing schedule; from
// there it says every replanAfter batches.
const replanAfter = 16384

// replanDue says whether a connection's nth batch drops its cached plans:
// n = 16, 64, 256, ..., replanAfter, then every replanAfter batches.
func replanDue(n int64) bool {
	if n >= replanAfter {
		return n%replanAfter == 0
	}
	return n >= 16 && n&(n-1) == 0 && bits.TrailingZeros64(uint64(n))%2 == 0
}

// batchWait bounds a whole batch, from BEGIN to COMMIT: the lock wait,
// a stalled holder's idle bound, and 5 s for the batch's own statements.
// A batch over it is abandoned (its statements' connection is closed) and
// its writes answer `unavailable`: so a link to PostgreSQL that goes
// half-open (packets dropped, no reset) fails the node's writes within
// seconds instead of TCP's minutes. A COMMIT cut this way may have
// committed; clients resend with the same client id (see classify).
func (b *batcher) batchWait() time.Duration { return b.lockWait + b.holdIdle + 5*time.Second }

// millis formats d as a PostgreSQL time setting in milliseconds.
func millis(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "ms" }

// claim claims the ops of batch and returns those whose callers still
// wait: an op its caller gave up on is dropped here.
func (b *batcher) claim(batch []*op) []*op {
	live := batch[:0:0]
	for _, o := range batch {
		if o.Claim() {
			live = append(live, o)
		}
	}
	return live
}

// run executes the live (claimed) ops of a batch in tx, which holds the
// positions locks of shards (nil: every shard; lockErr says why there is
// no tx): the sends in bulk, the other ops in savepoints. start is when
// the batch began (for the batch observer).
func (b *batcher) run(ctx context.Context, live []*op, shards []int, tx pgx.Tx, heads []int64, lockErr error, start time.Time) {
	if lockErr != nil {
		b.answerAll(live, lockErr)
		return
	}
	if len(live) == 0 {
		tx.Rollback(ctx)
		return
	}
	n := b.batches.Add(1)
	b.ops.Add(int64(len(live)))
	probe := n <= b.probeUntil.Load()
	bulkErr := b.runTx(ctx, tx, shards, heads, live, true, probe, start)
	if bulkErr == nil {
		return
	}
	var err error
	if !probe && isUniqueViolation(bulkErr) {
		// The sends were assumed new and one was not: its row broke
		// messages' unique (sender_id, client_id), a resend (or another
		// unique key broke: the run with the probe fails too and the
		// batch goes on as below). Run it again with the probe, which
		// finds the stored messages and answers them as resends, and
		// probe in the batches that follow. Any other failure of the
		// bulk statements goes straight on as below, as before.
		b.misses.Add(1)
		b.armProbe()
		if tx, heads, err = b.lockedTx(ctx, shards); err != nil {
			b.answerAll(live, err)
			return
		}
		if b.runTx(ctx, tx, shards, heads, live, true, true, start) == nil {
			return
		}
	}
	if tx, heads, err = b.lockedTx(ctx, shards); err != nil {
		b.answerAll(live, err)
		return
	}
	b.runTx(ctx, tx, shards, heads, live, false, true, start)
}

// probeAfterResend is how many batches after one that held a resend
// probe for resends (batcher.probeUntil). A resend is rare (a client that
// lost its connection before the ack); without the probe, a batch's check
// does one lookup in messages' (sender_id, client_id) index per send
// fewer (a descent of a two-text-column key, which the INSERT's unique
// check then does again: ~2.7 buffer reads a message under `parley bench
// write`), and a resend costs its batch a second run. A client that keeps
// resending keeps the probe on (each batch that finds a stored send
// re-arms it), so it costs the others what it cost before plus one batch
// run twice per probeAfterResend.
const probeAfterResend = 1000

// armProbe has the next probeAfterResend batches probe (a resend was seen).
func (b *batcher) armProbe() { b.probeUntil.Store(b.batches.Load() + probeAfterResend) }

// runTx runs the ops in tx and answers each, except when bulk is set and
// the bulk sends failed: then it rolls back, answers nobody and returns
// their error, and the caller runs the batch again (with the probe, or
// without bulk). probe makes the bulk check look up the sends' client ids
// (batcher.probeUntil). tx is finished either way. start is when the
// batch's first transaction began.
func (b *batcher) runTx(ctx context.Context, tx pgx.Tx, shards []int, heads []int64, live []*op, bulk, probe bool, start time.Time) (bulkErr error) {
	defer tx.Rollback(ctx) // after Commit, a no-op
	errs := make([]error, len(live))
	w := &writeTx{tx: tx, ctx: ctx, shards: b.shards, pos: sqlstore.NewHeads(heads), locked: lockedSet(b.shards, shards),
		noProbe: !probe, Events: b.Begin()}
	if !b.lanesRunning {
		w.beforeWrite = b.offerHeld
	}
	if bulk {
		var sends []*sendOp
		for _, o := range live {
			if o.send != nil {
				sends = append(sends, o.send)
			}
		}
		w.foldHeads = len(sends) == len(live)
		err := bulkSend(w, sends)
		b.probes.Add(int64(w.probes))
		if err != nil {
			return err
		}
	}
	for i, o := range live {
		if bulk && o.send != nil {
			errs[i] = o.send.err
			continue
		}
		err := runOne(w, o)
		if isUniqueViolation(err) && w.broken == nil {
			// Another transaction stored the same key (a sender's
			// client id, an edit's) after this op's check: with a log
			// of several shards, a transaction of another lane or node,
			// under other locks. PostgreSQL reports the violation
			// only once that transaction has committed, so the op's
			// check, run again, sees its row and answers what a
			// reused id answers (a resend, `conflict`), not `internal`.
			err = runOne(w, o)
		}
		errs[i] = wrapInternal(err)
	}
	if w.broken != nil {
		b.answerAll(live, internalf("batch rolled back after a failed savepoint rollback: %w", w.broken))
		return nil
	}
	if w.pos.Moved() && !w.headsWritten {
		shards, moved := w.pos.Changed()
		if _, err := w.exec(ctx, qSetHeads, shards, moved); err != nil {
			b.answerAll(live, internalf("write head: %w", err))
			return nil
		}
	} else if w.release {
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT op"); err != nil {
			b.answerAll(live, internalf("release savepoint: %w", err))
			return nil
		}
	}
	if b.beforeCommit != nil {
		b.beforeCommit(ctx, tx)
	}
	commitStart := time.Now()
	if err := tx.Commit(ctx); err != nil {
		// Nothing of this batch is stored: every op fails.
		b.answerAll(live, internalf("commit: %w", err))
		return nil
	}
	b.ObserveStage(batchq.StageSQL, commitStart.Sub(start))
	b.ObserveStage(batchq.StageCommit, time.Since(commitStart))
	if b.committed != nil && w.pos.Moved() {
		b.committed()
	}
	if w.resent {
		b.armProbe()
	}
	evs := w.Events
	committed := time.Now()
	answer := func() {
		b.ObserveStage(batchq.StageHandover, time.Since(committed))
		batchq.Committed(&b.Hooks, &evs, live, errs, start, commitStart, classify)
	}
	if b.lanesRunning {
		b.deliver(answer)
	} else {
		b.hold(answer)
	}
	return nil
}

// run runs o's write in w: a send alone (bulk.go), or o.fn.
func (o *op) run(w *writeTx) error {
	if o.send != nil {
		return sendAlone(w, o.send)
	}
	return o.fn(w)
}

// runOne runs o inside a savepoint, rolling back to it when it fails so
// the rest of the batch is unaffected. The savepoint is created with the
// op's first statement, and released with the next op's (see prefix); an
// op that fails before any statement has nothing to roll back.
func runOne(w *writeTx, o *op) (err error) {
	w.open, w.inSavepoint = true, false
	pmark, mark := w.pos.Mark(), w.Mark()
	defer func() {
		if p := recover(); p != nil {
			err = internalf("panic in write: %v", p)
		}
		w.open = false
		if err != nil {
			w.Undo(mark)
		}
		switch {
		case err != nil && w.inSavepoint:
			w.pos.Undo(pmark)
			if _, rerr := w.tx.Exec(w.ctx, "ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op"); rerr != nil {
				w.broken = rerr
				err = errors.Join(err, internalf("rollback to savepoint: %w", rerr))
			}
		case err != nil:
			w.pos.Undo(pmark)
		case w.inSavepoint:
			w.release = true
		}
		w.inSavepoint = false
	}()
	return o.run(w)
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// answerAll answers every op with err, a failure of the whole batch
// (through the answerer, after the batches before it).
func (b *batcher) answerAll(ops []*op, err error) {
	err = classify(err)
	b.deliver(func() {
		b.Failed(err)
		for _, o := range ops {
			o.Answer(err)
		}
	})
}
