package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// BenchmarkDeliver measures the fan-out path alone: one newMessage event
// per op, encoded once and written to the 10 WebSocket connections of its
// room (1000 connections, 100 rooms, hello batch as the load tool says),
// with no store or broker in the way. The clients read in the same
// process, so cpu-ns/delivery (the process's CPU time per delivery) counts
// their reads too; compare runs of the same benchmark, not with the load
// tool's server figures. At most 2000 deliveries are in flight, far below
// the send queue bound.
func BenchmarkDeliver(b *testing.B) {
	const users, roomSize, window = 1000, 10, 2000
	// The clients do not ping: no heartbeat timeout while it runs.
	srv := servertest.Start(b, servertest.WithConfig(func(c *server.Config) { c.HeartbeatTimeout = time.Hour }))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Int64
	event := []byte(`{"type":"event"`)
	ids := make([]string, users)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	benchClients(b, ctx, srv, ids, func(_ int, m []byte) {
		got.Add(int64(bytes.Count(m, event)))
	})
	rooms := make([][]string, users/roomSize)
	for i := range rooms {
		rooms[i] = ids[i*roomSize : (i+1)*roomSize]
	}
	now := time.Now().UTC()
	text := strings.Repeat("x", 64)
	b.ResetTimer()
	cpu0 := cpuTime()
	var sent int64
	wait := func(ahead int64) { benchWait(b, &got, sent-ahead) }
	for i := range b.N {
		wait(window)
		room := rooms[i%len(rooms)]
		srv.Server.DeliverForBench(parley.Event{
			Pos: int64(i + 1), Type: parley.EventNewMessage, ConversationID: "c", UserID: room[0], UserName: room[0],
			Message: &parley.Message{ID: "m", ConversationID: "c", Seq: int64(i + 1), SenderID: room[0], SenderName: room[0],
				ClientID: "k", Type: parley.Text, Text: text, CreatedAt: now},
			At: now, Audience: room,
		})
		sent += roomSize
	}
	wait(0)
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(sent), "cpu-ns/delivery")
}

// benchClients connects a client per id (hello with batch: true) and
// reads each one's messages on a goroutine of its own, handing every
// message to read(i, message) (its bytes are reused after read returns).
// The benchmark's cleanup closes them and waits for the readers. It
// returns the connections.
func benchClients(b *testing.B, ctx context.Context, srv *servertest.Server, ids []string, read func(i int, m []byte)) []*websocket.Conn {
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, 0, len(ids))
	b.Cleanup(func() {
		for _, c := range conns {
			c.CloseNow()
		}
		wg.Wait()
	})
	for i, id := range ids {
		c, _, err := websocket.Dial(ctx, srv.WSURL(), nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		hb, _ := json.Marshal(protocol.Hello{Token: srv.Token(b, id, id), Batch: true})
		req, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, ID: "h", Data: hb})
		if err := c.Write(ctx, websocket.MessageText, req); err != nil {
			b.Fatal(err)
		}
		if _, m, err := c.Read(ctx); err != nil || !bytes.HasPrefix(m, []byte(`{"type":"welcome"`)) {
			b.Fatalf("hello: %q, %v", m, err)
		}
		wg.Add(1)
		go func() { // owner: the benchmark's cleanup, which closes c and waits
			defer wg.Done()
			buf := make([]byte, 0, 4096)
			for {
				_, r, err := c.Reader(ctx)
				if err != nil {
					return
				}
				buf = buf[:0]
				for {
					if len(buf) == cap(buf) {
						buf = append(buf, 0)[:len(buf)]
					}
					n, err := r.Read(buf[len(buf):cap(buf)])
					buf = buf[:len(buf)+n]
					if err != nil {
						break
					}
				}
				read(i, buf)
			}
		}()
	}
	return conns
}

// benchWait waits until got reaches want; a connection closed by the
// server would make it wait for ever, so it fails after 10 s without
// progress.
func benchWait(b *testing.B, got *atomic.Int64, want int64) {
	last, since := got.Load(), time.Now()
	for got.Load() < want {
		time.Sleep(50 * time.Microsecond)
		if g := got.Load(); g != last {
			last, since = g, time.Now()
		} else if time.Since(since) > 10*time.Second {
			b.Fatalf("no progress for 10 s: %d of %d", g, want)
		}
	}
}

// goroutinesCreatedNow is the process's count of goroutines created so
// far (runtime/metrics): per op, a count that does not depend on the
// machine's load.
func goroutinesCreatedNow() uint64 {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
