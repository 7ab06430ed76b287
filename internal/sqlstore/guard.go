package sqlstore

import (
	"context"
	"strings"
	"unicode/utf8"
)

// readGuard is the Engine the Store reads through: it refuses, as
// EINVALID, a statement with a text argument that holds a NUL character
// or is not UTF-8, before the engine runs it. No stored value is such a
// text (the writes refuse them, parley.ValidateID and the other checks),
// yet a read takes ids, names and cursors from the network as they come:
// a path's %00 or %FF, a JSON "\u0000", a cursor's decoded bytes.
// PostgreSQL refuses such a text with an error of its own (SQLSTATE
// 22021), which a read could only report as internal, where SQLite finds
// no row: the guard makes both engines answer the same, a clear
// invalid. Writes validate their input before they are queued (a bad
// one never takes a place in a batch); they pass through unchanged, and
// so does the engine's hot send path.
type readGuard struct{ Engine }

// errBadText is what readGuard answers.
var errBadText = invalidf("a value holds a NUL character or is not valid UTF-8")

// checkArgs returns errBadText when a text argument (a string or a list
// of them) could not be stored.
func checkArgs(args []any) error {
	for _, a := range args {
		switch v := a.(type) {
		case string:
			if !storable(v) {
				return errBadText
			}
		case []string:
			for _, s := range v {
				if !storable(s) {
					return errBadText
				}
			}
		}
	}
	return nil
}

func storable(s string) bool { return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) }

func (g readGuard) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return guardedQuerier{g.Engine}.Exec(ctx, query, args...)
}

func (g readGuard) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	return guardedQuerier{g.Engine}.Query(ctx, query, args...)
}

func (g readGuard) QueryRow(ctx context.Context, query string, args ...any) Row {
	return guardedQuerier{g.Engine}.QueryRow(ctx, query, args...)
}

// Read runs fn with a Querier that checks its statements' arguments too.
func (g readGuard) Read(ctx context.Context, fn func(q Querier) error) error {
	return g.Engine.Read(ctx, func(q Querier) error { return fn(guardedQuerier{q}) })
}

// guardedQuerier is a Querier (the engine's, or a read transaction's)
// behind readGuard.
type guardedQuerier struct{ q Querier }

func (g guardedQuerier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := checkArgs(args); err != nil {
		return 0, err
	}
	return g.q.Exec(ctx, query, args...)
}

func (g guardedQuerier) Query(ctx context.Context, query string, args ...any) (Rows, error) {
	if err := checkArgs(args); err != nil {
		return nil, err
	}
	return g.q.Query(ctx, query, args...)
}

func (g guardedQuerier) QueryRow(ctx context.Context, query string, args ...any) Row {
	if err := checkArgs(args); err != nil {
		return errRow{err}
	}
	return g.q.QueryRow(ctx, query, args...)
}

// errRow is a Row whose Scan fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
