package server

import (
	"context"

	"github.com/parleychat/parley"
)

// shardLog returns st's event log per shard: st itself when it is a
// parley.ShardedLog (both stores of this module are), else a log of one
// shard made of st's Head, Events and EventsFor (a Store wrapped by a
// test, whose overrides of those then still apply).
func shardLog(st parley.Store) parley.ShardedLog {
	if sl, ok := st.(parley.ShardedLog); ok {
		return sl
	}
	return oneShard{st}
}

// oneShard is a Store seen as a log of one shard.
type oneShard struct{ st parley.Store }

func (oneShard) Shards() int { return 1 }

func (o oneShard) ShardHead(ctx context.Context, shard int) (int64, error) {
	if err := parley.ValidateShard(shard, 1); err != nil {
		return 0, err
	}
	return o.st.Head(ctx)
}

func (o oneShard) ShardEvents(ctx context.Context, shard int, after int64, limit int) ([]parley.Event, error) {
	if err := parley.ValidateShard(shard, 1); err != nil {
		return nil, err
	}
	return o.st.Events(ctx, after, limit)
}

func (o oneShard) ShardEventsFor(ctx context.Context, userID string, shard int, after int64, limit int) (parley.EventsPage, error) {
	if err := parley.ValidateShard(shard, 1); err != nil {
		return parley.EventsPage{}, err
	}
	return o.st.EventsFor(ctx, userID, after, limit)
}

// shardHeads reads every shard's head: in one call when the log has
// parley.ShardHeadsReader, else shard by shard.
func shardHeads(ctx context.Context, sl parley.ShardedLog) ([]int64, error) {
	if hr, ok := sl.(parley.ShardHeadsReader); ok {
		return hr.ShardHeads(ctx)
	}
	return parley.ReadShardHeads(ctx, sl)
}
