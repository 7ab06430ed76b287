package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
)

// TestIndexStepBytesBounded: an index step holds its messages' words in
// memory (split in Go, migration 00026), at most indexStepBytes of them:
// over texts so large that indexChunk of them would pass it, the indexer
// steps over fewer events at a time, and indexes every message all the
// same. Each text here is parley.MaxTextRunes runes, one-letter words of
// a 4-byte letter (10 KB of words: a key is cut to 64 bytes, so many
// short words make the most), so the 500 messages make 5 MB, more than
// one step may hold.
func TestIndexStepBytesBounded(t *testing.T) {
	db := openBulk(t)
	db.ix.manual.Store(true)
	ctx := t.Context()
	ids, g := analyzedGroup(t, db, 2)
	const n = 500
	word := strings.Repeat("𝐚 ", parley.MaxTextRunes/2-4) // a letter (Ll) of 4 bytes
	for i := range n {
		text := fmt.Sprintf("%s%04d", word, i)
		if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: g.ID, SenderID: ids[i%2], ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	wordBytes := len(parley.SearchIndexText(word + "0000"))
	var (
		docs, most, steps int
	)
	db.ix.beforeCommit = func(ctx context.Context, tx pgx.Tx) {
		var now int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM search_docs`).Scan(&now); err != nil {
			t.Error(err)
			return
		}
		most, docs, steps = max(most, now-docs), now, steps+1
	}
	for more := true; more; {
		var err error
		if more, err = db.ix.step(ctx, 0, true); err != nil {
			t.Fatal(err)
		}
	}
	if docs != n {
		t.Fatalf("%d messages indexed in %d steps, want all %d", docs, steps, n)
	}
	if n*wordBytes <= indexStepBytes {
		t.Fatalf("the test's %d bytes of words fit in one step (%d): make them more", n*wordBytes, indexStepBytes)
	}
	if most*wordBytes > indexStepBytes {
		t.Fatalf("a step indexed %d messages, %d bytes of words at once: over indexStepBytes (%d)", most, most*wordBytes, indexStepBytes)
	}
	page, err := db.Search(ctx, ids[0], parley.SearchQuery{Terms: []string{"0499"}, Limit: 5})
	if err != nil || len(page.Results) != 1 {
		t.Fatalf("search of the last message: %d results, %v", len(page.Results), err)
	}
}
