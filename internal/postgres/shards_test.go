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

// TestShards: see storetest.Shards. Lanes: with every batch split into
// lanes however small (postgres.SplitSmallBatches), so the suite's
// concurrent writes run in transactions of different lanes at once, as
// large batches do (Shards/ClientIDAcrossShards needs it).
func TestShards(t *testing.T) {
	for _, lanes := range []bool{false, true} {
		t.Run(map[bool]string{false: "OneTransaction", true: "Lanes"}[lanes], func(t *testing.T) {
			storetest.Shards(t, func(t *testing.T) string { return pgtest.Schema(t) },
				func(t *testing.T, dsn string, shards int) (parley.Store, error) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					db, err := postgres.Open(ctx, dsn, sqlstore.WithShards(shards))
					if err != nil {
						return nil, err
					}
					if lanes {
						postgres.SplitSmallBatches(db)
					}
					t.Cleanup(func() { db.Close() })
					return db, nil
				})
		})
	}
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

// TestWriteShardWrongShard: a write declared for one shard that takes a
// position in another fails alone (its transaction holds only its own
// shard's lock), and takes nothing: the next write of that shard gets
// the next position.
func TestWriteShardWrongShard(t *testing.T) {
	db := open(t, pgtest.Schema(t), sqlstore.WithShards(4))
	err := postgres.WriteShard(t.Context(), db, 1, func(w sqlstore.Tx) error {
		w.NextPos(2)
		return nil
	})
	if err == nil {
		t.Fatal("a write declared for shard 1 took a position in shard 2 and succeeded")
	}
	var got int64
	if err := postgres.WriteShard(t.Context(), db, 2, func(w sqlstore.Tx) error {
		got = w.NextPos(2)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != 1 {
		t.Fatalf("the next position of shard 2 is %d, want 1", got)
	}
}
