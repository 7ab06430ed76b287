package sqlite

import (
	"database/sql/driver"
	"fmt"

	"modernc.org/sqlite"

	"github.com/parleychat/parley"
)

// The words the full-text index holds (migration 00023): the store's SQL
// (the indexer's qIndexRange, the trigger of edits and deletes) calls
// parley_search_text(text), which is parley.SearchIndexText, so the index
// and the query (parley.SearchTerms) split words by one rule, in Go.
// Registered with the driver for every connection the process opens
// after this package's init; deterministic, so SQLite may use it in
// triggers and call it once per row.
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("parley_search_text", 1, searchText)
}

// searchText is parley_search_text: NULL for NULL, the index text of a
// text (or blob: its bytes as text) otherwise.
func searchText(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case nil:
		return nil, nil
	case string:
		return parley.SearchIndexText(v), nil
	case []byte:
		return parley.SearchIndexText(string(v)), nil
	default:
		return nil, fmt.Errorf("parley_search_text: a %T, not a text", v)
	}
}
