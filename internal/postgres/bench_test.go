package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
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
		b.Run(bc.name, func(b *testing.B) { benchSend(b, bc.parallel, 1) })
	}
	// Three nodes (three DBs, each with its own pool and batcher) on one
	// database: their batches take turns on the positions lock.
	b.Run("3Nodes/Parallel64", func(b *testing.B) { benchSend(b, 64, 3) })
}

func benchSend(b *testing.B, parallel, nodes int) {
	dsn := pgtest.Schema(b)
	dbs := make([]*postgres.DB, nodes)
	for i := range dbs {
		dbs[i] = open(b, dsn)
	}
	db := dbs[0]
	ctx := b.Context()
	const users, convs = 32, 8
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
			ConversationID: groups[i%convs], SenderID: ids[i%users],
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
