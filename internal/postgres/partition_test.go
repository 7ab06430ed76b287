package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// stall makes db's batcher stop once, holding the positions lock inside
// its transaction, as a node does when its process is stopped or its link
// to PostgreSQL goes half-open mid-batch. locked is closed once it holds
// the lock; resume lets it go on.
func stall(db *postgres.DB, lockWait, holdIdle time.Duration) (locked <-chan struct{}, resume func()) {
	l, r := make(chan struct{}), make(chan struct{})
	var once sync.Once
	postgres.SetLockBounds(db, lockWait, holdIdle, func() {
		once.Do(func() { close(l); <-r })
	})
	var ronce sync.Once
	return l, func() { ronce.Do(func() { close(r) }) }
}

// wantUnavailable fails t unless err is `unavailable` with a retry hint.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Fatalf("%s: %v (code %q), want unavailable", what, err, parley.ErrorCode(err))
	}
	if pe := (*parley.Error)(nil); !errors.As(err, &pe) || pe.RetryAfter <= 0 {
		t.Fatalf("%s: %v, want a retry hint", what, err)
	}
}

// sessionOf returns the backend pid of the session of application name
// app that is idle inside a transaction: a stalled batcher's.
func sessionOf(t *testing.T, dsn, app string) int {
	t.Helper()
	var pid int
	if err := queryRow(t, dsn, `SELECT pid FROM pg_stat_activity
		WHERE application_name = $1 AND state = 'idle in transaction'`, app).Scan(&pid); err != nil {
		t.Fatalf("the stalled batcher's session: %v", err)
	}
	return pid
}

// terminate ends the backend session pid (pg_terminate_backend), as a
// database restart, a failover or an operator does.
func terminate(t *testing.T, dsn string, pid int) {
	t.Helper()
	var ok bool
	if err := queryRow(t, dsn, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_terminate_backend(%d): %v, %v", pid, ok, err)
	}
}

// queryRow runs one query on a connection of its own.
func queryRow(t *testing.T, dsn, sql string, args ...any) pgx.Row {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn.QueryRow(t.Context(), sql, args...)
}

// TestConnectionLostMidTransaction: a node whose PostgreSQL session ends
// inside a batch (here pg_terminate_backend: SQLSTATE 57P01 then a closed
// connection; the same as a link cut mid-transaction) answers that
// batch's writes `unavailable`, not `internal`, and reports WriteErr for
// /readyz; meanwhile another node, waiting for the positions lock the
// stalled one holds, gets `unavailable` after its lock_timeout instead
// of hanging. Both write again once the session is gone.
func TestConnectionLostMidTransaction(t *testing.T) {
	dsn := pgtest.Schema(t)
	app := fmt.Sprintf("parley-stalled-%d", time.Now().UnixNano())
	a := open(t, dsn+"&application_name="+app)
	b := open(t, dsn)
	locked, resume := stall(a, 10*time.Second, time.Hour)
	defer resume()
	postgres.SetLockBounds(b, 200*time.Millisecond, time.Hour, nil)

	errA := make(chan error, 1)
	go func() {
		_, err := a.EnsureUser(context.Background(), "user-a", "A")
		errA <- err
	}()
	<-locked

	_, err := b.EnsureUser(t.Context(), "user-b", "B")
	wantUnavailable(t, "a write waiting for the lock a stalled node holds", err)
	if b.WriteErr() == nil {
		t.Fatal("WriteErr is nil on the node that could not take the lock")
	}

	pid := sessionOf(t, dsn, app)
	terminate(t, dsn, pid)
	resume()
	err = <-errA
	t.Logf("the stalled node's write: %v", err)
	wantUnavailable(t, "a write whose session ended mid-transaction", err)
	if a.WriteErr() == nil {
		t.Fatal("WriteErr is nil on the node whose session ended")
	}

	for i, db := range []*postgres.DB{a, b} {
		if _, err := db.EnsureUser(t.Context(), fmt.Sprintf("user-again-%d", i), fmt.Sprintf("Again %d", i)); err != nil {
			t.Fatalf("a write once the stalled session is gone: %v", err)
		}
		if err := db.WriteErr(); err != nil {
			t.Fatalf("WriteErr after a write committed: %v", err)
		}
	}
}

// TestStalledLockHolderIsEnded: a node stalled while it holds the
// positions lock holds it for at most its idle bound: PostgreSQL ends
// its session (idle_in_transaction_session_timeout), the other node's
// waiting write commits, and the stalled node's write, once it resumes,
// answers `unavailable` (its batch was rolled back: the client retries).
// Without the bound the other node's write waits forever.
func TestStalledLockHolderIsEnded(t *testing.T) {
	dsn := pgtest.Schema(t)
	a := open(t, dsn)
	b := open(t, dsn)
	locked, resume := stall(a, time.Hour, 300*time.Millisecond)
	defer resume()
	postgres.SetLockBounds(b, time.Hour, time.Hour, nil)

	errA := make(chan error, 1)
	go func() {
		_, err := a.EnsureUser(context.Background(), "user-a", "A")
		errA <- err
	}()
	<-locked
	if _, err := b.EnsureUser(t.Context(), "user-b", "B"); err != nil {
		t.Fatalf("a write while another node is stalled holding the lock: %v", err)
	}
	resume()
	wantUnavailable(t, "the stalled node's write", <-errA)
	if _, err := a.EnsureUser(t.Context(), "user-a", "A"); err != nil {
		t.Fatalf("the stalled node's write, retried: %v", err)
	}
	u, err := b.User(t.Context(), "user-a")
	if err != nil || u.Name != "A" {
		t.Fatalf("user-a after the retry: %+v, %v", u, err)
	}
}

// TestHalfOpenLink: a node whose link to PostgreSQL goes half-open
// (packets dropped, no reset: a dead NAT, a partition) fails its writes
// with `unavailable` once its batch deadline passes, instead of waiting
// for TCP to give up (minutes), reports WriteErr, and writes again once
// the link heals. Without the deadline the send below hangs. (Reads over
// such a link wait for their caller's deadline: not bounded here.)
func TestHalfOpenLink(t *testing.T) {
	dsn := pgtest.Schema(t)
	open(t, dsn) // migrates
	p, proxied, err := faultproxy.ListenURL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	db := open(t, proxied)
	postgres.SetLockBounds(db, 200*time.Millisecond, 300*time.Millisecond, nil)
	if _, err := db.EnsureUser(t.Context(), "alice", "Alice"); err != nil {
		t.Fatal(err)
	}
	conv := mustGroup(t, db, "alice", "g")
	send := func(id string) error {
		_, _, err := db.SendMessage(t.Context(), parley.NewMessage{ConversationID: conv.ID, SenderID: "alice",
			ClientID: id, Type: parley.Text, Text: id})
		return err
	}
	if err := send("before"); err != nil {
		t.Fatal(err)
	}
	p.Blackhole(faultproxy.Both)
	err = send("during")
	t.Logf("a write over a half-open link: %v", err)
	wantUnavailable(t, "a write over a half-open link", err)
	if db.WriteErr() == nil {
		t.Fatal("WriteErr is nil while the link is half-open")
	}
	p.Heal()
	p.CutAll() // the blackholed connections are dead to pgx; new ones work
	if err := send("after"); err != nil {
		t.Fatalf("a write once the link healed: %v", err)
	}
}
