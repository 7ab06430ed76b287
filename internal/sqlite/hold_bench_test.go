package sqlite_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
)

// BenchmarkIndexStepHold: with one P (GOMAXPROCS=1, as a 1-vCPU container
// or the pinned fanout runs), how long one search index step of 4096
// messages (the batcher's step, indexRows) or of 1024 keeps other
// goroutines from running. A prober goroutine yields in a loop while the
// step runs and records its longest wait for the P: "max-hold-cpu-ms" in
// the process's CPU time (what the others ran meanwhile: with one P, the
// step's longest run without yielding; a shared machine barely changes
// it), "max-wait-ms" in wall time (what a delivery or a read behind the
// step waits, with the machine's own waits). "step-ms" is the step's wall
// time, "step-cpu-ms" its CPU time. Later iterations run on a bigger
// index, whose commits merge segments: compare runs of the same -benchtime.
// "segments" and "levels" are the index's at the end (FTS5's structure
// record).
//
//	go test -run '^$' -bench BenchmarkIndexStepHold -benchtime 5x ./internal/sqlite
func BenchmarkIndexStepHold(b *testing.B) {
	for _, rows := range []int{1024, 4096} {
		b.Run(fmt.Sprint("rows=", rows), func(b *testing.B) { benchIndexStepHold(b, rows) })
	}
}

func benchIndexStepHold(b *testing.B, rows int) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	db, users, groups := benchSetup(b, 2, 1)
	manualIndex(b, db)
	// PARLEY_BENCH_FTS_CONFIG: FTS5 options to set first, as
	// "automerge=0,crisismerge=1999" (how much of a hold is merging).
	if cfg := os.Getenv("PARLEY_BENCH_FTS_CONFIG"); cfg != "" {
		for _, kv := range strings.Split(cfg, ",") {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.Atoi(v)
			if err := sqlite.ExecWrite(b.Context(), db, "INSERT INTO messages_fts(messages_fts, rank) VALUES(?, ?)", k, n); err != nil {
				b.Fatal(err)
			}
		}
	}
	var maxWait, maxHold, stepTime, stepCPU time.Duration
	for i := range b.N {
		b.StopTimer()
		var wg sync.WaitGroup
		for k := range rows {
			wg.Go(func() {
				text := fmt.Sprintf("hold %d of step %d, a text of a few words to index", k, i)
				if _, _, err := db.SendMessage(b.Context(), parley.NewMessage{ConversationID: groups[0].ID,
					SenderID: users[0].ID, ClientID: text, Type: parley.Text, Text: text}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		b.StartTimer()
		var stop atomic.Bool
		var worst, worstCPU time.Duration
		probed := make(chan struct{})
		go func() { // owner: this loop, which waits for it (probed)
			defer close(probed)
			last, lastCPU := time.Now(), cpuTime()
			for !stop.Load() {
				runtime.Gosched()
				now, nowCPU := time.Now(), cpuTime()
				worst, worstCPU = max(worst, now.Sub(last)), max(worstCPU, nowCPU-lastCPU)
				last, lastCPU = now, nowCPU
			}
		}()
		start, cpu0 := time.Now(), cpuTime()
		if err := sqlite.SyncIndex(b.Context(), db); err != nil {
			b.Fatal(err)
		}
		stepTime += time.Since(start)
		stepCPU += cpuTime() - cpu0
		stop.Store(true)
		<-probed
		maxWait, maxHold = max(maxWait, worst), max(maxHold, worstCPU)
	}
	b.ReportMetric(float64(maxWait.Microseconds())/1000, "max-wait-ms")
	b.ReportMetric(float64(maxHold.Microseconds())/1000, "max-hold-cpu-ms")
	b.ReportMetric(float64(stepTime.Microseconds())/1000/float64(b.N), "step-ms")
	b.ReportMetric(float64(stepCPU.Microseconds())/1000/float64(b.N), "step-cpu-ms")
	b.ReportMetric(float64(stepCPU.Nanoseconds())/1000/float64(b.N*rows), "cpu-us/row")
	levels, err := sqlite.FTSLevels(b.Context(), db)
	if err != nil {
		b.Fatal(err)
	}
	segs := 0
	for _, l := range levels {
		segs += len(l.Segments)
	}
	b.ReportMetric(float64(segs), "segments")
	b.ReportMetric(float64(len(levels)), "levels")
}
