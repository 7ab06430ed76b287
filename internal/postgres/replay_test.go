package postgres

import (
	"fmt"
	"math"
	"testing"

	"github.com/parleychat/parley"
)

// TestReplayReadsBounded: a read of a user's events past a run of 5,000
// events hidden from them (a user they blocked) reads about
// parley.ReplayScan rows of events, not the run, in both of its
// statements (plans of EXPLAIN ANALYZE on an analyzed schema); the same
// events statement left unbounded reads the whole run, so the count
// would show a scan of it.
func TestReplayReadsBounded(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	ids, g := analyzedGroup(t, db, 3) // reader ids[1], blocked ids[2]
	reader, blocked := ids[1], ids[2]
	if _, err := db.Block(ctx, reader, blocked); err != nil {
		t.Fatal(err)
	}
	other, _, err := db.CreateGroup(ctx, ids[0], "other", []string{reader})
	if err != nil {
		t.Fatal(err)
	}
	from, err := db.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const run = 5000
	var nms []parley.NewMessage
	for i := range run {
		nms = append(nms, parley.NewMessage{ConversationID: g.ID, SenderID: blocked, ClientID: fmt.Sprint("h", i), Type: parley.Text, Text: "hidden"})
		if i%10 == 0 { // the other group's messages, visible, among them
			nms = append(nms, parley.NewMessage{ConversationID: other.ID, SenderID: ids[0], ClientID: fmt.Sprint("v", i), Type: parley.Text, Text: "seen"})
		}
	}
	db.SendMessages(ctx, nms, func(i int, _ parley.Message, _ []parley.Event, err error) {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	})
	if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}

	// The other group's messages fill a page of 16 within its first 170
	// events: read past the hidden run only as far as that.
	const limit, scan = 16, parley.ReplayScan
	var through *int64
	if err := db.pool.QueryRow(ctx, dialect{}.ReplayBoundSQL(), reader, from, limit, 0, scan).Scan(&through); err != nil {
		t.Fatal(err)
	}
	if through == nil {
		t.Fatal("no bound over a run of 5000 hidden events")
	}
	rows := func(q string, args ...any) float64 {
		t.Helper()
		return rowsRead(t, explainAnalyze(t, db, q, args...), "events")
	}
	bound, upTo, all := rows(dialect{}.ReplayBoundSQL(), reader, from, limit, 0, scan),
		rows(dialect{}.EventsForSQL(), reader, from, limit, 0, *through), rows(dialect{}.EventsForSQL(), reader, from, limit, 0, int64(math.MaxInt64))
	t.Logf("rows of events read: the bound %v, the events up to it %v, the events unbounded %v", bound, upTo, all)
	if n := bound; n > 2*scan+2*limit*10 {
		t.Errorf("the bound read %v rows of events, want at most %d (two scans of one window)", n, 2*scan+2*limit*10)
	}
	if n := upTo; n > scan+limit*10 {
		t.Errorf("the events up to the bound read %v rows of events, want at most %d", n, scan+limit*10)
	}
	if n := all; n < run {
		t.Errorf("unbounded, the events statement read %v rows of events: fewer than the run (%d), so the counts above prove nothing", n, run)
	}
}
