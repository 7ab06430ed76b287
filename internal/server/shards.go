package server

import (
	"fmt"

	"github.com/parleychat/parley"
)

// checkShards refuses a store whose event log has more than one shard
// (parley.ShardedLog): until the hub sequences each shard and the wire
// carries a cursor per shard (docs/architecture.md, "Design: writes that
// grow with nodes", status), a node would deliver and resume shard 0 only.
func checkShards(st parley.Store) error {
	if sl, ok := st.(parley.ShardedLog); ok && sl.Shards() > 1 {
		return fmt.Errorf("server: the store's event log has %d shards; this server serves a log of 1 shard only", sl.Shards())
	}
	return nil
}
