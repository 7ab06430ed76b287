package server

import (
	"context"
	"runtime/debug"
	"sync"

	"github.com/parleychat/parley"
)

// The store check of a token's user (Store.EnsureUser), for a user this
// node has not cached, is a write through the store's batcher on first
// sight. In a connect storm of users the node does not know (a node's
// first start, a restart whose warm start did not cover them) every hello
// needs one, the batcher answers a few thousand a second, and the hellos
// pile up: ~10,000 of them at once in the 15,000-connection burst of
// `parley bench idle`, each waiting in the batcher's queue on its own
// goroutine with a stack grown to 20-30 KiB by the token check and the
// store's read (docs/benchmarks.md, "Connect burst"). So the checks take
// turns (Config.UserChecks at once, in arrival order), and a hello
// waiting for its turn holds no goroutine: only its connection and its
// decoded hello.

// turns runs tasks in the order given, at most n at once, each on a
// goroutine that, done with one, runs the next waiting task and exits
// when none waits: a waiting task holds no goroutine, only what its
// closure holds. A task must not panic (it recovers its own panics) and
// should not block on a client. Safe for concurrent use; wait waits for
// the goroutines it started.
type turns struct {
	n       int
	mu      sync.Mutex // guards the fields below
	on      int        // tasks running (goroutines)
	waiting []func()   // in arrival order
	wg      sync.WaitGroup
}

func newTurns(n int) *turns { return &turns{n: max(n, 1)} }

// run runs f now on a goroutine of its own if fewer than n run, else
// after the tasks waiting before it. It never blocks.
func (t *turns) run(f func()) {
	t.mu.Lock()
	if t.on < t.n {
		t.on++
		t.wg.Add(1)
		t.mu.Unlock()
		go t.loop(f)
		return
	}
	t.waiting = append(t.waiting, f)
	t.mu.Unlock()
}

// loop runs f, then the waiting tasks, until none waits.
func (t *turns) loop(f func()) {
	defer t.wg.Done()
	for f != nil {
		f()
		t.mu.Lock()
		f = nil
		if len(t.waiting) > 0 {
			f = t.waiting[0]
			t.waiting[0] = nil
			t.waiting = t.waiting[1:]
			if len(t.waiting) == 0 {
				t.waiting = nil // after a burst, the queue's array goes too
			}
		} else {
			t.on--
		}
		t.mu.Unlock()
	}
}

// queued returns how many tasks wait for a turn.
func (t *turns) queued() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.waiting)
}

// wait waits for the goroutines run started; call it once nothing calls
// run any more.
func (t *turns) wait() { t.wg.Wait() }

// cachedUser returns the user id named name (or its altName) when this
// node has ensured it already.
func (s *service) cachedUser(id, name string) (parley.User, bool) {
	u, ok := s.ensured.load(id)
	return u, ok && (u.Name == name || u.Name == altName(name, id))
}

// checkUser has the store ensure the user id named name in a turn (see
// turns) and calls done with the result, on the turn's goroutine: done
// must not block. A user ensured meanwhile (another hello of the same
// user) costs no store call.
func (s *service) checkUser(ctx context.Context, id, name string, done func(parley.User, error)) {
	s.checks.run(func() {
		u, err := s.checkUserNow(ctx, id, name)
		done(u, err)
	})
}

// checkUserNow is the store check of a turn; a panic in it is recovered,
// logged and counted, and answers EINTERNAL.
func (s *service) checkUserNow(ctx context.Context, id, name string) (u parley.User, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.metrics.panics.WithLabelValues("usercheck").Inc()
			s.log.Error("panic recovered", "where", "usercheck", "user", id, "panic", v, "stack", string(debug.Stack()))
			u, err = parley.User{}, parley.Errorf(parley.EINTERNAL, "internal error")
		}
	}()
	if u, ok := s.cachedUser(id, name); ok {
		return u, nil
	}
	gen := s.ensured.generation(id)
	u, err = s.store.EnsureUser(ctx, id, name)
	if parley.ErrorCode(err) == parley.ECONFLICT {
		// The token identifies its user by id (sub); its name is only
		// what others see. Another user holds that name (or a look-alike),
		// and names are unique: show this user as "Name (id)" rather than
		// refuse a valid token.
		u, err = s.store.EnsureUser(ctx, id, altName(name, id))
	}
	if err != nil {
		return parley.User{}, err
	}
	s.ensured.store(u, gen)
	return u, nil
}

// ensureUser is checkUser for a caller that waits for the answer (an
// HTTP request's bearer token, see authenticate): it waits for its turn
// on its own goroutine.
func (s *service) ensureUser(ctx context.Context, id, name string) (parley.User, error) {
	var (
		u    parley.User
		err  error
		done = make(chan struct{})
	)
	s.checkUser(ctx, id, name, func(cu parley.User, cerr error) {
		u, err = cu, cerr
		close(done)
	})
	<-done
	return u, err
}
