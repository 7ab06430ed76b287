package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/internal/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// open opens a store on dsn (a fresh schema), closed when t ends.
func open(t testing.TB, dsn string, opts ...sqlstore.Option) *postgres.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := postgres.Open(ctx, dsn, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// mustUser creates a user named name on db (no password).
func mustUser(t testing.TB, db parley.Store, name string) parley.User {
	t.Helper()
	u, err := db.CreateUser(t.Context(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// mustGroup creates a group of owner's on db with members.
func mustGroup(t testing.TB, db parley.Store, owner, title string, members ...string) parley.Conversation {
	t.Helper()
	c, _, err := db.CreateGroup(t.Context(), owner, title, members)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// openNodes opens n stores (nodes) on dsn with shards shards, closed
// when t ends.
func openNodes(t testing.TB, dsn string, n, shards int) []*postgres.DB {
	t.Helper()
	dbs := make([]*postgres.DB, n)
	for i := range dbs {
		dbs[i] = open(t, dsn, sqlstore.WithShards(shards))
	}
	return dbs
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) parley.Store { return open(t, pgtest.Schema(t)) })
}

// TestReadOnlyIsUnavailable: writes to a database that refuses them (a
// primary turned standby: read-only transactions, SQLSTATE 25006) answer
// `unavailable` with a retry hint, and WriteErr reports it for /readyz.
func TestReadOnlyIsUnavailable(t *testing.T) {
	dsn := pgtest.Schema(t)
	open(t, dsn) // creates the schema
	ro := open(t, dsn+"&default_transaction_read_only=on")
	_, err := ro.EnsureUser(t.Context(), "ro-user", "Read Only")
	var pe *parley.Error
	if !errors.As(err, &pe) || pe.Code != parley.EUNAVAILABLE || pe.RetryAfter <= 0 {
		t.Fatalf("a write to a read-only database: %v, want unavailable with RetryAfter", err)
	}
	if ro.WriteErr() == nil {
		t.Fatal("WriteErr is nil after a write the database refused")
	}
}

// TestConversationsPageTies: see storetest.ConversationsPage.
func TestConversationsPageTies(t *testing.T) {
	dsn := pgtest.Schema(t)
	storetest.ConversationsPage(t, open(t, dsn), execOn(dsn))
}

// TestRolesMigration: see storetest.RolesMigration.
func TestRolesMigration(t *testing.T) {
	dsn := pgtest.Schema(t)
	storetest.RolesMigration(t, func(t *testing.T) parley.Store { return open(t, dsn) }, execOn(dsn))
}

// TestReactionMessageMigration: see storetest.ReactionMessageMigration
// (migration 00023).
func TestReactionMessageMigration(t *testing.T) {
	dsn := pgtest.Schema(t)
	storetest.ReactionMessageMigration(t, func(t *testing.T) parley.Store { return open(t, dsn) }, execOn(dsn), func(t *testing.T) {
		if err := postgres.MigrateDownTo(t.Context(), dsn, 22); err != nil {
			t.Fatal(err)
		}
	})
}

// execOn runs a statement on the database at dsn, on a connection of
// its own; a failure fails the test.
func execOn(dsn string) func(t *testing.T, stmt string) {
	return func(t *testing.T, stmt string) {
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

func TestAttachmentDataCopies(t *testing.T) {
	storetest.AttachmentDataCopies(t, open(t, pgtest.Schema(t)))
}
