package sqlite

import (
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/internal/batchq"
)

// The pipelined commit.
//
// A batch is durable once the WAL fsync that follows its COMMIT has
// ended (walsync.go), and while the batcher waited for that fsync the ops
// queued meanwhile waited too. So the batcher does not wait for it: on
// Linux it starts the fsync as an asynchronous request (fileSyncer.start)
// and goes on with the next batch (gather, SQL, COMMIT) while the kernel
// runs it. Between batches it polls the request (settle): once it has
// ended, the batches it covered are answered, in commit order, and the
// fsync of every batch committed since starts, one for all of them (the
// WAL is appended in commit order: an fsync begun after a batch's COMMIT
// covers it and every batch before it). A batch that failed (was rolled
// back) waits in its place and is answered in turn, so answers and
// events keep the batches' order. With nothing to run the batcher waits,
// parked, for its next op or the fsync's end, whichever comes first
// (fileSyncer.ring).
//
// It is one goroutine on purpose. With a second one waiting for the
// fsync (measured first, docs/benchmarks.md, h-pipe), on one P that
// goroutine heard of the fsync's end only when the P ran out of other
// work or sysmon polled the network (up to 10 ms): the next batch's SQL
// kept the P busy, and answers came later than without a pipeline.
// Polled by the batcher itself, the end is seen at the next batch's end
// at worst.
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
// The checkpoints fsync the WAL too, on the batcher between batches: it
// first answers every committed batch (settle with wait), so no fsync of
// the WAL is in flight when a checkpoint runs (an aioSync takes one
// request at a time). Close does the same before the batcher exits.
// Without asynchronous fsyncs (fsync(2), the fallback) each batch's fsync
// runs at once, after its COMMIT, as before the pipeline.

// pollEvery is how often the idle batcher polls the fsync in flight
// besides waiting for its doorbell. The doorbell's goroutine is woken by
// the netpoller, which a busy P consults only when it runs out of work
// or when sysmon polls (up to 10 ms); timers are run at every scheduling
// round.
const pollEvery = 250 * time.Microsecond

// synced is one batch waiting for its answers: committed (err nil: w
// holds its events) or rolled back (err answers every op).
type synced struct {
	live  []*op
	errs  []error
	w     *writeTx
	err   error
	start time.Time // its first run's BEGIN (a batch may run twice)
}

// walSyncer is the WAL's fileSyncer as the pipeline uses it (tests wrap
// it).
type walSyncer interface {
	start() bool
	poll() (done bool, err error)
	wait() error
	sync() error
	ring() <-chan struct{}
}

// pipeState is the batcher's part of the pipeline (embedded in batcher;
// only the batcher goroutine touches it).
type pipeState struct {
	walp walSyncer
	// committed holds the batches not yet covered by an fsync begun,
	// syncing those covered by the one in flight (since syncStart).
	committed, syncing []*synced
	syncStart          time.Time
	// walFailed is the WAL fsync's error once one failed (final).
	walFailed error
	// synced counts the batches answered after an fsync that covered
	// them succeeded (tests).
	synced    atomic.Int64
	pollTimer *time.Timer
}

// handOff queues batch s for its answers, in batch order, and moves the
// pipeline on.
func (b *batcher) handOff(s *synced) {
	b.committed = append(b.committed, s)
	b.settle(false)
}

// pending reports whether some batch waits for its answers.
func (b *batcher) pending() bool { return len(b.syncing)+len(b.committed) > 0 }

// settle answers the batches whose fsync has ended and starts the fsync
// of those committed since, if none is in flight. With wait it returns
// only once every batch is answered.
func (b *batcher) settle(wait bool) {
	for {
		if len(b.syncing) > 0 {
			var err error
			if wait {
				err = b.walp.wait()
			} else if done, perr := b.walp.poll(); !done {
				return
			} else {
				err = perr
			}
			b.ObserveStage(batchq.StageSync, time.Since(b.syncStart))
			if err != nil {
				// unavailable: clients retry later, /readyz answers
				// 503 while writes fail.
				b.walFailed = batchq.Unavailable(internalf("commit: fsync the WAL: %w", err))
			}
			b.answer(b.syncing)
			b.syncing = b.syncing[:0]
		}
		if len(b.committed) == 0 {
			return
		}
		// The fsync of every batch committed so far, if one needs it.
		b.syncing, b.committed = b.committed, b.syncing
		need := false
		for _, s := range b.syncing {
			need = need || s.err == nil
		}
		if !need || b.walFailed != nil {
			b.answer(b.syncing)
			b.syncing = b.syncing[:0]
			continue
		}
		b.syncStart = time.Now()
		for _, s := range b.syncing {
			if s.err == nil {
				b.ObserveStage(batchq.StageSyncWait, b.syncStart.Sub(s.w.commitEnd))
			}
		}
		if b.walp.start() {
			if !wait {
				return
			}
			continue
		}
		// No asynchronous fsync: fsync(2), now.
		if err := b.walp.sync(); err != nil {
			b.walFailed = batchq.Unavailable(internalf("commit: fsync the WAL: %w", err))
		}
		b.ObserveStage(batchq.StageSync, time.Since(b.syncStart))
		b.answer(b.syncing)
		b.syncing = b.syncing[:0]
	}
}

// answer answers the batches of group, in order: a committed batch is
// answered its ops' results, or walFailed when set (the batch is
// committed, readers see it, the heads moved, but it is not known to be
// on disk: its events are published and every op answers the error; a
// sender that retries with its client id gets the stored message once
// the store is open again).
func (b *batcher) answer(group []*synced) {
	for i, s := range group {
		if s.err != nil {
			b.Failed(s.err)
			answerAll(s.live, s.err)
		} else {
			if b.walFailed != nil {
				for i := range s.errs {
					if s.errs[i] == nil {
						s.errs[i] = b.walFailed
					}
				}
			} else {
				b.synced.Add(1)
			}
			batchq.Committed(&b.Hooks, &s.w.Events, s.live, s.errs, s.start, s.w.commitStart, classify)
		}
		group[i] = nil
	}
}
