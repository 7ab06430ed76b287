package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/parleychat/parley"
)

// The event log per shard (parley.ShardedLog): what both engines share.

// Option configures how an engine opens its database.
type Option func(*Options)

// Options are an engine's open settings.
type Options struct {
	// Shards is the shard count the caller wants (0: whatever the
	// database records, 1 for a new one). See SetupShards.
	Shards int
	// CommitInterval is the SQLite batcher's commit interval (0 or
	// negative: none, the default). See WithCommitInterval.
	CommitInterval time.Duration
}

// WithShards asks for a log of n shards (see SetupShards).
func WithShards(n int) Option { return func(o *Options) { o.Shards = n } }

// WithCommitInterval sets how long the SQLite batcher lets a batch grow
// when writes arrived while the last batch ran (independent writers, as
// sends from many connections): until it holds as many as the last batch
// plus those, or d after the last one started, so each commit (its fsync
// and the WAL frames of the pages the batch touched) is shared by more
// writes. Writers that each wait for their answer are not held back. 0
// or negative (the default) commits each batch at once: in the pinned
// fan-out (1000 rooms of 10, 2000 sends/s) 5 ms raised p50 by 1.5-2 ms
// and p99 at 20k deliveries/s from 22.5 to 25-26.5 ms for at most ~2 µs
// of CPU per delivery (docs/benchmarks.md, "Quiet machine, end of
// session (2026-12-04, 22:56-23:04 UTC, lead)"): latency matters more in
// chat. PostgreSQL ignores it.
func WithCommitInterval(d time.Duration) Option {
	return func(o *Options) { o.CommitInterval = d }
}

// Apply returns the options opts set.
func Apply(opts []Option) Options {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	return o
}

const (
	qLogShards    = `SELECT shards FROM log_shards WHERE id = 1`
	qSetLogShards = `UPDATE log_shards SET shards = $1 WHERE id = 1`
	// An empty log: no event and no conversation, so no position was
	// ever handed out and no conversation is bound to a shard yet.
	qLogEmpty = `SELECT NOT EXISTS (SELECT 1 FROM events) AND NOT EXISTS (SELECT 1 FROM conversations)`
)

// SetupShards returns the database's shard count, first setting it to
// want when want is not 0 and differs: allowed only on an empty log
// (conversations are bound to their shard by parley.ShardOf, so a new
// count on a log that holds events would move them; that takes a
// migration). q should be a transaction the engine holds alone (a
// PostgreSQL node serialises it with the others').
func SetupShards(ctx context.Context, d Dialect, q Querier, want int) (int, error) {
	if want < 0 || want > parley.MaxShards {
		return 0, fmt.Errorf("%s: %d shards: want 1 to %d", d.Name(), want, parley.MaxShards)
	}
	var have int
	if err := q.QueryRow(ctx, qLogShards).Scan(&have); err != nil {
		return 0, fmt.Errorf("%s: read shard count: %w", d.Name(), err)
	}
	if want == 0 || want == have {
		return have, nil
	}
	var empty bool
	if err := q.QueryRow(ctx, qLogEmpty).Scan(&empty); err != nil {
		return 0, fmt.Errorf("%s: read shard count: %w", d.Name(), err)
	}
	if !empty {
		return 0, fmt.Errorf("%s: the database's event log has %d shard(s); changing it to %d once it holds events needs a migration (docs/deploy.md, \"Choosing shards\")", d.Name(), have, want)
	}
	if _, err := q.Exec(ctx, qSetLogShards, want); err != nil {
		return 0, fmt.Errorf("%s: set shard count: %w", d.Name(), err)
	}
	return want, nil
}

// Heads hands out a write batch's positions, one counter per shard, and
// takes back those of a write that failed (positions stay dense). Only
// the batcher's goroutine uses it.
type Heads struct {
	heads []int64
	// taken lists the shard of every position handed out, in order, so
	// Undo can give back those after a mark.
	taken []int
}

// NewHeads starts from the committed heads, one per shard (copied).
func NewHeads(committed []int64) Heads {
	return Heads{heads: append([]int64(nil), committed...)}
}

// Next hands out shard's next position.
func (h *Heads) Next(shard int) int64 {
	h.heads[shard]++
	h.taken = append(h.taken, shard)
	return h.heads[shard]
}

// Mark is a point Undo goes back to.
func (h *Heads) Mark() int { return len(h.taken) }

// Undo gives back the positions handed out since mark.
func (h *Heads) Undo(mark int) {
	for _, s := range h.taken[mark:] {
		h.heads[s]--
	}
	h.taken = h.taken[:mark]
}

// Moved reports whether any position was handed out.
func (h *Heads) Moved() bool { return len(h.taken) > 0 }

// All returns the heads, one per shard (the caller must not change it).
func (h *Heads) All() []int64 { return h.heads }

// Changed returns the shards whose head moved and their new heads.
func (h *Heads) Changed() (shards []int32, heads []int64) {
	seen := make(map[int]bool, 4)
	for _, s := range h.taken {
		if !seen[s] {
			seen[s] = true
			shards, heads = append(shards, int32(s)), append(heads, h.heads[s])
		}
	}
	return shards, heads
}

// Shards implements parley.ShardedLog.
func (s *Store) Shards() int { return s.shards }

// ShardOf is parley.ShardOf with the store's shard count.
func (s *Store) ShardOf(conversationID string) int { return parley.ShardOf(conversationID, s.shards) }

// ShardHead implements parley.ShardedLog (in PostgreSQL, cluster-wide).
func (s *Store) ShardHead(ctx context.Context, shard int) (int64, error) {
	if err := parley.ValidateShard(shard, s.shards); err != nil {
		return 0, err
	}
	var head int64
	if err := s.e.QueryRow(ctx, s.sql.head, shard).Scan(&head); err != nil {
		return 0, s.wrapInternal(err)
	}
	return head, nil
}

// HeadsDialect is a Dialect that reads every shard's head in one query
// (HeadsSQL: rows of shard, head). Optional: without it ShardHeads asks
// shard by shard, which is what SQLite wants (its heads are index seeks in
// process, not round trips).
type HeadsDialect interface {
	HeadsSQL() string
}

var _ parley.ShardHeadsReader = (*Store)(nil)

func headsSQL(d Dialect) string {
	if hd, ok := d.(HeadsDialect); ok {
		return hd.HeadsSQL()
	}
	return ""
}

// ShardHeads implements parley.ShardHeadsReader: every shard's head, in
// one query where the dialect has one (HeadsDialect), else shard by shard.
func (s *Store) ShardHeads(ctx context.Context) ([]int64, error) {
	if s.sql.heads == "" {
		return parley.ReadShardHeads(ctx, s)
	}
	heads := make([]int64, s.shards)
	rows, err := s.e.Query(ctx, s.sql.heads)
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var sh int
		var h int64
		if err := rows.Scan(&sh, &h); err != nil {
			return nil, s.wrapInternal(err)
		}
		if sh >= 0 && sh < len(heads) {
			heads[sh] = h
		}
	}
	return heads, s.wrapInternal(rows.Err())
}

// ShardEventsFor implements parley.ShardedLog. limit must be positive and
// is at most ResumeLimit+1. The events carry no Audience.
//
// Each membership window of the user is read up to limit events it
// keeps or max(limit, parley.ReplayScan) events in all, whichever comes
// first: a first statement (ReplayBoundSQL) finds the first position
// where a window ran out of its scan (through), the second reads the
// kept events up to it, both in one snapshot. So a run of hidden events
// costs a read at most the scan per window, and the page says where it
// stopped (EventsPage.Through) rather than ending short, which a reader
// would take for the end.
func (s *Store) ShardEventsFor(ctx context.Context, userID string, shard int, after int64, limit int) (parley.EventsPage, error) {
	if err := parley.ValidateShard(shard, s.shards); err != nil {
		return parley.EventsPage{}, err
	}
	limit, err := parley.EventLimit(after, limit)
	if err != nil {
		return parley.EventsPage{}, err
	}
	var page parley.EventsPage
	err = s.e.Read(ctx, func(q Querier) error {
		var through NullInt64
		if err := q.QueryRow(ctx, s.sql.replayBound, userID, after, limit, shard, max(limit, parley.ReplayScan)).Scan(s.d.IntDest(&through)); err != nil {
			return err
		}
		upTo := int64(math.MaxInt64)
		if through.Valid {
			upTo = through.Int64
		}
		var err error
		page.Events, err = scanAll(query(q.Query(ctx, s.sql.eventsFor, userID, after, limit, shard, upTo)), s.scanEvent)
		if through.Valid && len(page.Events) < limit {
			page.Through = through.Int64
		}
		return err
	})
	if err != nil {
		return parley.EventsPage{}, s.wrapInternal(err)
	}
	return page, nil
}

// ShardEvents implements parley.ShardedLog. limit must be positive and is
// at most ResumeLimit+1. The Audience of an event is every user whose
// membership window holds it: the members when it was committed, and for
// a removal the removed users too.
func (s *Store) ShardEvents(ctx context.Context, shard int, after int64, limit int) ([]parley.Event, error) {
	if err := parley.ValidateShard(shard, s.shards); err != nil {
		return nil, err
	}
	limit, err := parley.EventLimit(after, limit)
	if err != nil {
		return nil, err
	}
	var events []parley.Event
	err = s.e.Read(ctx, func(q Querier) error {
		var err error
		events, err = scanAll(query(q.Query(ctx, qEvents, after, limit, shard)), s.scanEvent)
		if err != nil || len(events) == 0 {
			return err
		}
		return s.fillAudience(ctx, q, events)
	})
	return events, s.wrapInternal(err)
}
