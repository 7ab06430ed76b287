package server

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/parleychat/parley"
)

// maxTrackedUsers bounds lastEvents; past it the index starts over from
// the event being recorded (resumes from before then read the store, as
// without the index). An entry costs ~80 bytes, so the bound is ~20 MiB.
const maxTrackedUsers = 1 << 18

// minTrackedUsers is the least one shard's index holds, however many
// shards share maxTrackedUsers.
const minTrackedUsers = 1 << 10

// warmPage is how many events warm reads per Store.Events call.
const warmPage = 1000

// warmTimeout bounds the warm-up a server does before it serves.
const warmTimeout = 5 * time.Second

// maxWarmUsers bounds the users whose rows and contacts warm reads (~50 us
// each on SQLite, on this project's 2-core test machine).
const maxWarmUsers = 32 << 10

// lastEvents knows, for every user, the position of the last durable event
// whose audience holds them among the events in (floor, delivered] (the
// hub's delivered position). A resume from P with floor <= P <= delivered
// by a user whose last position is at most P has nothing to replay: the
// store's EventsFor would return nothing up to delivered, because its
// membership windows are what gives an event its Audience (storetest
// EventsAudience and EventsForAudience), so the hub answers it without
// reading the store. A restart costs every client one EventsFor otherwise,
// though most have missed nothing.
//
// The hub's mu guards it: record runs in deliver, quiet in register, so
// both see the same delivered position.
type lastEvents struct {
	floor int64
	last  map[string]int64
	max   int // maxTrackedUsers; tests lower it
}

func newLastEvents(head int64) *lastEvents {
	return &lastEvents{floor: head, last: make(map[string]int64), max: maxTrackedUsers}
}

// record notes ev, the next event delivered after the previous one.
func (l *lastEvents) record(ev parley.Event) {
	if len(l.last)+len(ev.Audience) > l.max {
		clear(l.last)
		l.floor = ev.Pos - 1
	}
	for _, u := range ev.Audience {
		l.last[u] = ev.Pos
	}
}

// quiet reports whether user has no event in (from, delivered], where
// delivered is the hub's delivered position and from is at most that.
// False means "not known": the caller reads the store.
func (l *lastEvents) quiet(user string, from int64) bool {
	return from >= l.floor && l.last[user] <= from
}

// merge adds what warm read: last positions of the events in (floor, to],
// where to is the position the index started from (its floor when it was
// made). It keeps the larger of two positions for a user, so events
// delivered meanwhile still count. It does nothing if the index started
// over since (its floor moved).
func (l *lastEvents) merge(floor, to int64, last map[string]int64) {
	if l.floor != to || floor >= to || len(l.last)+len(last) > l.max {
		return
	}
	for u, p := range last {
		if p > l.last[u] {
			l.last[u] = p
		}
	}
	l.floor = floor
}

// warm reads the last events of each shard up to its head (heads: the
// positions the hub started from; n events in all, at least a page per
// shard) from the store and merges their audiences into the shard's
// index, so that after a restart clients resuming from shortly before the
// heads need no store read either. For the users of those events (at most
// maxWarmUsers, the most recent first) it also reads their user rows
// (warmUsers) and contacts (the contacts cache) in bulk, so their hellos
// need neither read. The server runs it before it serves, as a storm
// arrives at once; it gives up (with a warning) on an error: the index
// and the caches are optimisations.
func (h *hub) warm(ctx context.Context, heads []int64, n int) {
	start := time.Now()
	seen := make(map[string]int64) // a user's latest position of any shard, to rank them
	events := int64(0)
	// n events in all, shared by the shards (at least a page each), so a
	// log of many shards costs the start no more than one.
	per := max(n/max(len(heads), 1), min(n, warmPage))
	for sh, head := range heads {
		floor := max(head-int64(per), 0)
		if floor >= head {
			continue
		}
		last := make(map[string]int64)
		for after := floor; after < head; {
			evs, err := h.events.ShardEvents(ctx, sh, after, warmPage)
			if err != nil {
				h.log.Warn("hub: warming the resume index", "shard", sh, "err", err)
				return
			}
			if len(evs) == 0 {
				break
			}
			for _, ev := range evs {
				if ev.Pos > head {
					break
				}
				for _, u := range ev.Audience {
					last[u] = ev.Pos
				}
			}
			after = evs[len(evs)-1].Pos
		}
		events += head - floor
		h.mu.Lock()
		h.last[sh].merge(floor, head, last)
		h.mu.Unlock()
		for u, p := range last {
			// Positions of different shards do not compare; the
			// distance below the shard's head does.
			r := p - head
			if q, had := seen[u]; !had || r > q {
				seen[u] = r
			}
		}
	}
	if len(seen) == 0 {
		return
	}
	last := seen
	users := make([]string, 0, len(last))
	for u := range last {
		users = append(users, u)
	}
	// The most recently active first: warmUsers keeps only what fits in
	// the user cache's budget.
	slices.SortFunc(users, func(a, b string) int { return cmp.Compare(last[b], last[a]) })
	users = users[:min(len(users), maxWarmUsers)]
	// The two reads are independent: on a multi-core machine they overlap.
	var wg sync.WaitGroup
	if h.warmUsers != nil {
		wg.Go(func() {
			if err := h.warmUsers(ctx, users); err != nil {
				h.log.Warn("hub: warming the users", "err", err)
			}
		})
	}
	if err := h.contacts.warm(ctx, users); err != nil {
		h.log.Warn("hub: warming the contacts cache", "err", err)
	}
	wg.Wait()
	h.log.Info("warmed up", "events", events, "users", len(users), "took", time.Since(start).Round(time.Millisecond))
}
