package postgres

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// countingConn counts what the client writes to PostgreSQL: each write
// is a flush of statements, followed by a wait for their answers.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestBatchRoundTrips: a batch of sends, once its connection has
// prepared the statements, writes to PostgreSQL four times: BEGIN with
// the lock and the head (one pipeline, pgx.Batch.BeginTx), the check,
// the write, which also moves the head (qBulkSendWriteHeads), and COMMIT;
// a batch of one send as one of several. A BEGIN of its own was a
// sixth, a round trip taken right after the previous commit, when the
// node is busiest (batch.go, lockedTx), and the head's own UPDATE a fifth.
// The head the write moved must be the batch's last position.
func TestBatchRoundTrips(t *testing.T) {
	ctx := t.Context()
	// A batcher of its own, on one connection that counts its writes.
	var writes atomic.Int64
	b, pool, ann, g := ownBatcher(t, func(cfg *pgxpool.Config) {
		cfg.MaxConns = 1
		// No liveness ping on acquire (pgxpool pings a connection idle
		// for over a second): a pause on a busy machine would add a write.
		cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return countingConn{c, &writes}, err
		}
	})
	// Once it holds the lock, the batcher waits for the ops queued
	// together (up to 5 s) so they all go into its batch.
	var together atomic.Int64
	b.afterLock = func() {
		for range 5000 {
			if int64(len(b.queue.Ops())) >= together.Load()-1 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	n := 0
	// send queues k sends at once, as a connection's pipelined sends are
	// (engine.go), and waits for their answers.
	send := func(k int) {
		t.Helper()
		ops := make([]*op, k)
		for i := range ops {
			n++
			ops[i] = newSendOp(parley.NewMessage{ConversationID: g.ID, SenderID: ann.ID, ClientID: fmt.Sprint("c", n), Type: parley.Text, Text: "hi"}, 1)
		}
		together.Store(int64(k))
		errs := make([]error, k)
		b.queue.EnqueueMany(ctx, ops, func(i int, err error) { errs[i] = err })
		for i, o := range ops {
			if err := cmp.Or(errs[i], o.send.err); err != nil {
				t.Fatal(err)
			}
		}
	}
	var head, last int64
	check := func(what string) {
		t.Helper()
		if err := pool.QueryRow(ctx, `SELECT (SELECT head FROM positions), (SELECT max(pos) FROM events)`).Scan(&head, &last); err != nil {
			t.Fatal(err)
		}
		if head != last {
			t.Errorf("%s: the head is %d, the last event's position %d", what, head, last)
		}
	}
	check("the group's creation")
	created := head
	for _, k := range []int{1, 3} {
		// The first batches prepare the statements (round trips of their
		// own). The connection's 16th batch would too, its first DISCARD
		// PLANS (replanDue): the 14 batches here stay below it.
		for range 2 {
			send(k)
		}
		const batches = 5
		before, ran := writes.Load(), b.batches.Load()
		for range batches {
			send(k)
		}
		if got := b.batches.Load() - ran; got != batches {
			t.Fatalf("sends of %d: %d batches ran, want %d", k, got, batches)
		}
		if got, want := writes.Load()-before, int64(4*batches); got != want {
			t.Errorf("%d batches of %d sends wrote to PostgreSQL %d times, want %d (4 a batch)", batches, k, got, want)
		}
		check(fmt.Sprintf("sends of %d", k))
	}
	if head != created+int64(n) {
		t.Errorf("the head is %d after %d sends from %d", head, n, created)
	}
}

// ownBatcher opens a store on a schema of its own, holding user ann and a
// group of hers, and a batcher of its own on a pool of that schema (tune,
// when set, changes the pool's config first). The test's cleanup closes
// them all.
func ownBatcher(t *testing.T, tune func(*pgxpool.Config)) (*batcher, *pgxpool.Pool, parley.User, parley.Conversation) {
	t.Helper()
	dsn := pgtest.Schema(t)
	db, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ann, g := userAndGroup(t, db, "ann")
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if tune != nil {
		tune(cfg)
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b := newBatcher(pool, db.b.keys)
	t.Cleanup(b.close)
	return b, pool, ann, g
}

// heldRun runs two one-send batches, A and B, on a batcher of its own
// with the given maxHold: A waits before its COMMIT until B is queued,
// so A commits with an op queued (batcher.hold), and check runs on the
// batcher goroutine while B holds the lock, before B's check and write.
// check gets A's answer channel (it must put back what it takes). It
// returns the order of the answers and the hand-over stage's durations,
// in the order observed.
func heldRun(t *testing.T, maxHold time.Duration, check func(answered chan string)) ([]string, []time.Duration) {
	t.Helper()
	b, _, ann, g := ownBatcher(t, nil)
	b.maxHold = maxHold
	var (
		mu        sync.Mutex
		handovers []time.Duration
	)
	b.SetStageObserver(func(s batchq.Stage, d time.Duration) {
		if s == batchq.StageHandover {
			mu.Lock()
			handovers = append(handovers, d)
			mu.Unlock()
		}
	})

	answered := make(chan string, 2)
	send := asyncSender(t, b, ann, g, answered)
	var (
		commits int
		aBefore = make(chan struct{}) // batch A is about to commit
		checked = make(chan struct{}) // check has run in batch B
	)
	// beforeCommit and afterLock run on the batcher goroutine.
	b.beforeCommit = func(context.Context, pgx.Tx) {
		if commits++; commits > 1 {
			return
		}
		// Batch A: wait for B to be queued (after A took its ops).
		close(aBefore)
		waitQueued(t, b)
	}
	b.afterLock = func() {
		if commits == 1 {
			check(answered)
			close(checked)
		}
	}
	send("A")
	<-aBefore
	send("B") // queued as A commits
	<-checked
	order := collect(t, answered, 2)
	mu.Lock()
	defer mu.Unlock()
	return order, handovers
}

// TestAnswersWaitForNextWrite: when ops are queued as a batch commits,
// its answers are handed to the answerer only once the next batch sends
// its write (batcher.hold), so they do not take the node's P from the
// next batch's lock and check. While batch B holds the lock, A must
// stay unanswered: the wait for A's answer there is a bound (1 s), as
// before hold A was answered within microseconds of its commit. Both
// sends succeed, A answered first.
func TestAnswersWaitForNextWrite(t *testing.T) {
	early := false
	order, handovers := heldRun(t, time.Hour, func(answered chan string) {
		select {
		case c := <-answered:
			early = true
			answered <- c
		case <-time.After(time.Second):
		}
	})
	if early {
		t.Error("batch A was answered while batch B held the lock, before B's write")
	}
	// The hand-over stage shows the wait: A was kept back for the whole
	// 1 s check.
	if len(handovers) < 2 || handovers[0] < time.Second {
		t.Errorf("parley_store_stage_seconds{stage=\"handover\"} observed %v, want A's first, at least 1 s", handovers)
	}
	if order[0] != "A" {
		t.Errorf("answered in the order %v, want A first", order)
	}
}

// TestHeldAnswersBounded: answers held for the next batch's write go
// after maxHold even when that batch is stuck before it (here in its
// lock: another node's batches, a stalled node). B waits in its lock for
// A's answer (bound: 20 s, a deadlock detector: nothing is timed).
func TestHeldAnswersBounded(t *testing.T) {
	got := false
	order, _ := heldRun(t, defaultMaxHold, func(answered chan string) {
		select {
		case c := <-answered:
			got = true
			answered <- c
		case <-time.After(20 * time.Second):
		}
	})
	if !got {
		t.Error("batch A was not answered while batch B waited before its write")
	}
	if order[0] != "A" {
		t.Errorf("answered in the order %v, want A first", order)
	}
}

// TestHeldNeverWaitsInTx: a batch never waits for the answerer inside
// its transaction (holding the positions lock, which every node's writes
// need): with the answerer stuck in batch X's answers, batch Z still
// reaches its COMMIT, though Y's answers are held for its write
// (batcher.offerHeld); they go once the answerer is free, X, Y, Z in
// order. The waits are bounds (20 s, deadlock detectors: nothing is
// timed).
func TestHeldNeverWaitsInTx(t *testing.T) {
	b, _, ann, g := ownBatcher(t, nil)
	b.maxHold = time.Hour // only the hand-overs under test
	answered := make(chan string, 3)
	send := asyncSender(t, b, ann, g, answered)
	var (
		stuck    = make(chan struct{}) // closed to free the answerer
		once     bool
		commits  int
		before   = make(chan int, 3) // a batch is about to commit
		zCommits = make(chan struct{})
	)
	b.SetAnswerHooks(func() {
		if !once { // the answerer's goroutine only
			once = true
			select {
			case <-stuck:
			case <-time.After(20 * time.Second):
			}
		}
	}, func() {})
	b.beforeCommit = func(context.Context, pgx.Tx) {
		commits++
		before <- commits
		if commits == 3 {
			close(zCommits)
			return
		}
		// X and Y: wait for the next send to be queued.
		waitQueued(t, b)
	}
	send("X")
	<-before
	send("Y")
	<-before
	send("Z")
	select {
	case <-zCommits:
	case <-time.After(20 * time.Second):
		t.Error("batch Z did not reach its COMMIT while the answerer was busy")
	}
	close(stuck)
	order := collect(t, answered, 3)
	if fmt.Sprint(order) != "[X Y Z]" {
		t.Errorf("answered in the order %v, want [X Y Z]", order)
	}
}

// asyncSender returns a function that queues a send of ann's to g with
// client id client, asynchronously: the answerer itself calls back, in
// the order it answers, and the client id goes to answered.
func asyncSender(t *testing.T, b *batcher, ann parley.User, g parley.Conversation, answered chan<- string) func(client string) {
	return func(client string) {
		o := newSendOp(parley.NewMessage{ConversationID: g.ID, SenderID: ann.ID, ClientID: client, Type: parley.Text, Text: "hi"}, 1)
		b.queue.EnqueueManyAsync([]*op{o}, nil, func(_ int, err error) {
			if err = cmp.Or(err, o.send.err); err != nil {
				t.Errorf("send %s: %v", client, err)
			}
			answered <- client
		})
	}
}

// waitQueued waits (up to 5 s) for an op in b's queue.
func waitQueued(t *testing.T, b *batcher) {
	for range 5000 {
		if len(b.queue.Ops()) > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Error("the next send was never queued")
}

// collect returns the next n client ids from answered, in order (each
// waited for up to 20 s, a deadlock detector).
func collect(t *testing.T, answered <-chan string, n int) []string {
	t.Helper()
	var order []string
	for range n {
		select {
		case c := <-answered:
			order = append(order, c)
		case <-time.After(20 * time.Second):
			t.Fatalf("answers so far: %v", order)
		}
	}
	return order
}
