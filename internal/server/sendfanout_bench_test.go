package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// BenchmarkSendFanout measures the whole path of the load tool's fanout
// in one process: one op is a send by member 0 of a room of 10 (rooms
// taken in turn), over its WebSocket, stored in SQLite (every message
// stored), replied to, and delivered as an event to the 10 members. At
// most 50 sends (one per room, rooms in turn) wait for their replies, so
// a store batch holds the sends of many connections, each with one send
// in flight, as in `parley bench fanout`. The clients read in the same
// process: cpu-ns/delivery and allocs/op count their work too; compare
// runs of this benchmark (old and new code), not with server-only figures.
// For counts that do not depend on the machine's load, run it under
// valgrind --tool=callgrind at two -benchtime Nx and subtract.
func BenchmarkSendFanout(b *testing.B) {
	const rooms, roomSize = 50, 10
	// A write to a socket its peer closed raises SIGPIPE (the runtime
	// ignores it for sockets), and callgrind aborts on some signals
	// (threads.c "sigNum == ...sig"): with SIGPIPE ignored the kernel
	// sends none. The test binary only; the server is unchanged.
	signal.Ignore(syscall.SIGPIPE)
	srv := servertest.Start(b, servertest.WithConfig(func(c *server.Config) { c.HeartbeatTimeout = time.Hour }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ids := make([]string, rooms*roomSize)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
		if _, err := srv.Store.EnsureUser(ctx, ids[i], ids[i]); err != nil {
			b.Fatal(err)
		}
	}
	convs := make([]string, rooms)
	for r := range convs {
		c, _, err := srv.Store.CreateGroup(ctx, ids[r*roomSize], fmt.Sprint("room ", r), ids[r*roomSize+1:(r+1)*roomSize])
		if err != nil {
			b.Fatal(err)
		}
		convs[r] = c.ID
	}
	var events, replies atomic.Int64
	event, reply := []byte(`{"type":"event"`), []byte(`{"type":"reply"`)
	conns := benchClients(b, ctx, srv, ids, func(i int, m []byte) {
		events.Add(int64(bytes.Count(m, event)))
		if i%roomSize == 0 {
			replies.Add(int64(bytes.Count(m, reply)))
		}
	})
	text := strings.Repeat("x", 64)
	b.ResetTimer()
	cpu0, g0 := cpuTime(), goroutinesCreatedNow()
	for i := range b.N {
		if i >= rooms { // the send of this room before this one was answered
			benchWait(b, &replies, int64(i-rooms+1))
		}
		r := i % rooms
		d, _ := json.Marshal(protocol.Send{ConversationID: convs[r], ClientID: fmt.Sprint("k", i), Text: text})
		req, _ := json.Marshal(protocol.Request{Op: protocol.OpSend, ID: fmt.Sprint("s", i), Data: d})
		if err := conns[r*roomSize].Write(ctx, websocket.MessageText, req); err != nil {
			b.Fatal(err)
		}
	}
	benchWait(b, &replies, int64(b.N))
	benchWait(b, &events, int64(b.N*roomSize))
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N*roomSize), "cpu-ns/delivery")
	b.ReportMetric(float64(goroutinesCreatedNow()-g0)/float64(b.N), "goroutines/op")
}
