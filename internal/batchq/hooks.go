package batchq

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley"
)

// Hooks is what a store's batcher tells about its batches: whether writes
// work (WriteHealth), the optional batch observer and the optional commit
// publisher. An engine's batcher embeds one and its DB embeds a pointer to
// it, so that SetBatchObserver, PublishCommits and WriteErr are written
// once for both engines.
//
// The setters and WriteErr are safe to call at any time, concurrently
// with batches; Begin, Failed and Committed are for the batcher goroutine
// (or its lanes: Committed serialises their publishes; PostgreSQL's
// batcher calls Failed and Committed on its answerer goroutine, one batch
// at a time, in commit order).
type Hooks struct {
	health    WriteHealth
	observer  Observer
	stages    atomic.Pointer[StageObserver] // nil: none (SetStageObserver)
	publisher Publisher
	// publishMu keeps the publishes of batches committed at once (the
	// PostgreSQL batcher's lanes, one transaction per group of shards)
	// from overlapping: parley.CommitPublisher's publish is called by one
	// goroutine at a time.
	publishMu sync.Mutex
	// around is the optional pair of functions Committed calls before and
	// after it answers a batch's ops (SetAnswerHooks).
	around atomic.Pointer[answerHooks]
}

type answerHooks struct{ begin, end func() }

// SetAnswerHooks sets begin and end to be called by the batcher around
// the answers of every committed batch: begin after the batch's events
// are published and before its first op is answered, end after its last.
// The server uses them to write a batch's replies together with the
// events the batch published (one write per connection for both). With
// lanes (PostgreSQL) the pairs of different batches may overlap. Both
// must be quick, must not block and must not call the store. nil for
// either removes both. Set it before the first write.
func (h *Hooks) SetAnswerHooks(begin, end func()) {
	if begin == nil || end == nil {
		h.around.Store(nil)
		return
	}
	h.around.Store(&answerHooks{begin, end})
}

// SetBatchObserver sets f to be told about every batch the group-commit
// batcher commits: how many ops it held, how long its COMMIT took and how
// long its whole transaction took (see BatchObserver for what each
// covers). nil removes it. One observer at a time (the last set wins). f
// runs on the batcher goroutine (PostgreSQL's: its answerer) before the
// batch's callers are answered:
// it must be quick and must not call the store. The server records it as
// parley_store_batch_ops, parley_store_commit_seconds and
// parley_store_batch_seconds.
func (h *Hooks) SetBatchObserver(f func(ops int, commit, txn time.Duration)) {
	h.observer.Set(f)
}

// PublishCommits implements parley.CommitPublisher: the batcher hands
// each committed batch's events (this node's) to publish before it
// answers the batch's writers (see Publisher).
func (h *Hooks) PublishCommits(publish func(evs []parley.Event)) {
	h.publisher.Set(publish)
}

// WriteErr returns the error of the last write the store could not make
// (disk full, I/O error, read-only, unreachable) while it cannot write,
// nil when writes work: see WriteHealth. The server's /readyz answers 503
// while it is set.
func (h *Hooks) WriteErr() error { return h.health.Err() }

// Begin returns the event collector of one batch run (Publisher.Begin).
func (h *Hooks) Begin() Events { return h.publisher.Begin() }

// Failed records a batch that did not commit: err, classified by the
// engine, is what its ops are answered.
func (h *Hooks) Failed(err error) { h.health.Observe(err) }

// Committed finishes a batch whose COMMIT succeeded, started at start
// (its BEGIN) and committed from commitStart on: it tells the observer,
// marks writes as working, publishes the batch's events (evs) and then
// answers each op of live its own result errs[i], classified: an op can
// fail alone (its savepoint rolled back) for a reason of the server's,
// such as a full disk, while the batch's commit succeeded.
//
// The events go out before any answer, in one publish: the hub can
// deliver them while the writers, woken by the answers, wait for a CPU.
func Committed[O interface {
	Answer(error)
	Queued() time.Time
}](h *Hooks, evs *Events, live []O, errs []error, start, commitStart time.Time, classify func(error) error) {
	h.observer.Observe(len(live), start, commitStart)
	if h.observing() {
		for _, o := range live {
			// An op that joined its batch after BEGIN (PostgreSQL's
			// batcher takes the ops queued while it waited for the
			// lock) waited for no batch: 0, not a negative time.
			h.ObserveStage(StageQueued, max(0, start.Sub(o.Queued())))
		}
		defer func(t time.Time) { h.ObserveStage(StageAnswer, time.Since(t)) }(time.Now())
	}
	h.health.Observe(nil)
	h.publishMu.Lock()
	evs.Publish()
	h.publishMu.Unlock()
	a := h.around.Load()
	if a != nil {
		a.begin()
		defer a.end() // also if an answer panics: end releases what begin held
	}
	for i, o := range live {
		errs[i] = classify(errs[i])
		h.health.Observe(errs[i])
		o.Answer(errs[i])
	}
}
