package batchq

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/parleychat/parley"
)

// Publisher holds a store's optional commit hook (parley.CommitPublisher):
// a function that takes, once per committed batch, every event the batch
// stored, in position order. With one, the writers of a batch need not
// each publish their own events after the commit: one publish carries the
// batch's, and the batcher hands it over before it answers anyone, so the
// events are on their way to the hub before the writers wake up.
//
// Set may be called at any time (the pointer is atomic); a batch reads it
// once, when it begins (Begin), so the events of a batch that began
// before Set reach nobody through it (the hubs' poll of the store finds
// them). The zero value has no hook.
type Publisher struct {
	f atomic.Pointer[func([]parley.Event)]
}

// Set replaces the hook; nil removes it.
func (p *Publisher) Set(f func([]parley.Event)) {
	if f == nil {
		p.f.Store(nil)
		return
	}
	p.f.Store(&f)
}

// Begin returns the collector of one batch run: it collects only when a
// hook is set.
func (p *Publisher) Begin() Events { return Events{f: p.f.Load()} }

// Events collects the events one batch run stores, for the hook taken by
// Publisher.Begin. Only the batcher goroutine uses it. An engine's write
// transaction embeds it: Stored is then its sqlstore.Tx method.
type Events struct {
	f   *func([]parley.Event)
	evs []parley.Event
}

// Stored records e, stored by the running op (complete: Pos, UserName
// and Audience set). It costs nothing without a hook.
func (e *Events) Stored(ev parley.Event) {
	if e.f != nil {
		e.evs = append(e.evs, ev)
	}
}

// Mark returns where the running op's events begin, for Undo.
func (e *Events) Mark() int { return len(e.evs) }

// Undo drops the events recorded since mark: the op that stored them
// was rolled back.
func (e *Events) Undo(mark int) {
	clear(e.evs[mark:])
	e.evs = e.evs[:mark]
}

// Publish hands the recorded events, in position order (by shard, then
// position: parley.ShardedLog), to the hook, if any and if there are
// events. Call it once the batch has committed and before its writers
// are answered.
func (e *Events) Publish() {
	if e.f == nil || len(e.evs) == 0 {
		return
	}
	byPos := func(a, b parley.Event) int { return cmp.Or(cmp.Compare(a.Shard, b.Shard), cmp.Compare(a.Pos, b.Pos)) }
	if !slices.IsSortedFunc(e.evs, byPos) {
		// Ops record their events as they run, in position order in
		// both engines; sorting keeps the hook's promise if one ever
		// records out of order.
		slices.SortFunc(e.evs, byPos)
	}
	(*e.f)(e.evs)
	e.evs = nil
}
