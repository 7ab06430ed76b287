package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
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
	if testing.Short() {
		b.Skip("builds a 1M-message schema")
	}
	n := 1_000_000
	if v := os.Getenv("PARLEY_SEARCH_BENCH_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			b.Fatal(err)
		}
	}
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
		_, err := conn.Exec(ctx, `ANALYZE messages, members, conversations, users`)
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
	}
	groups, err := db.Conversations(b.Context(), "u0")
	if err != nil || len(groups) == 0 {
		b.Fatalf("corpus: %d conversations of u0, %v", len(groups), err)
	}
	w := searchcorpus.Vocabulary()
	for _, tc := range []struct {
		name, user, query string
		conv              string
	}{
		{"common", "u0", w[0], ""},
		{"medium", "u0", w[30], ""},
		{"rare", "u0", w[5000], ""},
		{"two_words", "u0", w[3] + " " + w[40], ""},
		{"prefix", "u0", w[100][:3] + "*", ""},
		{"common_prefix", "u0", w[0] + "*", ""},
		{"common_one_group", "solo", w[0], ""},
		{"medium_one_group", "solo", w[30], ""},
		{"medium_in_conversation", "u0", w[30], groups[0].ID},
	} {
		terms, err := parley.SearchTerms(tc.query)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			var found int
			for b.Loop() {
				p, err := db.Search(b.Context(), tc.user, parley.SearchQuery{Terms: terms, Prefix: parley.SearchPrefix(tc.query), ConversationID: tc.conv})
				if err != nil {
					b.Fatal(err)
				}
				found = len(p.Results)
			}
			b.ReportMetric(float64(found), "results")
		})
	}
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
	for i := range searchcorpus.Users {
		if _, err := db.EnsureUser(ctx, fmt.Sprint("u", i), fmt.Sprint("user", i)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.EnsureUser(ctx, "solo", "solo"); err != nil {
		b.Fatal(err)
	}
	corpus := searchcorpus.New()
	convs := make([]string, searchcorpus.Groups)
	for g, ms := range corpus.Members {
		c, _, err := db.CreateGroup(ctx, ms[0], fmt.Sprint("g", g), ms[1:])
		if err != nil {
			b.Fatal(err)
		}
		convs[g] = c.ID
	}
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
		`VACUUM ANALYZE messages, members, conversations, users`,
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
