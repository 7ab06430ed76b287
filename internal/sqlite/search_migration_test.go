package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/storetest"
)

// TestSearchIndexMigration: migration 00016 rebuilds the index without
// its size rows, from messages as they are (edited texts, no
// tombstones), and down again; after it, an edit or delete of an indexed
// message removes the entry it was indexed with (the 'delete' command),
// so an old word never matches.
func TestSearchIndexMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	a, conv := lagUsers(t, db)
	m1 := lagSend(t, db, a, conv, "kilo one")
	m2 := lagSend(t, db, a, conv, "lima two")
	m3 := lagSend(t, db, a, conv, "mike three")
	if got := lagSearch(t, db, a, "kilo"); !slices.Equal(got, []string{m1.ID}) {
		t.Fatalf("search kilo: %v", got)
	}
	if _, _, err := db.EditMessage(ctx, parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: m1.ID, ClientID: "e1", Text: "november one"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.DeleteMessage(ctx, a.ID, conv.ID, m2.ID); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if hasTable(t, path, "messages_fts_docsize") {
		t.Fatal("after Open: messages_fts_docsize is there, want 00016 applied")
	}
	if err := sqlite.MigrateDownTo(ctx, path, 13); err != nil {
		t.Fatal(err)
	}
	if !hasTable(t, path, "messages_fts_docsize") {
		t.Fatal("at 00013: no messages_fts_docsize, want 00008's index back")
	}

	db = open(t, path) // 00016 again
	if hasTable(t, path, "messages_fts_docsize") {
		t.Fatal("after 00016: messages_fts_docsize is still there")
	}
	check := func(when string, cases map[string][]string) {
		t.Helper()
		for query, want := range cases {
			if got := lagSearch(t, db, a, query); !slices.Equal(got, want) {
				t.Errorf("%s: search %q: %v, want %v", when, query, got, want)
			}
		}
	}
	check("after the migration", map[string][]string{"kilo": nil, "november": {m1.ID}, "one": {m1.ID},
		"lima": nil, "two": nil, "mike": {m3.ID}, "three": {m3.ID}})
	if _, _, err := db.EditMessage(ctx, parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: m3.ID, ClientID: "e3", Text: "oscar three"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.DeleteMessage(ctx, a.ID, conv.ID, m1.ID); err != nil {
		t.Fatal(err)
	}
	check("after an edit and a delete", map[string][]string{"mike": nil, "oscar": {m3.ID}, "three": {m3.ID},
		"november": nil, "one": nil})
}

// hasTable reports whether the file at path has a table of that name
// (read with a connection of its own: the store is closed).
func hasTable(t *testing.T, path, name string) bool {
	t.Helper()
	return fileInt(t, path, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1`, name) > 0
}

// TestSearchMergeMigration: migration 00018 turns FTS5's automerge off
// (the indexer merges in its steps), and down restores FTS5's default, 4.
func TestSearchMergeMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	automerge := func() int {
		t.Helper()
		return fileInt(t, path, `SELECT COALESCE((SELECT v FROM messages_fts_config WHERE k = 'automerge'), -1)`)
	}
	reopen := func() {
		t.Helper()
		if err := open(t, path).Close(); err != nil {
			t.Fatal(err)
		}
	}
	reopen()
	if got := automerge(); got != 0 {
		t.Fatalf("after Open: automerge %d, want 0", got)
	}
	if err := sqlite.MigrateDownTo(t.Context(), path, 17); err != nil {
		t.Fatal(err)
	}
	if got := automerge(); got != 4 {
		t.Fatalf("at 00017: automerge %d, want 4", got)
	}
	reopen()
	if got := automerge(); got != 0 {
		t.Fatalf("after 00018 again: automerge %d, want 0", got)
	}
}

// TestSearchWordsMigration: see storetest.SearchWordsMigration (migration
// 00023). Before it, unicode61 (Unicode 6.1) made "word🏳" and "🏽word"
// tokens of their own: no entry held the word "word".
func TestSearchWordsMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	storetest.SearchWordsMigration(t, func(t *testing.T) parley.Store { return open(t, path) },
		func(*testing.T, parley.Store) {}, // Close indexes what waits
		func(t *testing.T) {
			if err := sqlite.MigrateDownTo(t.Context(), path, 22); err != nil {
				t.Fatal(err)
			}
			if n := fileInt(t, path, `SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'text : "word"'`); n != 0 {
				t.Fatalf("at 00022: %d entries hold the word \"word\", want 0 (unicode61's tokens)", n)
			}
		})
}

// TestSearchIndexWords: the terms FTS5 holds for a message are exactly
// the keys of parley.SearchIndexText of its text, for texts made of what
// splits words differently (storetest.SearchTexts): the ascii tokenizer
// cuts none of them.
func TestSearchIndexWords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	texts, ids := storetest.SendSearchTexts(t, db, 200)
	if err := db.Close(); err != nil { // indexes what waits
		t.Fatal(err)
	}
	c, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetMaxOpenConns(1) // the temp table is the connection's
	if _, err := c.ExecContext(t.Context(), `CREATE VIRTUAL TABLE temp.vocab USING fts5vocab(main, messages_fts, instance)`); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		rows, err := c.QueryContext(t.Context(), `SELECT v.term FROM temp.vocab v JOIN messages m ON m.rowid = v.doc
			WHERE m.id = $1 AND v.col = 'text' ORDER BY v.offset`, id)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var term string
			if err := rows.Scan(&term); err != nil {
				t.Fatal(err)
			}
			got = append(got, term)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if want := strings.Fields(parley.SearchIndexText(texts[i])); !slices.Equal(got, want) {
			t.Errorf("%q: terms %q, want %q", texts[i], got, want)
		}
	}
}
