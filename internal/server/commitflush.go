package server

import (
	"sync"

	"github.com/parleychat/parley"
)

// commitFlush writes a store batch's replies together with the events the
// batch committed: for a sender, its acks and its own newMessage events in
// one write(2), from the hub's goroutine, instead of one write by a writer
// goroutine started for the replies and another by the hub for the events
// (which, through the broker, came back a round trip later).
//
// The store calls begin and end around the answers of each committed batch
// (batchq.Hooks.SetAnswerHooks), after the batch's publish. Meanwhile:
//   - publishCommitted keeps the batch's events (events) besides publishing
//     them to the broker;
//   - the send replies the answers queue (queue) wait in their
//     connections' send queues, the connections listed in conns, with no
//     writer started, and none writes them before the hub's flush of
//     their batch's hand-off (conn.replyTake): not a writer that was
//     running, nor the hub's flush of an earlier batch, which would write
//     them a write ahead of their events;
//   - at end both go to the hub in one hand-off (hub.pushLocal): it
//     sequences the events as it does the broker's (its own echo through
//     the broker is then a duplicate it drops, see Server.onBroker) and
//     writes each listed connection once, after queueing the events.
//
// A reply so waits for the rest of its batch's answers and for the hub's
// round of in-memory work (sequencing and encoding the batch's events):
// never for the store, the broker or the network. The hub takes the
// listed connections and writes them before any store call of its own
// (hub.beforeStore), and while it is in one pushLocal hands them back
// and end starts their writers as before.
//
// Batches of PostgreSQL lanes may answer at once: answering counts them,
// and each end takes whatever is queued so far, so nothing queued while
// answering > 0 is left without an end to take it. Safe for concurrent
// use.
type commitFlush struct {
	hub *hub

	mu        sync.Mutex
	answering int              // batches between begin and end
	events    [][]parley.Event // each batch's, published, not yet pushed to the hub (not copied: the hub copies them)
	conns     []*conn          // connections with replies queued for the hub's flush (conn.flushOwed)
	// take numbers the hand-offs to the hub (end), from 1: a reply queued
	// now is for hand-off take+1, which carries its batch's events (they
	// are published before the batch's answers begin). Ends hand off in
	// take order (under mu), so the hub knows which replies' events it
	// has queued (conn.replyTake).
	take uint64
	// The arrays of events and conns an end handed to the hub, emptied,
	// for the next batch: made afresh they were an allocation per batch
	// and one more each time conns doubled, about one per message at a
	// low rate where a batch holds a few sends.
	freeEvents [][]parley.Event
	freeConns  []*conn
}

// published keeps a committed batch's events for end. Called by
// publishCommitted, on the store's batcher, before begin.
func (f *commitFlush) published(evs []parley.Event) {
	f.mu.Lock()
	if f.events == nil {
		f.events, f.freeEvents = f.freeEvents, nil
	}
	f.events = append(f.events, evs)
	f.mu.Unlock()
}

func (f *commitFlush) begin() {
	f.mu.Lock()
	f.answering++
	f.mu.Unlock()
}

// end hands what the batches queued so far to the hub.
func (f *commitFlush) end() {
	f.mu.Lock()
	f.answering--
	evs, conns := f.events, f.conns
	f.events, f.conns = nil, nil
	if len(evs) == 0 && len(conns) == 0 {
		f.mu.Unlock()
		return
	}
	f.take++
	// Under mu: the hub gets the hand-offs in take order. pushLocal only
	// queues.
	notTaken := f.hub.pushLocal(f.take, evs, conns)
	f.mu.Unlock()
	if len(notTaken) > 0 {
		f.hub.metrics.repliesEarly.Add(float64(len(notTaken)))
	}
	for _, c := range notTaken {
		c.flushInline(noHold) // the hub is in a store call: write them here
	}
	// pushLocal copied both: the arrays are free again.
	clear(evs)
	clear(conns)
	f.mu.Lock()
	if f.freeEvents == nil && cap(evs) <= maxFreeIn {
		f.freeEvents = evs[:0]
	}
	if f.freeConns == nil && cap(conns) <= maxFreeIn {
		f.freeConns = conns[:0]
	}
	f.mu.Unlock()
}

// queue queues reply b for c: for the hub's flush at the end of the batch
// being answered, or (outside a batch's answers) at once, as enqueue does.
func (f *commitFlush) queue(c *conn, b []byte) {
	f.mu.Lock()
	if f.answering == 0 {
		f.mu.Unlock()
		c.enqueue(b, false)
		return
	}
	// Under f.mu, so that the end that takes conns comes after.
	if c.queueReply(b, f.take+1) {
		if f.conns == nil {
			f.conns, f.freeConns = f.freeConns, nil
		}
		f.conns = append(f.conns, c)
	}
	f.mu.Unlock()
}
