package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"time"
)

// The batch's multi-row writes (messages, events, conversations, read
// positions) run on the driver's own statements, through sql.Conn.Raw,
// not through database/sql's Stmt.Exec. Stmt.Exec converts its arguments
// into a fresh []driver.NamedValue for every call: one allocation of 40
// bytes an argument (19 a message: 11 for its row, 8 for its event's; a
// 256-row chunk is a 112 KB slice) and a conversion call for each. Here
// one []driver.NamedValue is kept by the batcher and filled in place; the
// values are already of the driver's types (addSend), so nothing is
// converted but what is not (driver.DefaultParameterConverter, as
// database/sql would).
//
// Only the batcher goroutine uses rawExec, and only inside conn.Raw: a
// driver statement must not be used outside it (database/sql's rule for
// the driver connection). The statements are prepared on the batcher's
// connection, held for good, so they stay valid between calls; close
// closes them (inside Raw) before the connection.

// rawExec holds the batch's driver statements and the state of one call.
type rawExec struct {
	// stmts: by kind and log2(rows), as batcher.multi, with OR ROLLBACK.
	stmts [nMulti][]driver.Stmt
	// nv is the arguments of the statement that runs, reused (cleared
	// after each call, so that it keeps no message alive).
	nv []driver.NamedValue
	// The call's inputs, set by exec before conn.Raw(fn): fn is the
	// method value of run, made once, so a call allocates no closure.
	kind, k int
	args    []any
	fn      func(driverConn any) error
	// closing makes fn close every statement instead.
	closing bool
}

// execRaw runs the kind's statement for 1<<k rows over args.
func (b *batcher) execRaw(kind, k int, args []any) error {
	r := &b.raw
	if r.fn == nil {
		r.fn = b.runRaw
	}
	r.kind, r.k, r.args = kind, k, args
	err := b.conn.Raw(r.fn)
	r.args = nil
	return err
}

// runRaw is rawExec.fn: it runs inside conn.Raw.
func (b *batcher) runRaw(dc any) error {
	r := &b.raw
	if r.closing {
		var errs []error
		for kind := range r.stmts {
			for _, st := range r.stmts[kind] {
				if st != nil {
					errs = append(errs, st.Close())
				}
			}
			r.stmts[kind] = nil
		}
		return errors.Join(errs...)
	}
	if len(r.stmts[r.kind]) <= r.k {
		r.stmts[r.kind] = append(r.stmts[r.kind], make([]driver.Stmt, r.k+1-len(r.stmts[r.kind]))...)
	}
	st := r.stmts[r.kind][r.k]
	if st == nil {
		pc, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("sqlite: the driver's connection cannot prepare with a context")
		}
		var err error
		if st, err = pc.PrepareContext(context.Background(), multiSQL(r.kind, 1<<r.k, true)); err != nil {
			return err
		}
		r.stmts[r.kind][r.k] = st
	}
	ex, ok := st.(driver.StmtExecContext)
	if !ok {
		return errors.New("sqlite: the driver's statement cannot execute with a context")
	}
	nv := r.nv[:0]
	for i, a := range r.args {
		switch a.(type) {
		case nil, int64, string, float64, bool, []byte, time.Time:
		default:
			// Not a driver value (an int, a *string): as database/sql
			// converts it.
			v, err := driver.DefaultParameterConverter.ConvertValue(a)
			if err != nil {
				return err
			}
			a = v
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: a})
	}
	r.nv = nv
	// The background context on purpose, as every batch statement (see
	// writeTx.exec).
	_, err := ex.ExecContext(context.Background(), nv)
	clear(nv)
	return err
}

// closeRaw closes the driver statements (before the connection).
func (b *batcher) closeRaw() error {
	b.raw.closing = true
	b.raw.fn = b.runRaw
	return b.conn.Raw(b.raw.fn)
}
