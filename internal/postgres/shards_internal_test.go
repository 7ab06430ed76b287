package postgres

import (
	"slices"
	"testing"
)

// TestGroupByShard: a batch of a log of several shards becomes at most
// lanes groups, a shard's ops all in one group (shard mod lanes) in queue
// order, each group's shards sorted (the lock order); an op of any shard
// makes the whole batch one group locking every shard.
func TestGroupByShard(t *testing.T) {
	shards := []int{5, 2, 5, 7, 0, 2, 3}
	var live []*op
	for _, s := range shards {
		live = append(live, &op{shard: s})
	}
	groups := groupByShard(live, 2)
	if len(groups) != 2 {
		t.Fatalf("%d groups for 2 lanes", len(groups))
	}
	want := [][]int{{0, 2}, {3, 5, 7}}
	seen := 0
	for i, g := range groups {
		if !slices.Equal(g.shards, want[i]) {
			t.Errorf("group %d locks shards %v, want %v", i, g.shards, want[i])
		}
		// The group's ops are the batch's ops of its shards, in queue order.
		var wantOps []*op
		for _, o := range live {
			if slices.Contains(g.shards, o.shard) {
				wantOps = append(wantOps, o)
			}
		}
		if !slices.Equal(g.ops, wantOps) {
			t.Errorf("group %d: ops out of queue order or missing", i)
		}
		seen += len(g.ops)
	}
	if seen != len(live) {
		t.Errorf("groups hold %d ops, the batch %d", seen, len(live))
	}

	live = append(live, &op{shard: anyShard})
	groups = groupByShard(live, 2)
	if len(groups) != 1 || groups[0].shards != nil || !slices.Equal(groups[0].ops, live) {
		t.Fatalf("a batch with an op of any shard: %d groups (first locks %v), want one group of every shard", len(groups), groups[0].shards)
	}
}

// TestLanesFor: a batch is split into lanes only when each gets about
// minLaneOps ops, never into more than parallel.
func TestLanesFor(t *testing.T) {
	for _, c := range []struct{ n, parallel, minOps, want int }{
		{1, 2, 256, 1}, {511, 2, 256, 1}, {512, 2, 256, 2}, {2000, 2, 256, 2},
		{2000, 16, 256, 7}, {3, 2, 1, 2}, {1, 2, 1, 1}, {10, 1, 0, 1},
	} {
		if got := lanesFor(c.n, c.parallel, c.minOps); got != c.want {
			t.Errorf("lanesFor(%d, %d, %d) = %d, want %d", c.n, c.parallel, c.minOps, got, c.want)
		}
	}
}
