package server

import (
	"context"

	"github.com/parleychat/parley"
)

// eventsPage is the reply to GET /v1/events: resume over HTTP.
type eventsPage struct {
	Events  []parley.Event `json:"events"`
	Head    int64          `json:"head"`
	HasMore bool           `json:"has_more"`
	// Resync is set when after is beyond the server's log (a wiped
	// server): the client must refetch its state.
	Resync bool `json:"resync"`
}

// MaxEventsPage is the most events GET /v1/events returns at once.
const MaxEventsPage = 1000

// events returns the user's events after `after`, at most limit and at
// most maxBytes of them in JSON (see MaxReplyBytes); has_more says to ask
// again from the last one's pos.
func (s *service) events(ctx context.Context, u parley.User, after int64, limit, maxBytes int) (eventsPage, error) {
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
	head, err := s.store.Head(ctx)
	if err != nil {
		return eventsPage{}, err
	}
	if after > head {
		return eventsPage{Events: []parley.Event{}, Head: head, Resync: true}, nil
	}
	evs, err := s.store.EventsFor(ctx, u.ID, after, limit+1)
	if err != nil {
		return eventsPage{}, err
	}
	p := eventsPage{Head: head}
	if len(evs) > limit {
		evs, p.HasMore = evs[:limit], true
	}
	for i := range evs {
		evs[i] = withURLs(evs[i])
	}
	if n := fitting(evs, maxBytes, false); n < len(evs) {
		evs, p.HasMore = evs[:n], true
	}
	p.Events = nonNil(evs)
	return p, nil
}
