package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
)

// TestSearchIndexLag: the send path leaves messages to the indexer
// (migration 00013); while they wait, an edit or a delete changes what
// will be indexed, so a search (which has the batcher index what waits
// first) finds the current text only, never a tombstone or a text
// before its edit.
func TestSearchIndexLag(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "parley.db"))
	manualIndex(t, db)
	a, conv := lagUsers(t, db)
	m1 := lagSend(t, db, a, conv, "alpha one")
	m2 := lagSend(t, db, a, conv, "bravo two")
	m3 := lagSend(t, db, a, conv, "delta three")
	if upto, last := indexLag(t, db); upto >= last {
		t.Fatalf("after the sends: indexed up to %d of %d, want the sends waiting", upto, last)
	}
	// change edits one message and deletes another.
	change := func(edited parley.Message, clientID, text string, deleted parley.Message) {
		t.Helper()
		if _, _, err := db.EditMessage(ctx, parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: edited.ID, ClientID: clientID, Text: text}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.DeleteMessage(ctx, a.ID, conv.ID, deleted.ID); err != nil {
			t.Fatal(err)
		}
	}
	type search struct {
		query string
		want  []string
	}
	finds := func(when string, searches ...search) {
		t.Helper()
		for _, c := range searches {
			if got := lagSearch(t, db, a, c.query); !slices.Equal(got, c.want) {
				t.Errorf("search %q %s: %v, want %v", c.query, when, got, c.want)
			}
		}
	}
	change(m1, "e1", "charlie one", m2)
	finds("before the index", search{"alpha", nil}, search{"bravo", nil}, search{"two", nil},
		search{"charlie", []string{m1.ID}}, search{"one", []string{m1.ID}}, search{"delta", []string{m3.ID}})
	if upto, last := indexLag(t, db); upto != last {
		t.Fatalf("after a search: indexed up to %d of %d", upto, last)
	}
	// An indexed message: its edit and delete change the index at once.
	change(m3, "e3", "echo three", m1)
	finds("after the index", search{"delta", nil}, search{"echo", []string{m3.ID}}, search{"charlie", nil}, search{"three", []string{m3.ID}})
}

// TestSearchIndexResumes: messages not indexed when the process stopped
// (Close as a crash leaves them) are indexed after the next start, from
// where the index stood; a clean Close indexes what waits.
func TestSearchIndexResumes(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	a, conv := lagUsers(t, db)
	before := lagSend(t, db, a, conv, "golf before")
	if got := lagSearch(t, db, a, "golf"); !slices.Equal(got, []string{before.ID}) {
		t.Fatalf("search golf: %v", got)
	}
	if err := sqlite.ManualIndex(ctx, db, true); err != nil {
		t.Fatal(err)
	}
	var waiting []string
	for _, text := range []string{"foxtrot one", "foxtrot two", "foxtrot three"} {
		waiting = append(waiting, lagSend(t, db, a, conv, text).ID)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path)
	manualIndex(t, db)
	upto, last := indexLag(t, db)
	if upto >= last {
		t.Fatalf("after a crash: indexed up to %d of %d, want messages waiting", upto, last)
	}
	slices.Reverse(waiting) // newest first
	if got := lagSearch(t, db, a, "foxtrot"); !slices.Equal(got, waiting) {
		t.Fatalf("search foxtrot after the restart: %v, want %v", got, waiting)
	}
	if got := lagSearch(t, db, a, "golf"); !slices.Equal(got, []string{before.ID}) {
		t.Fatalf("search golf after the restart: %v (indexed twice?)", got)
	}
	if u, l := indexLag(t, db); u != l {
		t.Fatalf("after the search: indexed up to %d of %d", u, l)
	}

	// A clean Close indexes what waits.
	hotel := lagSend(t, db, a, conv, "hotel")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = open(t, path)
	if u, l := indexLag(t, db); u != l {
		t.Fatalf("after a clean Close: indexed up to %d of %d", u, l)
	}
	manualIndex(t, db)
	if got := lagSearch(t, db, a, "hotel"); !slices.Equal(got, []string{hotel.ID}) {
		t.Fatalf("search hotel: %v", got)
	}
}

// manualIndex makes db index only when a search asks and at Close
// (sqlite.ManualIndex, without crash).
func manualIndex(t testing.TB, db *sqlite.DB) {
	t.Helper()
	if err := sqlite.ManualIndex(t.Context(), db, false); err != nil {
		t.Fatal(err)
	}
}

func lagUsers(t *testing.T, db *sqlite.DB) (parley.User, parley.Conversation) {
	t.Helper()
	a, err := db.CreateUser(t.Context(), "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.CreateUser(t.Context(), "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := db.CreateDirect(t.Context(), a.ID, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	return a, conv
}

func lagSend(t *testing.T, db *sqlite.DB, u parley.User, conv parley.Conversation, text string) parley.Message {
	t.Helper()
	m, _, err := db.SendMessage(t.Context(), parley.NewMessage{ConversationID: conv.ID, SenderID: u.ID,
		ClientID: text, Type: parley.Text, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lagSearch(t *testing.T, db *sqlite.DB, u parley.User, query string) []string {
	t.Helper()
	terms, err := parley.SearchTerms(query)
	if err != nil {
		t.Fatal(err)
	}
	p, err := db.Search(t.Context(), u.ID, parley.SearchQuery{Terms: terms})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range p.Results {
		ids = append(ids, r.Message.ID)
	}
	return ids
}

// sendAtOnce sends n texts "word i" from a to conv concurrently (fewer
// commits than one after the other) and waits for all of them.
func sendAtOnce(t *testing.T, db *sqlite.DB, a parley.User, conv parley.Conversation, word string, n int) {
	t.Helper()
	errs := make(chan error, n)
	for i := range n {
		go func() { // owner: sendAtOnce, which waits for every one below
			text := fmt.Sprintf("%s %d", word, i)
			_, _, err := db.SendMessage(t.Context(), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID,
				ClientID: text, Type: parley.Text, Text: text})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func indexLag(t *testing.T, db *sqlite.DB) (upto, last int64) {
	t.Helper()
	upto, last, err := sqlite.IndexLag(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return upto, last
}

// TestIndexStepSlices: an index step inserts its messages IndexSlice
// rowids per statement and lets other goroutines run between statements
// (with one P, one statement of thousands of rows held it for tens of
// milliseconds), all in one transaction: every message is indexed once.
func TestIndexStepSlices(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "parley.db"))
	manualIndex(t, db)
	a, conv := lagUsers(t, db)
	upto0, before := indexLag(t, db)
	// Sent concurrently (fewer commits): rowids come in one run after
	// before, whatever their order.
	n := 2*sqlite.IndexSlice + 10
	sendAtOnce(t, db, a, conv, "kilo", n)
	yields, err := sqlite.CountYields(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	writes, err := sqlite.CountIndexWrites(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlite.SyncIndex(ctx, db); err != nil {
		t.Fatal(err)
	}
	upto, last := indexLag(t, db)
	if upto != last || last-before != int64(n) {
		t.Fatalf("indexed up to %d of %d (%d sent after %d)", upto, last, n, before)
	}
	// The step covered (upto0, last]: one statement per slice, a yield
	// between each two, and one after each merge piece that wrote (the
	// first after a slice flushes its rows: TestIndexMergeSteps).
	rows := last - upto0
	slices := (rows + sqlite.IndexSlice - 1) / sqlite.IndexSlice
	if got, want := yields.Load(), slices-1+int64(writes.Merges); got != want {
		t.Fatalf("%d yields in the index step of %d rows, want %d (one between each %d, one after each of %d merge pieces)",
			got, rows, want, sqlite.IndexSlice, writes.Merges)
	}
	if got := lagSearch(t, db, a, "kilo"); len(got) == 0 {
		t.Fatal("search found none of the indexed messages")
	}
}

// TestIndexStepGivesWay: a send queued during the batcher's index step
// waits for one slice of it, not for all of it: the step commits what it
// indexed and the batcher runs the send's batch before it indexes the
// rest (with one P a step of indexRows held every send for 15-50 ms, the
// p99 of acks at 1800 sends/s). Every message is still indexed once.
func TestIndexStepGivesWay(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "parley.db"))
	manualIndex(t, db)
	a, conv := lagUsers(t, db)
	_, before := indexLag(t, db)
	n := 4 * sqlite.IndexSlice
	sendAtOnce(t, db, a, conv, "lima", n)
	sent := make(chan error, 1)
	steps, err := sqlite.StepIndexWhenQueued(ctx, db, 0, func() {
		go func() { // owner: this test, which waits for it (sent)
			_, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID,
				ClientID: "mike", Type: parley.Text, Text: "mike lima"})
			sent <- err
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	// The send's batch ran between the step's first slice and the rest:
	// two index transactions. Without giving way, one (the send waited
	// for all four slices).
	if got := steps(); got != 2 {
		t.Fatalf("%d index transactions for %d messages with a send queued after the first slice, want 2", got, n)
	}
	if err := sqlite.SyncIndex(ctx, db); err != nil {
		t.Fatal(err)
	}
	upto, last := indexLag(t, db)
	if upto != last || last-before != int64(n+1) {
		t.Fatalf("indexed up to %d of %d (%d sent after %d)", upto, last, n+1, before)
	}
	if got := lagSearch(t, db, a, "mike"); len(got) != 1 {
		t.Fatalf("search found %d messages of the send that came during the step, want 1", len(got))
	}
}

// TestIndexMergeSteps: FTS5 merges the index's segments in the index
// steps' own bounded pieces, not inside the statement that writes a
// slice (with automerge, the flush of a slice merged up to 64 pages per
// level in that one call, which no yield splits: up to 16 ms of CPU with
// one P). Over many steps the segments stay few (every level below
// FTS5's usermerge, 4, but the one the last slice wrote to) and every
// message is found exactly once.
func TestIndexMergeSteps(t *testing.T) {
	ctx := t.Context()
	db := open(t, filepath.Join(t.TempDir(), "parley.db"))
	manualIndex(t, db)
	a, conv := lagUsers(t, db)
	writes, err := sqlite.CountIndexWrites(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	const steps, perStep = 24, 4 * sqlite.IndexSlice
	for i := range steps {
		errs := make(chan error, perStep)
		for k := range perStep {
			go func() { // owner: this loop, which waits for every one below
				m := i*perStep + k
				text := fmt.Sprintf("oscar w%d papa%d quebec%d romeo", m, m%61, m%7)
				_, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID,
					ClientID: text, Type: parley.Text, Text: text})
				errs <- err
			}()
		}
		for range perStep {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if err := sqlite.SyncIndex(ctx, db); err != nil {
			t.Fatal(err)
		}
	}

	// Every message once: the index's rowids for a word of every text
	// are the messages' rowids.
	var indexed, stored, distinct int
	if err := sqlite.QueryRead(ctx, db, `SELECT count(*), count(DISTINCT rowid) FROM messages_fts WHERE messages_fts MATCH 'text:romeo'`, &indexed, &distinct); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.QueryRead(ctx, db, `SELECT count(*) FROM messages WHERE text LIKE 'oscar %'`, &stored); err != nil {
		t.Fatal(err)
	}
	if indexed != steps*perStep || distinct != indexed || stored != indexed {
		t.Fatalf("index holds %d rows (%d distinct) for %d stored messages, want %d", indexed, distinct, stored, steps*perStep)
	}
	if got := lagSearch(t, db, a, fmt.Sprint("w", steps*perStep/3)); len(got) != 1 {
		t.Fatalf("search for one message found %d", len(got))
	}

	// The segments: FTS5's structure record lists them by level.
	levels, err := sqlite.FTSLevels(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var counts []int
	total := 0
	for lvl, l := range levels {
		n := len(l.Segments)
		counts, total = append(counts, n), total+n
		// Level 0 may hold the last slice's segment on top of 3; a level
		// being merged into the next may hold what is left of its inputs.
		if n > 4 || (lvl > 0 && n-l.Merge > 3) {
			t.Errorf("level %d holds %d segments (%d being merged; levels %v): not merged", lvl, n, l.Merge, counts)
		}
	}
	// What one statement wrote, in leaf pages: a slice's own segment is
	// a few pages, a merge piece about mergePages (16) and the rest of a
	// term's doclist; automerge wrote 64 pages per level in a slice's
	// flush, and changed segments the slice did not write.
	const bound = 40
	t.Logf("%d segments in %d levels %v; most leaf pages written by one slice %d, by one merge piece %d (%d pieces); slices that merged %d",
		total, len(levels), counts, writes.MaxSlice, writes.MaxMerge, writes.Merges, writes.SliceMerged)
	if writes.SliceMerged > 0 {
		t.Errorf("%d slices of %d merged segments inside their statement, want 0", writes.SliceMerged, steps*perStep/sqlite.IndexSlice)
	}
	if writes.MaxSlice > bound || writes.MaxMerge > bound {
		t.Errorf("one statement of an index step wrote %d leaf pages (a slice) or %d (a merge piece), want at most %d",
			writes.MaxSlice, writes.MaxMerge, bound)
	}
	if writes.Merges == 0 {
		t.Error("no merge piece did work")
	}
}
