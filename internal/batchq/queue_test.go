package batchq

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type queueOp struct {
	Ticket
	id int
}

// TestQueueAnswers: the batcher takes ops in order, claims and answers
// them; Enqueue returns each op's own answer.
func TestQueueAnswers(t *testing.T) {
	q := NewQueue[*queueOp](4)
	boom := errors.New("boom")
	batcher := make(chan struct{})
	go func() { // the batcher: fails op 1 alone
		defer close(batcher)
		for o := range q.Ops() {
			if !o.Claim() {
				t.Errorf("op %d: not claimable", o.id)
			}
			if o.id == 1 {
				o.Answer(boom)
			} else {
				o.Answer(nil)
			}
		}
	}()
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
