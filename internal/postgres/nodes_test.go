package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/sqlstore"
)

// TestNodes is the commit-order trap, across nodes: several DBs (one per
// node, each with its own pool and batcher) on one database, all started
// at once (the migrations must serialise), write concurrently into shared
// conversations while a reader on each node polls Events. Every reader
// must see every position exactly once, each poll continuing exactly where
// the last ended: a position that became visible after a larger one would
// show up as a gap, and a reader that resumed past it would have lost it.
// With a log of several shards, the same holds per shard (a reader per
// node and shard polls ShardEvents), while the nodes' batches of
// different shards commit in parallel (and, with lanes forced, the
// transactions of one node's batch).
func TestNodes(t *testing.T) {
	for _, shards := range []int{1, 8} {
		t.Run(fmt.Sprint(shards, "shards"), func(t *testing.T) { testNodes(t, shards, false) })
	}
	// Small batches are one transaction each (shards.go, minLaneOps):
	// with lanes forced, batches of different lanes commit in parallel.
	t.Run("8shardsLanes", func(t *testing.T) { testNodes(t, 8, true) })
}

func testNodes(t *testing.T, shards int, lanes bool) {
	const (
		nodes   = 3
		writers = 4 // per node
		each    = 60
		convs   = 5
	)
	dsn := pgtest.Schema(t)
	dbs := make([]*postgres.DB, nodes)
	var startWG sync.WaitGroup
	for i := range dbs {
		startWG.Go(func() {
			db, err := postgres.Open(t.Context(), dsn, sqlstore.WithShards(shards))
			if err != nil {
				t.Errorf("node %d: Open: %v", i, err)
				return
			}
			if lanes {
				postgres.SplitSmallBatches(db)
			}
			dbs[i] = db
		})
	}
	startWG.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, db := range dbs {
		t.Cleanup(func() { db.Close() })
	}

	ctx := t.Context()
	users := make([]parley.User, nodes*writers)
	ids := make([]string, len(users))
	for i := range users {
		u := mustUser(t, dbs[i%nodes], fmt.Sprintf("writer%d", i))
		users[i], ids[i] = u, u.ID
	}
	groups := make([]parley.Conversation, convs)
	for i := range groups {
		groups[i] = mustGroup(t, dbs[i%nodes], ids[0], fmt.Sprint("G", i), ids[1:]...)
	}
	start := make([]int64, shards)
	for s := range start {
		h, err := dbs[0].ShardHead(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		start[s] = h
	}

	var (
		done     atomic.Bool
		readers  sync.WaitGroup
		writerWG sync.WaitGroup
		seen     = make([][]int, nodes) // events each node's readers saw, per shard
	)
	for n, db := range dbs {
		seen[n] = make([]int, shards)
		for s := range shards {
			readers.Go(func() {
				after := start[s]
				for {
					finished := done.Load()
					events, err := db.ShardEvents(ctx, s, after, 200)
					if err != nil {
						t.Errorf("reader %d: ShardEvents(%d, %d): %v", n, s, after, err)
						return
					}
					for _, e := range events {
						if e.Pos != after+1 || e.Shard != s {
							t.Errorf("reader on node %d after %d of shard %d saw position %d of shard %d", n, after, s, e.Pos, e.Shard)
							return
						}
						after = e.Pos
						seen[n][s]++
					}
					if finished && len(events) == 0 {
						return
					}
					if len(events) == 0 {
						time.Sleep(time.Millisecond) // a poll interval, not an assertion
					}
				}
			})
		}
	}
	var sent atomic.Int64
	for w, u := range users {
		db := dbs[w%nodes]
		writerWG.Go(func() {
			for i := range each {
				_, events, err := db.SendMessage(ctx, parley.NewMessage{
					ConversationID: groups[(w+i)%convs].ID, SenderID: u.ID,
					ClientID: fmt.Sprintf("w%d-%d", w, i), Type: parley.Text, Text: fmt.Sprint(i),
				})
				if err != nil {
					t.Errorf("writer %d: SendMessage: %v", w, err)
					return
				}
				if len(events) != 1 {
					t.Errorf("writer %d: %d events", w, len(events))
					return
				}
				sent.Add(1)
			}
		})
	}
	writerWG.Wait()
	done.Store(true)
	readers.Wait()
	if t.Failed() {
		return
	}

	total := int64(nodes * writers * each)
	if sent.Load() != total {
		t.Fatalf("sent %d, want %d", sent.Load(), total)
	}
	for n := range dbs {
		var got, moved int64
		for s := range shards {
			head, err := dbs[n].ShardHead(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if head != start[s]+int64(seen[n][s]) {
				t.Errorf("node %d: shard %d's head %d, its reader saw %d events after %d", n, s, head, seen[n][s], start[s])
			}
			got += int64(seen[n][s])
			moved += head - start[s]
		}
		if got != total || moved != total {
			t.Errorf("readers on node %d saw %d events and the heads moved by %d, want %d", n, got, moved, total)
		}
	}
	// Per-conversation sequences are dense too, whichever node wrote.
	for _, g := range groups {
		var seqs []int64 // newest first, page by page backwards
		for before := int64(0); ; {
			page, err := dbs[0].Messages(ctx, ids[0], g.ID, parley.MessageQuery{Before: before, Limit: parley.MaxPageLimit})
			if err != nil {
				t.Fatal(err)
			}
			for i := len(page.Messages) - 1; i >= 0; i-- {
				seqs = append(seqs, page.Messages[i].Seq)
			}
			if !page.HasMore {
				break
			}
			before = page.Messages[0].Seq
		}
		slices.Reverse(seqs)
		for i, s := range seqs {
			if s != int64(i+1) {
				t.Fatalf("conversation %s: seq %d at index %d", g.Title, s, i)
			}
		}
		if want := total / convs; int64(len(seqs)) != want {
			t.Errorf("conversation %s: %d messages, want %d", g.Title, len(seqs), want)
		}
	}
}

// TestReopen: opening a migrated database again migrates nothing and keeps
// the head.
func TestReopen(t *testing.T) {
	dsn := pgtest.Schema(t)
	db := open(t, dsn)
	u, err := db.CreateUser(context.Background(), "ann", []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := db.CreateUser(context.Background(), "bob", []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateDirect(context.Background(), u.ID, v.ID); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db2 := open(t, dsn)
	head, err := db2.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if head != 1 {
		t.Errorf("Head after reopen = %d, want 1", head)
	}
}
