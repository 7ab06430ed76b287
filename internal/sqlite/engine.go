package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/internal/sqlstore"
)

// engine is a DB as the core (sqlstore.Engine) sees it: reads on the
// read pool, writes through the batcher. A type of its own so that its
// methods (Query, Exec, ...) are not DB's.
//
// Read statements are prepared on the read pool the first time each
// query runs and kept (DB.rstmts): database/sql then prepares each on a
// pool connection the first time it runs there and keeps it, so SQLite
// parses a query once per connection, not once per call.
type engine DB

var _ sqlstore.Engine = (*engine)(nil)

// stmt returns query prepared on the read pool, or nil if it cannot be
// (the unprepared query then fails the same way).
func (e *engine) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := e.rstmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	st, err := e.read.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	if prev, loaded := e.rstmts.LoadOrStore(query, st); loaded {
		st.Close() // prepared at the same time by another read
		return prev.(*sql.Stmt)
	}
	return st
}

// Exec is not used for reads; it runs on the read pool (query_only) for
// completeness.
func (e *engine) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return rowsAffected(e.read.ExecContext(ctx, query, args...))
}

func (e *engine) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if st := e.stmt(ctx, query); st != nil {
		return wrapRows(st.QueryContext(ctx, args...))
	}
	return wrapRows(e.read.QueryContext(ctx, query, args...))
}

func (e *engine) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	if st := e.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return e.read.QueryRowContext(ctx, query, args...)
}

// Read runs fn in one read transaction, so every query in it sees the
// same snapshot. A query the pool has not prepared yet runs unprepared
// in the transaction and is prepared on the pool once the transaction
// has ended: preparing it on the pool inside would wait for a second
// connection while holding one, and with every connection of the pool
// held by transactions waiting so, none would go on.
func (e *engine) Read(ctx context.Context, fn func(q sqlstore.Querier) error) error {
	tx, err := e.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return internalf("begin read: %w", err)
	}
	r := &readTx{e: e, tx: tx}
	err = func() error {
		defer tx.Rollback()
		return fn(r)
	}()
	for _, q := range r.unprepared {
		e.stmt(ctx, q)
	}
	return err
}

func (e *engine) Write(ctx context.Context, fn func(w sqlstore.Tx) error) error {
	return e.b.do(ctx, func(w *writeTx) error { return fn(w) })
}

// WriteShard is Write: SQLite has one writer, whatever the shard.
func (e *engine) WriteShard(ctx context.Context, _ int, fn func(w sqlstore.Tx) error) error {
	return e.Write(ctx, fn)
}

func (e *engine) Send(ctx context.Context, nm parley.NewMessage) (parley.Message, []parley.Event, error) {
	so := newSendOp(nm)
	if err := e.b.enqueue(ctx, so.op); err != nil {
		return parley.Message{}, nil, err
	}
	return so.msg, so.events, nil
}

// SendMany implements sqlstore.Engine.
func (e *engine) SendMany(ctx context.Context, async bool, drop *atomic.Bool, nms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) {
	ops, answer := e.sendOps(nms, done)
	batchq.EnqueueRun(ctx, e.b.queue, async, drop, ops, answer)
}

// sendOps makes the ops of nms and the answer that hands the i-th op's
// result to done.
func (e *engine) sendOps(nms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) ([]*op, func(int, error)) {
	sos := make([]*sendOp, len(nms))
	ops := make([]*op, len(nms))
	for i, nm := range nms {
		sos[i] = newSendOp(nm)
		ops[i] = sos[i].op
	}
	return ops, func(i int, err error) {
		if err != nil {
			done(i, parley.Message{}, nil, err)
			return
		}
		done(i, sos[i].msg, sos[i].events, nil)
	}
}

// readTx is a read transaction running the prepared read statements
// (none with a nil e: a transaction on another pool).
type readTx struct {
	e          *engine
	tx         *sql.Tx
	unprepared []string // queries the pool had not prepared (see Read)
}

// stmt returns query as the pool prepared it, or nil when it has not
// yet (never inside the transaction: see Read).
func (r *readTx) stmt(_ context.Context, query string) *sql.Stmt {
	if r.e == nil {
		return nil
	}
	if st, ok := r.e.rstmts.Load(query); ok {
		return st.(*sql.Stmt)
	}
	if !slices.Contains(r.unprepared, query) {
		r.unprepared = append(r.unprepared, query)
	}
	return nil
}

func (r *readTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return rowsAffected(r.tx.ExecContext(ctx, query, args...))
}

func (r *readTx) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	if st := r.stmt(ctx, query); st != nil {
		return wrapRows(r.tx.StmtContext(ctx, st).QueryContext(ctx, args...))
	}
	return wrapRows(r.tx.QueryContext(ctx, query, args...))
}

func (r *readTx) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	if st := r.stmt(ctx, query); st != nil {
		return r.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return r.tx.QueryRowContext(ctx, query, args...)
}

// rows is *sql.Rows as sqlstore.Rows: a Close with no error (a read's
// error is Err's).
type rows struct{ *sql.Rows }

func (r rows) Close() { _ = r.Rows.Close() }

func wrapRows(r *sql.Rows, err error) (sqlstore.Rows, error) {
	if err != nil {
		return nil, err
	}
	return rows{r}, nil
}

func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// internalf wraps a failure of the database itself; callers see EINTERNAL.
func internalf(format string, args ...any) error {
	return fmt.Errorf("sqlite: "+format, args...)
}

func wrapInternal(err error) error { return sqlstore.WrapInternal("sqlite", err) }
