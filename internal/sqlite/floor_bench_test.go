package sqlite_test

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlstore"
)

// BenchmarkSchemaFloor: what this engine (modernc.org/sqlite, pure Go)
// charges for the rows a send writes in Parley's schema, with none of
// Parley's Go code on the way: the load tool's `write` scenario's batches
// (1000 single-member groups, 4 sends each, 4000 a transaction) written
// as plain multi-row statements of 256 rows (the batcher's maxMultiRows)
// on a connection of their own, each transaction committed with an
// fsync (synchronous FULL: the batcher's own fsync of the WAL, here
// SQLite's). No network, no checks, no ids looked up, no replies.
//
// Levels, each adding to the one before:
//   - messages: the message rows (the table and its three keys);
//   - events: + each send's newMessage event (its position and the
//     conversation's index of events);
//   - send: + each conversation's last_seq and the sender's read
//     position, once a conversation a batch: all a send writes;
//   - search: + the message's words in the FTS5 index (what the search
//     indexer adds after the commit).
//
// cpu-us/msg is the process's CPU (user and system) per message. Against
// BenchmarkSendMessagesRooms (the store with its Go code) and the server's
// pinned `write` (docs/benchmarks.md), it says how much of a stored
// message's cost is the engine's own: 50,000 acknowledged messages/s on
// one core leave 20 µs a message for everything.
func BenchmarkSchemaFloor(b *testing.B) {
	for _, level := range []string{"messages", "events", "send", "search"} {
		b.Run(level, func(b *testing.B) { benchSchemaFloor(b, level) })
	}
}

func benchSchemaFloor(b *testing.B, level string) {
	const rooms, run = 1000, 4
	path := filepath.Join(b.TempDir(), "floor.db")
	// The schema, users and groups as the store makes them; then the
	// store is closed and the file written to directly.
	db := open(b, path)
	users := benchUsers(b, db, rooms)
	groups := benchGroups(b, db, users, func(int) []string { return nil })
	if b.Failed() {
		return
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "temp_store(MEMORY)", "cache_size(-32768)", "busy_timeout(5000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	w.SetMaxOpenConns(1)
	// PARLEY_FLOOR_SETUP: SQL run before the timed part, to price one
	// piece of the schema (e.g. "DROP INDEX events_by_conversation":
	// what would a schema without it save); unset, the schema is the
	// store's.
	if q := os.Getenv("PARLEY_FLOOR_SETUP"); q != "" {
		if _, err := w.Exec(q); err != nil {
			b.Fatal(err)
		}
	}
	const rows = 256
	msgSQL := multiRow{`INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, type, text, created_at) VALUES `, "(?,?,?,?,?,'text',?,?)", ""}
	evSQL := multiRow{`INSERT INTO events (pos, conversation_id, type, actor_id, message_id, data, at, shard) VALUES `,
		"(?,?,'" + string(parley.EventNewMessage) + "',?,?,'" + sqlstore.EmptyEventData + "',?,0)", ""}
	bumpSQL := multiRow{`UPDATE conversations SET last_seq = v.column2, last_activity_at = v.column3 FROM (VALUES `, "(?,?,?)",
		`) AS v WHERE conversations.id = v.column1`}
	readSQL := multiRow{`UPDATE members SET read_seq = max(members.read_seq, v.column3), wrote = 1 FROM (VALUES `, "(?,?,?)",
		`) AS v WHERE members.conversation_id = v.column1 AND members.user_id = v.column2 AND members.left_pos IS NULL`}
	const ftsSQL = `INSERT INTO messages_fts (rowid, text, conv)
		SELECT rowid, parley_search_text(text), 'c' || replace(conversation_id, '-', '') FROM messages WHERE rowid > ?`

	var seq, pos, at, lastRow int64
	// Positions go on from the events of the set-up (the groups').
	if err := w.QueryRow(`SELECT COALESCE(max(pos), 0) FROM events WHERE shard = 0`).Scan(&pos); err != nil {
		b.Fatal(err)
	}
	batch := rooms * run
	msgs := make([]any, 0, batch*7)
	evs := make([]any, 0, batch*5)
	bumps := make([]any, 0, rooms*3)
	reads := make([]any, 0, rooms*3)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		msgs, evs, bumps, reads = msgs[:0], evs[:0], bumps[:0], reads[:0]
		seq++
		for i := range n {
			r := i % rooms
			s := seq + int64(i/rooms)
			pos++
			at++
			id := sqlstore.NewID()
			msgs = append(msgs, id, groups[r].ID, s, users[r].ID, fmt.Sprintf("f%d", pos), "hello, rooms of one", at)
			evs = append(evs, pos, groups[r].ID, users[r].ID, id, at)
		}
		seq += int64(n/rooms) - 1 + min(1, int64(n%rooms))
		for r := range min(n, rooms) {
			bumps = append(bumps, groups[r].ID, seq, at)
			reads = append(reads, groups[r].ID, users[r].ID, seq)
		}
		tx, err := w.Begin()
		if err != nil {
			b.Fatal(err)
		}
		execRows(b, tx, msgSQL, msgs, 7, rows)
		if level != "messages" {
			execRows(b, tx, evSQL, evs, 5, rows)
		}
		if level == "send" || level == "search" {
			execRows(b, tx, bumpSQL, bumps, 3, rows)
			execRows(b, tx, readSQL, reads, 3, rows)
		}
		if level == "search" {
			if _, err := tx.Exec(ftsSQL, lastRow); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.QueryRow(`SELECT max(rowid) FROM messages`).Scan(&lastRow); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// What was written is there: every message once (the unique keys
	// would have failed a second), with its event at the levels that
	// write one.
	var got, evGot int64
	if err := w.QueryRow(`SELECT count(*) FROM messages`).Scan(&got); err != nil || got != int64(b.N) {
		b.Fatalf("messages: %d, %v; want %d", got, err, b.N)
	}
	if err := w.QueryRow(`SELECT count(*) FROM events WHERE type = ?`, string(parley.EventNewMessage)).Scan(&evGot); err != nil {
		b.Fatal(err)
	}
	if want := int64(b.N); level != "messages" && evGot != want {
		b.Fatalf("newMessage events: %d; want %d", evGot, want)
	}
}

// multiRow is a multi-row statement: head, n copies of row
// (comma-separated), tail.
type multiRow struct{ head, row, tail string }

func (m multiRow) sql(n int) string {
	return m.head + strings.Repeat(m.row+",", n-1) + m.row + m.tail
}

// execRows runs args (cols values a row) through statements of at most
// rows rows.
func execRows(b *testing.B, tx *sql.Tx, m multiRow, args []any, cols, rows int) {
	b.Helper()
	for len(args) > 0 {
		n := min(len(args)/cols, rows)
		if _, err := tx.Exec(m.sql(n), args[:n*cols]...); err != nil {
			b.Fatal(err)
		}
		args = args[n*cols:]
	}
}
