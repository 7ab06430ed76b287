package sqlite

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"

	"github.com/parleychat/parley/internal/sqlstore"
)

// MigrateDownTo undoes the migrations above version on the database at
// path (see sqlstore.MigrateDownTo).
func MigrateDownTo(ctx context.Context, path string, version int64) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		return err
	}
	defer db.Close()
	return sqlstore.MigrateDownTo(ctx, "sqlite", goose.DialectSQLite3, db, migrations, version)
}
