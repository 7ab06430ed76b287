package server

import (
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// TestSweepPingsAgainAfterDrop: a heartbeat ping that was queued, then
// dropped from the queue to make room for a durable frame (pings are
// droppable, like typing), is sent again by the next sweep. Before, the
// sweep took it as outstanding (pinged after the last read) for the rest
// of the silence, so a hidden tab whose own pings are late, the client
// the ping is for, was closed with 4002 after a burst of events.
func TestSweepPingsAgainAfterDrop(t *testing.T) {
	h := newHub(nil, nil, newMetrics())
	s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 4096}}}
	// Not started: nothing writes the queue (a writer busy with a
	// backlog), so what is queued stays until dropped.
	c := &conn{s: s, t: &inlineSink{}, user: parley.User{ID: "u"}}
	h.mu.Lock()
	h.users["u"] = c
	h.mu.Unlock()

	const timeout, ping = 15 * time.Second, 6 * time.Second
	now := time.Now()
	c.lastRead.Store(now.Add(-7 * time.Second).UnixNano())
	if n := h.sweep(now, timeout, ping); n != 1 {
		t.Fatalf("the first sweep sent %d pings to a connection silent for 7 s, want 1", n)
	}
	// A burst of events: a durable frame that fits only once the
	// droppable frames (the ping) are gone.
	if !c.enqueue(make([]byte, 4096-frameOverhead-10), false) {
		t.Fatal("the durable frame was refused (the connection closed)")
	}
	c.mu.Lock()
	for _, f := range c.q {
		if f.kind == framePing {
			c.mu.Unlock()
			t.Fatal("the ping is still queued: the test does not drop it")
		}
	}
	c.q, c.qBytes = nil, 0 // the writer wrote the burst; the client is still silent
	c.mu.Unlock()
	if n := h.sweep(now.Add(time.Second), timeout, ping); n != 1 {
		t.Fatalf("the sweep after the ping was dropped sent %d pings, want 1 (the client was never pinged)", n)
	}
}
