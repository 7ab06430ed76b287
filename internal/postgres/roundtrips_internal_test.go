package postgres

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

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
// prepared the statements, writes to PostgreSQL five times: BEGIN with
// the lock and the head (one pipeline, pgx.Batch.BeginTx), the check,
// the write, the new head and COMMIT. A BEGIN of its own was a sixth, a
// round trip taken right after the previous commit, when the node is
// busiest (batch.go, lockedTx).
func TestBatchRoundTrips(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t)
	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ann, g := userAndGroup(t, db, "ann")

	// A batcher of its own, on one connection that counts its writes.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var writes atomic.Int64
	cfg.MaxConns = 1
	// No liveness ping on acquire (pgxpool pings a connection idle for
	// over a second): a pause on a busy machine would add a write.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		return countingConn{c, &writes}, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	b := newBatcher(pool, db.b.keys)
	defer b.close()
	n := 0
	send := func() {
		t.Helper()
		n++
		o := newSendOp(parley.NewMessage{ConversationID: g.ID, SenderID: ann.ID, ClientID: fmt.Sprint("c", n), Type: parley.Text, Text: "hi"}, 1)
		if err := b.enqueue(ctx, o); err != nil {
			t.Fatal(err)
		}
		if o.send.err != nil {
			t.Fatal(o.send.err)
		}
	}
	// The first batches prepare the statements (round trips of their own).
	for range 3 {
		send()
	}
	const batches = 5
	before, ran := writes.Load(), b.batches.Load()
	for range batches {
		send()
	}
	if got := b.batches.Load() - ran; got != batches {
		t.Fatalf("%d batches ran, want %d", got, batches)
	}
	if got, want := writes.Load()-before, int64(5*batches); got != want {
		t.Errorf("%d batches wrote to PostgreSQL %d times, want %d (5 a batch)", batches, got, want)
	}
}
