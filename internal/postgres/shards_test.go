package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/internal/storetest"
)

// TestShards: see storetest.Shards.
func TestShards(t *testing.T) {
	storetest.Shards(t, func(t *testing.T) string { return pgtest.Schema(t) },
		func(t *testing.T, dsn string, shards int) (parley.Store, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, err := postgres.Open(ctx, dsn, sqlstore.WithShards(shards))
			if err != nil {
				return nil, err
			}
			t.Cleanup(func() { db.Close() })
			return db, nil
		})
}

// TestShardsMigration: see storetest.ShardsMigration.
func TestShardsMigration(t *testing.T) {
	dsn := pgtest.Schema(t)
	storetest.ShardsMigration(t, func(t *testing.T) parley.Store { return open(t, dsn) }, func(t *testing.T, version int64) {
		if err := postgres.MigrateDownTo(t.Context(), dsn, version); err != nil {
			t.Fatal(err)
		}
	})
}
