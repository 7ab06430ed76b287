package server

import (
	"context"
	"fmt"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// checkVersion checks a hello's protocol version against a log of shards
// shards (docs/protocol.md section 3). Protocol 1 (0 or 1) resumes with
// one integer, so it is refused on a log of more than one shard with
// EUNSUPPORTED, whose close code (4101) tells a client not to reconnect:
// reconnecting would be refused again. Protocol 2 resumes with a cursor
// of at most one entry per shard.
func checkVersion(h protocol.Hello, shards int) error {
	switch h.Protocol {
	case 0, protocol.Version:
		if shards > 1 {
			return parley.Errorf(parley.EUNSUPPORTED, "this server's event log has %d shards: it needs protocol 2 (hello.protocol 2 with a cursor); upgrade the client", shards)
		}
		if h.Cursor != nil {
			return parley.Errorf(parley.EINVALID, "cursor needs protocol 2 (hello.protocol 2)")
		}
		return nil
	case protocol.Version2:
		if h.ResumeFrom != nil {
			return parley.Errorf(parley.EINVALID, "resume_from is protocol 1's: protocol 2 resumes with cursor")
		}
		return h.Cursor.Check(shards)
	}
	return parley.Errorf(parley.EINVALID, "protocol must be 1 or 2")
}

// resumeFrom returns the position per shard a checked hello resumes
// from (a shard the cursor leaves out is at 0), or nil for a first
// connection.
func resumeFrom(h protocol.Hello, shards int) []int64 {
	switch {
	case h.Protocol == protocol.Version2 && h.Cursor != nil:
		from := make([]int64, shards)
		for s, p := range h.Cursor {
			from[s] = p
		}
		return from
	case h.Protocol != protocol.Version2 && h.ResumeFrom != nil:
		return []int64{*h.ResumeFrom} // one shard: checkVersion
	}
	return nil
}

// storeHeads reads the store's heads of the shards a hello resumes
// beyond what this node delivered (hub.behind); the others are 0. A
// store that does not answer within writeTimeout is unavailable: the
// client is told to come back (4003), never to give up.
func (c *conn) storeHeads(ctx context.Context, shards []int) ([]int64, error) {
	hctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	heads := make([]int64, c.s.hub.shards)
	for _, s := range shards {
		head, err := c.s.hub.events.ShardHead(hctx, s)
		if err != nil {
			ue := &parley.Error{Code: parley.EUNAVAILABLE, Message: "the store is unavailable; reconnect", RetryAfter: time.Second}
			return nil, fmt.Errorf("%w (reading the head of shard %d: %v)", ue, s, err)
		}
		heads[s] = head
	}
	return heads, nil
}

// start writes welcome, the replay asked for and resumed (or resync),
// before the writer starts, so they come before any live event. With
// batching, the replay goes out in as few messages as maxBatchBytes allows.
// It writes on the calling goroutine, page by page, so the replay is held
// one page at a time.
//
// from is the hello's position per shard (nil: no replay), heads and
// quiet what register returned: the replay of shard s is (from[s],
// heads[s]] of the user's events, read in shard order (there is no order
// between shards; a conversation is in one), and none for a quiet shard
// (no store read). Protocol 1 is the case of one shard.
func (c *conn) start(ctx context.Context, h protocol.Hello, from, heads []int64, quiet []bool) error {
	s := c.s
	online, err := s.svc.onlineContacts(ctx, c.user.ID)
	if err != nil {
		return err
	}
	v2 := h.Protocol == protocol.Version2
	w := protocol.Welcome{
		User: c.user, SessionID: c.session.String(), Head: heads[0],
		HeartbeatIntervalMS: s.cfg.HeartbeatInterval.Milliseconds(),
		HeartbeatTimeoutMS:  s.cfg.HeartbeatTimeout.Milliseconds(),
		MaxFrameBytes:       parley.MaxFrameBytes,
		MaxTextRunes:        parley.MaxTextRunes,
		ResumeLimit:         s.cfg.ResumeLimit,
		Online:              online,
	}
	if v2 {
		w.Cursor, w.Shards = protocol.CursorOf(heads), len(heads)
	}
	welcome := outFrame{b: encodeData(protocol.TypeWelcome, "", w)}
	if from == nil {
		return c.writeFrames([]outFrame{welcome})
	}
	resync := func(r protocol.Resync) outFrame {
		if v2 {
			r.Cursor, r.Shards = protocol.CursorOf(heads), len(heads)
		}
		s.metrics.resumes.WithLabelValues("resync").Inc()
		return outFrame{b: encodeData(protocol.TypeResync, "", r)}
	}
	var lost []int
	for sh := range from {
		if from[sh] > heads[sh] {
			lost = append(lost, sh)
		}
	}
	if len(lost) > 0 {
		// heads[sh] is the store's (serve read it when this node was
		// behind from[sh]): the log the client's position belongs to
		// is gone.
		sh := lost[0]
		r := protocol.Resync{Head: heads[sh], From: from[sh], Cause: protocol.ResyncLogLost,
			Reason: "resume_from is beyond the server's log: the events after head were lost"}
		if v2 {
			r.Shard, r.Lost = sh, lost
			r.Reason = fmt.Sprintf("the cursor is beyond the server's log in shard %d: the events after head were lost", sh)
		}
		return c.writeFrames([]outFrame{welcome, resync(r)})
	}
	// The replay is read and written page by page, each page about the
	// send queue's budget: the socket's drain paces the store reads, and
	// a connection that stops reading holds one page. It stops at the
	// resume limit: when one more event lies in (from, head] of a shard,
	// the client gets resync after the events already written (it
	// refetches its state either way), so detecting it costs no count of
	// the missed events. A page the store cut at its scan bound (a run of
	// events a block hides, parley.ReplayScan) may be short or empty:
	// the replay reads on from where the store stopped (Through) until
	// it reaches heads[sh], each read bounded, the limit counting only
	// the events written.
	frames := []outFrame{welcome}
	count, page := 0, resumePageMin
	to := make([]int64, len(from)) // per shard, the last position replayed
	copy(to, from)
	for sh := range from {
		at := from[sh] // where the next read of the shard starts
		for !quiet[sh] {
			n := min(page, s.cfg.ResumeLimit+1-count)
			p, err := s.hub.events.ShardEventsFor(ctx, c.user.ID, sh, at, n)
			if err != nil {
				return err
			}
			evs := p.Events
			done, size := len(evs) < n && p.Through == 0, 0
			for _, ev := range evs {
				if ev.Pos > heads[sh] { // live from here on: the hub queues it
					done = true
					break
				}
				if count == s.cfg.ResumeLimit {
					return c.writeFrames(append(frames, resync(protocol.Resync{
						Head: heads[sh], From: to[sh], Cause: protocol.ResyncResumeLimit, Shard: sh,
						Reason: "more events were missed than the server replays"})))
				}
				ev.Shard = sh // a one-shard log's events say 0 already
				to[sh], count = ev.Pos, count+1
				b := encodeEvent(ev)
				size += len(b)
				frames = append(frames, outFrame{b: b})
			}
			if at = p.Next(at); done || at >= heads[sh] {
				break
			}
			if err := c.writeFrames(frames); err != nil {
				return err
			}
			clear(frames)
			frames = frames[:0]
			if len(evs) > 0 { // an empty page says nothing of the events' size
				page = resumePage(s.cfg.Limits.SendQueueBytes, size, len(evs))
			}
		}
	}
	s.metrics.resumes.WithLabelValues("replayed").Inc()
	s.metrics.obs.resumeEvents.Observe(float64(count))
	r := protocol.Resumed{From: from[0], To: to[0], Count: count}
	if v2 {
		r.Cursor, r.Shards = protocol.CursorOf(heads), len(heads)
	}
	frames = append(frames, outFrame{b: encodeData(protocol.TypeResumed, "", r)})
	return c.writeFrames(frames)
}
