package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parleychat/parley/internal/batchq"
)

// classify maps the SQLite errors that mean "this store cannot write now"
// to parley.EUNAVAILABLE with a retry hint (batchq.Unavailable): the disk
// or the file system is full (SQLITE_FULL), an I/O error (SQLITE_IOERR and
// its extended codes), a database that became read-only (SQLITE_READONLY),
// or a lock not obtained within busy_timeout (SQLITE_BUSY). Any other
// error is returned as it is.
func classify(err error) error {
	if err == nil {
		return nil // before se, which escapes: no allocation per batch
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_BUSY:
		return batchq.Unavailable(err)
	}
	return err
}
