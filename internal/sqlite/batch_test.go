package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"unsafe"

	"github.com/parleychat/parley"
)

// White-box tests of the batcher: they hold a batch open with an op that
// blocks, so the ops queued behind it deterministically share the next
// batch.

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "batch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// blockBatcher queues an op that blocks the batcher until release is
// called; release waits for that op's call to return.
func blockBatcher(t *testing.T, db *DB) (release func()) {
	t.Helper()
	running, unblock := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := db.b.do(context.Background(), func(*writeTx) error {
			close(running)
			<-unblock
			return nil
		})
		if err != nil {
			t.Errorf("blocking op: %v", err)
		}
	})
	<-running
	return func() { close(unblock); wg.Wait() }
}

// waitQueued waits until n ops are in the queue (channel length is what
// the batcher will take next).
func waitQueued(db *DB, n int) {
	for len(db.b.queue.Ops()) < n {
		// The queue is filled by goroutines just started; yield until
		// they got there.
		runtime.Gosched()
	}
}

func TestCancelWhileQueued(t *testing.T) {
	db := openTest(t)
	release := blockBatcher(t, db)

	ctx, cancel := context.WithCancel(t.Context())
	ran := false
	done := make(chan error, 1)
	go func() {
		done <- db.b.do(ctx, func(*writeTx) error { ran = true; return nil })
	}()
	waitQueued(db, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("do with a context cancelled while queued = %v, want context.Canceled", err)
	}
	release()
	// One more op through the batcher: the cancelled one was taken and
	// dropped before it.
	if err := db.b.do(t.Context(), func(*writeTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("an op cancelled while queued ran anyway")
	}
}

func TestFailedOpRollsBackAlone(t *testing.T) {
	db := openTest(t)
	release := blockBatcher(t, db)

	var (
		wg             sync.WaitGroup
		failErr, okErr error
		failPos, okPos int64
		boom           = parley.Errorf(parley.EINVALID, "boom")
	)
	wg.Go(func() {
		failErr = db.b.do(t.Context(), func(w *writeTx) error {
			if _, err := w.exec(qTestInsertUser, "u-fail", "failing", nil, nil, 1); err != nil {
				return err
			}
			failPos = w.NextPos(0)
			return boom
		})
	})
	waitQueued(db, 1)
	wg.Go(func() {
		okErr = db.b.do(t.Context(), func(w *writeTx) error {
			okPos = w.NextPos(0)
			_, err := w.exec(qTestInsertUser, "u-ok", "kept", nil, nil, 1)
			return err
		})
	})
	waitQueued(db, 2)
	batchesBefore := db.Stats().Batches
	release()
	wg.Wait()

	if failErr != boom || okErr != nil {
		t.Fatalf("errors = %v, %v; want boom, nil", failErr, okErr)
	}
	if got := db.Stats().Batches - batchesBefore; got != 2 {
		// The blocking op's batch, then one batch with both ops.
		t.Errorf("%d batches committed, want 2", got)
	}
	// The failed op's position went back: the next op got the same one.
	if failPos != 1 || okPos != 1 {
		t.Errorf("positions: failed op %d, next op %d; want 1 and 1", failPos, okPos)
	}
	if _, err := db.User(t.Context(), "u-fail"); !errors.Is(err, parley.ErrNotFound) {
		t.Errorf("the failed op's write is visible: %v", err)
	}
	if _, err := db.User(t.Context(), "u-ok"); err != nil {
		t.Errorf("the op batched with a failed one was lost: %v", err)
	}
}

func TestDoAfterClose(t *testing.T) {
	db := openTest(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.b.do(t.Context(), func(*writeTx) error { return nil })
	if parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Errorf("do after Close = %v, want unavailable", err)
	}
}

// TestAudienceCacheRollback: a membership change rolled back must not
// leave its members in the audience cache.
func TestAudienceCacheRollback(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	var users []parley.User
	for _, name := range []string{"anna", "bert", "cleo"} {
		u, err := db.CreateUser(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	a, b, c := users[0], users[1], users[2]
	conv, _, err := db.CreateGroup(ctx, a.ID, "G", []string{b.ID})
	if err != nil {
		t.Fatal(err)
	}
	boom := parley.Errorf(parley.EINVALID, "boom")
	err = db.b.do(ctx, func(w *writeTx) error {
		// As the core's join does.
		w.MembersChanged(conv.ID)
		if _, err := w.exec(qTestInsertMember, conv.ID, c.ID, w.NextPos(0)); err != nil {
			return err
		}
		if ids, err := w.Audience(conv.ID); err != nil || len(ids) != 3 {
			t.Errorf("audience inside the op = %v, %v; want 3 members", ids, err)
		}
		return boom
	})
	if err != boom {
		t.Fatalf("do = %v, want boom", err)
	}
	_, events, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: "x", Type: parley.Text, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if got := events[0].Audience; len(got) != 2 || slices.Contains(got, c.ID) {
		t.Errorf("audience after a rolled-back join = %v, want a and b", got)
	}
}

// TestFlushFailureRetriesAlone: when the multi-row writes of a batch fail
// (here a deferred op leaves a row that breaks a unique key: the id of a
// stored message; since 00017 messages have no foreign keys), the batch
// runs again with every op writing at once, so only the op at fault fails,
// and positions stay dense.
func TestFlushFailureRetriesAlone(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	a, _, conv := annaAndBert(t, db)
	send := func(id string) (parley.Message, []parley.Event, error) {
		return db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: id, Type: parley.Text, Text: id})
	}
	stored, _, err := send("stored")
	if err != nil {
		t.Fatal(err)
	}
	head, err := db.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release := blockBatcher(t, db)

	var (
		wg                sync.WaitGroup
		firstErr, lastErr error
		badErr            error
		firstEvs, lastEvs []parley.Event
		retriesBefore     = db.Stats().Retries
		first, last       parley.Message
	)
	wg.Go(func() { first, firstEvs, firstErr = send("first") })
	waitQueued(db, 1)
	wg.Go(func() {
		badErr = db.b.doDeferred(ctx, [2]string{}, func(w *writeTx) error {
			m := &parley.Message{ID: stored.ID, ConversationID: conv.ID, Seq: 1 << 40, SenderID: a.ID,
				ClientID: "bad", Type: parley.Text, Text: "x", CreatedAt: parley.Now()}
			e := &parley.Event{Pos: w.NextPos(0), Type: parley.EventNewMessage, ConversationID: m.ConversationID,
				UserID: a.ID, At: m.CreatedAt}
			w.addSend(m, nil, e)
			if w.noDefer {
				return w.flush()
			}
			return nil
		})
	})
	waitQueued(db, 2)
	wg.Go(func() { last, lastEvs, lastErr = send("last") })
	waitQueued(db, 3)
	release()
	wg.Wait()

	if firstErr != nil || lastErr != nil {
		t.Fatalf("sends batched with a failing op: %v, %v", firstErr, lastErr)
	}
	if badErr == nil {
		t.Fatal("the op breaking a unique key succeeded")
	}
	if got := db.Stats().Retries - retriesBefore; got != 1 {
		t.Errorf("%d batches retried, want 1", got)
	}
	if first.Seq+1 != last.Seq || firstEvs[0].Pos != head+1 || lastEvs[0].Pos != head+2 {
		t.Errorf("seqs %d, %d and positions %d, %d; want consecutive after head %d",
			first.Seq, last.Seq, firstEvs[0].Pos, lastEvs[0].Pos, head)
	}
	evs, err := db.Events(ctx, head, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Message.ID != first.ID || evs[1].Message.ID != last.ID {
		t.Errorf("events after the batch = %+v, want the two sends", evs)
	}
}

// TestResendInOneBatch: a send repeated in the batch that stores it (its
// row not written yet) returns the same message and no event; the same
// client id in another conversation is a conflict.
func TestResendInOneBatch(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	a, b, conv := annaAndBert(t, db)
	group, _, err := db.CreateGroup(ctx, a.ID, "G", []string{b.ID})
	if err != nil {
		t.Fatal(err)
	}
	release := blockBatcher(t, db)
	type result struct {
		m      parley.Message
		events []parley.Event
		err    error
	}
	results := make([]result, 4)
	var wg sync.WaitGroup
	queued := 0
	for i, c := range []string{conv.ID, conv.ID, group.ID, conv.ID} {
		wg.Go(func() {
			r := &results[i]
			r.m, r.events, r.err = db.SendMessage(ctx, parley.NewMessage{ConversationID: c, SenderID: a.ID, ClientID: "same", Type: parley.Text, Text: "hi"})
		})
		queued++
		waitQueued(db, queued)
		if i == 2 {
			// Another kind of write writes the sends' rows before it
			// runs: the last resend finds the row in the table.
			wg.Go(func() {
				if _, err := db.MarkRead(ctx, b.ID, conv.ID, 1); err != nil {
					t.Error(err)
				}
			})
			queued++
			waitQueued(db, queued)
		}
	}
	before := db.Stats()
	release()
	wg.Wait()
	after := db.Stats()
	if got := after.Batches - before.Batches; got != 2 {
		t.Errorf("%d batches, want 2 (the blocking op's, then the others)", got)
	}
	if after.Retries != before.Retries {
		t.Errorf("the batch was retried: a resend was taken for a new message")
	}
	if late := results[3]; late.err != nil || late.m.ID != results[0].m.ID || len(late.events) != 0 {
		t.Errorf("resend after a flush = %+v, %d events, %v; want the first message, no event", late.m, len(late.events), late.err)
	}
	first, again, other := results[0], results[1], results[2]
	if first.err != nil || again.err != nil {
		t.Fatalf("send, resend: %v, %v", first.err, again.err)
	}
	if len(first.events) != 1 || len(again.events) != 0 || again.m.ID != first.m.ID || again.m.Seq != first.m.Seq {
		t.Errorf("resend in the same batch = %+v with %d events; want %+v with none", again.m, len(again.events), first.m)
	}
	if parley.ErrorCode(other.err) != parley.ECONFLICT {
		t.Errorf("same client id in another conversation = %v, want conflict", other.err)
	}
	page, err := db.Messages(ctx, a.ID, conv.ID, parley.MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 1 {
		t.Errorf("%d messages stored, want 1", len(page.Messages))
	}
}

// annaAndBert creates the users anna and bert and their direct
// conversation.
func annaAndBert(t testing.TB, db *DB) (a, b parley.User, conv parley.Conversation) {
	t.Helper()
	ctx := context.Background()
	var err error
	if a, err = db.CreateUser(ctx, "anna", nil); err != nil {
		t.Fatal(err)
	}
	if b, err = db.CreateUser(ctx, "bert", nil); err != nil {
		t.Fatal(err)
	}
	if conv, _, err = db.CreateDirect(ctx, a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	return a, b, conv
}

// AnnaAndBert is annaAndBert for package sqlite_test.
var AnnaAndBert = annaAndBert

// The rows these tests write by hand.
const (
	qTestInsertUser   = `INSERT INTO users (id, name, name_key, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)`
	qTestInsertMember = `INSERT INTO members (conversation_id, user_id, joined_pos, read_seq) VALUES ($1, $2, $3, 0)`
)

// TestPendingReused: the rows of a batch's sends go through the
// batcher's buffers, kept from batch to batch: a batch of as many sends
// as the last one appends to the same arrays (no growth from nothing,
// no maps made again), and after the batch the buffers hold nothing
// (no message kept alive). It measures the bytes a batch allocates as
// well: without the reuse each batch of 500 grew ~0.7 MB of slices and
// maps again.
func TestPendingReused(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	u, err := db.CreateUser(ctx, "pending", nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := db.CreateGroup(ctx, u.ID, "G", nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	batch := func(round int) (bytes, mallocs uint64) {
		nms := make([]parley.NewMessage, n)
		for i := range nms {
			nms[i] = parley.NewMessage{ConversationID: g.ID, SenderID: u.ID, ClientID: fmt.Sprint(round, "-", i), Type: parley.Text, Text: "hi"}
		}
		// One batch: the batcher is held until all n are queued.
		release := blockBatcher(t, db)
		var wg sync.WaitGroup
		wg.Go(func() {
			db.SendMessages(ctx, nms, func(_ int, _ parley.Message, _ []parley.Event, err error) {
				if err != nil {
					t.Error(err)
				}
			})
		})
		waitQueued(db, n)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		release()
		wg.Wait()
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc, after.Mallocs - before.Mallocs
	}
	type bufs struct {
		msgs, events *any
		sent         map[[2]string]*parley.Message
		held         int
	}
	look := func() (b bufs) {
		err := db.b.do(ctx, func(w *writeTx) error {
			p := &w.b.pend
			b = bufs{msgs: unsafe.SliceData(p.msgs[:1]), events: unsafe.SliceData(p.events[:1]), sent: p.sent}
			for _, v := range slices.Concat(p.msgs[:cap(p.msgs)], p.events[:cap(p.events)]) {
				if v != nil {
					b.held++
				}
			}
			b.held += len(p.sent) + len(p.bumps) + len(p.reads)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	batch(0)
	first := look()
	var grown, mallocs uint64
	for round := 1; round <= 3; round++ {
		g, m := batch(round)
		grown, mallocs = max(grown, g), max(mallocs, m)
		b := look()
		if b.msgs != first.msgs || b.events != first.events {
			t.Errorf("batch %d: the message and event rows went to new arrays", round)
		}
		if b.held != 0 {
			t.Errorf("batch %d: the buffers hold %d values after the batch, want none", round, b.held)
		}
	}
	// Each send allocates its message, event and boxed arguments (1.4 kB
	// here); database/sql's []driver.NamedValue for every statement (40
	// bytes an argument, 19 a send) made it 2.1-2.2 kB before the writes
	// ran on the driver's statements (raw.go), and the rows' slices and
	// maps grown again for every batch 3.7 kB before that.
	if perSend := grown / n; perSend > 1700 {
		t.Errorf("a batch of %d sends allocated %d bytes a send", n, perSend)
	}
	// Allocations: 20.4 a send while the batch boxed every send's
	// (sender, client id) as probe arguments even when no probe ran,
	// 17.4 while the message's row and its event boxed the values they
	// share (id, conversation, sender, time) each for itself.
	if perSend := float64(mallocs) / n; perSend > 14.5 {
		t.Errorf("a batch of %d sends made %.1f allocations a send", n, perSend)
	}
	t.Logf("bytes allocated a send: %d; allocations a send: %.1f", grown/n, float64(mallocs)/n)
}

// TestProbeOnlyAfterResend: batches of new sends run no probe of their
// client ids (its statement is never prepared); a batch that resends a
// stored send among new ones is run again with the probe (one miss, no
// retry without deferral): the resend gets the stored message and no
// event, the new sends are stored once, at dense positions. The batches
// after it probe, so a client that keeps resending finds its sends by
// the probe, not by a batch run twice each time.
func TestProbeOnlyAfterResend(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	a, _, conv := annaAndBert(t, db)
	nm := func(id string) parley.NewMessage {
		return parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: id, Type: parley.Text, Text: id}
	}
	probeStmts := func() (n int) {
		if err := db.b.do(ctx, func(w *writeTx) error {
			for _, st := range w.b.multi[multiProbe] {
				if st != nil {
					n++
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// sendBatch sends nms in one batch and returns the results.
	sendBatch := func(nms ...parley.NewMessage) (ms []parley.Message, evs [][]parley.Event) {
		ms, evs = make([]parley.Message, len(nms)), make([][]parley.Event, len(nms))
		release := blockBatcher(t, db)
		var wg sync.WaitGroup
		wg.Go(func() {
			db.SendMessages(ctx, nms, func(i int, m parley.Message, e []parley.Event, err error) {
				if err != nil {
					t.Errorf("send %s: %v", nms[i].ClientID, err)
				}
				ms[i], evs[i] = m, e
			})
		})
		waitQueued(db, len(nms))
		release()
		wg.Wait()
		return ms, evs
	}
	first, _ := sendBatch(nm("a1"), nm("a2"))
	sendBatch(nm("b1"), nm("b2"), nm("b3"))
	if n := probeStmts(); n != 0 {
		t.Errorf("batches of new sends prepared %d probe statements, want none", n)
	}
	before := db.Stats()
	head, err := db.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ms, evs := sendBatch(nm("c1"), nm("a2"), nm("c2"))
	st := db.Stats()
	if st.Misses-before.Misses != 1 || st.Retries != before.Retries {
		t.Errorf("a batch with a resend: %d misses and %d retries, want 1 and 0", st.Misses-before.Misses, st.Retries-before.Retries)
	}
	if ms[1].ID != first[1].ID || len(evs[1]) != 0 {
		t.Errorf("the resend got message %s and %d events, want the stored %s and none", ms[1].ID, len(evs[1]), first[1].ID)
	}
	if len(evs[0]) != 1 || len(evs[2]) != 1 || evs[0][0].Pos != head+1 || evs[2][0].Pos != head+2 {
		t.Errorf("new sends of the batch: events %+v, %+v; want positions %d and %d", evs[0], evs[2], head+1, head+2)
	}
	if ms[2].Seq != ms[0].Seq+1 {
		t.Errorf("seqs %d, %d: want consecutive", ms[0].Seq, ms[2].Seq)
	}
	// Resends again: found by the probe, no batch runs twice.
	for i := range 3 {
		ms, evs := sendBatch(nm(fmt.Sprint("d", i)), nm("a1"))
		if ms[1].ID != first[0].ID || len(evs[1]) != 0 || len(evs[0]) != 1 {
			t.Errorf("batch %d: resend got %s and %d events, want the stored %s; new send %d events", i, ms[1].ID, len(evs[1]), first[0].ID, len(evs[0]))
		}
	}
	if got := db.Stats().Misses - st.Misses; got != 0 {
		t.Errorf("resends while the probe is on: %d misses, want 0", got)
	}
	if probeStmts() == 0 {
		t.Error("no probe after a resend")
	}
	evsAll, err := db.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evsAll {
		if e.Message != nil {
			if seen[e.Message.ClientID] {
				t.Errorf("client id %s stored twice", e.Message.ClientID)
			}
			seen[e.Message.ClientID] = true
		}
	}
	if len(seen) != 10 {
		t.Errorf("%d messages stored, want 10", len(seen))
	}
}
