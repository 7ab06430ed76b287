package postgres_test

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/sqlstore"
)

// BenchmarkSchemaFloor: what PostgreSQL charges for the rows a send
// writes in Parley's schema, with none of Parley's statements around
// them: the load tool's `write` scenario's batches (1000 single-member
// groups, 4 sends each, 4000 a transaction) as the bulk send writes them
// (unnest of arrays, one statement a table), each transaction committed
// (synchronous_commit as the server is set). No check statement, no
// positions lock, no audience read back.
//
// Levels, each adding to the one before:
//   - messages: the message rows (the table and its keys);
//   - events: + each send's newMessage event;
//   - send: + each conversation's last_seq and the sender's read position;
//   - search: + the message's row in search_docs (its words, split in Go
//     and sent as an array, and their GIN entries: what the search
//     indexer adds after the commit).
//
// pg-us/msg is the backend's CPU (user and system, from /proc: only when
// the database is on this machine) per message;
// client-us/msg this process's. 20,000 acknowledged messages/s with the
// node and PostgreSQL on one core leave 50 µs a message for both.
func BenchmarkSchemaFloor(b *testing.B) {
	for _, level := range []string{"messages", "events", "send", "search"} {
		b.Run(level, func(b *testing.B) { benchSchemaFloor(b, level) })
	}
}

func benchSchemaFloor(b *testing.B, level string) {
	const rooms, run = 1000, 4
	dsn := pgtest.Schema(b)
	db := open(b, dsn)
	ctx := b.Context()
	users := make([]string, rooms)
	groups := make([]string, rooms)
	var wg sync.WaitGroup
	for i := range rooms {
		wg.Go(func() {
			users[i] = mustUser(b, db, fmt.Sprintf("floor%d", i)).ID
			groups[i] = mustGroup(b, db, users[i], fmt.Sprint("G", i)).ID
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	db.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var pid int
	var pos int64
	if err := conn.QueryRow(ctx, `SELECT pg_backend_pid(), COALESCE((SELECT max(pos) FROM events WHERE shard = 0), 0)`).Scan(&pid, &pos); err != nil {
		b.Fatal(err)
	}
	// PARLEY_FLOOR_SETUP: SQL run before the timed part, to price one
	// piece of the schema or a setting (e.g. "ALTER INDEX
	// search_docs_words SET (fastupdate = off)"); unset, the schema is
	// the store's.
	if q := os.Getenv("PARLEY_FLOOR_SETUP"); q != "" {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	const (
		qMessages = `INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, type, text, created_at)
			SELECT a, b, c, d, e, 'text', f, g FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::timestamptz[]) AS r(a, b, c, d, e, f, g)`
		qEvents = `INSERT INTO events (pos, conversation_id, type, actor_id, message_id, data, at, shard)
			SELECT p, c, 'newMessage', u, m, '{}', t, 0 FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS e(p, c, u, m, t)`
		qBumps = `UPDATE conversations c SET last_seq = u.seq, last_activity_at = u.at
			FROM unnest($1::text[], $2::bigint[], $3::timestamptz[]) AS u(id, seq, at) WHERE c.id = u.id`
		qReads = `UPDATE members mb SET read_seq = GREATEST(mb.read_seq, u.seq), wrote = true
			FROM unnest($1::text[], $2::text[], $3::bigint[]) AS u(conv, usr, seq)
			WHERE mb.conversation_id = u.conv AND mb.user_id = u.usr AND mb.left_pos IS NULL`
		qSearch = `INSERT INTO search_docs (search_key, message_id, conversation_id, words)
			SELECT m.search_key, m.id, m.conversation_id, array_to_tsvector(string_to_array(u.w, ' '))
			FROM unnest($1::text[], $2::text[]) AS u (id, w) JOIN messages m ON m.id = u.id`
	)
	batch := rooms * run
	var seq int64
	at := time.Now()
	ids, convs, senders, clients, texts := make([]string, 0, batch), make([]string, 0, batch), make([]string, 0, batch), make([]string, 0, batch), make([]string, 0, batch)
	seqs, poss := make([]int64, 0, batch), make([]int64, 0, batch)
	ats := make([]time.Time, 0, batch)
	bumpSeqs, bumpAts := make([]int64, rooms), make([]time.Time, rooms)
	b.ReportAllocs()
	b.ResetTimer()
	pg0, ok := procCPU(pid)
	cpu0 := selfCPU()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		ids, convs, senders, clients, texts = ids[:0], convs[:0], senders[:0], clients[:0], texts[:0]
		seqs, poss, ats = seqs[:0], poss[:0], ats[:0]
		for i := range n {
			r := i % rooms
			pos++
			at = at.Add(time.Microsecond)
			ids, convs, senders = append(ids, sqlstore.NewID()), append(convs, groups[r]), append(senders, users[r])
			clients, texts = append(clients, "f"+strconv.FormatInt(pos, 10)), append(texts, "hello, rooms of one")
			seqs, poss, ats = append(seqs, seq+1+int64(i/rooms)), append(poss, pos), append(ats, at)
			bumpSeqs[r], bumpAts[r] = seqs[i], at
		}
		seq += int64((n + rooms - 1) / rooms)
		tx, err := conn.Begin(ctx)
		if err != nil {
			b.Fatal(err)
		}
		mustExec(b, tx, qMessages, ids, convs, seqs, senders, clients, texts, ats)
		if level != "messages" {
			mustExec(b, tx, qEvents, poss, convs, senders, ids, ats)
		}
		if level == "send" || level == "search" {
			k := min(n, rooms)
			mustExec(b, tx, qBumps, groups[:k], bumpSeqs[:k], bumpAts[:k])
			mustExec(b, tx, qReads, groups[:k], users[:k], bumpSeqs[:k])
		}
		if level == "search" {
			words := make([]string, len(texts))
			for i, text := range texts {
				words[i] = parley.SearchIndexText(text)
			}
			mustExec(b, tx, qSearch, ids, words)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	pg1, _ := procCPU(pid)
	self := selfCPU() - cpu0
	b.StopTimer()
	if ok {
		b.ReportMetric(float64((pg1-pg0).Microseconds())/float64(b.N), "pg-us/msg")
	}
	b.ReportMetric(float64(self.Microseconds())/float64(b.N), "client-us/msg")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	// Every message is there once (messages' keys would have refused a
	// second), with its event where the level writes one.
	var got, evs int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM events WHERE type = 'newMessage')`).Scan(&got, &evs); err != nil {
		b.Fatal(err)
	}
	if got != int64(b.N) || (level != "messages" && evs != int64(b.N)) {
		b.Fatalf("messages %d, newMessage events %d; want %d", got, evs, b.N)
	}
}

func mustExec(b *testing.B, tx pgx.Tx, sql string, args ...any) {
	b.Helper()
	if _, err := tx.Exec(b.Context(), sql, args...); err != nil {
		b.Fatal(err)
	}
}
