package postgres

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley"
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
