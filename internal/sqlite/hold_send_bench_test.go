package sqlite_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// BenchmarkIndexStepSendWait: with one P (GOMAXPROCS=1, as the pinned
// fanout runs), how long a send waits when the batcher's own index step
// (after indexRows messages) comes while it is queued. Each iteration
// sends 4096 messages from 8 closed-loop senders, so one step comes in it
// while sends are queued. "max-send-cpu-ms" is the longest send in the
// process's CPU time (what ran meanwhile, the step included; the machine's
// load barely changes it); "max-send-ms" the same in wall time; "cpu-us/msg"
// the process's CPU per message, the index's work included.
//
//	go test -run '^$' -bench BenchmarkIndexStepSendWait -benchtime 4x ./internal/sqlite
func BenchmarkIndexStepSendWait(b *testing.B) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const senders, perIter = 8, 4096
	db, users, groups := benchSetup(b, 2, 1)
	var maxCPU, maxWall time.Duration
	var mu sync.Mutex
	cpu0 := cpuTime()
	for i := range b.N {
		var wg sync.WaitGroup
		for s := range senders {
			wg.Go(func() {
				var worst, worstWall time.Duration
				for k := range perIter / senders {
					text := fmt.Sprintf("wait %d %d %d, a text of a few words to index", i, s, k)
					t, c := time.Now(), cpuTime()
					if _, _, err := db.SendMessage(b.Context(), parley.NewMessage{ConversationID: groups[0].ID,
						SenderID: users[0].ID, ClientID: text, Type: parley.Text, Text: text}); err != nil {
						b.Error(err)
						return
					}
					worst, worstWall = max(worst, cpuTime()-c), max(worstWall, time.Since(t))
				}
				mu.Lock()
				maxCPU, maxWall = max(maxCPU, worst), max(maxWall, worstWall)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(maxCPU.Microseconds())/1000, "max-send-cpu-ms")
	b.ReportMetric(float64(maxWall.Microseconds())/1000, "max-send-ms")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1000/float64(b.N*perIter), "cpu-us/msg")
}
