package sqlite

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/internal/batchq"
)

// The pipelined commit.
//
// A batch is durable once the WAL fsync that follows its COMMIT has
// returned (walsync.go). That fsync is the batcher's longest wait (on the
// pinned server at 1800 sends/s, p50 0.67 ms and p99 10 ms against 0.34
// and 3.7 ms for the batch's SQL: docs/benchmarks.md, h-pipe), and while
// the batcher waited for it the ops queued meanwhile waited too. So the
// batcher no longer waits: it hands each committed batch to the syncer, a
// goroutine of its own, and goes on with the next batch (gather, SQL,
// COMMIT) while the fsync runs. The syncer takes every batch handed over
// so far, fsyncs the WAL once for all of them (the WAL is appended in
// commit order: an fsync begun after a batch's COMMIT covers it and every
// batch before it), and only then publishes their events and answers
// their ops, batch after batch, in commit order. A batch that failed (was
// rolled back) is answered by the syncer too, in its place, so answers
// and events keep the batches' order.
//
// A failed WAL fsync is final (walFailed): the batches it covered, and
// every batch committed after it, are answered its error, and no batch
// begins any more, until the store is closed and opened again (SQLite then
// recovers the WAL from what is on disk). Linux reports a writeback error
// to one fsync only and may drop the pages it failed to write: a later
// fsync that succeeds says nothing about them, and a batch whose WAL
// frames follow lost ones is lost with them at recovery (the WAL is read
// up to its first bad frame).
//
// The checkpoints fsync the WAL too, and run on the batcher between
// batches: the batcher first waits until the syncer has answered every
// batch handed over (drain), so no fsync of the WAL is in flight when a
// checkpoint runs (an aioSync takes one request at a time). Close drains
// the same way before the batcher exits.

// pipeDepth bounds the batches committed and not yet answered (besides
// the ones under the syncer's fsync): a batcher that far ahead waits.
const pipeDepth = 8

// synced is one batch handed to the syncer: committed (err nil: w holds
// its events) or rolled back (err answers every op).
type synced struct {
	live  []*op
	errs  []error
	w     *writeTx
	err   error
	start time.Time // its first run's BEGIN (a batch may run twice)
}

// handOff gives the syncer batch s, in batch order; only the batcher
// calls it.
func (b *batcher) handOff(s *synced) {
	b.inflight.Add(1)
	b.toSync <- s
}

// drain waits until the syncer has answered every batch handed over.
// Only the batcher calls it.
func (b *batcher) drain() { b.inflight.Wait() }

// syncLoop is the syncer. newBatcher starts it; the batcher stops it
// (close of toSync, at its exit) and waits for it (syncDone).
func (b *batcher) syncLoop() {
	defer close(b.syncDone)
	group := make([]*synced, 0, pipeDepth+1)
	for s := range b.toSync {
		group = append(group[:0], s)
	more:
		for {
			select {
			case s, ok := <-b.toSync:
				if !ok {
					break more
				}
				group = append(group, s)
			default:
				break more
			}
		}
		b.finish(group)
		clear(group)
	}
}

// finish makes the committed batches of group durable with one fsync of
// the WAL and answers every batch of group, in order.
func (b *batcher) finish(group []*synced) {
	var serr error
	if p := b.walFailed.Load(); p != nil {
		serr = *p
	} else {
		for _, s := range group {
			if s.err == nil {
				start := time.Now()
				for _, s := range group {
					if s.err == nil {
						b.ObserveStage(batchq.StageSyncWait, start.Sub(s.w.commitEnd))
					}
				}
				serr = b.syncWAL()
				b.ObserveStage(batchq.StageSync, time.Since(start))
				if serr != nil {
					// unavailable: clients retry later, /readyz
					// answers 503 while writes fail.
					serr = batchq.Unavailable(internalf("commit: fsync the WAL: %w", serr))
					b.walFailed.Store(&serr)
				}
				break
			}
		}
	}
	for _, s := range group {
		if s.err != nil {
			b.Failed(s.err)
			answerAll(s.live, s.err)
		} else {
			if serr != nil {
				// The batch is committed (readers see it, the heads
				// moved) but not known to be on disk: its events are
				// published and every op answers this error; a sender
				// that retries with its client id gets the stored
				// message once the store is open again.
				for i := range s.errs {
					if s.errs[i] == nil {
						s.errs[i] = serr
					}
				}
			} else {
				b.synced.Add(1)
			}
			batchq.Committed(&b.Hooks, &s.w.Events, s.live, s.errs, s.start, s.w.commitStart, classify)
		}
		b.inflight.Done()
	}
}

// syncWAL fsyncs the WAL, through the test seam if one is set.
func (b *batcher) syncWAL() error {
	if f := b.syncHook.Load(); f != nil {
		return (*f)(b.wal.sync)
	}
	return b.wal.sync()
}

// walErr returns the WAL fsync failure that stops the store's writes, or
// nil.
func (b *batcher) walErr() error {
	if p := b.walFailed.Load(); p != nil {
		return *p
	}
	return nil
}

// pipeState is the batcher's part of the pipeline (embedded in batcher).
type pipeState struct {
	toSync   chan *synced
	syncDone chan struct{}
	// inflight counts the batches handed over and not yet answered.
	inflight sync.WaitGroup
	// walFailed holds the WAL fsync's error once one failed (final).
	walFailed atomic.Pointer[error]
	// synced counts the batches answered after an fsync that covered
	// them succeeded.
	synced atomic.Int64
	// syncHook, when set (tests), runs each WAL fsync: it is given the
	// real one.
	syncHook atomic.Pointer[func(sync func() error) error]
}
