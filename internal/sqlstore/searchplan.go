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
