package sqlite_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
)

// benchSetup opens a fresh store with n users, each a member of all of
// convs groups.
func benchSetup(b *testing.B, n, convs int) (*sqlite.DB, []parley.User, []parley.Conversation) {
	b.Helper()
	db := open(b, filepath.Join(b.TempDir(), "bench.db"))
	users := make([]parley.User, n)
	ids := make([]string, n)
	for i := range users {
		u, err := db.CreateUser(b.Context(), fmt.Sprintf("user%d", i), nil)
		if err != nil {
			b.Fatal(err)
		}
		users[i], ids[i] = u, u.ID
	}
	groups := make([]parley.Conversation, convs)
	for i := range groups {
		g, _, err := db.CreateGroup(b.Context(), users[0].ID, fmt.Sprint("G", i), ids[1:])
		if err != nil {
			b.Fatal(err)
		}
		groups[i] = g
	}
	return db, users, groups
}

// reportRate reports messages per second, the process's CPU time per
// message (user and system, all goroutines: on a shared machine msgs/s
// depends on the CPU the others leave, CPU per message much less) and the
// mean batch size of the timed part (before: the stats and CPU time when
// the timer started).
func reportRate(b *testing.B, db *sqlite.DB, before sqlite.Stats, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
	after := db.Stats()
	if n := after.Batches - before.Batches; n > 0 {
		b.ReportMetric(float64(after.Ops-before.Ops)/float64(n), "ops/batch")
	}
}

// BenchmarkSendMessage: many senders at once, so group commit shares each
// transaction (and its fsync) among them.
func BenchmarkSendMessage(b *testing.B) { benchParallelSends(b, 32) }

// BenchmarkSendMessage1k: 1024 senders waiting at once, as a loaded
// server's connections do (the load tool's write scenario keeps 800 sends
// in flight): batches can grow to hundreds of writes.
func BenchmarkSendMessage1k(b *testing.B) { benchParallelSends(b, 1024) }

func benchParallelSends(b *testing.B, senders int) {
	db, users, groups := benchSetup(b, 32, 8)
	b.SetParallelism(max(1, senders/max(1, testingProcs())))
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	before, cpu0 := db.Stats(), cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		w := int(next.Add(1)) - 1
		u, g := users[w%len(users)], groups[w%len(groups)]
		for i := 0; pb.Next(); i++ {
			_, _, err := db.SendMessage(b.Context(), parley.NewMessage{
				ConversationID: g.ID, SenderID: u.ID, ClientID: fmt.Sprintf("p%d-%d", w, i), Type: parley.Text, Text: "hello, group commit",
			})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	reportRate(b, db, before, cpu0)
}

// BenchmarkSendMessageSerial: one sender waiting for each commit, so every
// message pays a whole transaction and fsync.
func BenchmarkSendMessageSerial(b *testing.B) {
	db, users, groups := benchSetup(b, 2, 1)
	b.ReportAllocs()
	b.ResetTimer()
	before, cpu0 := db.Stats(), cpuTime()
	for i := 0; b.Loop(); i++ {
		_, _, err := db.SendMessage(b.Context(), parley.NewMessage{
			ConversationID: groups[0].ID, SenderID: users[0].ID, ClientID: fmt.Sprint("s", i), Type: parley.Text, Text: "hello, one at a time",
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, db, before, cpu0)
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }
