package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parleychat/parley/internal/sqlstore"
)

// dialect is SQLite's sqlstore.Dialect.
type dialect struct{}

func (dialect) Name() string { return "sqlite" }

// HeadSQL: the batcher is the only writer and commits whole batches, so
// a shard's largest committed position is its head.
func (dialect) HeadSQL() string { return `SELECT COALESCE(MAX(pos), 0) FROM events WHERE shard = $1` }

// EventsForSQL: the events of one shard inside one of the user's
// membership windows (args: user, after, limit, shard, through: the
// bound ReplayBoundSQL found, or the largest int64). For each window the
// subquery takes at most limit events from the conversation's index,
// bounded by the window, so the sort sees at most windows x limit rows,
// however far behind the user is, and the joins run only for those. The
// user's own events of no conversation (sqlstore.UserEventsSQL) join
// them. sqlstore.ReplayFilter leaves out what a block hides inside the
// subquery, before its LIMIT: filtered after it, a run of limit hidden
// events emptied the window and cut the page short, which the server's
// replay took for "caught up". Up to through, a window holds at most
// ReplayBoundSQL's scan events or limit visible ones, so the filter runs
// on a bounded number of rows however long a hidden run is.
func (dialect) EventsForSQL() string {
	return `SELECT * FROM (SELECT ` + sqlstore.EventCols + ` FROM members w
		JOIN events e ON e.id IN (SELECT e.id FROM events e
			WHERE e.conversation_id = w.conversation_id AND e.shard = $4
			AND e.pos > max($2, w.joined_pos - 1)
			AND e.pos <= min(COALESCE(w.left_pos, 9223372036854775807), $5)
			AND (e.recipient IS NULL OR e.recipient = w.user_id)
			AND ` + sqlstore.ReplayFilter + `
			ORDER BY e.pos LIMIT $3 + 0)
		` + sqlstore.EventJoinsFor + `w.user_id
		WHERE w.user_id = $1
		ORDER BY e.pos LIMIT $3 + 0)
		UNION ALL SELECT * FROM (` + sqlstore.UserEventsSQL + `)
		ORDER BY 1 LIMIT $3 + 0`
}

// ReplayBoundSQL: see sqlstore.Dialect (args: user, after, limit,
// shard, scan). Per window, the first scan events in order (a co-routine
// on the conversation's index, read as far as asked): when fewer than
// limit of them pass sqlstore.ReplayFilter, the scan-th one's pos; the
// smallest of these. A window where limit pass stops at the limit-th
// (so a window of visible events costs what EventsForSQL's does);
// another reads its scan events twice, the second time without the
// filter. The scans name the conversation's index: left to itself the
// planner may range the log's (shard, pos) key instead, which reads
// every conversation's events of the range.
func (dialect) ReplayBoundSQL() string {
	scan := `SELECT e.pos, e.type, e.actor_id, e.conversation_id, e.message_id FROM events e INDEXED BY events_by_conversation
			WHERE e.conversation_id = w.conversation_id AND e.shard = $4
			AND e.pos > max($2, w.joined_pos - 1)
			AND e.pos <= COALESCE(w.left_pos, 9223372036854775807)
			AND (e.recipient IS NULL OR e.recipient = w.user_id)
			ORDER BY e.pos LIMIT $5 + 0`
	return `SELECT MIN(t) FROM (SELECT CASE
		WHEN (SELECT COUNT(*) FROM (SELECT 1 FROM (` + scan + `) e WHERE ` + sqlstore.ReplayFilter + ` LIMIT $3 + 0)) < $3 + 0
		THEN (SELECT pos FROM (` + scan + `) ORDER BY pos LIMIT 1 OFFSET $5 - 1) END AS t
		FROM members w WHERE w.user_id = $1 AND COALESCE(w.left_pos, 9223372036854775807) > $2)`
}

// NameIs: users.name is COLLATE NOCASE (and uniquely indexed so).
func (dialect) NameIs(column, param string) string { return column + " = " + param }

// InList takes the ids as a JSON array: one argument, so the statement
// is prepared once whatever the number of ids.
func (dialect) InList(column, param string) string {
	return column + " IN (SELECT value FROM json_each(" + param + "))"
}

func (dialect) IDs(ids []string) (any, error) {
	b, err := json.Marshal(ids)
	return string(b), err
}

// ListChunk bounds the ids of one InList argument.
func (dialect) ListChunk() int { return 1000 }

// Time stores a time as microseconds since the Unix epoch; parley.Now
// already rounds to microseconds, so times round-trip exactly.
func (dialect) Time(t time.Time) any { return toMicros(t) }

func toMicros(t time.Time) int64 { return t.UnixMicro() }

// Dest: database/sql's nullable types have the core's layout.
func (dialect) StringDest(p *sqlstore.NullString) any { return (*sql.NullString)(p) }
func (dialect) IntDest(p *sqlstore.NullInt64) any     { return (*sql.NullInt64)(p) }
func (dialect) TimeDest(p *sqlstore.NullTime) any     { return (*microTime)(p) }

func (dialect) IsNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// microTime scans a time stored as microseconds (see Time).
type microTime sqlstore.NullTime

func (t *microTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*t = microTime{}
	case int64:
		*t = microTime{Time: time.UnixMicro(v).UTC(), Valid: true}
	default:
		return fmt.Errorf("sqlite: a time column holds %T", src)
	}
	return nil
}

// SearchFrom: the FTS5 index (migration 00008), its rowid the message's.
func (dialect) SearchFrom() (from, match string) {
	return `messages_fts f JOIN messages m ON m.rowid = f.rowid`, `messages_fts MATCH $2`
}

// SearchKey: FTS5 walks its matches in rowid order, so newest first
// needs no sort.
func (dialect) SearchKey() string { return `f.rowid` }

// SearchMatch: each term a quoted FTS5 string (terms hold only letters,
// digits and marks: no quote; the ascii tokenizer keeps each whole), all of them required in the text column, the last one a
// prefix with prefix; with convs, only messages whose conv token is one
// of theirs.
func (dialect) SearchMatch(terms, convs []string, prefix bool) string {
	var b strings.Builder
	b.WriteString("text : (")
	for i, t := range terms {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(`"` + t + `"`)
	}
	if prefix {
		b.WriteByte('*')
	}
	b.WriteByte(')')
	if len(convs) > 0 {
		b.WriteString(" AND conv : (")
		for i, c := range convs {
			if i > 0 {
				b.WriteString(" OR ")
			}
			// The token the triggers write (migration 00008), as an FTS5
			// string: a quote inside is doubled.
			b.WriteString(`"c` + strings.ReplaceAll(strings.ReplaceAll(c, "-", ""), `"`, `""`) + `"`)
		}
		b.WriteByte(')')
	}
	return b.String()
}
