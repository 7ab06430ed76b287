package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Batches per shard (docs/architecture.md, "Design: writes that grow with
// nodes").
//
// With one shard, a batch is one transaction under the one positions
// lock, as it always was. With n > 1, each shard has its own lock (an
// advisory key per shard) and its own positions row, and the batcher
// splits a batch into at most `parallel` transactions (lanes: shard mod
// parallel, see groupByShard), each locking its shards alone, in shard
// order, all running at once, so batches of different lanes, of this node
// or of others, commit in parallel. The batch ends when every one of its
// transactions has;
// the next batch starts after, so a shard's batches from one node still
// commit one after the other, in queue order.
//
// An op that may take positions anywhere (anyShard: every write but the
// sends and the conversation writes the core declares with WriteShard)
// makes its whole batch one transaction that locks every shard, in shard
// order, as with one shard: such ops (accounts, uploads, blocks, group
// creation) are rare, and this keeps every write they must be serialised
// with (SendRule's client ids, the orphan sweep against sends) serialised.
// Locks are always taken in shard order, so no two transactions wait for
// each other.

// anyShard is op.shard for an op that may take positions in any shard.
const anyShard = -1

// shardGroup is the ops of one transaction of a batch and the shards it
// locks (nil: every shard).
type shardGroup struct {
	shards []int
	ops    []*op
}

// groupByShard splits live into at most lanes groups, a shard's ops in
// group shard mod lanes (each group keeping queue order, its shards
// sorted); one group of every shard when an op is anyShard.
//
// Why lanes and not a transaction per shard: every transaction costs its
// BEGIN, locks, head reads and updates and COMMIT whatever its size, and a
// batch spread over many shards would pay that per shard for a few ops
// each (measured: with 16 shards, a transaction per shard held 3-8 sends
// and cost PostgreSQL 3-6x the CPU per message; docs/benchmarks.md,
// "Write scaling: the store per shard").
func groupByShard(live []*op, lanes int) []shardGroup {
	if slices.ContainsFunc(live, func(o *op) bool { return o.shard == anyShard }) {
		return []shardGroup{{ops: live}}
	}
	byLane := map[int]int{} // lane -> index in groups
	var groups []shardGroup
	for _, o := range live {
		lane := o.shard % lanes
		i, ok := byLane[lane]
		if !ok {
			i = len(groups)
			byLane[lane] = i
			groups = append(groups, shardGroup{})
		}
		g := &groups[i]
		if !slices.Contains(g.shards, o.shard) {
			g.shards = append(g.shards, o.shard)
		}
		g.ops = append(g.ops, o)
	}
	for i := range groups {
		slices.Sort(groups[i].shards)
	}
	slices.SortFunc(groups, func(a, b shardGroup) int { return cmp.Compare(a.shards[0], b.shards[0]) })
	return groups
}

// minLaneOps is how many ops a lane (a transaction of a batch) must have
// on average before a batch is split into lanes: a smaller batch is one
// transaction locking the shards it touches. Each transaction pays its
// BEGIN, settings, lock, head read, bulk statements, head write and
// COMMIT, on the node and in PostgreSQL, whatever its size; split into
// lanes however small (as before), a log of 16 shards ran half as many
// sends per transaction as one shard and cost the node ~1.5x the CPU per
// send (the store benchmark; docs/benchmarks.md, "Write scaling cost per
// message"). Where CPU is the limit, lanes buy nothing; they pay where a
// batch holds its locks long, which is a large batch.
const minLaneOps = 256

// lanesFor is how many lanes a batch of n ops is split into: at most
// parallel, and so that each has about minOps ops or more.
func lanesFor(n, parallel, minOps int) int {
	return max(1, min(parallel, n/max(1, minOps)))
}

// runSharded runs the live ops of a batch of a log of several shards:
// one transaction per group (groupByShard; as many groups as lanesFor
// gives), at most b.parallel at once,
// and returns when all are done. The goroutines are the batcher's: it
// waits for them.
//
// A batch of one group takes its locks first and then the ops of its
// shards that queued meanwhile, as the batch of a log of one shard does
// (while another node holds a lock, this node's writes gather into one
// batch instead of waiting in many: fewer, larger transactions); it
// returns the other ops it took from the queue, in queue order, appended
// to carry, for the next batch.
func (b *batcher) runSharded(ctx context.Context, live []*op, start time.Time, carry []*op) []*op {
	if len(live) == 0 {
		return carry
	}
	groups := groupByShard(live, lanesFor(len(live), b.parallel, b.minLaneOps))
	if len(groups) == 1 {
		g := groups[0]
		tx, heads, err := b.lockedTx(ctx, g.shards)
		if err == nil {
			g.ops, carry = b.fillLocked(g.ops, g.shards, carry)
		}
		b.run(ctx, g.ops, g.shards, tx, heads, err, start)
		return carry
	}
	// Lanes hand their answers over at once (deliver), after those held.
	b.lanesRunning = true
	defer func() { b.lanesRunning = false }()
	sem := make(chan struct{}, b.parallel)
	var wg sync.WaitGroup
	for _, g := range groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			tx, heads, err := b.lockedTx(ctx, g.shards)
			b.run(ctx, g.ops, g.shards, tx, heads, err, start)
		})
	}
	wg.Wait()
	return carry
}

// fillLocked adds to ops (claimed, of a transaction locking shards, nil:
// every shard) the ops queued now whose shard it holds, claiming them,
// and appends the others to carry, in queue order: an op of another
// shard waits for the next batch, and so does every later op of its
// shard (none is locked here), so each shard's ops still commit in queue
// order. An op that may write any shard stops the fill (it goes to carry:
// the ops queued after it stay behind it). Ops and carry together stay
// within maxBatch ops and maxSavepoints ops that need a savepoint, the
// bounds of the next batch too.
func (b *batcher) fillLocked(ops []*op, shards []int, carry []*op) ([]*op, []*op) {
	savepoints := 0
	for _, o := range ops {
		if o.send == nil {
			savepoints++
		}
	}
	for _, o := range carry {
		if o.send == nil {
			savepoints++
		}
	}
	for len(ops)+len(carry) < maxBatch && savepoints < maxSavepoints {
		var o *op
		select {
		case q, ok := <-b.queue.Ops():
			if !ok {
				return ops, carry
			}
			o = q
		default:
			return ops, carry
		}
		if o.send == nil {
			savepoints++
		}
		switch {
		case shards != nil && o.shard == anyShard:
			return ops, append(carry, o)
		case shards != nil && !slices.Contains(shards, o.shard):
			carry = append(carry, o)
		case o.Claim():
			ops = append(ops, o)
		}
	}
	return ops, carry
}

// allHeads turns the heads read for shards (nil: every shard, in shard
// order) into one head per shard of the log, 0 for those not read.
func (b *batcher) allHeads(shards []int, read []int64) ([]int64, error) {
	want := len(shards)
	if shards == nil {
		want = b.shards
	}
	if len(read) != want {
		return nil, fmt.Errorf("positions has %d of the %d rows wanted", len(read), want)
	}
	if shards == nil {
		return read, nil
	}
	heads := make([]int64, b.shards)
	for i, s := range shards {
		heads[s] = read[i]
	}
	return heads, nil
}

// lockedSet is writeTx.locked for a transaction locking shards of a log
// of n shards (nil for every shard).
func lockedSet(n int, shards []int) []bool {
	if shards == nil {
		return nil
	}
	locked := make([]bool, n)
	for _, s := range shards {
		locked[s] = true
	}
	return locked
}

// lockKeys returns the positions locks' keys of a log of n shards in
// schema: shard 0's is the one positions lock of a log of one shard.
func lockKeys(schema string, n int) []int64 {
	keys := make([]int64, n)
	keys[0] = lockKey("positions", schema)
	for s := 1; s < n; s++ {
		keys[s] = lockKey(fmt.Sprintf("positions:%d", s), schema)
	}
	return keys
}
