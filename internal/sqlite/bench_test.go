package sqlite_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/internal/storetest"
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

// timed is the timed part of a benchmark of b.N sends to db: the stats
// and CPU time when its timer started.
type timed struct {
	b      *testing.B
	db     *sqlite.DB
	before sqlite.Stats
	cpu0   time.Duration
}

// startTimed starts the timed part (b's timer is reset).
func startTimed(b *testing.B, db *sqlite.DB) timed {
	b.ReportAllocs()
	b.ResetTimer()
	return timed{b: b, db: db, before: db.Stats(), cpu0: cpuTime()}
}

// report reports messages per second, the process's CPU time per message
// (user and system, all goroutines: on a shared machine msgs/s depends on
// the CPU the others leave, CPU per message much less) and the mean batch
// size of the timed part. The search index's work counts: what still
// waits for it is indexed first, in the timed part.
func (r timed) report() {
	b := r.b
	if err := sqlite.SyncIndex(b.Context(), r.db); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime()-r.cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
	after := r.db.Stats()
	if n := after.Batches - r.before.Batches; n > 0 {
		b.ReportMetric(float64(after.Ops-r.before.Ops)/float64(n), "ops/batch")
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
	r := startTimed(b, db)
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
	r.report()
}

// BenchmarkSendMessageSerial: one sender waiting for each commit, so every
// message pays a whole transaction and fsync.
func BenchmarkSendMessageSerial(b *testing.B) {
	db, users, groups := benchSetup(b, 2, 1)
	r := startTimed(b, db)
	for i := 0; b.Loop(); i++ {
		_, _, err := db.SendMessage(b.Context(), parley.NewMessage{
			ConversationID: groups[0].ID, SenderID: users[0].ID, ClientID: fmt.Sprint("s", i), Type: parley.Text, Text: "hello, one at a time",
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	r.report()
}

func testingProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkEventsFor: storetest.BenchEventsFor on a SQLite file.
func BenchmarkEventsFor(b *testing.B) {
	storetest.BenchEventsFor(b, open(b, filepath.Join(b.TempDir(), "bench.db")))
}

// BenchmarkConversationsBacklog: the conversation list of a user away
// from 100 busy groups, with 1000 unread messages in each (100,000 in
// all, from another member). The list's unread counts stop at
// parley.MaxUnreadCount, so it reads at most that many a group, not the
// whole backlog; with the writer blocked ("hidden"), the scans stop at
// parley.ListWindow.
func BenchmarkConversationsBacklog(b *testing.B) {
	const groups, backlog = 100, 1000
	db, users, _ := benchSetup(b, 2, 0)
	ctx := b.Context()
	reader, writer := users[0], users[1]
	convs := make([]string, groups)
	for i := range groups {
		g, _, err := db.CreateGroup(ctx, writer.ID, fmt.Sprint("G", i), []string{reader.ID})
		if err != nil {
			b.Fatal(err)
		}
		convs[i] = g.ID
	}
	nms := make([]parley.NewMessage, 0, groups*backlog)
	for i := range groups * backlog {
		nms = append(nms, parley.NewMessage{ConversationID: convs[i%groups], SenderID: writer.ID,
			ClientID: fmt.Sprint("m", i), Type: parley.Text, Text: "while you were away"})
	}
	for chunk := range slices.Chunk(nms, 4000) {
		db.SendMessages(ctx, chunk, func(i int, _ parley.Message, _ []parley.Event, err error) {
			if err != nil {
				b.Fatalf("send %d: %v", i, err)
			}
		})
	}
	list := func(b *testing.B) {
		b.ReportAllocs()
		var unread int64
		for b.Loop() {
			list, err := db.Conversations(ctx, reader.ID)
			if err != nil || len(list) != groups {
				b.Fatalf("%d conversations, %v", len(list), err)
			}
			unread = list[0].UnreadCount
		}
		b.ReportMetric(float64(unread), "unread/conv")
	}
	b.Run("unread", list)
	// hidden: the reader blocked the writer, so no message counts or
	// shows and each scan reads as far as it may (parley.ListWindow).
	if _, err := db.Block(ctx, reader.ID, writer.ID); err != nil {
		b.Fatal(err)
	}
	b.Run("hidden", list)
}

// BenchmarkSendMessagesRooms: the load tool's `write` scenario against the
// store alone: 1000 single-member groups, each sender keeping runs of 4
// sends going with SendMessages (as the server hands a connection's
// pipelined sends to the store), so batches hold up to 4000 sends spread
// over 1000 conversations.
func BenchmarkSendMessagesRooms(b *testing.B) {
	const rooms, run = 1000, 4
	db := open(b, filepath.Join(b.TempDir(), "bench.db"))
	users := benchUsers(b, db, rooms)
	groups := benchGroups(b, db, users, func(int) []string { return nil })
	if b.Failed() {
		return
	}
	r := startTimed(b, db)
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(int64(b.N))
	for w := range rooms {
		wg.Go(func() {
			nms := make([]parley.NewMessage, run)
			for i := 0; ; i++ {
				n := min(run, int(left.Add(-run)+run))
				if n <= 0 {
					return
				}
				for k := range n {
					nms[k] = parley.NewMessage{ConversationID: groups[w].ID, SenderID: users[w].ID,
						ClientID: fmt.Sprintf("r%d-%d", i, k), Type: parley.Text, Text: "hello, rooms of one"}
				}
				db.SendMessages(b.Context(), nms[:n], func(_ int, _ parley.Message, _ []parley.Event, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
		})
	}
	wg.Wait()
	r.report()
}

// BenchmarkSendPacedRooms: the store's part of the load tool's fanout at
// a fixed offered rate (open loop, 2000 sends/s, as `parley bench fanout
// --rates 2000`): 1000 rooms of 10 members (1000 users, each in 10
// rooms), each send from a member of its room, rooms in turn. The batch
// sizes are what the arrival rate makes them, not what a closed loop of
// waiting senders makes them, so cpu-us/msg and ops/batch show the cost
// of each commit at that rate. b.N sends take b.N/2000 seconds. "now"
// commits each batch at once (no commit interval, the default),
// "interval" with 5 ms.
func BenchmarkSendPacedRooms(b *testing.B) {
	b.Run("now", func(b *testing.B) { benchPacedRooms(b, sqlstore.WithCommitInterval(-1)) })
	b.Run("interval", func(b *testing.B) { benchPacedRooms(b, sqlstore.WithCommitInterval(5*time.Millisecond)) })
}

func benchPacedRooms(b *testing.B, opts ...sqlstore.Option) {
	const rooms, size, rate = 1000, 10, 2000
	db := open(b, filepath.Join(b.TempDir(), "bench.db"), opts...)
	users := benchUsers(b, db, rooms)
	// Room r: users[r] and the size-1 users after it.
	groups := benchGroups(b, db, users, roomOf(users, size))
	if b.Failed() {
		return
	}
	r := startTimed(b, db)
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Second / rate
	// lat[i] is send i's latency from its scheduled time (open loop:
	// a late start counts) to its answer.
	lat := make([]time.Duration, b.N)
	for i := 0; i < b.N; {
		due := min(b.N, int(time.Since(start)/interval)+1)
		for ; i < due; i++ {
			// k, not i: the closure runs after this loop moved i on.
			k, r := i, i%rooms
			at := start.Add(time.Duration(k) * interval)
			wg.Go(func() {
				_, _, err := db.SendMessage(b.Context(), parley.NewMessage{
					ConversationID: groups[r].ID, SenderID: users[r].ID, ClientID: fmt.Sprint("p", k), Type: parley.Text, Text: "hello, paced rooms of ten",
				})
				if err != nil {
					b.Error(err)
				}
				lat[k] = time.Since(at)
			})
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
	r.report()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// benchUsers creates n users (user0, user1, ...) at once, as many
// clients signing up together; a failure fails b.
func benchUsers(b *testing.B, db *sqlite.DB, n int) []parley.User {
	users := make([]parley.User, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u, err := db.CreateUser(b.Context(), fmt.Sprintf("user%d", i), nil)
			if err != nil {
				b.Error(err)
			}
			users[i] = u
		})
	}
	wg.Wait()
	return users
}

// benchGroups creates a group for each user at once (G0, G1, ...), the
// user its creator and members(i) the others; a failure fails b.
// roomOf gives room r's members besides users[r]: the size-1 users
// after it (wrapping around).
func roomOf(users []parley.User, size int) func(r int) []string {
	return func(r int) []string {
		ids := make([]string, 0, size-1)
		for j := 1; j < size; j++ {
			ids = append(ids, users[(r+j)%len(users)].ID)
		}
		return ids
	}
}

func benchGroups(b *testing.B, db *sqlite.DB, users []parley.User, members func(i int) []string) []parley.Conversation {
	groups := make([]parley.Conversation, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			g, _, err := db.CreateGroup(b.Context(), u.ID, fmt.Sprint("G", i), members(i))
			if err != nil {
				b.Error(err)
			}
			groups[i] = g
		})
	}
	wg.Wait()
	return groups
}

// BenchmarkSendBatchOf: the store's part of the load tool's fanout with
// batches of a fixed size (1000 rooms of 10 as BenchmarkSendPacedRooms,
// but one caller sending k messages to k rooms at a time and waiting for
// them), so each transaction holds k sends whatever the machine's load:
// CPU per message at the batch sizes fan-out makes (4: 1800 msg/s on one
// core; 32: 5400 msg/s).
//
// "full": the same after 60,000 messages stored first, so the file is
// larger than the writer's page cache (as a server's after a while).
func BenchmarkSendBatchOf(b *testing.B) {
	for _, k := range []int{4, 32} {
		b.Run(fmt.Sprint(k), func(b *testing.B) { benchBatchOf(b, k, 0) })
	}
	for _, k := range []int{4, 32} {
		b.Run(fmt.Sprint(k, "-full"), func(b *testing.B) { benchBatchOf(b, k, 60000) })
	}
}

func benchBatchOf(b *testing.B, k, prefill int) {
	const rooms, size = 1000, 10
	db := open(b, filepath.Join(b.TempDir(), "bench.db"))
	users := benchUsers(b, db, rooms)
	groups := benchGroups(b, db, users, roomOf(users, size))
	if b.Failed() {
		return
	}
	send := func(i, n int, nms []parley.NewMessage) {
		for j := range n {
			room := (i + j) % rooms
			nms[j] = parley.NewMessage{ConversationID: groups[room].ID, SenderID: users[room].ID,
				ClientID: fmt.Sprint("b", i+j), Type: parley.Text, Text: "hello, rooms of ten in batches"}
		}
		db.SendMessages(b.Context(), nms[:n], func(_ int, _ parley.Message, _ []parley.Event, err error) {
			if err != nil {
				b.Error(err)
			}
		})
	}
	big := make([]parley.NewMessage, 1000)
	for i := 0; i < prefill; i += len(big) {
		send(b.N+i, len(big), big)
	}
	if err := sqlite.SyncIndex(b.Context(), db); err != nil {
		b.Fatal(err)
	}
	r := startTimed(b, db)
	nms := make([]parley.NewMessage, k)
	for i := 0; i < b.N; i += k {
		send(i, min(k, b.N-i), nms)
	}
	r.report()
}

// BenchmarkHiddenRun: storetest.BenchHiddenRun on a SQLite file.
func BenchmarkHiddenRun(b *testing.B) {
	storetest.BenchHiddenRun(b, open(b, filepath.Join(b.TempDir(), "bench.db")))
}
