package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/searchcorpus"
)

// BenchmarkSearch1M is internal/sqlite's BenchmarkSearch1M on PostgreSQL:
// the same corpus (internal/searchcorpus: 1000 groups of 10 of 200 users,
// Zipf texts), the same cases. The messages go in with COPY into a schema
// of the test database kept for later runs (parley_search_bench_N; drop it
// to build again). PARLEY_SEARCH_BENCH_MESSAGES changes the count
// (default 1,000,000).
//
//	go test -run '^$' -bench BenchmarkSearch1M -benchtime 50x ./internal/postgres
func BenchmarkSearch1M(b *testing.B) {
	n := searchcorpus.Size(b)
	ctx := context.Background()
	schema := fmt.Sprint("parley_search_bench_", n)
	dsn := withSearchPath(b, pgtest.URL(b), schema)
	conn, err := pgx.Connect(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	var built bool
	err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = 'bench_built')`, schema).Scan(&built)
	conn.Close(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if !built {
		buildPGSearchCorpus(b, schema, dsn, n)
	}
	db := open(b, dsn)
	// Statistics for the index expressions a migration may have made, as
	// autovacuum would gather them.
	if conn, err := pgx.Connect(ctx, dsn); err != nil {
		b.Fatal(err)
	} else {
		_, err := conn.Exec(ctx, `ANALYZE messages, members, conversations, users, search_docs`)
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
	}
	searchcorpus.Bench(b, db)
}

// withSearchPath is base with its connections on schema.
func withSearchPath(b *testing.B, base, schema string) string {
	u, err := url.Parse(base)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// buildPGSearchCorpus makes the schema: users and groups through the
// store, the messages with one COPY, then the conversations' counters;
// the table bench_built marks it complete.
func buildPGSearchCorpus(b *testing.B, schema, dsn string, n int) {
	b.Logf("building schema %s with %d messages", schema, n)
	start := time.Now()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`, `CREATE SCHEMA ` + schema} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	corpus := searchcorpus.New()
	convs := corpus.Populate(b, db)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET search_path = `+schema); err != nil {
		b.Fatal(err)
	}
	seqs := make([]int64, searchcorpus.Groups)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		g, sender, text := corpus.Message()
		seqs[g]++
		row := []any{uuid.NewString(), convs[g], seqs[g], sender, fmt.Sprint("c", i), "text", text, at.Add(time.Duration(i) * time.Second)}
		i++
		return row, nil
	})
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"messages"},
		[]string{"id", "conversation_id", "seq", "sender_id", "client_id", "type", "text", "created_at"}, rows); err != nil {
		b.Fatal(err)
	}
	for _, q := range []string{
		`UPDATE conversations c SET last_seq = s.seq FROM unnest($1::text[], $2::bigint[]) AS s(id, seq) WHERE c.id = s.id`,
		// Messages written without events: the indexer would not see
		// them (migration 00015). The corpus's words are ASCII letters
		// separated by spaces: to_tsvector's lexemes are
		// parley.SearchIndexText's keys (migration 00026).
		`INSERT INTO search_docs (search_key, message_id, conversation_id, words)
			SELECT search_key, id, conversation_id, to_tsvector('simple', text) FROM messages WHERE deleted_at IS NULL AND text != ''`,
		`VACUUM ANALYZE messages, members, conversations, users, search_docs`,
		`CREATE TABLE bench_built ()`,
	} {
		args := []any{}
		if q[0] == 'U' {
			args = []any{convs, seqs}
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("built in %v", time.Since(start))
}
