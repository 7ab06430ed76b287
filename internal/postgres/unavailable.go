package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parleychat/parley/internal/batchq"
)

// classify maps the PostgreSQL errors that mean "this store cannot write
// now" to parley.EUNAVAILABLE with a retry hint (batchq.Unavailable), and
// returns any other error as it is. Unavailable are:
//
//   - SQLSTATE class 08 (connection exception), 53 (insufficient
//     resources: disk full, out of memory, too many connections) and 58
//     (system error: I/O error); 25006 (a read-only transaction: the
//     primary became a standby); 57P01..57P03 (the server is shutting
//     down, starting, or ended this session: pg_terminate_backend);
//     55P03 (lock_timeout: another node holds the positions lock, stalled);
//     25P03 (idle_in_transaction_session_timeout: this node stalled
//     mid-batch and PostgreSQL ended its session); and any FATAL or PANIC
//     error, which ends the session.
//   - A connection that could not be made, or that failed under a
//     statement: a network error, an unexpected EOF, a timeout (the
//     batch's deadline: a half-open link), or an error pgconn deems safe
//     to retry (nothing was sent).
//
// A batch whose connection was lost during COMMIT may have committed: its
// writes answer `unavailable` all the same and clients resend them with
// the same client ids, which the store makes idempotent; the events of
// such a batch reach the hubs through their poll of the store.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		// The batch's deadline (batchWait) ended it. The context error
		// is not kept in the chain: to a caller a context error means
		// "not written", and this write may have committed.
		return batchq.Unavailable(errors.New(err.Error()))
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		c := pe.Code
		if strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") || strings.HasPrefix(c, "58") ||
			c == "25006" || c == "57P01" || c == "57P02" || c == "57P03" || c == "55P03" || c == "25P03" ||
			pe.Severity == "FATAL" || pe.Severity == "PANIC" {
			return batchq.Unavailable(err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return batchq.Unavailable(err)
	}
	return err
}
