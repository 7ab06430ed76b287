package server

import "testing"

// chanResumer signals each resume on its channel.
type chanResumer chan struct{}

func (c chanResumer) resume() { c <- struct{}{} }

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
	p.wg.Wait()
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
