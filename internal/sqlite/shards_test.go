package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/internal/storetest"
)

// TestShards: see storetest.Shards.
func TestShards(t *testing.T) {
	storetest.Shards(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "parley.db") },
		func(t *testing.T, path string, shards int) (parley.Store, error) {
			db, err := sqlite.Open(t.Context(), path, sqlstore.WithShards(shards))
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { db.Close() })
			return db, nil
		})
}

// TestShardsMigration: see storetest.ShardsMigration.
func TestShardsMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	storetest.ShardsMigration(t, func(t *testing.T) parley.Store { return open(t, path) }, func(t *testing.T, version int64) {
		if err := sqlite.MigrateDownTo(t.Context(), path, version); err != nil {
			t.Fatal(err)
		}
	})
}
