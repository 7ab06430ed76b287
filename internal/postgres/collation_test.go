package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// TestIDsCompareBytes: every id and key column compares with the "C"
// collation (migration 00020): its btrees compare with memcmp instead
// of the locale's strcoll, and its order is Go's and SQLite's (bytes),
// whatever the database's locale. An id column added later without
// COLLATE "C" fails here too.
func TestIDsCompareBytes(t *testing.T) {
	dsn := pgtest.Schema(t)
	open(t, dsn)
	var cols []string
	err := queryRow(t, dsn, `SELECT COALESCE(array_agg(table_name || '.' || column_name ORDER BY table_name, column_name), '{}')
		FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type = 'text' AND table_name <> 'goose_db_version'
		AND (column_name = 'id' OR column_name LIKE '%\_id' OR column_name IN ('created_by', 'direct_a', 'direct_b', 'recipient', 'endpoint'))
		AND collation_name IS DISTINCT FROM 'C'`).Scan(&cols)
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) > 0 {
		t.Fatalf("id columns with the database's collation, not \"C\": %v", cols)
	}
}

// TestDirectPairInLocaleDatabase: in a database whose collation orders
// "B" after "a" (ICU en-US), a direct conversation of users "a" and "B"
// is stored: Go orders the pair by bytes ("B" < "a") for the CHECK
// (direct_a < direct_b), which under the locale's order refused it.
func TestDirectPairInLocaleDatabase(t *testing.T) {
	base := pgtest.URL(t)
	name := fmt.Sprintf("parley_icu_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	admin(t, base, "CREATE DATABASE "+name+" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'")
	t.Cleanup(func() { admin(t, base, "DROP DATABASE "+name+" WITH (FORCE)") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	dsn := u.String()
	var less bool
	if err := queryRow(t, dsn, `SELECT 'a' < 'B'`).Scan(&less); err != nil || !less {
		t.Fatalf("the database's collation orders 'a' < 'B': %v, %v; want true", less, err)
	}
	db := open(t, dsn)
	ctx := t.Context()
	for _, id := range []string{"a", "B"} {
		if _, err := db.EnsureUser(ctx, id, "user-"+strings.ToLower(id)+"x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.CreateDirect(ctx, "a", "B"); err != nil {
		t.Fatalf("CreateDirect(a, B) in a database ordering a before B: %v", err)
	}
}

// admin runs sql on a connection of its own to the database at dsn.
func admin(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
