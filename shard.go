package parley

import (
	"context"
	"hash/fnv"
)

// The event log can be split into shards (docs/architecture.md, "Design:
// writes that grow with nodes"): a conversation's events go to the shard
// ShardOf(conversation, n), each shard with its own dense positions and
// its own write lock, so writes of different shards commit in parallel.
// A user's own events of no conversation (blocks, consent) go to shard 0.
// The number of shards is fixed per database (recorded in it); one shard,
// the default, is one global log.

// MaxShards bounds a database's shard count: a client's cursor holds at
// most one position per shard.
const MaxShards = 256

// ShardOf returns the shard of a conversation's events in a log of n
// shards: FNV-1a of the id, modulo n. n < 2 (and the empty id, a user's
// own events) give 0. It never changes for a given id and n, which is why
// changing a database's shard count needs a migration, not a flag flip.
func ShardOf(conversationID string, n int) int {
	if n < 2 || conversationID == "" {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(conversationID))
	return int(h.Sum32() % uint32(n))
}

// ShardedLog is the event log per shard. Both stores of this module
// implement it (storetest checks it); Store's Head, Events and EventsFor
// are shard 0's, which with one shard is the whole log.
//
// Positions are dense and in commit order within a shard; there is no
// order between shards. Methods are safe for concurrent use.
type ShardedLog interface {
	// Shards returns the database's shard count (at least 1, at most
	// MaxShards), fixed while the store is open.
	Shards() int
	// ShardHead returns shard's newest committed position (0 when empty).
	ShardHead(ctx context.Context, shard int) (int64, error)
	// ShardEvents is Events of one shard: up to limit events of every
	// conversation of shard after position after, with Audience filled.
	ShardEvents(ctx context.Context, shard int, after int64, limit int) ([]Event, error)
	// ShardEventsFor is EventsFor of one shard: up to limit events of
	// shard after position after that userID receives, in position order,
	// reading at most max(limit, ReplayScan) events of each of the user's
	// membership windows (see EventsPage.Through).
	ShardEventsFor(ctx context.Context, userID string, shard int, after int64, limit int) (EventsPage, error)
}

// ValidateShard returns EINVALID unless 0 <= shard < n.
func ValidateShard(shard, n int) error {
	if shard < 0 || shard >= n {
		return invalidf("shard %d is not one of this log's %d shards", shard, n)
	}
	return nil
}

// ShardHeadsReader is a ShardedLog that reads every shard's head in one
// round trip (PostgreSQL: one query). The server's once-a-second head poll
// uses it when the store has it, else it asks shard by shard. Safe for
// concurrent use.
type ShardHeadsReader interface {
	// ShardHeads returns every shard's newest committed position, in
	// shard order (len Shards()).
	ShardHeads(ctx context.Context) ([]int64, error)
}

// ReadShardHeads returns every shard's head, in shard order, with one
// ShardHead call per shard: what a log without ShardHeadsReader, or
// without a one-query way to implement it, is asked.
func ReadShardHeads(ctx context.Context, sl ShardedLog) ([]int64, error) {
	heads := make([]int64, sl.Shards())
	for s := range heads {
		h, err := sl.ShardHead(ctx, s)
		if err != nil {
			return nil, err
		}
		heads[s] = h
	}
	return heads, nil
}
