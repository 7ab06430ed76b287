package server

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// answeringStore is a parley.AsyncSender that answers every send at once,
// on the caller's goroutine (as a store that refuses a run does), with m.
type answeringStore struct {
	parley.Store // not called
	m            parley.Message
}

func (s *answeringStore) SendMessagesAsync(ms []parley.NewMessage, _ *atomic.Bool, done func(int, parley.Message, []parley.Event, error)) {
	for i := range ms {
		done(i, s.m, nil, nil)
	}
}

// TestDispatchSendsAllocs counts the allocations of a connection's run of
// sends on the way to the store and back, the store's own aside: three a
// send, its decode's two (protocol.TestDecodeSendAllocs) and its reply
// frame. The run's bookkeeping (the run, the store's callback, the
// run's copy of the requests) is pooled: it was three more a run.
func TestDispatchSendsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled encoders at random")
	}
	at := time.Date(2026, 12, 6, 1, 2, 3, 4, time.UTC)
	m := parley.Message{ID: "019af0b2-3c4d-7e5f-8a9b-0c1d2e3f4a5b", ConversationID: "c1", SenderID: "u1", SenderName: "alice",
		Seq: 1, ClientID: "k1", Type: parley.Text, Text: "hello", CreatedAt: at}
	mt := newMetrics()
	svc := &service{store: &answeringStore{m: m}, metrics: mt, storePublishes: true, typers: newTypingTracker(),
		limits: newLimiters(Limits{MessagesPerSecond: -1, IPMessagesPerSecond: -1}, func(string) {})}
	s := &Server{svc: svc, metrics: mt, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}, connCtx: context.Background()}
	c := &conn{s: s, t: &inlineSink{}, user: parley.User{ID: "u1", Name: "alice"}}
	for _, sends := range []int{1, 3} {
		var reqs []request
		for i := range sends {
			reqs = append(reqs, request{req: protocol.Request{Op: protocol.OpSend, ID: fmt.Sprint("s", i),
				Data: []byte(fmt.Sprintf(`{"conversation_id":"c1","client_id":"k%d","text":"hello"}`, i))}})
		}
		reqs[0].woke = monoNow() // read first after a wake-up: parley_send_wake_seconds observes it
		run := func(check bool) {
			if !c.dispatchSends(context.Background(), reqs) {
				t.Fatal("the run was not handed to the store's batcher")
			}
			c.mu.Lock()
			if c.sendsOut || len(c.q) != sends {
				t.Fatalf("after the run: sendsOut %v, %d frames queued, want %d", c.sendsOut, len(c.q), sends)
			}
			for i, f := range c.q {
				if !check {
					break
				}
				if want := fmt.Sprintf(`{"type":"reply","id":"s%d","data":{"id":`, i); !bytes.HasPrefix(f.b, []byte(want)) {
					t.Fatalf("reply %d: %s", i, f.b)
				}
			}
			c.q, c.qBytes = c.q[:0], 0
			c.mu.Unlock()
		}
		run(true)
		if n := testing.AllocsPerRun(100, func() { run(false) }); n > float64(3*sends) {
			t.Errorf("a run of %d sends: %v allocations, want %d", sends, n, 3*sends)
		}
	}
}
