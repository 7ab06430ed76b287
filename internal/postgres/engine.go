package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/internal/sqlstore"
)

// engine is a DB as the core (sqlstore.Engine) sees it: reads on the
// pool, writes through the batcher. A type of its own so that its methods
// (Query, Exec, ...) are not DB's.
type engine DB

var _ sqlstore.Engine = (*engine)(nil)

func (e *engine) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return pgQuerier{e.pool}.Exec(ctx, query, args...)
}

func (e *engine) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	return pgQuerier{e.pool}.Query(ctx, query, args...)
}

func (e *engine) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return e.pool.QueryRow(ctx, query, args...)
}

// Read runs fn in one read-only REPEATABLE READ transaction, so every
// query in it sees the same snapshot.
func (e *engine) Read(ctx context.Context, fn func(q sqlstore.Querier) error) error {
	tx, err := e.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return internalf("begin read: %w", err)
	}
	defer tx.Rollback(context.Background())
	return fn(pgQuerier{tx})
}

func (e *engine) Write(ctx context.Context, fn func(w sqlstore.Tx) error) error {
	return e.b.enqueue(ctx, &op{fn: func(w *writeTx) error { return fn(w) }, shard: anyShard})
}

// WriteShard: the op's batch locks shard alone (batch.go).
func (e *engine) WriteShard(ctx context.Context, shard int, fn func(w sqlstore.Tx) error) error {
	return e.b.enqueue(ctx, &op{fn: func(w *writeTx) error { return fn(w) }, shard: shard})
}

func (e *engine) Send(ctx context.Context, nm parley.NewMessage) (parley.Message, []parley.Event, error) {
	o := newSendOp(nm, e.b.shards)
	if err := e.b.enqueue(ctx, o); err != nil {
		return parley.Message{}, nil, err
	}
	return o.send.msg, o.send.events, nil
}

// SendMany implements sqlstore.Engine.
func (e *engine) SendMany(ctx context.Context, async bool, drop *atomic.Bool, nms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) {
	ops, answer := e.sendOps(nms, done)
	batchq.EnqueueRun(ctx, e.b.queue, async, drop, ops, answer)
}

// sendOps makes the ops of nms and the answer that hands the i-th op's
// result to done.
func (e *engine) sendOps(nms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) ([]*op, func(int, error)) {
	ops := make([]*op, len(nms))
	for i, nm := range nms {
		ops[i] = newSendOp(nm, e.b.shards)
	}
	return ops, func(i int, err error) {
		if so := ops[i].send; err == nil {
			done(i, so.msg, so.events, nil)
		} else {
			done(i, parley.Message{}, nil, err)
		}
	}
}

// pgQuerier is the pool or a transaction as a sqlstore.Querier.
type pgQuerier struct {
	q interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
}

func (q pgQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.q.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q pgQuerier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func (q pgQuerier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.q.QueryRow(ctx, query, args...)
}

// dialect is PostgreSQL's sqlstore.Dialect.
type dialect struct{}

func (dialect) Name() string { return "postgres" }

// HeadSQL: the counter row the batches move under the positions lock
// (batch.go).
func (dialect) HeadSQL() string { return qHead }

// HeadsSQL: every shard's head in one query (sqlstore.HeadsDialect), for
// the hub's head poll: one round trip a second, not one per shard.
func (dialect) HeadsSQL() string { return `SELECT shard, head FROM positions` }

// EventsForSQL: the events of one shard inside one of the user's
// membership windows (args: user, after, limit, shard, through: the
// bound ReplayBoundSQL found, or the largest int64), with the user's own
// events of no conversation; sqlstore.ReplayFilter leaves out what a
// block hides. Each window is read on its own (LATERAL, on the
// conversation's index) up to limit events, as SQLite's statement does:
// up to through a window holds at most ReplayBoundSQL's scan events or
// limit visible ones, so the filter runs on a bounded number of rows
// however long a hidden run is.
func (dialect) EventsForSQL() string {
	return `SELECT * FROM (SELECT ` + sqlstore.EventCols + ` FROM members w
		CROSS JOIN LATERAL (SELECT e.* FROM events e
			WHERE e.conversation_id = w.conversation_id AND e.shard = $4
			AND e.pos > GREATEST($2, w.joined_pos - 1)
			AND e.pos <= LEAST(COALESCE(w.left_pos, 9223372036854775807), $5)
			AND (e.recipient IS NULL OR e.recipient = w.user_id)
			AND ` + sqlstore.ReplayFilter + `
			ORDER BY e.pos LIMIT $3) e
		` + sqlstore.EventJoinsFor + `w.user_id
		WHERE w.user_id = $1
		ORDER BY e.pos LIMIT $3) conv
		UNION ALL SELECT * FROM (` + sqlstore.UserEventsSQL + `) own
		ORDER BY 1 LIMIT $3`
}

// ReplayBoundSQL: see sqlstore.Dialect (args: user, after, limit,
// shard, scan): SQLite's statement, the windows' scans read on
// the conversation's index as they are asked for.
func (dialect) ReplayBoundSQL() string {
	scan := `SELECT e.pos, e.type, e.actor_id, e.conversation_id, e.message_id FROM events e
			WHERE e.conversation_id = w.conversation_id AND e.shard = $4
			AND e.pos > GREATEST($2, w.joined_pos - 1)
			AND e.pos <= COALESCE(w.left_pos, 9223372036854775807)
			AND (e.recipient IS NULL OR e.recipient = w.user_id)
			ORDER BY e.pos LIMIT $5`
	return `SELECT MIN(t) FROM (SELECT CASE
		WHEN (SELECT COUNT(*) FROM (SELECT 1 FROM (` + scan + `) e WHERE ` + sqlstore.ReplayFilter + ` LIMIT $3) v) < $3
		THEN (SELECT pos FROM (` + scan + `) c ORDER BY pos LIMIT 1 OFFSET $5 - 1) END AS t
		FROM members w WHERE w.user_id = $1 AND COALESCE(w.left_pos, 9223372036854775807) > $2) b`
}

// NameIs: users are uniquely indexed on lower(name).
func (dialect) NameIs(column, param string) string {
	return "lower(" + column + ") = lower(" + param + ")"
}

// InList takes the ids as one text[] argument.
func (dialect) InList(column, param string) string { return column + " = ANY(" + param + ")" }

func (dialect) IDs(ids []string) (any, error) { return ids, nil }

// ListChunk: an array argument has no practical bound.
func (dialect) ListChunk() int { return math.MaxInt }

// Time: timestamptz keeps microseconds, as parley.Now rounds them.
func (dialect) Time(t time.Time) any { return t }

// Dest: pgtype's nullable types have the core's layout.
func (dialect) StringDest(p *sqlstore.NullString) any { return (*pgtype.Text)(p) }
func (dialect) IntDest(p *sqlstore.NullInt64) any     { return (*pgtype.Int8)(p) }
func (dialect) TimeDest(p *sqlstore.NullTime) any     { return (*utcTime)(p) }

func (dialect) IsNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// utcTime scans a timestamptz in UTC (pgx gives the local zone).
type utcTime sqlstore.NullTime

func (t *utcTime) ScanTimestamptz(v pgtype.Timestamptz) error {
	*t = utcTime{Time: v.Time.UTC(), Valid: v.Valid}
	return nil
}

// internalf wraps a failure of the database itself; callers see EINTERNAL.
func internalf(format string, args ...any) error {
	return fmt.Errorf("postgres: "+format, args...)
}

func wrapInternal(err error) error { return sqlstore.WrapInternal("postgres", err) }
