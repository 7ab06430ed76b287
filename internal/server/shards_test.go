package server_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
)

// TestRefusesShardedLog: until the hub and the wire carry a cursor per
// shard, a server on a store whose log has several shards would deliver
// and resume shard 0 alone; New refuses it with an error that says so.
func TestRefusesShardedLog(t *testing.T) {
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "parley.db"), sqlstore.WithShards(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, br, secret := clusterParts(t) // its store (of one shard) unused
	s, err := server.New(server.Config{Store: st, Broker: br, Secret: secret})
	if err == nil {
		s.Shutdown(t.Context())
		t.Fatal("New served a store of 4 shards")
	}
	if !strings.Contains(err.Error(), "4 shards") {
		t.Fatalf("New: %v, want an error naming the store's 4 shards", err)
	}
}
