package batchq

import "time"

// Stage is one part of a write's way through a group-commit batcher, as
// the stage observer is told it (SetStageObserver).
type Stage int

const (
	// StageQueued, per op: from the op being queued to the start (BEGIN)
	// of the transaction of the batch that runs it: the batches before
	// it, and a commit interval's gather. An op taken into a batch that
	// had already begun (PostgreSQL's batcher fills its batch once it
	// holds the positions lock) counts 0.
	StageQueued Stage = iota
	// StageSQL, per batch: from BEGIN to the start of its COMMIT.
	StageSQL
	// StageCommit, per batch: the COMMIT statement.
	StageCommit
	// StageSync, per batch (SQLite): the WAL fsync after its COMMIT.
	StageSync
	// StageAnswer, per batch: publishing its events and answering its
	// ops (with the server's answer hooks: handing the batch's events
	// and replies to the hub), on the batcher.
	StageAnswer
	// StageHandover, per batch (PostgreSQL): from the end of its COMMIT
	// to the start of its answers: kept back for the next batch's write
	// when writes wait (its batcher's hold, at most 10 ms), then waiting
	// for the answerer to finish the batch before.
	StageHandover
	// NumStages is the number of stages.
	NumStages
)

var stageNames = [NumStages]string{"queued", "sql", "commit", "sync", "answer", "handover"}

// String is the stage's label in parley_store_stage_seconds.
func (s Stage) String() string {
	if s < 0 || s >= NumStages {
		return "unknown"
	}
	return stageNames[s]
}

// StageObserver is told how long each stage of a write took (see Stage).
// It is called on the batcher's goroutines: it must be quick, must not
// block and must not call the store.
type StageObserver func(s Stage, d time.Duration)

// SetStageObserver sets f to be told how long each stage of every
// committed batch took (see Stage); nil removes it. The server records it
// as parley_store_stage_seconds. Both engines report StageQueued,
// StageSQL, StageCommit and StageAnswer; the SQLite store also its
// fsyncs, PostgreSQL's the hand-over to its answerer.
// As the batch observer, it may be replaced at any time (the pointer is
// atomic).
func (h *Hooks) SetStageObserver(f func(s Stage, d time.Duration)) {
	var p *StageObserver
	if f != nil {
		so := StageObserver(f)
		p = &so
	}
	h.stages.Store(p)
}

// ObserveStage reports d for stage s to the stage observer, if any.
func (h *Hooks) ObserveStage(s Stage, d time.Duration) {
	if f := h.stages.Load(); f != nil {
		(*f)(s, d)
	}
}

// observing reports whether a stage observer is set.
func (h *Hooks) observing() bool { return h.stages.Load() != nil }
