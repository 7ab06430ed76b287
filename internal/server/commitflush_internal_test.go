package server

import (
	"fmt"
	"strings"
	"sync"
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
			c.flushInline(h.taken)
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

// recordingSink is a transport whose socket takes every write at once and
// records each write, whether the hub wrote it inline or a writer
// goroutine did (Write). during, when set, runs once inside the next
// inline write, as a store batch answered meanwhile would.
type recordingSink struct {
	transport // not called
	mu        sync.Mutex
	writes    []string
	during    func()
}

func (*recordingSink) Inline() bool { return true }

func (*recordingSink) AppendFrames(dst []byte, frames []outFrame, _ bool) []byte {
	for i, f := range frames {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, f.b...)
	}
	return dst
}

func (s *recordingSink) TryWrite(b []byte) (int, error) {
	s.mu.Lock()
	s.writes = append(s.writes, string(b))
	during := s.during
	s.during = nil
	s.mu.Unlock()
	if during != nil {
		during()
	}
	return len(b), nil
}

func (s *recordingSink) Write(frames []outFrame, batch bool) error {
	_, err := s.TryWrite(s.AppendFrames(nil, frames, batch))
	return err
}

// TestReplyWaitsForItsEvents: a send reply queued while the sender's
// connection is being written, or is owed a flush by the hub for an
// earlier batch, is written with its own batch's events, not a write
// ahead of them. Both splits were seen (1 send in 36 of
// TestSendAckWithOwnEvent under load, with no store call of the hub's):
// the hub's inline write of batch 1's frames was in progress when batch 2
// queued its reply, and the writer goroutine started at its end wrote
// that reply alone; or the hub, flushing batch 1, wrote batch 2's reply
// before it had batch 2's events.
func TestReplyWaitsForItsEvents(t *testing.T) {
	for _, inWrite := range []bool{false, true} {
		t.Run(map[bool]string{false: "owed", true: "writing"}[inWrite], func(t *testing.T) {
			h := newHub(nil, nil, newMetrics())
			h.start([]int64{0})
			s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}}
			f := &commitFlush{hub: h}
			sink := &recordingSink{}
			c := &conn{s: s, t: sink, started: true, user: parley.User{ID: "a"}}
			h.register(c, nil, nil)
			fills := make([]bool, h.shards)
			// batch k commits event k and answers send k.
			batch := func(k int) {
				f.published([]parley.Event{{Pos: int64(k), Type: parley.EventNewMessage, ConversationID: "c1", Audience: []string{"a"},
					Data: fmt.Appendf(nil, `{"send":"s%d"}`, k)}})
				f.begin()
				f.queue(c, fmt.Appendf(nil, `{"type":"reply","id":"s%d"}`, k))
				f.end()
			}
			round := func() {
				<-h.sig
				h.takeIn(fills)
				h.flush()
			}
			batch(1)
			if inWrite {
				sink.during = func() { batch(2) } // answered while the hub writes batch 1's frames
				round()
			} else {
				<-h.sig
				h.takeIn(fills)
				batch(2) // answered before the hub's flush of batch 1
				h.flush()
			}
			// A writer goroutine started meanwhile (there should be
			// none) would write what it found before batch 2's event.
			c.wg.Wait()
			round()
			c.wg.Wait()
			sink.mu.Lock()
			defer sink.mu.Unlock()
			for k := 1; k <= 2; k++ {
				reply, event := fmt.Sprintf(`"id":"s%d"`, k), fmt.Sprintf(`"send":"s%d"`, k)
				found := false
				for _, w := range sink.writes {
					if strings.Contains(w, reply) || strings.Contains(w, event) {
						found = true
						if !strings.Contains(w, reply) || !strings.Contains(w, event) {
							t.Errorf("send %d's reply and event in different writes: %q", k, sink.writes)
						}
					}
				}
				if !found {
					t.Errorf("send %d's reply and event not written: %q", k, sink.writes)
				}
			}
		})
	}
}
