package postgres_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/storetest"
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
	dbs := openNodes(b, dsn, nodes, shards)
	db := dbs[0]
	ctx := b.Context()
	const users = 32
	ids := make([]string, users)
	for i := range ids {
		ids[i] = mustUser(b, db, fmt.Sprintf("bench%d", i)).ID
	}
	groups := make([]string, convs)
	for i := range groups {
		groups[i] = mustGroup(b, db, ids[0], fmt.Sprint("G", i), ids[1:]...).ID
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
	cpu0, pgCPU0 := selfCPU(), pgBackendsCPU(b, db)
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
	// CPU per acknowledged write, the nodes' (this process) and
	// PostgreSQL's (this benchmark's backends), which on a small shared
	// machine say more than msgs/s: whether CPU or the lock is the limit.
	b.ReportMetric(float64((selfCPU()-cpu0).Microseconds())/float64(b.N), "node-cpu-µs/msg")
	if pg := pgBackendsCPU(b, db); pg >= 0 && pgCPU0 >= 0 {
		b.ReportMetric(float64((pg-pgCPU0).Microseconds())/float64(b.N), "pg-cpu-µs/msg")
	}
}

// selfCPU is the CPU time (user and system) this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pgBackendsCPU is the CPU time the benchmark's PostgreSQL backends
// (application_name parley-bench-send, on this machine) used so far, from
// /proc; -1 when it cannot be read. Backends that ended meanwhile are not
// counted: the pools keep theirs open during a run.
func pgBackendsCPU(b *testing.B, db *postgres.DB) time.Duration {
	pids, err := postgres.BenchBackends(b.Context(), db)
	if err != nil {
		return -1
	}
	var sum time.Duration
	for _, pid := range pids {
		d, ok := procCPU(int(pid))
		if !ok {
			return -1
		}
		sum += d
	}
	return sum
}

// procCPU is process pid's CPU time (user and system) from /proc; false
// when it cannot be read (a database on another machine).
func procCPU(pid int) (time.Duration, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// Fields after the command name (in parentheses): utime and stime
	// are the 12th and 13th.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * (time.Second / 100), true // USER_HZ
}

// BenchmarkEventsFor: storetest.BenchEventsFor on a new schema.
func BenchmarkEventsFor(b *testing.B) {
	storetest.BenchEventsFor(b, open(b, pgtest.Schema(b)))
}

// BenchmarkHiddenRun: storetest.BenchHiddenRun on a new schema.
func BenchmarkHiddenRun(b *testing.B) {
	storetest.BenchHiddenRun(b, open(b, pgtest.Schema(b)))
}
