package server

import (
	"runtime"
	rtmetrics "runtime/metrics"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// chanResumer signals each resume on its channel.
type chanResumer chan struct{}

func (c chanResumer) resume(int64) { c <- struct{}{} }

// TestPollRegEdges walks a registration's states with the socket already
// in the epoll set: an edge while the reader runs is not lost (its park
// returns parkNotified once, and parks the next time), an edge while
// parked starts exactly one reader, which owns the read side (ready, no
// peek), a socket the poller saw end and a connection woken to close
// never park again.
func TestPollRegEdges(t *testing.T) {
	p := &poller{regs: make(map[uint64]*pollReg)}
	run := make(chanResumer, 1)
	r := &pollReg{p: p, added: true, run: run}

	p.start(r) // bytes arrive while the reader reads
	p.start(r) // and more: still one mark
	if got := r.park(nil, run); got != parkNotified {
		t.Fatalf("park after an edge while running: %d, want parkNotified", got)
	}
	if got := r.state.Load(); got != pollRunning {
		t.Fatalf("state after parkNotified: %d, want running", got)
	}
	if got := r.park(nil, run); got != parkDone {
		t.Fatalf("park with no edge since: %d, want parkDone", got)
	}
	p.start(r) // bytes arrive while parked: one reader starts
	<-run
	p.readers.wg.Wait()
	if got := r.state.Load(); got != pollRunning || !r.ready {
		t.Fatalf("after the start: state %d, ready %v; want running and ready", got, r.ready)
	}
	select {
	case <-run:
		t.Fatal("two readers started")
	default:
	}
	r.ready = false

	// The peer's FIN came with the last bytes: one edge for both, and a
	// short read that does not show the end queued behind them. The
	// reader must read on to it, not park.
	h := &pollReg{p: p, added: true, run: run}
	h.hup.Store(true)
	if got := h.park(nil, run); got != parkReadOn {
		t.Fatalf("park of an ended socket: %d, want parkReadOn", got)
	}

	r.wake(true) // the connection closes while its reader runs
	if got := r.park(nil, run); got != parkReadOn {
		t.Fatalf("park of a closing connection: %d, want parkReadOn", got)
	}
	if got := r.park(nil, run); got != parkReadOn {
		t.Fatalf("second park of a closing connection: %d, want parkReadOn", got)
	}
}

// parkResumer is a reader that reads nothing and parks its registration
// again (the socket is in the epoll set already), counting its runs.
type parkResumer struct {
	r    *pollReg
	runs atomic.Int64
	// gate, when set, holds the read until it is closed.
	gate chan struct{}
}

func (x *parkResumer) resume(int64) {
	if x.gate != nil {
		<-x.gate
	}
	x.runs.Add(1)
	if got := x.r.park(nil, x); got != parkDone {
		panic("park after a resume did not park")
	}
}

// goroutinesCreated is the process's count of goroutines created so far.
func goroutinesCreated() uint64 {
	s := []rtmetrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// TestPollerReusesReaders: a parked connection that becomes readable
// again and again is read by the reader goroutine that read it (or
// another) last time, waiting for the poller's next hand-off, not by a
// new goroutine per edge; two connections readable at once get two
// readers; the waiting readers return when the poller closes.
func TestPollerReusesReaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &poller{regs: make(map[uint64]*pollReg)}
		p.readers.init(maxIdleReaders)
		a, b := &parkResumer{}, &parkResumer{}
		a.r = &pollReg{p: p, added: true, run: a}
		b.r = &pollReg{p: p, added: true, run: b}
		a.r.state.Store(pollParked)
		b.r.state.Store(pollParked)
		const edges = 200
		before := goroutinesCreated()
		for range edges {
			p.start(a.r)
			synctest.Wait() // read, parked, and waiting for the next
		}
		if got := a.runs.Load(); got != edges {
			t.Fatalf("%d reads for %d edges", got, edges)
		}
		if n := goroutinesCreated() - before; n > 2 {
			t.Errorf("%d goroutines started for %d edges of a connection read one at a time, want at most 2", n, edges)
		}
		// Both readable at once: a's read is still going on when b's
		// starts (else, on a second P, a's reader could finish and take
		// b too, and one reader would do).
		a.gate = make(chan struct{})
		p.start(a.r)
		p.start(b.r)
		synctest.Wait() // b read, a's read held
		close(a.gate)
		synctest.Wait()
		if a.runs.Load() != edges+1 || b.runs.Load() != 1 {
			t.Fatalf("runs: a %d, b %d; want %d, 1", a.runs.Load(), b.runs.Load(), edges+1)
		}
		if got := p.readers.idle.Load(); got != 2 {
			t.Errorf("%d readers waiting, want 2", got)
		}
		p.readers.close()
	})
}

// TestPollerBurstReusesReaders: with one P (a pinned server), a burst of
// readable connections larger than the readers waiting is read by those
// readers, which the poller lets run and come back (startYielding), not
// by a new goroutine for each connection beyond them.
func TestPollerBurstReusesReaders(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	synctest.Test(t, func(t *testing.T) {
		p := &poller{regs: make(map[uint64]*pollReg)}
		p.readers.init(maxIdleReaders)
		const burst = 4 * maxIdleReaders
		var xs []*parkResumer
		var ids []uint64
		for i := range burst {
			x := &parkResumer{}
			x.r = &pollReg{p: p, added: true, run: x, id: uint64(i + 1)}
			x.r.state.Store(pollParked)
			p.regs[x.r.id] = x.r
			xs = append(xs, x)
			ids = append(ids, x.r.id)
		}
		var regs []*pollReg
		regs = p.ready(ids, regs, 0) // the first burst starts the pool's readers
		synctest.Wait()
		const rounds = 20
		before := goroutinesCreated()
		for range rounds {
			regs = p.ready(ids, regs, 0)
			synctest.Wait()
		}
		for i, x := range xs {
			if got := x.runs.Load(); got != rounds+1 {
				t.Fatalf("connection %d read %d times for %d edges", i, got, rounds+1)
			}
		}
		if n := goroutinesCreated() - before; n > rounds {
			t.Errorf("%d goroutines started for %d bursts of %d connections with %d readers waiting, want at most %d", n, rounds, burst, maxIdleReaders, rounds)
		}
		p.readers.close()
	})
}
