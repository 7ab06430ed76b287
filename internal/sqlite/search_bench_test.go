package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleychat/parley/internal/searchcorpus"
	"github.com/parleychat/parley/internal/sqlite"
)

// BenchmarkSearch1M measures Store.Search over a SQLite file of 1M
// messages (PARLEY_SEARCH_BENCH_MESSAGES changes the count) in 1000
// groups of 10 of 200 users, texts of 6 to 20 words drawn from a Zipf
// vocabulary of 20,000 words. The file is built once (a few minutes: the
// rows go in with raw inserts, then into the FTS5 index as the store's
// indexer puts them) and kept in
// PARLEY_SEARCH_BENCH_DIR (default: the OS temp dir) for later runs.
//
//	go test -run '^$' -bench BenchmarkSearch1M -benchtime 200x ./internal/sqlite
//
// Each case is one search of one page (20 results) as a user: "common"
// (a word in about a third of the messages), "medium" (about 1%),
// "rare" (about 0.01%), "two words", "prefix" (three letters and '*'),
// "common_prefix" (the common word and '*'), the same as a user in a
// single group (the index walks many matches it cannot show), and with
// the conversation filter.
func BenchmarkSearch1M(b *testing.B) {
	n := searchcorpus.Size(b)
	dir := os.Getenv("PARLEY_SEARCH_BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("parley-search-bench-%d.db", n))
	if _, err := os.Stat(path); err != nil {
		buildSearchCorpus(b, path, n)
	}
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	searchcorpus.Bench(b, db)
}

// buildSearchCorpus makes the file: users and groups through the store,
// then the messages with raw inserts in one transaction (the store's
// send path would take far longer and is measured elsewhere).
func buildSearchCorpus(b *testing.B, path string, n int) {
	b.Logf("building %s with %d messages", path, n)
	start := time.Now()
	tmp := path + ".tmp"
	os.Remove(tmp)
	ctx := context.Background()
	db, err := sqlite.Open(ctx, tmp)
	if err != nil {
		b.Fatal(err)
	}
	const groups = searchcorpus.Groups
	corpus := searchcorpus.New()
	convs := corpus.Populate(b, db)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}

	// A large page cache: the FTS5 index is merged as it grows, and a
	// small cache would write its pages out again and again.
	raw, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=cache_size(-1048576)")
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	st, err := tx.Prepare(`INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, type, text, created_at)
		VALUES ($1, $2, $3, $4, $5, 'text', $6, $7)`)
	if err != nil {
		b.Fatal(err)
	}
	seqs := make([]int64, groups)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		g, sender, text := corpus.Message()
		seqs[g]++
		if _, err := st.Exec(uuid.NewString(), convs[g], seqs[g], sender, fmt.Sprint("c", i), text,
			at.Add(time.Duration(i)*time.Second).UnixMicro()); err != nil {
			b.Fatal(err)
		}
	}
	for g := range groups {
		if _, err := tx.Exec(`UPDATE conversations SET last_seq = $1 WHERE id = $2`, seqs[g], convs[g]); err != nil {
			b.Fatal(err)
		}
	}
	// Index them as the store's indexer does (internal/sqlite/indexer.go).
	if _, err := tx.Exec(sqlite.QIndexRange, 0, n+1<<20); err != nil {
		b.Fatal(err)
	}
	// Merge its segments as the indexer's steps do (indexer.go,
	// mergeIndex; FTS5's automerge is off, migration 00018): until FTS5
	// finds no level with 'usermerge' segments.
	for {
		var before, after int64
		if err := tx.QueryRow(`SELECT total_changes()`).Scan(&before); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', 1000)`); err != nil {
			b.Fatal(err)
		}
		if err := tx.QueryRow(`SELECT total_changes()`).Scan(&after); err != nil {
			b.Fatal(err)
		}
		if after-before < 2 {
			break
		}
	}
	if _, err := tx.Exec(`UPDATE search_indexed SET upto = (SELECT MAX(rowid) FROM messages)`); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := raw.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	os.Remove(tmp + "-wal")
	os.Remove(tmp + "-shm")
	b.Logf("built in %v", time.Since(start))
}
