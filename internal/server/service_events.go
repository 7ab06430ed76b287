package server

import (
	"context"

	"github.com/parleychat/parley"
)

// eventsPage is the reply to GET /v1/events: resume over HTTP, one shard
// of the log at a time (protocol 2's cursor has an entry per shard; a
// client asks for each shard after its entry).
type eventsPage struct {
	Events  []parley.Event `json:"events"`
	Head    int64          `json:"head"` // the shard's
	HasMore bool           `json:"has_more"`
	// Next, set when HasMore, is the after of the following page: the
	// last event's pos when the page is full, or where reading stopped
	// when events hidden from the user (parley.ReplayScan) filled the
	// read: such a page is short, even empty.
	Next int64 `json:"next,omitempty"`
	// Resync is set when after is beyond the shard's log (a wiped
	// server): the client must refetch its state.
	Resync bool `json:"resync"`
	// Shard is the shard read (the query's; 0 by default), Shards the
	// log's shard count.
	Shard  int `json:"shard"`
	Shards int `json:"shards"`
}

// MaxEventsPage is the most events GET /v1/events returns at once.
const MaxEventsPage = 1000

// events returns the user's events of shard after `after`, at most limit
// and at most maxBytes of them in JSON (see MaxReplyBytes); has_more says
// to ask again after next. A page over a run of events a block hides
// from the user may be short or empty with has_more: the store reads a
// bounded number of events a page (parley.ReplayScan).
func (s *service) events(ctx context.Context, u parley.User, shard int, after int64, limit, maxBytes int) (eventsPage, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return eventsPage{}, err
	}
	if after < 0 {
		return eventsPage{}, parley.Errorf(parley.EINVALID, "after must not be negative")
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > MaxEventsPage {
		return eventsPage{}, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", MaxEventsPage)
	}
	log := shardLog(s.store)
	if err := parley.ValidateShard(shard, log.Shards()); err != nil {
		return eventsPage{}, err
	}
	head, err := log.ShardHead(ctx, shard)
	if err != nil {
		return eventsPage{}, err
	}
	if after > head {
		return eventsPage{Events: []parley.Event{}, Head: head, Resync: true, Shard: shard, Shards: log.Shards()}, nil
	}
	read, err := log.ShardEventsFor(ctx, u.ID, shard, after, limit+1)
	if err != nil {
		return eventsPage{}, err
	}
	p := eventsPage{Head: head, Shard: shard, Shards: log.Shards()}
	evs := read.Events
	cut := len(evs) > limit // then the store did not stop at its scan
	if cut {
		evs = evs[:limit]
	}
	for i := range evs {
		evs[i].Shard = shard // a one-shard log's events say 0 already
		evs[i] = withURLs(evs[i])
	}
	if n := fitting(evs, maxBytes, false); n < len(evs) {
		evs, cut = evs[:n], true // at least one
	}
	switch {
	case cut:
		p.HasMore, p.Next = true, evs[len(evs)-1].Pos
	case read.Through > 0:
		p.HasMore, p.Next = true, read.Through
	}
	p.Events = nonNil(evs)
	return p, nil
}
