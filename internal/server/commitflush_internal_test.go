package server

import (
	"testing"

	"github.com/parleychat/parley"
)

// inlineSink is a transport whose socket takes every write at once.
type inlineSink struct {
	transport // not called
	writes    int
}

func (*inlineSink) Inline() bool { return true }

func (*inlineSink) AppendFrames(dst []byte, frames []outFrame, _ bool) []byte {
	for _, f := range frames {
		dst = append(dst, f.b...)
	}
	return dst
}

func (s *inlineSink) TryWrite(b []byte) (int, error) {
	s.writes++
	return len(b), nil
}

// TestCommitFlushListsAllocs: the lists a store batch's answers fill (the
// batch's events, the connections with replies queued) are reused batch
// after batch, not made for each: with a few sends a batch (a low rate)
// they were about an allocation per message. Each reply is still written
// once, with the batch's events sequenced.
func TestCommitFlushListsAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled send queues at random")
	}
	h := newHub(nil, nil, newMetrics())
	h.start([]int64{0})
	s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}}
	f := &commitFlush{hub: h}
	const senders = 5
	var conns []*conn
	var sinks []*inlineSink
	for range senders {
		sink := &inlineSink{}
		sinks = append(sinks, sink)
		conns = append(conns, &conn{s: s, t: sink, started: true})
	}
	reply := []byte(`{"type":"reply","id":"1"}`)
	fills := make([]bool, h.shards)
	batch := make([]parley.Event, senders)
	pos, audience := int64(0), []string{"nobody here"}
	cycle := func() {
		for i := range batch {
			pos++
			batch[i] = parley.Event{Pos: pos, Type: parley.EventNewMessage, ConversationID: "c1", Audience: audience}
		}
		f.published(batch)
		f.begin()
		for _, c := range conns {
			f.queue(c, reply)
		}
		f.end()
		<-h.sig
		h.takeIn(fills)
		for i, c := range h.replies {
			c.flushInline()
			h.replies[i] = nil
		}
		h.replies = h.replies[:0]
	}
	cycle() // the first batch makes the lists
	n := testing.AllocsPerRun(100, cycle)
	if n != 0 {
		t.Errorf("%v allocations per batch of %d sends, want 0", n, senders)
	}
	for i, sink := range sinks {
		if sink.writes != 102 {
			t.Fatalf("sender %d: %d writes for 102 replies, want one each", i, sink.writes)
		}
	}
	if h.delivered[0] != pos {
		t.Fatalf("delivered %d, want %d", h.delivered[0], pos)
	}
}
