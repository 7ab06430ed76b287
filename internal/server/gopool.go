package server

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// goPool runs short tasks (a parked connection's reader, a connection's
// request worker) on goroutines that, done with one, wait for the next
// instead of exiting: start hands a task to a waiting goroutine when one
// waits, else starts a new one. In fan-out every publisher's send and
// every client's ping woke a parked connection and then its worker, each
// on a goroutine of its own; the start, the stack's growth to what
// reading a frame or decoding a request takes (copystack) and the exit of
// those goroutines were ~5% of the pinned server's CPU (newproc, goexit0,
// newstack, schedule in a profile at 5400 msg/s).
//
// At most max goroutines wait; each keeps its stack (a few KiB, shrunk by
// the GC when mostly unused). The zero goPool (or one whose init was not
// called) starts a goroutine per task, as before. close ends the waiting
// goroutines and waits for all of the pool's goroutines, running tasks
// included: call it once nothing starts tasks any more.
type goPool struct {
	handoff chan task     // unbuffered: only to a goroutine waiting in it
	quit    chan struct{} // closed by close
	idle    atomic.Int32  // goroutines waiting on handoff, or about to
	max     int32
	wg      sync.WaitGroup // the pool's goroutines
}

// task is work for a goPool goroutine.
type task interface{ do() }

// init lets up to max goroutines wait for the next task.
func (p *goPool) init(max int) {
	p.handoff = make(chan task)
	p.quit = make(chan struct{})
	p.max = int32(max)
}

// start runs t on a waiting goroutine, or a new one. It never blocks, so
// it may be called under a lock.
func (p *goPool) start(t task) {
	select {
	case p.handoff <- t: // never, when handoff is nil
		return
	default:
	}
	p.wg.Add(1)
	go p.loop(t)
}

// startYielding is start for a caller that holds no lock and may yield:
// when no goroutine waits, it first lets the runnable goroutines run,
// among them those it handed tasks to (with one P they have not run yet),
// which then come back to wait, and hands t to one of them; only when
// none came back does it start a goroutine. The poller hands a burst of
// readable connections this way: a burst larger than the pool (the load
// tool's pings, ~250 at once) started a goroutine for each beyond it.
func (p *goPool) startYielding(t task) {
	select {
	case p.handoff <- t:
		return
	default:
	}
	if p.handoff != nil {
		runtime.Gosched()
	}
	p.start(t)
}

// loop runs t, then the tasks handed to it while at most max wait.
func (p *goPool) loop(t task) {
	defer p.wg.Done()
	for {
		t.do()
		t = nil // hold nothing while waiting
		if p.handoff == nil {
			return
		}
		if p.idle.Add(1) > p.max {
			p.idle.Add(-1)
			return
		}
		select {
		case t = <-p.handoff:
			p.idle.Add(-1)
		case <-p.quit:
			p.idle.Add(-1)
			return
		}
	}
}

// close ends the waiting goroutines and waits for the pool's goroutines.
func (p *goPool) close() {
	if p.quit != nil {
		close(p.quit)
	}
	p.wg.Wait()
}
