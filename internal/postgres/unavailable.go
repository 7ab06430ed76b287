package postgres

import (
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/parleychat/parley/internal/batchq"
)

// classify maps the PostgreSQL errors that mean "this store cannot write
// now" to parley.EUNAVAILABLE with a retry hint (batchq.Unavailable):
// class 53 (insufficient resources: disk full, out of memory, too many
// connections), class 58 (system error: I/O error), 25006 (a read-only
// transaction: the primary became a standby), 57P01..57P03 (the server is
// shutting down or starting), and a connection that could not be made.
// Any other error is returned as it is.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &pe):
		if c := pe.Code; strings.HasPrefix(c, "53") || strings.HasPrefix(c, "58") ||
			c == "25006" || c == "57P01" || c == "57P02" || c == "57P03" {
			return batchq.Unavailable(err)
		}
	case errors.As(err, &ce):
		return batchq.Unavailable(err)
	}
	return err
}

// WriteErr returns the error of the last write the store could not make
// (disk full, read-only, unreachable) while it cannot write, nil when
// writes work: see batchq.WriteHealth. The server's /readyz answers 503
// while it is set.
func (db *DB) WriteErr() error { return db.b.health.Err() }
