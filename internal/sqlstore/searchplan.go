package sqlstore

// SearchOptioner is a Dialect whose search statement takes driver
// options before its arguments (PostgreSQL: plan it with the arguments'
// values, internal/postgres search.go).
type SearchOptioner interface{ SearchOptions() []any }

// searchArgs is args after the dialect's search options, if any.
func (s *Store) searchArgs(args ...any) []any {
	if o, ok := s.d.(SearchOptioner); ok {
		return append(o.SearchOptions(), args...)
	}
	return args
}

// SearchRechecker is a Dialect whose search statement (SearchFrom,
// SearchMatch) may also return messages that do not match when
// SearchRecheck says so (PostgreSQL: those not indexed yet, whose words
// only Go can split): Search then reads its rows without a LIMIT, newest
// first, checks each with parley.SearchMatch and stops at a page of
// matches. Other dialects' statements match exactly (Search checks their
// rows too, which all pass) and are cut at a page by a LIMIT.
type SearchRechecker interface{ SearchRecheck() bool }
