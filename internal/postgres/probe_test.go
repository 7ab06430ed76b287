package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
)

// TestSendProbeOnlyAfterResend: a batch of sends assumed new does not
// look up their client ids among the stored messages (before, its check
// did for every send); a resend among new sends costs its batch a second
// run (a miss), is answered with the stored message and no event, and the
// batches after it probe again. Counted by the batcher (probes: bulk
// checks that looked up client ids) and, for the batches that must not
// probe, by their transactions' own statistics too
// (pg_stat_get_xact_numscans of messages' (sender_id, client_id) key,
// the probe's index, in the transaction so far). Whether a probe that runs
// takes that index depends on the table's size and statistics, so the
// scans are not what shows that one ran; nor are scans of messages as a
// whole, which other checks (the events' foreign key to messages) make
// by plans of their own.
func TestSendProbeOnlyAfterResend(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	ids, g := analyzedGroup(t, db, 2)
	var (
		mu    sync.Mutex
		scans []int64 // per batch committed
	)
	db.b.beforeCommit = func(ctx context.Context, tx pgx.Tx) {
		var n int64
		err := tx.QueryRow(ctx, `SELECT pg_stat_get_xact_numscans('messages_sender_id_client_id_key'::regclass)`).Scan(&n)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		scans = append(scans, n)
		mu.Unlock()
	}
	taken := func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		s := scans
		scans = nil
		return s
	}
	type result struct {
		msg    parley.Message
		events []parley.Event
		err    error
	}
	sendAll := func(nms []parley.NewMessage) []result {
		t.Helper()
		res := make([]result, len(nms))
		db.SendMessages(ctx, nms, func(i int, m parley.Message, evs []parley.Event, err error) { res[i] = result{m, evs, err} })
		for i, r := range res {
			if r.err != nil {
				t.Fatalf("send %d: %v", i, r.err)
			}
		}
		return res
	}
	batch := func(from, n int) []parley.NewMessage {
		var nms []parley.NewMessage
		for i := from; i < from+n; i++ {
			nms = append(nms, parley.NewMessage{ConversationID: g.ID, SenderID: ids[i%2], ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: "hi"})
		}
		return nms
	}

	first := sendAll(batch(0, 20))
	for _, n := range taken() {
		if n != 0 {
			t.Errorf("a batch of new sends scanned the client ids' index %d times: want 0 (no probe before a resend)", n)
		}
	}
	if p := db.b.probes.Load(); p != 0 {
		t.Errorf("%d bulk checks looked up client ids before any resend: want 0", p)
	}
	if m := db.b.misses.Load(); m != 0 {
		t.Errorf("%d misses before any resend", m)
	}

	nms := batch(20, 20)
	nms[7] = batch(3, 1)[0] // a resend of a stored send
	res := sendAll(nms)
	if m := db.b.misses.Load(); m != 1 {
		t.Errorf("%d misses after a batch holding a resend: want 1", m)
	}
	if r := res[7]; r.msg.ID != first[3].msg.ID || len(r.events) != 0 {
		t.Errorf("the resend got message %s with %d events: want the stored %s and none", r.msg.ID, len(r.events), first[3].msg.ID)
	}
	for i, r := range res {
		if i != 7 && (r.msg.ID == "" || len(r.events) != 1) {
			t.Errorf("send %d: message %q, %d events: want stored, one event", i, r.msg.ID, len(r.events))
		}
	}
	taken()

	before := db.b.probes.Load()
	sendAll(batch(40, 20))
	if db.b.probes.Load() == before {
		t.Error("the batches after a resend did not probe")
	}
	var stored int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&stored); err != nil || stored != 59 {
		t.Errorf("%d messages stored (%v): want 59 (one was a resend)", stored, err)
	}
}
