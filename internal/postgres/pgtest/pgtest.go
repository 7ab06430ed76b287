// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema in the machine's test database (PARLEY_TEST_POSTGRES), dropped
// when the test ends, so parallel tests and parallel test runs never see
// each other's rows or wait on each other's locks.
package pgtest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar names the connection URL of the test database.
const EnvVar = "PARLEY_TEST_POSTGRES"

// URL returns the test database's URL. Without one the test is skipped
// with a message saying how to run it, or fails under CI=true.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvVar)
	if u == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set under CI", EnvVar)
		}
		t.Skipf("set %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run PostgreSQL tests (scripts/test does)", EnvVar)
	}
	return u
}

var schemas atomic.Int64

// Schema creates an empty schema for t and returns a URL whose connections
// use it (search_path). The schema is dropped in t's cleanup, after the
// cleanups registered later (which close the stores using it).
func Schema(t testing.TB) string {
	t.Helper()
	base := URL(t)
	name := fmt.Sprintf("parley_test_%d_%d_%d", os.Getpid(), time.Now().UnixNano()%1e6, schemas.Add(1))
	exec(t, base, "CREATE SCHEMA "+name)
	t.Cleanup(func() { exec(t, base, "DROP SCHEMA "+name+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil || !strings.HasPrefix(u.Scheme, "postgres") {
		t.Fatalf("%s must be a postgres:// URL, got %q", EnvVar, base)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

func exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}
