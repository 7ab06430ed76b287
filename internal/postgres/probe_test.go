package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
)

// TestSendProbeOnlyAfterResend: a batch of sends assumed new reads no
// stored message (before, its check looked up every send's client id in
// messages); a resend among new sends costs its batch a second run (a
// miss), is answered with the stored message and no event, and the
// batches after it probe again. Counted from the batch transactions' own
// statistics (pg_stat_get_xact_numscans: scans of messages and of its
// indexes in the transaction so far).
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
		err := tx.QueryRow(ctx, `SELECT pg_stat_get_xact_numscans('messages'::regclass) + (SELECT COALESCE(sum(pg_stat_get_xact_numscans(indexrelid)), 0)::bigint
			FROM pg_index WHERE indrelid = 'messages'::regclass)`).Scan(&n)
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
			t.Errorf("a batch of new sends scanned messages %d times: want 0 (no probe before a resend)", n)
		}
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

	sendAll(batch(40, 20))
	probed := false
	for _, n := range taken() {
		probed = probed || n > 0
	}
	if !probed {
		t.Error("the batches after a resend did not probe")
	}
	var stored int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&stored); err != nil || stored != 59 {
		t.Errorf("%d messages stored (%v): want 59 (one was a resend)", stored, err)
	}
}
