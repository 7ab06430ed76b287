package batchq

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley"
)

// ErrClosed answers the ops queued after the store began to close.
var ErrClosed = &parley.Error{Code: parley.EUNAVAILABLE, Message: "store is closed"}

// Ticket is what a queued op's caller and the batcher share: the op's
// state (queued until the batcher claims it or its caller gives up on it)
// and its answer. An engine's op embeds it; Queue sets it up.
type Ticket struct {
	state atomic.Int32
	// done receives the op's error, or the commit's, after the batch is
	// committed or rolled back. Buffered: the batcher never blocks on it.
	// Nil for an op queued by EnqueueManyAsync, which is answered
	// through cb instead.
	done chan error
	// cb, with i, answers an op queued by EnqueueManyAsync: the batcher
	// calls cb(i, err) itself.
	cb func(i int, err error)
	i  int
	// drop, for an op queued by EnqueueManyAsync, is its caller's: once
	// set, Claim answers the op parley.ErrSendDropped instead of
	// claiming it. Nil: never.
	drop *atomic.Bool
	// at is when the op was queued (StageQueued).
	at time.Time
}

const (
	queued int32 = iota
	claimed
	cancelled
)

// Claim marks the op claimed by the batcher, unless its caller cancelled
// it first, or dropped it (the drop of EnqueueManyAsync is set): then
// Claim answers it parley.ErrSendDropped itself, on the batcher's
// goroutine, as the batcher would answer it. The batcher runs the op only
// when Claim reports true.
func (t *Ticket) Claim() bool {
	if t.drop != nil && t.drop.Load() && t.state.CompareAndSwap(queued, cancelled) {
		t.Answer(parley.ErrSendDropped)
		return false
	}
	return t.state.CompareAndSwap(queued, claimed)
}

// Cancel implements Op.
func (t *Ticket) Cancel() bool { return t.state.CompareAndSwap(queued, cancelled) }

// Done implements Op.
func (t *Ticket) Done() <-chan error { return t.done }

// Answer gives the caller the op's result. The batcher calls it once per
// claimed op. For an op queued by EnqueueManyAsync it runs the caller's
// callback, on the batcher goroutine.
func (t *Ticket) Answer(err error) {
	if t.cb != nil {
		t.cb(t.i, err)
		return
	}
	t.done <- err
}

func (t *Ticket) ticket() *Ticket { return t }

// Queued returns when the op was queued.
func (t *Ticket) Queued() time.Time { return t.at }

// Ticketed is an op that embeds a Ticket.
type Ticketed interface {
	Op
	ticket() *Ticket
}

// Queue is a batcher's queue of ops: callers queue an op (or a run of
// them) and wait for its answer; the batcher takes them from Ops until
// Close, claiming each (Ticket.Claim) before it runs it. Its methods are
// safe for concurrent use.
type Queue[O Ticketed] struct {
	mu     sync.RWMutex // guards closed and sending on ch
	closed bool
	ch     chan O
}

// NewQueue returns a queue that holds up to size ops not yet taken.
func NewQueue[O Ticketed](size int) *Queue[O] {
	return &Queue[O]{ch: make(chan O, size)}
}

// Ops is what the batcher takes ops from; it is closed by Close.
func (q *Queue[O]) Ops() <-chan O { return q.ch }

// Enqueue queues o and returns its answer once its batch has committed
// (nil), or its error, or the commit's. If ctx ends before the batcher
// claims o, o is dropped and Enqueue returns ctx.Err(): a context error
// means the write did not happen. Once claimed, Enqueue waits for the
// batch (a batch is short) so the answer is always exact.
func (q *Queue[O]) Enqueue(ctx context.Context, o O) error {
	o.ticket().done = make(chan error, 1)
	o.ticket().at = time.Now()
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return ErrClosed
	}
	select {
	case q.ch <- o:
	case <-ctx.Done():
		q.mu.RUnlock()
		return ctx.Err()
	}
	q.mu.RUnlock()

	select {
	case err := <-o.Done():
		return err
	case <-ctx.Done():
		if o.Cancel() {
			return ctx.Err()
		}
		return <-o.Done()
	}
}

// EnqueueMany queues ops in order and calls done(i, err) for each, in
// order, as Enqueue would answer it; see the function EnqueueMany (ops
// share a batch or follow each other; a cancelled ctx drops only a suffix
// of ops).
func (q *Queue[O]) EnqueueMany(ctx context.Context, ops []O, done func(i int, err error)) {
	now := time.Now()
	for _, o := range ops {
		o.ticket().done = make(chan error, 1)
		o.ticket().at = now
	}
	EnqueueMany(ctx, &q.mu, &q.closed, q.ch, ErrClosed, ops, done)
}

// EnqueueManyAsync queues ops in order, as EnqueueMany does, but does not
// wait for their answers: the batcher calls done(i, err) for each op
// itself, on its goroutine, once the op's batch has committed (or rolled
// back), in the order of ops. An op the batcher claims once drop (nil:
// never) is set is not run: Claim answers it parley.ErrSendDropped (see
// parley.AsyncSender). It
// returns once every op is queued; it waits for room in the queue when
// the queue is full, and has no context: an op queued is always run and
// answered (Close lets the batcher run the ops queued before it). done is
// called one op at a time, in order, even when the batcher answers ops
// from several goroutines (then on the goroutine whose answer completes
// the ops before). When
// the queue is closed, every op is answered ErrClosed at once, on the
// calling goroutine, before EnqueueManyAsync returns.
//
// done must be quick and must not block or call the store: every write
// of the store waits while it runs. The ops must not be cancelled (drop
// is how their caller gives up on them).
func (q *Queue[O]) EnqueueManyAsync(ops []O, drop *atomic.Bool, done func(i int, err error)) {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		for i := range ops {
			done(i, ErrClosed)
		}
		return
	}
	if len(ops) > 1 {
		// A batcher may answer ops of one batch from several goroutines
		// at once, out of order (the PostgreSQL batcher's lanes): the
		// answers are put back in order.
		done = (&inOrder{done: done, errs: make([]error, len(ops)), got: make([]bool, len(ops))}).answer
	}
	now := time.Now()
	for i, o := range ops {
		t := o.ticket()
		t.cb, t.i, t.at, t.drop = done, i, now, drop
		q.ch <- o
	}
	q.mu.RUnlock()
}

// inOrder hands the answers of a run of ops to done in the ops' order,
// one at a time, whatever the order and the goroutines they come in: an
// answer waits for the ones before it, and the answer that completes a
// prefix hands it over.
type inOrder struct {
	mu   sync.Mutex
	done func(i int, err error)
	errs []error
	got  []bool
	next int // the next op to hand to done
}

func (r *inOrder) answer(i int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[i], r.got[i] = err, true
	for ; r.next < len(r.got) && r.got[r.next]; r.next++ {
		r.done(r.next, r.errs[r.next])
	}
}

// Close stops taking ops: the ones queued after it are answered
// ErrClosed, and Ops is closed once the batcher has taken those queued
// before. It is safe to call more than once.
func (q *Queue[O]) Close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
}

// EnqueueRun queues a run of ops made for one call: with async, as
// EnqueueManyAsync with drop (done runs on the batcher, ctx is not used);
// else as EnqueueMany, waiting for the answers (drop is not used). It is
// the one body of both engines' sqlstore.Engine.SendMany.
func EnqueueRun[O Ticketed](ctx context.Context, q *Queue[O], async bool, drop *atomic.Bool, ops []O, done func(i int, err error)) {
	if async {
		q.EnqueueManyAsync(ops, drop, done)
		return
	}
	q.EnqueueMany(ctx, ops, done)
}
