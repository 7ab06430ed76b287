package sqlstore

import "context"

// SearchSyncer is an Engine whose full-text index is written after
// commit rather than with each message (SQLite: internal/sqlite
// indexer.go). Search calls SyncSearch first, so it sees every message
// whose write returned before it.
type SearchSyncer interface {
	// SyncSearch indexes what waits. It may be called by many searches
	// at once.
	SyncSearch(ctx context.Context) error
}

// syncSearch brings the engine's index up to date when it lags. Only the
// caller's end (ctx) fails the search: when the index cannot be written
// (the store cannot write now), the search still answers from what is
// indexed, which never holds a deleted or pre-edit text.
func (s *Store) syncSearch(ctx context.Context) error {
	ss, ok := s.e.Engine.(SearchSyncer)
	if !ok {
		return nil
	}
	if err := ss.SyncSearch(ctx); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// SearchConvLimiter is a Dialect that names up to SearchConvs()
// conversations of the user in SearchMatch, instead of searchConvs.
type SearchConvLimiter interface{ SearchConvs() int }

// searchConvLimit is how many conversations a search may name to the
// dialect's index.
func (s *Store) searchConvLimit() int {
	if l, ok := s.d.(SearchConvLimiter); ok {
		return l.SearchConvs()
	}
	return searchConvs
}
