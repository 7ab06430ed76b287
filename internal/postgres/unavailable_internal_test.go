package postgres

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parleychat/parley"
)

// TestClassify: the errors that mean "PostgreSQL cannot write now, or
// this node lost it" are `unavailable`, wrapped as the batcher wraps
// them; errors of the request or the data are left alone.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection failure 08006", &pgconn.PgError{Severity: "ERROR", Code: "08006"}, true},
		{"admin shutdown 57P01", &pgconn.PgError{Severity: "FATAL", Code: "57P01"}, true},
		{"crash shutdown 57P02", &pgconn.PgError{Severity: "FATAL", Code: "57P02"}, true},
		{"lock timeout 55P03", &pgconn.PgError{Severity: "ERROR", Code: "55P03"}, true},
		{"idle in transaction timeout 25P03", &pgconn.PgError{Severity: "FATAL", Code: "25P03"}, true},
		{"any FATAL", &pgconn.PgError{Severity: "FATAL", Code: "XX000"}, true},
		{"disk full 53100", &pgconn.PgError{Severity: "ERROR", Code: "53100"}, true},
		{"read only 25006", &pgconn.PgError{Severity: "ERROR", Code: "25006"}, true},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, true},
		{"closed connection", net.ErrClosed, true},
		{"unique violation 23505", &pgconn.PgError{Severity: "ERROR", Code: "23505"}, false},
		{"syntax error 42601", &pgconn.PgError{Severity: "ERROR", Code: "42601"}, false},
		{"a plain error", errors.New("postgres: something else"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(internalf("commit: %w", tc.err))
			if got := parley.ErrorCode(err) == parley.EUNAVAILABLE; got != tc.want {
				t.Errorf("classify(%v) = %v (code %q), unavailable = %v, want %v", tc.err, err, parley.ErrorCode(err), got, tc.want)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("classify dropped the cause %v from %v", tc.err, err)
			}
		})
	}
}
