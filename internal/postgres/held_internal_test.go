package postgres

import (
	"cmp"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
)

// heldRun runs two one-send batches, A and B, on a batcher of its own
// with the given maxHold: A waits before its COMMIT until B is queued,
// so A commits with an op queued (batcher.hold), and check runs on the
// batcher goroutine while B holds the lock, before B's check and write.
// check gets A's answer channel (it must put back what it takes). It
// returns the order of the answers.
func heldRun(t *testing.T, maxHold time.Duration, check func(answered chan string)) []string {
	t.Helper()
	b, _, ann, g := ownBatcher(t, nil)
	b.maxHold = maxHold

	answered := make(chan string, 2)
	send := func(client string) {
		o := newSendOp(parley.NewMessage{ConversationID: g.ID, SenderID: ann.ID, ClientID: client, Type: parley.Text, Text: "hi"}, 1)
		// Async: the answerer itself calls back, in the order it answers.
		b.queue.EnqueueManyAsync([]*op{o}, func(_ int, err error) {
			if err = cmp.Or(err, o.send.err); err != nil {
				t.Errorf("send %s: %v", client, err)
			}
			answered <- client
		})
	}
	var (
		commits int
		aBefore = make(chan struct{}) // batch A is about to commit
		checked = make(chan struct{}) // check has run in batch B
	)
	// beforeCommit and afterLock run on the batcher goroutine.
	b.beforeCommit = func(context.Context, pgx.Tx) {
		if commits++; commits > 1 {
			return
		}
		// Batch A: wait for B to be queued (after A took its ops).
		close(aBefore)
		for range 5000 {
			if len(b.queue.Ops()) > 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Error("send B was never queued")
	}
	b.afterLock = func() {
		if commits == 1 {
			check(answered)
			close(checked)
		}
	}
	send("A")
	<-aBefore
	send("B") // queued as A commits
	<-checked
	var order []string
	for range 2 {
		select {
		case c := <-answered:
			order = append(order, c)
		case <-time.After(20 * time.Second):
			t.Fatalf("answers so far: %v", order)
		}
	}
	return order
}

// TestAnswersWaitForNextWrite: when ops are queued as a batch commits,
// its answers are handed to the answerer only once the next batch sends
// its write (batcher.hold), so they do not take the node's P from the
// next batch's lock and check. While batch B holds the lock, A must
// stay unanswered: the wait for A's answer there is a bound (1 s), as
// before hold A was answered within microseconds of its commit. Both
// sends succeed, A answered first.
func TestAnswersWaitForNextWrite(t *testing.T) {
	early := false
	order := heldRun(t, time.Hour, func(answered chan string) {
		select {
		case c := <-answered:
			early = true
			answered <- c
		case <-time.After(time.Second):
		}
	})
	if early {
		t.Error("batch A was answered while batch B held the lock, before B's write")
	}
	if order[0] != "A" {
		t.Errorf("answered in the order %v, want A first", order)
	}
}

// TestHeldAnswersBounded: answers held for the next batch's write go
// after maxHold even when that batch is stuck before it (here in its
// lock: another node's batches, a stalled node). B waits in its lock for
// A's answer (bound: 20 s, a deadlock detector: nothing is timed).
func TestHeldAnswersBounded(t *testing.T) {
	got := false
	order := heldRun(t, defaultMaxHold, func(answered chan string) {
		select {
		case c := <-answered:
			got = true
			answered <- c
		case <-time.After(20 * time.Second):
		}
	})
	if !got {
		t.Error("batch A was not answered while batch B waited before its write")
	}
	if order[0] != "A" {
		t.Errorf("answered in the order %v, want A first", order)
	}
}

// TestHeldNeverWaitsInTx: a batch never waits for the answerer inside
// its transaction (holding the positions lock, which every node's writes
// need): with the answerer stuck in batch X's answers, batch Z still
// reaches its COMMIT, though Y's answers are held for its write
// (batcher.offerHeld); they go once the answerer is free, X, Y, Z in
// order. The waits are bounds (20 s, deadlock detectors: nothing is
// timed).
func TestHeldNeverWaitsInTx(t *testing.T) {
	b, _, ann, g := ownBatcher(t, nil)
	b.maxHold = time.Hour // only the hand-overs under test
	answered := make(chan string, 3)
	send := func(client string) {
		o := newSendOp(parley.NewMessage{ConversationID: g.ID, SenderID: ann.ID, ClientID: client, Type: parley.Text, Text: "hi"}, 1)
		b.queue.EnqueueManyAsync([]*op{o}, func(_ int, err error) {
			if err = cmp.Or(err, o.send.err); err != nil {
				t.Errorf("send %s: %v", client, err)
			}
			answered <- client
		})
	}
	var (
		stuck    = make(chan struct{}) // closed to free the answerer
		once     bool
		commits  int
		before   = make(chan int, 3) // a batch is about to commit
		zCommits = make(chan struct{})
	)
	b.SetAnswerHooks(func() {
		if !once { // the answerer's goroutine only
			once = true
			select {
			case <-stuck:
			case <-time.After(20 * time.Second):
			}
		}
	}, func() {})
	b.beforeCommit = func(context.Context, pgx.Tx) {
		commits++
		before <- commits
		if commits == 3 {
			close(zCommits)
			return
		}
		// X and Y: wait for the next send to be queued.
		for range 5000 {
			if len(b.queue.Ops()) > 0 {
				return
			}
			time.Sleep(time.Millisecond)
		}
		t.Error("the next send was never queued")
	}
	send("X")
	<-before
	send("Y")
	<-before
	send("Z")
	select {
	case <-zCommits:
	case <-time.After(20 * time.Second):
		t.Error("batch Z did not reach its COMMIT while the answerer was busy")
	}
	close(stuck)
	var order []string
	for range 3 {
		select {
		case c := <-answered:
			order = append(order, c)
		case <-time.After(20 * time.Second):
			t.Fatalf("answers so far: %v", order)
		}
	}
	if fmt.Sprint(order) != "[X Y Z]" {
		t.Errorf("answered in the order %v, want [X Y Z]", order)
	}
}
