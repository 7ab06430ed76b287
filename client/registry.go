package client

import "sync"

// registry holds callbacks by id in the order their ids were first added
// (re-adding an id replaces its callback in place). It is safe for
// concurrent use; its lock is never held while a callback runs (callers
// call the snapshot's copies).
type registry[T any] struct {
	mu    sync.Mutex
	byID  map[string]T
	order []string
}

// registered is one callback and its id, as snapshot returns them.
type registered[T any] struct {
	id string
	fn T
}

func (r *registry[T]) add(id string, fn T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = make(map[string]T)
	}
	if _, ok := r.byID[id]; !ok {
		r.order = append(r.order, id)
	}
	r.byID[id] = fn
}

func (r *registry[T]) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byID[id]; !ok {
		return
	}
	delete(r.byID, id)
	for i, x := range r.order {
		if x == id {
			r.order = append(r.order[:i:i], r.order[i+1:]...)
			return
		}
	}
}

// snapshot copies the callbacks in order, so they can be called after the
// lock is released.
func (r *registry[T]) snapshot() []registered[T] {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]registered[T], 0, len(r.order))
	for _, id := range r.order {
		out = append(out, registered[T]{id, r.byID[id]})
	}
	return out
}
