package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"

	"github.com/parleychat/parley"
)

// What both engines do when they open a database.

// Migrate applies the migrations in fsys's migrations directory (each
// engine embeds its own numbered files) with goose. It is idempotent:
// goose records what it applied. name prefixes its errors.
func Migrate(ctx context.Context, name string, dialect goose.Dialect, db *sql.DB, fsys fs.FS, opts ...goose.ProviderOption) error {
	dir, err := fs.Sub(fsys, "migrations")
	if err != nil {
		return fmt.Errorf("%s: migrations: %w", name, err)
	}
	// Out of order is allowed: features are built on parallel branches,
	// each with its own migration number, so a database may already hold
	// a higher number when a lower one lands (each migration stands alone:
	// none depends on a later one).
	opts = append([]goose.ProviderOption{goose.WithAllowOutofOrder(true)}, opts...)
	p, err := goose.NewProvider(dialect, db, dir, opts...)
	if err != nil {
		return fmt.Errorf("%s: migrations: %w", name, err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("%s: migrate: %w", name, err)
	}
	return nil
}

// MigrateDownTo undoes the migrations in fsys above version, newest
// first (tests of a migration: a database as an older release left it).
// opts are Migrate's (an engine's migrations in Go).
func MigrateDownTo(ctx context.Context, name string, dialect goose.Dialect, db *sql.DB, fsys fs.FS, version int64, opts ...goose.ProviderOption) error {
	dir, err := fs.Sub(fsys, "migrations")
	if err != nil {
		return fmt.Errorf("%s: migrations: %w", name, err)
	}
	p, err := goose.NewProvider(dialect, db, dir, append([]goose.ProviderOption{goose.WithAllowOutofOrder(true)}, opts...)...)
	if err != nil {
		return fmt.Errorf("%s: migrations: %w", name, err)
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("%s: migrate down: %w", name, err)
	}
	return nil
}

// FillNameKeys gives name_key (migration 00003) to the users who have
// none, oldest first. A user whose key an older user holds keeps none:
// two users who already had look-alike names keep their accounts, and
// each is still found by its exact name (userByName). Engines run it at
// every open; after the first it reads only those users. Each update is
// conditional; skip reports an update's error to pass over (PostgreSQL:
// the unique violation of a key another node gave at the same time).
func FillNameKeys(ctx context.Context, d Dialect, q Querier, skip func(error) bool) error {
	users, err := scanAll(query(q.Query(ctx, QUsersWithoutKey)), func(r Row) ([2]string, error) {
		var u [2]string
		return u, r.Scan(&u[0], &u[1])
	})
	if err != nil {
		return fmt.Errorf("%s: fill name keys: %w", d.Name(), err)
	}
	for _, u := range users {
		if _, err := q.Exec(ctx, QSetNameKey, parley.NameKey(u[1]), u[0]); err != nil && !skip(err) {
			return fmt.Errorf("%s: fill name keys: %w", d.Name(), err)
		}
	}
	return nil
}
