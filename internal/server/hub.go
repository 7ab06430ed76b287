package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Sequencer timings. A gap in positions is usually a reordering between
// publishers that closes by itself within milliseconds; gapWait is how long
// the hub lets it before reading the missing events from the store.
// pollEvery (Config.HeadPollInterval's default) catches events whose
// publish was lost entirely (a node that died between commit and publish)
// when no later event reveals the gap: an event the store had at one poll
// and that is still not delivered at the next is read from the store,
// within two polls.
const (
	gapWait   = 100 * time.Millisecond
	pollEvery = time.Second
	fillBatch = 500
)

// hub routes events to the connections of this node.
//
// Durable events arrive from the broker in any order between publishers;
// the sequencer (the run goroutine) delivers each shard's events in
// position order, each exactly once, filling gaps from the store: one
// sequencer state per shard of the event log (seq), the same logic for
// each, run by one goroutine so that deliveries to a connection never
// race (there is no order between shards to keep). delivered holds, per
// shard, the position of the last event handed to connections: a
// connection registered under mu receives every event after the
// delivered values it was given, and the resume replay covers everything
// up to them. Ephemeral events (typing, presence) go straight to the
// connections.
type hub struct {
	store    parley.Store
	events   parley.ShardedLog // store's log per shard (shardLog)
	shards   int               // events.Shards(), fixed
	log      *slog.Logger
	metrics  *metrics
	contacts *contactsCache
	// newContacts, when set, is called (on the run goroutine, after the
	// event is queued) for a conversationUpdated event that made users
	// contacts of each other: a created conversation or added members.
	newContacts func(ev parley.Event)
	// directContacts, when set, is called (on the run goroutine, after
	// the event is queued) with the two users of a newMessage between two
	// users that may have made them contacts (contactsCache.directMessage);
	// it drops their cached lists unless it learns they are not contacts
	// (Server.announceDirectContacts). Unset, the hub drops them itself.
	directContacts func(a, b string)
	// consentChanged, when set, is called (on the run goroutine, before
	// the event is queued, inside beforeStore and afterStore) for a
	// block, an unblock or an accepted request (Server.consentChanged).
	consentChanged func(ev parley.Event)
	// profileChanged, when set, is called (on the run goroutine) with
	// the user of a profileUpdated event: the node's cached user has the
	// old display name or avatar (service.ensured.forget).
	profileChanged func(userID string)
	// maxConns caps a user's connections on this node (register closes
	// the oldest beyond it); 0 or less: no cap.
	maxConns int
	// warmUsers, when set, is called by warm with the users of the latest
	// events, to read them ahead of their reconnect (service.warmUsers).
	warmUsers func(ctx context.Context, ids []string) error

	mu sync.Mutex // guards users (and each conn's hubPrev, hubNext, hubFloor), delivered and last
	// users maps a user to its first local connection; the others follow
	// through conn.hubNext. A list threaded through the conns, not a set
	// per user, because a user nearly always has one connection: an idle
	// connection costs one map entry here and nothing more.
	users     map[string]*conn
	delivered []int64       // per shard
	last      []*lastEvents // per shard: who had an event lately, for resumes with nothing to replay

	// maxQueue bounds in and pending, each, by estimated size (parley.Event.ApproxSize):
	// Limits.HubQueueBytes. An event that does not fit is dropped and
	// read from the store instead (fill), so none is lost.
	maxQueue int
	// pollEvery is the period of run's poll of the heads (set before run).
	pollEvery time.Duration

	inMu    sync.Mutex // guards in, localIn, inFree, localFree, inBytes, overflow, flushIn and inStore
	in      []parley.Event
	localIn []parley.Event // from this node's store batches (pushLocal)
	// inFree and localFree are in's and localIn's arrays, which run gives
	// back emptied once it delivered what it took (giveBackIn): the next
	// batch is queued into them instead of a new array per batch.
	inFree, localFree []parley.Event
	inBytes           int
	overflow          []bool        // per shard: push dropped an event (or a resume is ahead): run fills from the store
	sig               chan struct{} // a buffered wake-up for run
	// flushIn are connections with send replies queued for run to write
	// after it queued the events that came with them (pushLocal).
	flushIn []*conn
	// inStore: run is in a store call (or about to be); pushLocal then
	// leaves the flush of its connections to its caller.
	inStore bool
	// localTake is the last commitFlush hand-off pushLocal queued.
	localTake uint64

	// Owned by the run goroutine.
	seq        []shardSeq // per shard
	scratch    []*conn    // deliver's list of receivers, reused
	owed       []*conn    // connections deliver queued frames for, to flush (flush)
	replies    []*conn    // flushIn taken, to flush (flush, beforeStore)
	storeDepth int        // beforeStore calls not yet ended by afterStore
	// taken is the last commitFlush hand-off whose events takeIn queued
	// to their connections: flush writes no send reply of a later one
	// (conn.replyTake).
	taken uint64
	// acceptingLocal is set while takeIn queues the events of this
	// node's store batches: a store call then writes replies whose
	// events are not all queued (counted, see beforeStore).
	acceptingLocal bool
}

// hubStoreKind is what a store call of the hub's is for
// (parley_hub_store_calls_total{kind}).
type hubStoreKind int

const (
	storeFill     hubStoreKind = iota // a gap's or an overflow's fill
	storePoll                         // the poll of the heads
	storeEvent                        // an event the broker's data did not give (decoded)
	storeContacts                     // new contacts' reads (newContacts, directContacts)
	storeConsent                      // a block's, an unblock's or an accept's (consentChanged)
	numHubStoreKinds
)

var hubStoreKinds = [numHubStoreKinds]string{"fill", "poll", "event", "contacts", "consent"}

// shardSeq is the sequencer's state for one shard, owned by the run
// goroutine.
type shardSeq struct {
	next         int64 // the position to deliver next
	pending      map[int64]parley.Event
	pendingBytes int
	refill       bool      // accept dropped a pending event: fill from the store
	gapAt        time.Time // when the gap (pending not empty) is read from the store; zero: no gap
	polled       int64     // the shard's head at the last poll
}

// shardFloors is conn.hubFloor: per shard, the hub does not queue the
// connection's durable events at or below it (its replay covers them).
type shardFloors []int64

func newHub(store parley.Store, log *slog.Logger, m *metrics) *hub {
	events := shardLog(store)
	n := events.Shards()
	h := &hub{
		store: store, events: events, shards: n,
		log: log, metrics: m, contacts: newContactsCache(store),
		users:     make(map[string]*conn),
		sig:       make(chan struct{}, 1),
		delivered: make([]int64, n),
		last:      make([]*lastEvents, n),
		overflow:  make([]bool, n),
		seq:       make([]shardSeq, n),
		maxQueue:  DefaultHubQueueBytes,
		pollEvery: pollEvery,
	}
	for s := range h.seq {
		h.seq[s].pending = make(map[int64]parley.Event)
	}
	return h
}

// start sets the first position to deliver in each shard (heads, one per
// shard). Call it after subscribing to the broker and before run, so
// nothing committed after the heads is missed.
func (h *hub) start(heads []int64) {
	for s, head := range heads {
		h.seq[s].next = head + 1
		h.delivered[s] = head
		h.last[s] = newLastEvents(head)
		// The indexes together stay within maxTrackedUsers entries
		// (a user is in one per shard of their conversations).
		h.last[s].max = max(maxTrackedUsers/len(heads), minTrackedUsers)
	}
}

// push takes events from the broker. It never blocks: it runs on the
// broker's delivery goroutine. Past maxQueue bytes waiting for the
// sequencer it drops durable events and has the sequencer read them from
// the store.
func (h *hub) push(evs []parley.Event) {
	durable := evs // all of them, the usual case: queued without a copy of its own
	if slices.ContainsFunc(evs, func(ev parley.Event) bool { return ev.Pos <= 0 || ev.Shard < 0 || ev.Shard >= h.shards }) {
		durable = nil
		for _, ev := range evs {
			if ev.Pos > 0 {
				if ev.Shard < 0 || ev.Shard >= h.shards {
					// Not this log's: a node on another database (or
					// another shard count) shares the broker.
					h.log.Warn("hub: dropping an event of an unknown shard", "shard", ev.Shard, "shards", h.shards, "pos", ev.Pos)
					continue
				}
				durable = append(durable, ev)
				continue
			}
			h.deliverTyping(ev)
		}
	}
	if len(durable) == 0 {
		return
	}
	h.inMu.Lock()
	if h.in == nil {
		h.in, h.inFree = h.inFree, nil
	}
	h.in = h.queueLocked(h.in, durable)
	h.inMu.Unlock()
	h.wake()
}

// pushLocal is push for the events of store batches committed on this
// node (batches: each batch's events, as the store handed them; the
// store's shards are the hub's), with the connections whose replies to
// the batches' sends are queued for a flush (conn.flushOwed,
// commitFlush): run writes each of them once, after it queued the
// events, so a sender gets its acks and its own events in one write. If
// run is in a store call it returns conns, not taken: the caller flushes
// them (no reply waits for the store). The events' Data, when set, was
// made by this node (eventData): run writes it without checking it.
// take numbers the hand-off (commitFlush.take): calls come in take order.
func (h *hub) pushLocal(take uint64, batches [][]parley.Event, conns []*conn) (notTaken []*conn) {
	h.inMu.Lock()
	h.localTake = take
	if h.inStore {
		notTaken = conns
	} else {
		h.flushIn = append(h.flushIn, conns...)
	}
	if h.localIn == nil {
		h.localIn, h.localFree = h.localFree, nil
	}
	for _, evs := range batches {
		h.localIn = h.queueLocked(h.localIn, evs)
	}
	h.inMu.Unlock()
	h.wake()
	return notTaken
}

// takeIn sequences what push and pushLocal queued (accept), marks in
// fills the shards to fill from the store, and takes the connections
// pushLocal gave for the next flush. Only run calls it.
func (h *hub) takeIn(fills []bool) {
	h.inMu.Lock()
	evs, local := h.in, h.localIn
	h.in, h.localIn, h.inBytes = nil, nil, 0
	for s, o := range h.overflow {
		fills[s], h.overflow[s] = o, false
	}
	// The replies' connections are flushed after the events are queued
	// (the next flush): one write each.
	h.replies = append(h.replies, h.flushIn...)
	clear(h.flushIn)
	h.flushIn = h.flushIn[:0]
	h.taken = h.localTake
	h.inMu.Unlock()
	// No order between the two is needed: accept keeps positions in
	// order.
	h.acceptingLocal = true
	for _, ev := range local {
		h.acceptTrusted(ev, true)
	}
	h.acceptingLocal = false
	for _, ev := range evs {
		h.accept(ev)
	}
	h.giveBackIn(evs, local)
}

// maxFreeIn bounds the arrays giveBackIn keeps for the next batches, in
// events: a burst's larger array is left to the GC.
const maxFreeIn = 1024

// giveBackIn gives in's and localIn's arrays, which run took and
// delivered, back for the next batches (inFree, localFree), emptied so
// that they hold no event's data.
func (h *hub) giveBackIn(in, local []parley.Event) {
	clear(in)
	clear(local)
	h.inMu.Lock()
	if cap(in) > 0 && cap(in) <= maxFreeIn && h.inFree == nil {
		h.inFree = in[:0]
	}
	if cap(local) > 0 && cap(local) <= maxFreeIn && h.localFree == nil {
		h.localFree = local[:0]
	}
	h.inMu.Unlock()
}

// queueLocked appends evs to q within maxQueue bytes waiting (inBytes);
// one that does not fit is dropped and its shard marked for a fill from
// the store (overflow). h.inMu must be held.
func (h *hub) queueLocked(q, evs []parley.Event) []parley.Event {
	dropped := 0
	for _, ev := range evs {
		n := ev.ApproxSize()
		if h.inBytes+n > h.maxQueue {
			h.overflow[ev.Shard] = true
			dropped++
			continue
		}
		q = append(q, ev)
		h.inBytes += n
	}
	if dropped > 0 {
		h.metrics.drops.WithLabelValues("hub").Add(float64(dropped))
	}
	return q
}

// wake wakes run (a buffered signal: wakes while it runs coalesce).
func (h *hub) wake() {
	select {
	case h.sig <- struct{}{}:
	default:
	}
}

// beforeStore is called by run before a call that may wait for the store
// (fill, the poll of heads, the callbacks that read contacts), of kind
// (counted in parley_hub_store_calls_total): it writes the connections
// pushLocal gave it so far (with whatever is queued for them) and has
// pushLocal leave later ones to its caller until the matching afterStore.
// So no reply waits for a store call of the hub's; the replies whose
// events the hub has not queued yet are then written a write ahead of
// them (counted in parley_send_replies_early_total). Calls nest; only
// run calls them.
func (h *hub) beforeStore(kind hubStoreKind) {
	if h.metrics != nil {
		h.metrics.hubStoreCalls[kind].Inc()
	}
	h.storeDepth++
	if h.storeDepth > 1 {
		return
	}
	h.leaveReplies()
}

// leaveReplies is beforeStore's work, for a store call or for run's end
// (after which nothing takes replies).
func (h *hub) leaveReplies() {
	h.inMu.Lock()
	h.inStore = true
	early := len(h.flushIn) // their events are not queued yet
	if h.acceptingLocal {
		early += len(h.replies)
	}
	h.replies = append(h.replies, h.flushIn...)
	clear(h.flushIn)
	h.flushIn = h.flushIn[:0]
	h.inMu.Unlock()
	if early > 0 && h.metrics != nil {
		h.metrics.repliesEarly.Add(float64(early))
	}
	h.replies = flushOwed(h.replies, noHold)
}

// afterStore ends what beforeStore began.
func (h *hub) afterStore() {
	h.storeDepth--
	if h.storeDepth > 0 {
		return
	}
	h.inMu.Lock()
	h.inStore = false
	h.inMu.Unlock()
}

// run is the sequencer of every shard. It is owned by the Server and
// returns when ctx ends.
func (h *hub) run(ctx context.Context) {
	gap := time.NewTimer(time.Hour)
	gap.Stop()
	poll := time.NewTicker(h.pollEvery)
	defer poll.Stop()
	defer gap.Stop()
	fills := make([]bool, h.shards)
	// Once run returns, nothing flushes flushIn: what is taken is written
	// now and pushLocal's callers flush their own (inStore stays set).
	defer h.leaveReplies()
	for {
		h.flush() // what the last round delivered, before waiting again
		select {
		case <-ctx.Done():
			return
		case <-h.sig:
			h.takeIn(fills)
			for s := range h.seq {
				if fills[s] || h.seq[s].refill {
					// Events were dropped for want of room; they
					// are committed (a publish follows its commit),
					// so the store has them now.
					h.seq[s].refill = false
					h.fill(ctx, s)
				}
			}
		case now := <-gap.C:
			for s := range h.seq {
				if q := &h.seq[s]; !q.gapAt.IsZero() && !q.gapAt.After(now) {
					q.gapAt = time.Time{}
					h.fill(ctx, s)
				}
			}
		case <-poll.C:
			// One read of every head (one query on PostgreSQL), not a
			// round trip per shard.
			h.beforeStore(storePoll)
			heads, err := shardHeads(ctx, h.events)
			h.afterStore()
			if err != nil {
				if ctx.Err() == nil {
					h.log.Warn("hub: reading heads", "err", err)
				}
				break
			}
			for s := range h.seq {
				head := heads[s]
				// Under load the head is nearly always ahead of what
				// was delivered (a publish follows its commit), and
				// those events are on their way through the broker:
				// only one committed a whole poll ago and still
				// missing is lost.
				q := &h.seq[s]
				if q.polled >= q.next {
					h.fill(ctx, s)
				}
				q.polled = head
			}
		}
		h.armGap(gap)
	}
}

// armGap sets each shard's gap deadline (gapWait after its pending events
// appeared; none when it has none) and the timer to the earliest one.
func (h *hub) armGap(gap *time.Timer) {
	var now, first time.Time
	for s := range h.seq {
		q := &h.seq[s]
		switch {
		case len(q.pending) == 0:
			q.gapAt = time.Time{}
			continue
		case q.gapAt.IsZero():
			if now.IsZero() {
				now = time.Now()
			}
			q.gapAt = now.Add(gapWait)
		}
		if first.IsZero() || q.gapAt.Before(first) {
			first = q.gapAt
		}
	}
	gap.Stop()
	if !first.IsZero() {
		gap.Reset(time.Until(first))
	}
}

// accept takes one durable event: a duplicate is dropped, the next one of
// its shard is delivered (with any pending ones it unblocks), a later one
// waits, unless maxQueue bytes already wait in its shard: then it is
// dropped and run reads it from the store (refill).
func (h *hub) accept(ev parley.Event) { h.acceptTrusted(ev, false) }

// acceptTrusted is accept; with trusted, ev's Data (if any) is this
// node's and written without the check validData makes, if ev is
// delivered at once (a pending event is checked when delivered).
func (h *hub) acceptTrusted(ev parley.Event, trusted bool) {
	q := &h.seq[ev.Shard]
	switch {
	case ev.Pos < q.next:
		return
	case ev.Pos > q.next:
		if _, ok := q.pending[ev.Pos]; ok {
			return
		}
		n := ev.ApproxSize()
		if q.pendingBytes+n > h.maxQueue {
			q.refill = true
			h.metrics.drops.WithLabelValues("hub").Inc()
			return
		}
		q.pending[ev.Pos] = ev
		q.pendingBytes += n
		return
	}
	h.owed = h.deliverOwed(ev, trusted, h.owed)
	q.next++
	for {
		e, ok := q.pending[q.next]
		if !ok {
			break
		}
		delete(q.pending, q.next)
		q.pendingBytes -= e.ApproxSize()
		h.deliver(e)
		q.next++
	}
}

// flush writes what deliver queued since the last flush for the
// connections no writer serves, each in one write from the run goroutine
// (conn.flushInline), but not past a send reply whose events are in a
// commitFlush hand-off it has not taken: that hand-off's flush writes it.
// The run calls it after each batch of events.
func (h *hub) flush() {
	h.owed = flushOwed(h.owed, h.taken)
	h.replies = flushOwed(h.replies, h.taken)
}

// flushOwed flushes each connection of owed (conn.flushInline, with
// limit) and returns owed emptied.
func flushOwed(owed []*conn, limit uint64) []*conn {
	for i, c := range owed {
		c.flushInline(limit)
		owed[i] = nil
	}
	return owed[:0]
}

// fill reads the events of shard after the last delivered one from the
// store, which has them all, and accepts them.
func (h *hub) fill(ctx context.Context, shard int) {
	h.beforeStore(storeFill)
	defer h.afterStore()
	q := &h.seq[shard]
	for ctx.Err() == nil {
		evs, err := h.events.ShardEvents(ctx, shard, q.next-1, fillBatch)
		if err != nil {
			if ctx.Err() == nil {
				h.log.Warn("hub: filling a gap", "shard", shard, "after", q.next-1, "err", err)
			}
			return
		}
		for _, ev := range evs {
			ev.Shard = shard // a one-shard log's events say 0 already
			h.accept(ev)
		}
		if len(evs) < fillBatch {
			return
		}
	}
}

// deliver queues a durable event to every local connection of its
// audience and records it as delivered. Under mu it only records the
// position and collects the connections, so a registering connection sees
// either all of it (it is collected) or none (its replay covers it); the
// frames are queued after unlocking, so the lock is held for map lookups
// only, however large the audience. Only the run goroutine calls it, which
// keeps each connection's events in position order.
func (h *hub) deliver(ev parley.Event) { h.owed = h.deliverOwed(ev, false, h.owed) }

// deliverOwed is deliver, adding to owed the connections the caller must
// flush (flushOwed), and returning it. With trusted, ev's Data (if any)
// was made by this node and is not checked.
func (h *hub) deliverOwed(ev parley.Event, trusted bool, owed []*conn) []*conn {
	consent := h.consentChanged != nil && (ev.Type == parley.EventUserBlocked || ev.Type == parley.EventUserUnblocked || ev.Type == parley.EventRequestAccepted)
	contacts := h.newContacts != nil && (ev.Change == parley.ChangeCreated || ev.Change == parley.ChangeMembersAdded)
	profile := h.profileChanged != nil && ev.Type == parley.EventProfileUpdated
	whole := true // false: ev is routing fields only, and they are all it will have
	if ev.Data != nil && (consent || contacts || profile) {
		// A broker may bring an event as its routing fields and Data
		// (parley.Event.Data); these rare kinds need the rest.
		ev, whole = h.decoded(ev)
		consent, contacts, profile = consent && whole, contacts && whole, profile && whole
	}
	if profile {
		h.profileChanged(ev.UserID)
	}
	if ev.Type == parley.EventConversationUpdated {
		h.contacts.invalidate(ev.Audience)
	}
	if consent {
		h.beforeStore(storeConsent) // an unblock or an accept may read contacts from the store
		h.consentChanged(ev)
		h.afterStore()
	}
	cs := h.scratch[:0]
	// hs: the receivers of the event's quote hidden (ev.QuoteHidden: they
	// blocked the sender of the message its reply quotes), a frame of
	// their own; none, and no cost but a nil check, in the usual case.
	var hs []*conn
	h.mu.Lock()
	h.delivered[ev.Shard] = ev.Pos
	h.last[ev.Shard].record(ev)
	for _, uid := range ev.Audience {
		hide := ev.QuoteHidden != nil && slices.Contains(ev.QuoteHidden, uid)
		for c := h.users[uid]; c != nil; c = c.hubNext {
			if c.hubFloor != nil && ev.Pos <= c.hubFloor[ev.Shard] {
				continue // its replay (from the store) covers it: see register
			}
			if hide {
				hs = append(hs, c)
			} else {
				cs = append(cs, c)
			}
		}
	}
	h.mu.Unlock()
	// Queued for flush (at the end of the run's batch of events): a
	// connection no writer serves gets its frames written from the run
	// goroutine, in one write for all the batch gave it. The frame is
	// encoded only when a local connection takes it: in a cluster, most
	// events a node sequences are other nodes' with no audience here.
	// The hidden quote's frame needs the message, which a broker's
	// event may hold only in its Data.
	if ev.Data != nil && ((len(cs)+len(hs) > 0 && !trusted && !validData(ev.Data)) || (len(hs) > 0 && ev.Message == nil)) {
		ev, whole = h.decoded(ev)
	}
	if !whole {
		// Never a frame of routing fields only, and never a gap: each
		// receiver here is closed after what it was sent before, with a
		// code that means "reconnect and resume", so its resume reads the
		// event from the store once the store answers again.
		for _, group := range [][]*conn{cs, hs} {
			for _, c := range group {
				c.closeWith(protocol.CloseReconnect, "an event could not be read; resume", true)
			}
		}
		cs, hs = cs[:0], nil
	}
	at := ev.At.UnixNano()
	if len(cs) > 0 {
		owed = queueFrame(owed, cs, encodeEvent(ev), at)
	}
	if len(hs) > 0 {
		hev := ev
		hev.Data = nil
		if hev.Message != nil {
			hev.Message = hev.Message.WithQuoteHidden()
		}
		owed = queueFrame(owed, hs, encodeEvent(hev), at)
	}
	h.metrics.fanout.Add(float64(len(cs) + len(hs)))
	clear(cs)
	h.scratch = cs
	if contacts {
		h.beforeStore(storeContacts) // it may read contacts from the store
		h.newContacts(ev)
		h.afterStore()
	}
	if ev.Type == parley.EventNewMessage && len(ev.Audience) == 2 && h.contacts.directMessage(ev.Audience[0], ev.Audience[1]) {
		if h.directContacts == nil {
			h.contacts.forgetPair(ev.Audience[0], ev.Audience[1])
		} else {
			h.beforeStore(storeContacts)
			h.directContacts(ev.Audience[0], ev.Audience[1])
			h.afterStore()
		}
	}
	return owed
}

// queueFrame queues frame b, of an event at time at, on each of cs for
// the flush, adding to owed the connections the caller must flush.
func queueFrame(owed, cs []*conn, b []byte, at int64) []*conn {
	for _, c := range cs {
		if c.queueForFlush(outFrame{b: b}, at) {
			owed = append(owed, c)
		}
	}
	return owed
}

// validData reports whether b may be written as an event frame's data:
// a JSON object. Data comes from another node through the broker, so it
// is checked before a client gets it (a scan, not a decode, and only
// for the events a local connection takes).
func validData(b []byte) bool { return len(b) > 0 && b[0] == '{' && json.Valid(b) }

// decoded returns ev with all its fields, for one a broker brought as
// routing fields and Data. Its Data is decoded; Data that does not decode
// (a malformed message on the broker: the routing header parsed, the
// payload did not) is dropped and the event read from the store, which
// has it (a publish follows its commit), so its receivers still get it
// once. If the store fails too (logged), ok is false and ev has its
// routing fields only: deliverOwed then advances its position and closes
// its local receivers with CloseReconnect, so they resume it from the
// store. Only the run goroutine calls it (through
// deliverOwed).
func (h *hub) decoded(ev parley.Event) (_ parley.Event, ok bool) {
	if ev.Data != nil && validData(ev.Data) {
		if d, err := ev.Decode(); err == nil {
			return d, true
		}
	}
	h.metrics.drops.WithLabelValues("broker_data").Inc()
	h.log.Warn("hub: undecodable event data from the broker; reading the event from the store", "shard", ev.Shard, "pos", ev.Pos)
	ev.Data = nil
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h.beforeStore(storeEvent)
	evs, err := h.events.ShardEvents(ctx, ev.Shard, ev.Pos-1, 1)
	h.afterStore()
	if err != nil || len(evs) == 0 || evs[0].Pos != ev.Pos {
		h.log.Error("hub: an event neither its broker data nor the store gave; its receivers on this node are closed to resume it", "shard", ev.Shard, "pos", ev.Pos, "err", err)
		return ev, false
	}
	st := evs[0]
	st.Shard, st.Audience, st.QuoteHidden = ev.Shard, ev.Audience, ev.QuoteHidden
	return st, true
}

// local reports whether any of users has a connection on this node.
func (h *hub) local(users ...string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, u := range users {
		if h.users[u] != nil {
			return true
		}
	}
	return false
}

// deliverTyping is the entry point of ephemeral events from the broker
// (typing started or stopped; Pos 0): push hands them here, on the
// broker's goroutine, and they go to the local connections of the
// event's audience at once, outside the sequencer.
func (h *hub) deliverTyping(ev parley.Event) {
	if ev.Data != nil && !validData(ev.Data) {
		h.metrics.drops.WithLabelValues("broker_data").Inc()
		return // ephemeral: nothing to read it back from
	}
	h.deliverEphemeral(ev.Audience, encodeEvent(ev))
}

// deliverPresence is the entry point of presence: it tells the local
// connections of to that user came online or went offline at at. It is
// called by presence transitions (Server.notifyPresence, on the presence
// goroutine) and by new contacts (announceNewContacts and
// announceDirectContacts, on the run goroutine).
func (h *hub) deliverPresence(to []string, user string, online bool, at time.Time) {
	typ := parley.EventUserOffline
	if online {
		typ = parley.EventUserOnline
	}
	h.deliverEphemeral(to, encodeEvent(parley.Event{Type: typ, UserID: user, At: at}))
}

// deliverEphemeral queues a typing or presence frame to the local
// connections of users; full queues drop it. Like deliver, it holds mu
// only to collect the connections and queues the frame after unlocking.
// A connection that ends meanwhile refuses the frame (enqueue on a
// closing connection is a no-op).
func (h *hub) deliverEphemeral(users []string, b []byte) {
	var buf [8]*conn
	cs := buf[:0]
	h.mu.Lock()
	for _, uid := range users {
		for c := h.users[uid]; c != nil; c = c.hubNext {
			cs = append(cs, c)
		}
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.enqueue(b, true)
	}
	h.metrics.fanout.Add(float64(len(cs)))
}

// register adds c and returns heads, one per shard: c receives every
// durable event after them live, and its replay covers everything up to
// them. A shard's head is its last delivered position, or storeHeads'
// when that is further (the client has seen a position of that shard this
// node has not delivered yet, so serve read the store's head): the hub
// then skips c for the events of that shard up to the head it delivers
// later (c.hubFloor), which c's replay from the store covers, so a
// lagging node neither rewinds the client nor repeats an event. With
// from (the hello's position per shard; nil for a first connection) it
// also reports quiet per shard: c's user has no event of that shard in
// (from, head], so its replay is empty without reading the store (see
// lastEvents). storeHeads is nil, or holds 0 for a shard it did not read.
//
// The user's connections are listed newest first, so when c makes more
// than maxConns open ones, the oldest beyond the cap are closed with
// 4103 (too many connections): a client that leaks connections, or an
// attacker holding hundreds, keeps at most maxConns per node, and the
// newest (the one the user just opened) is the one served. Connections
// already closing do not count.
func (h *hub) register(c *conn, from, storeHeads []int64) (heads []int64, quiet []bool) {
	var evict []*conn
	heads = make([]int64, h.shards)
	if from != nil {
		quiet = make([]bool, h.shards)
	}
	h.mu.Lock()
	if first := h.users[c.user.ID]; first != nil {
		c.hubNext, first.hubPrev = first, c
		if h.maxConns > 0 {
			n := 0
			for x := c; x != nil; x = x.hubNext {
				if x.closing() {
					continue
				}
				if n++; n > h.maxConns {
					evict = append(evict, x)
				}
			}
		}
	}
	h.users[c.user.ID] = c
	copy(heads, h.delivered)
	for s := range heads {
		switch {
		case storeHeads != nil && storeHeads[s] > heads[s]:
			heads[s] = storeHeads[s]
			if c.hubFloor == nil {
				c.hubFloor = make(shardFloors, h.shards)
			}
			c.hubFloor[s] = heads[s]
		case from != nil && from[s] <= heads[s]:
			quiet[s] = h.last[s].quiet(c.user.ID, from[s])
		}
	}
	h.mu.Unlock()
	for _, x := range evict {
		h.metrics.rateLimited.WithLabelValues("connections_per_user").Inc()
		x.closeWith(protocol.CloseTooManyConnections, "too many connections", false)
	}
	return heads, quiet
}

// behind returns the shards in which this node has not yet delivered
// from's position: a client resuming from there has seen events this
// node has not (it lags its broker, or was stopped). It also wakes the
// sequencer to read what it is missing from the store at once rather
// than at the next gap timer or poll.
func (h *hub) behind(from []int64) (shards []int) {
	h.mu.Lock()
	for s, p := range from {
		if p > h.delivered[s] {
			shards = append(shards, s)
		}
	}
	h.mu.Unlock()
	if len(shards) > 0 {
		h.inMu.Lock()
		for _, s := range shards {
			h.overflow[s] = true // run fills from the store
		}
		h.inMu.Unlock()
		select {
		case h.sig <- struct{}{}:
		default:
		}
	}
	return shards
}

// unregister removes c and reports whether it was its user's last
// connection on this node.
func (h *hub) unregister(c *conn) (last bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, next := c.hubPrev, c.hubNext
	c.hubPrev, c.hubNext = nil, nil
	if next != nil {
		next.hubPrev = prev
	}
	if prev != nil {
		prev.hubNext = next
		return false
	}
	if h.users[c.user.ID] != c {
		return false // not registered
	}
	if next == nil {
		delete(h.users, c.user.ID)
		return true
	}
	h.users[c.user.ID] = next
	return false
}

// conns returns every registered connection.
func (h *hub) conns() []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cs []*conn
	for _, first := range h.users {
		for c := first; c != nil; c = c.hubNext {
			cs = append(cs, c)
		}
	}
	return cs
}
