package batchq

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

type testOp struct {
	id        int
	cancelled atomic.Bool
	claimed   atomic.Bool
	done      chan error
}

func (o *testOp) Cancel() bool {
	if o.claimed.Load() {
		return false
	}
	return o.cancelled.CompareAndSwap(false, true)
}
func (o *testOp) Done() <-chan error { return o.done }

func newOps(n int) []*testOp {
	ops := make([]*testOp, n)
	for i := range ops {
		ops[i] = &testOp{id: i, done: make(chan error, 1)}
	}
	return ops
}

// TestOrderAndResults: ops reach the queue in order and each is answered
// with its own result, in order.
func TestOrderAndResults(t *testing.T) {
	var mu sync.RWMutex
	closed := false
	ch := make(chan *testOp)
	ops := newOps(5)
	go func() { // the batcher: fails op 2 alone
		for want := range 5 {
			o := <-ch
			if o.id != want {
				t.Errorf("queued op %d, want %d", o.id, want)
			}
			o.claimed.Store(true)
			if o.id == 2 {
				o.done <- errors.New("op 2 failed")
			} else {
				o.done <- nil
			}
		}
	}()
	var got []int
	EnqueueMany(context.Background(), &mu, &closed, ch, errors.New("closed"), ops, func(i int, err error) {
		got = append(got, i)
		if (err != nil) != (i == 2) {
			t.Errorf("op %d answered %v", i, err)
		}
	})
	if len(got) != 5 || got[0] != 0 || got[4] != 4 {
		t.Fatalf("answered %v, want 0..4 in order", got)
	}
}

// TestClosed: a closed queue answers every op with the closed error.
func TestClosed(t *testing.T) {
	var mu sync.RWMutex
	closed := true
	errClosed := errors.New("closed")
	n := 0
	EnqueueMany(context.Background(), &mu, &closed, make(chan *testOp), errClosed, newOps(3), func(i int, err error) {
		if !errors.Is(err, errClosed) {
			t.Errorf("op %d: %v, want the closed error", i, err)
		}
		n++
	})
	if n != 3 {
		t.Fatalf("%d answers, want 3", n)
	}
}

// TestCancelDropsSuffix: when ctx ends after the batcher claimed and
// answered the first two ops, those two get their results and the rest are
// cancelled, so none of them runs: no op after a dropped one runs.
func TestCancelDropsSuffix(t *testing.T) {
	var mu sync.RWMutex
	closed := false
	ch := make(chan *testOp, 10)
	ops := newOps(5)
	ctx, cancel := context.WithCancel(context.Background())
	for _, o := range ops[:2] {
		o.claimed.Store(true)
		o.done <- nil
	}
	answered := make([]error, 5)
	EnqueueMany(ctx, &mu, &closed, ch, errors.New("closed"), ops, func(i int, err error) {
		answered[i] = err
		if i == 0 {
			cancel()
		}
	})
	for i, err := range answered {
		if want := i >= 2; (err != nil) != want || want && !errors.Is(err, context.Canceled) {
			t.Errorf("op %d answered %v", i, err)
		}
		if ops[i].cancelled.Load() != (i >= 2) {
			t.Errorf("op %d cancelled: %v", i, ops[i].cancelled.Load())
		}
	}
}

// TestInOrder: refused items are answered in their place between the
// queued ones' answers.
func TestInOrder(t *testing.T) {
	no := errors.New("refused")
	pre := []error{no, nil, no, no, nil, nil, no}
	var got []int
	InOrder(pre, func(answer func(int, error)) {
		for k := range 3 {
			answer(k, nil)
		}
	}, func(i int, err error) {
		got = append(got, i)
		if !errors.Is(err, pre[i]) {
			t.Errorf("item %d answered %v, want %v", i, err, pre[i])
		}
	})
	if len(got) != len(pre) {
		t.Fatalf("answered %v", got)
	}
	for i, g := range got {
		if g != i {
			t.Fatalf("answered %v, want 0..6 in order", got)
		}
	}
}

// TestInOrderLater: when run answers after it returned (as with
// EnqueueManyAsync), every item is still answered once, in order: the
// refused items after the last queued one go with its answer, and with
// no item queued every item is answered before run.
func TestInOrderLater(t *testing.T) {
	no := errors.New("refused")
	for _, pre := range [][]error{{no, nil, no, nil, no, no}, {no, no}} {
		var got []int
		var answer func(int, error) // kept by run, called after it returned
		queued := 0
		InOrder(pre, func(a func(int, error)) {
			answer = a
			for _, err := range pre {
				if err == nil {
					queued++
				}
			}
		}, func(i int, err error) {
			got = append(got, i)
			if !errors.Is(err, pre[i]) {
				t.Errorf("item %d answered %v, want %v", i, err, pre[i])
			}
		})
		if queued == 0 && len(got) != len(pre) {
			t.Errorf("%v: nothing queued, answered %v at once", pre, got)
		}
		if queued > 0 && len(got) != 0 {
			t.Errorf("%v: answered %v before any queued item was", pre, got)
		}
		later := make([]func(), queued)
		for k := range later {
			later[k] = func() { answer(k, nil) }
		}
		for _, f := range later {
			f()
		}
		if !slices.Equal(got, []int{0, 1, 2, 3, 4, 5}[:len(pre)]) {
			t.Errorf("%v: answered %v, want every item in order", pre, got)
		}
	}
}
