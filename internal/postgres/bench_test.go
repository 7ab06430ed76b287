package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/sqlstore"
)

// BenchmarkSendMessage measures batched message writes: with RunParallel
// many SendMessage calls wait at once and share transactions (group
// commit); Serial is one caller at a time, one transaction per message.
//
//	go test -run '^$' -bench SendMessage -benchtime 5s ./internal/postgres/
func BenchmarkSendMessage(b *testing.B) {
	for _, bc := range []struct {
		name     string
		parallel int // goroutines per GOMAXPROCS; 0: serial
	}{
		{"Serial", 0},
		{"Parallel16", 16},
		{"Parallel64", 64},
	} {
		b.Run(bc.name, func(b *testing.B) { benchSend(b, bc.parallel, 1, 1, 8) })
	}
	// Three nodes (three DBs, each with its own pool and batcher) on one
	// database: their batches take turns on the positions lock.
	b.Run("3Nodes/Parallel64", func(b *testing.B) { benchSend(b, 64, 3, 1, 8) })
	// A log of 16 shards against one, 64 conversations: the nodes'
	// batches of different shards commit in parallel (shards.go).
	for _, nodes := range []int{1, 3} {
		for _, shards := range []int{1, 16} {
			b.Run(fmt.Sprintf("%dNodes/%dShards/64Convs/Parallel64", nodes, shards), func(b *testing.B) { benchSend(b, 64, nodes, shards, 64) })
		}
	}
}

func benchSend(b *testing.B, parallel, nodes, shards, convs int) {
	// Named, so that pg_stat_activity samples can tell this benchmark's
	// sessions from others' (docs/benchmarks.md, "Write scaling").
	dsn := pgtest.Schema(b) + "&application_name=parley-bench-send"
	dbs := make([]*postgres.DB, nodes)
	for i := range dbs {
		db, err := postgres.Open(b.Context(), dsn, sqlstore.WithShards(shards))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		dbs[i] = db
	}
	db := dbs[0]
	ctx := b.Context()
	const users = 32
	ids := make([]string, users)
	for i := range ids {
		u, err := db.CreateUser(ctx, fmt.Sprintf("bench%d", i), nil)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = u.ID
	}
	groups := make([]string, convs)
	for i := range groups {
		c, _, err := db.CreateGroup(ctx, ids[0], fmt.Sprint("G", i), ids[1:])
		if err != nil {
			b.Fatal(err)
		}
		groups[i] = c.ID
	}
	var n atomic.Int64
	send := func() {
		i := n.Add(1)
		_, _, err := dbs[i%int64(nodes)].SendMessage(ctx, parley.NewMessage{
			ConversationID: groups[i%int64(convs)], SenderID: ids[i%users],
			ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: "hello, this is a benchmark message",
		})
		if err != nil {
			b.Error(err)
		}
	}
	stats := func() (batches, ops int64) {
		for _, db := range dbs {
			nb, no := postgres.BatchStats(db)
			batches, ops = batches+nb, ops+no
		}
		return batches, ops
	}
	batches0, ops0 := stats()
	b.ResetTimer()
	if parallel == 0 {
		for b.Loop() {
			send()
		}
	} else {
		b.SetParallelism(parallel)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				send()
			}
		})
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	batches, ops := stats()
	b.ReportMetric(float64(ops-ops0)/float64(batches-batches0), "ops/batch")
}
