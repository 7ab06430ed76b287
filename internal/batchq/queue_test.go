package batchq

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type queueOp struct {
	Ticket
	id int
}

// runBatcher is a batcher for q that claims every op and answers it nil
// (op 1: fail); the channel is closed when it has stopped (q closed).
func runBatcher(t *testing.T, q *Queue[*queueOp], fail error) <-chan struct{} {
	batcher := make(chan struct{})
	go func() { // owner: the test, which closes q and waits for batcher
		defer close(batcher)
		for o := range q.Ops() {
			if !o.Claim() {
				t.Errorf("op %d: not claimable", o.id)
			}
			if o.id == 1 {
				o.Answer(fail)
			} else {
				o.Answer(nil)
			}
		}
	}()
	return batcher
}

// TestQueueAnswers: the batcher takes ops in order, claims and answers
// them; Enqueue returns each op's own answer.
func TestQueueAnswers(t *testing.T) {
	q := NewQueue[*queueOp](4)
	boom := errors.New("boom")
	batcher := runBatcher(t, q, boom)
	for id, want := range []error{nil, boom, nil} {
		if err := q.Enqueue(t.Context(), &queueOp{id: id}); !errors.Is(err, want) {
			t.Errorf("op %d: %v, want %v", id, err, want)
		}
	}
	q.Close()
	<-batcher
	if err := q.Enqueue(t.Context(), &queueOp{id: 9}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	q.Close() // again: no panic
}

// TestQueueCancelWhileQueued: an op its caller gives up on before the
// batcher claims it is dropped: Enqueue returns the context's error and
// the batcher cannot claim it.
func TestQueueCancelWhileQueued(t *testing.T) {
	q := NewQueue[*queueOp](4)
	ctx, cancel := context.WithCancel(t.Context())
	o := &queueOp{id: 1}
	done := make(chan error)
	go func() { done <- q.Enqueue(ctx, o) }()
	queued := <-q.Ops() // taken, not claimed
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue: %v, want context.Canceled", err)
	}
	if queued.Claim() {
		t.Fatal("the batcher claimed an op its caller cancelled")
	}
}

// TestQueueAsync: EnqueueManyAsync returns once the ops are queued; the
// batcher answers each through the callback, in order, on its own
// goroutine; after Close every op is answered ErrClosed at once.
func TestQueueAsync(t *testing.T) {
	q := NewQueue[*queueOp](1) // smaller than the run: queueing waits for the batcher
	boom := errors.New("boom")
	batcher := runBatcher(t, q, boom)
	ops := []*queueOp{{id: 0}, {id: 1}, {id: 2}}
	answers := make(chan error, len(ops))
	next := 0
	q.EnqueueManyAsync(ops, nil, func(i int, err error) {
		if i != next {
			t.Errorf("answer for op %d, want op %d", i, next)
		}
		next++
		answers <- err
	})
	for i, want := range []error{nil, boom, nil} {
		if err := <-answers; !errors.Is(err, want) {
			t.Errorf("op %d: %v, want %v", i, err, want)
		}
	}
	q.Close()
	<-batcher
	var closed []error
	q.EnqueueManyAsync([]*queueOp{{id: 8}, {id: 9}}, nil, func(i int, err error) { closed = append(closed, err) })
	if len(closed) != 2 || !errors.Is(closed[0], ErrClosed) || !errors.Is(closed[1], ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed twice before EnqueueManyAsync returned", closed)
	}
}

// TestQueueAsyncOutOfOrder: a batcher that answers a run's ops out of
// order, from goroutines of its own (the PostgreSQL batcher's lanes),
// still has them handed to done in order, one at a time.
func TestQueueAsyncOutOfOrder(t *testing.T) {
	q := NewQueue[*queueOp](8)
	ops := []*queueOp{{id: 0}, {id: 1}, {id: 2}, {id: 3}}
	var got []int // appended by done only: the race detector checks it is called one at a time
	all := make(chan struct{})
	q.EnqueueManyAsync(ops, nil, func(i int, err error) {
		got = append(got, i)
		if len(got) == len(ops) {
			close(all)
		}
	})
	taken := make([]*queueOp, len(ops))
	for i := range taken {
		taken[i] = <-q.Ops()
		taken[i].Claim()
	}
	var wg sync.WaitGroup
	for _, i := range []int{3, 1, 2, 0} { // answered back to front, at once
		wg.Go(func() { taken[i].Answer(nil) })
	}
	wg.Wait()
	<-all
	if !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Errorf("answers handed over as %v, want 0, 1, 2, 3", got)
	}
	q.Close()
}

// TestStageQueuedNeverNegative: an op queued after its batch began (the
// PostgreSQL batcher fills its batch once it holds the lock) is observed
// as having waited 0, not a negative time; one queued before, the time
// from its queueing to the batch's start.
func TestStageQueuedNeverNegative(t *testing.T) {
	var h Hooks
	var got []time.Duration
	h.SetStageObserver(func(s Stage, d time.Duration) {
		if s == StageQueued {
			got = append(got, d)
		}
	})
	start := time.Now()
	early, late := &queueOp{id: 0}, &queueOp{id: 1}
	early.at, late.at = start.Add(-3*time.Millisecond), start.Add(5*time.Millisecond)
	early.done, late.done = make(chan error, 1), make(chan error, 1)
	evs := h.Begin()
	Committed(&h, &evs, []*queueOp{early, late}, make([]error, 2), start, start.Add(time.Millisecond), func(err error) error { return err })
	if want := []time.Duration{3 * time.Millisecond, 0}; !slices.Equal(got, want) {
		t.Errorf("queued stages %v, want %v", got, want)
	}
}

// TestQueueAsyncDrop: an op of EnqueueManyAsync claimed once its drop is
// set is not claimed but answered parley.ErrSendDropped by Claim, in its
// place among the run's answers; one claimed before is the batcher's to
// run and answer.
func TestQueueAsyncDrop(t *testing.T) {
	q := NewQueue[*queueOp](4)
	var drop atomic.Bool
	ops := []*queueOp{{id: 0}, {id: 1}, {id: 2}}
	var got []error // appended by done, which the test's own goroutine runs
	q.EnqueueManyAsync(ops, &drop, func(i int, err error) {
		if i != len(got) {
			t.Errorf("answer for op %d, want op %d", i, len(got))
		}
		got = append(got, err)
	})
	first := <-q.Ops()
	if !first.Claim() {
		t.Fatal("op 0 not claimable before drop was set")
	}
	drop.Store(true)
	for range 2 {
		if o := <-q.Ops(); o.Claim() {
			t.Errorf("op %d claimed after drop was set", o.id)
		}
	}
	first.Answer(nil)
	if len(got) != 3 || got[0] != nil || !errors.Is(got[1], parley.ErrSendDropped) || !errors.Is(got[2], parley.ErrSendDropped) {
		t.Errorf("answers %v, want nil then ErrSendDropped twice", got)
	}
}
