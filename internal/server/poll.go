package server

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
)

// poller waits, on one goroutine, for idle connections to become
// readable, so that an idle connection has no goroutine (and no stack) at
// all: a connection's reader parks its connection with the poller when it
// has nothing left to read (pollReg.park), and the poller starts a reader
// goroutine for it (its resumer) when the socket has bytes, has ended, or
// the connection is being closed (pollReg.wake). It reports readiness
// only and reads nothing: every byte is still read and parsed by the
// reader through gobwas/ws, on the reader's goroutine.
//
// Linux only (epoll, poller_linux.go); elsewhere newPoller fails and every
// connection keeps a reader goroutine waiting in transport.Wait.
//
// Goroutines: the poller's loop is counted in wg, the reader goroutines it
// starts in readers (a goPool); closePoller waits for both. A reader goroutine that parks its
// connection waits for the next readable one (at most maxIdleReaders
// wait; the others return), until closePoller; the connection's count in Server.connWG is
// held while it is parked (a parked connection is open), and the reader
// goroutine that ends the connection releases it.
type poller struct {
	pollerOS // the platform's part: the epoll set

	mu     sync.Mutex
	regs   map[uint64]*pollReg // parked-at-least-once connections by id; guarded by mu
	next   uint64              // the last id given (ids start at 1)
	closed bool                // guarded by mu
	off    atomic.Bool         // set with closed: park's check without mu

	wg sync.WaitGroup // the loop (its readers are counted in readers)

	// readers runs the readers start starts (goPool): a reader that
	// parked its connection waits for the next readable one instead of
	// exiting. Not initialized (a poller made without Server.poller): a
	// goroutine per reader.
	readers goPool

	log *slog.Logger // set before the loop starts
}

// maxIdleReaders bounds the reader goroutines waiting for the next
// readable connection (poller.readers). With one P, one wait of the poller
// (up to pollEvents connections) starts all its readers before any runs:
// the ones beyond those waiting get new goroutines. 64: a few hundred KiB
// of stacks at most; the load tool's bursts (its pings, in 100 ms ticks)
// mostly fit.
const maxIdleReaders = 64

// fail turns the poller off after its wait failed: no connection parks
// again (park sees closed), and every parked one gets its reader
// goroutine back, reading on as if there were no poller. A connection
// parking at this very moment may miss the sweep; its heartbeat timeout
// then closes it with a reconnect code, losing nothing.
func (p *poller) fail(err error) {
	p.log.Error("poller: wait failed; idle connections keep a reader goroutine from now on", "err", err)
	p.mu.Lock()
	p.closed = true
	p.off.Store(true)
	regs := make([]*pollReg, 0, len(p.regs))
	for _, r := range p.regs {
		regs = append(regs, r)
	}
	p.mu.Unlock()
	for _, r := range regs {
		p.start(r)
	}
}

// resumer is what a parked connection runs, on a new goroutine, when it
// becomes readable: its reader (conn.resume). woke is when the poller's
// wait returned with the socket readable (monoNow), 0 when the reader was
// started otherwise (a wake, the poller failing).
type resumer interface{ resume(woke int64) }

// Reader states of a pollReg.
const (
	pollRunning  uint32 = iota // a goroutine reads (or the connection is not started yet)
	pollParked                 // no goroutine: the poller starts one on readiness or wake
	pollNotified               // a goroutine reads, and the socket got bytes (or ended) since it last parked
)

// What park did.
type parkResult uint8

const (
	parkReadOn   parkResult = iota // not parked: the caller reads on (closing, no poller, or the socket could not be watched)
	parkDone                       // parked: the caller returns and touches the read side no more
	parkNotified                   // not parked: the socket got bytes (or ended) while the caller read; they may be read already
)

// pollReg is a connection's registration with a poller (a field of
// wsConn). Concurrency: park is called only by the goroutine that owns the
// reader (state pollRunning or pollNotified); after it returns parkDone
// that goroutine must not touch the connection's read side again, which
// belongs to the goroutine the poller starts. wake and forget are safe
// from any goroutine. The owner's writes before park happen before the
// new goroutine's reads: state is the atomic both go through.
//
// The socket is added to the epoll set once, edge-triggered (no re-arm
// per message, which cost an epoll_ctl per read): every arrival of bytes
// is an edge. An edge while the connection is parked starts its reader;
// one while a reader runs marks it (pollNotified), and that reader's park
// then checks the socket instead of parking: the bytes may have come
// after its last read. The reader parks only when its socket is known
// empty (its last read was short, or a peek finds nothing: see
// wsConn.Park), so no bytes wait without an edge to come.
type pollReg struct {
	p     *poller // nil: no poller (TLS, not Linux, or it could not start)
	run   resumer
	id    uint64 // 0 until the first park; then written only under p.mu, read by the owner
	added bool   // in the epoll set; only the owner touches it
	// ready is set by start for the goroutine it starts: the socket was
	// readable (or the connection closes), so the transport reads without
	// first waiting (a peek) for bytes. Only the owner touches it.
	ready bool
	// woke is set with ready by the poller's loop: when its wait returned
	// with the socket readable (monoNow); 0 when start started the
	// reader. Only the owner touches it; readerTask.do hands it to the
	// reader for parley_send_wake_seconds.
	woke  int64
	gone  bool // forgotten: never registered again; guarded by p.mu
	state atomic.Uint32
	stop  atomic.Bool // set by wake(true): the connection closes, park no more
	// hup is set when an event says the socket has ended (the peer's
	// FIN, a reset): the reader reads to that end and never parks again.
	// A short read does not show an end of stream already queued behind
	// the bytes it took, and an ended socket gives no further edge.
	hup atomic.Bool
}

// park hands the connection, whose socket is rc, to the poller: run is
// started on a new goroutine when the socket gets bytes or ends (at once
// if it has some when first added) or the connection is woken. The
// caller must know the socket empty once it is added (see pollReg).
func (r *pollReg) park(rc syscall.RawConn, run resumer) parkResult {
	p := r.p
	if r.stop.Load() || r.hup.Load() || p.off.Load() {
		return parkReadOn
	}
	if r.added {
		if !r.state.CompareAndSwap(pollRunning, pollParked) {
			r.state.Store(pollRunning) // pollNotified: taken
			return parkNotified
		}
		// From here the poller or a wake may start run.
		if r.stop.Load() || r.hup.Load() || p.off.Load() {
			return r.unpark()
		}
		return parkDone
	}
	p.mu.Lock()
	if r.gone || p.closed {
		p.mu.Unlock()
		return parkReadOn
	}
	if r.id == 0 {
		p.next++
		r.id = p.next
		p.regs[r.id] = r
	}
	id := r.id
	p.mu.Unlock()
	r.run = run
	r.added = true // before the park: a reader the add starts parks as added
	r.state.Store(pollParked)
	// From here the poller or a wake may start run: touch nothing but
	// locals and what the kernel keeps (the RawConn holds the fd open).
	if r.stop.Load() {
		return r.unpark()
	}
	var aerr error
	if err := rc.Control(func(fd uintptr) { aerr = p.watch(int(fd), id) }); err != nil || aerr != nil {
		// Closed under us: read on to see it, unless a wake took the
		// reader already.
		res := r.unpark()
		if res == parkReadOn {
			r.added = false // ours again: not in the set
		}
		return res
	}
	return parkDone
}

// unpark takes the reader back after a park that must not stand (the
// connection closes): parkReadOn, or parkDone when a wake or the poller
// started a reader already.
func (r *pollReg) unpark() parkResult {
	if r.state.CompareAndSwap(pollParked, pollRunning) {
		return parkReadOn
	}
	return parkDone
}

// wake starts the parked connection's reader, if it is parked. With
// stop, the connection is closing: it never parks again, so its reader
// sees the close (a read deadline, or the closed socket) instead of
// waiting for bytes that may never come.
func (r *pollReg) wake(stop bool) {
	if r.p == nil {
		return
	}
	if stop {
		r.stop.Store(true)
	}
	r.p.start(r)
}

// forget drops the registration once the connection is closed for good.
// Closing the fd removes it from the epoll set; an event already taken
// for it finds no registration and is dropped.
func (r *pollReg) forget() {
	p := r.p
	if p == nil {
		return
	}
	p.mu.Lock()
	r.gone = true
	if r.id != 0 {
		delete(p.regs, r.id)
	}
	p.mu.Unlock()
}

// start runs r's reader if r is parked, on a reader goroutine waiting
// for one (readers) or else a new one, and marks a running reader
// notified (see pollReg).
func (p *poller) start(r *pollReg) {
	if p.claim(r) {
		r.woke = 0 // not a readiness: nothing to time
		p.readers.start((*readerTask)(r))
	}
}

// claim marks r's reader started if r is parked, and reports whether the
// caller must start it; a running reader is marked notified instead.
func (p *poller) claim(r *pollReg) bool {
	for {
		switch r.state.Load() {
		case pollRunning:
			if r.state.CompareAndSwap(pollRunning, pollNotified) {
				return false
			}
			continue
		case pollNotified:
			return false
		}
		if r.state.CompareAndSwap(pollParked, pollRunning) {
			break
		}
	}
	r.ready = true // the CAS made this goroutine the owner
	return true
}

// readerTask is a registration whose reader a poller.readers goroutine
// runs (resume).
type readerTask pollReg

func (t *readerTask) do() { t.run.resume(t.woke) }

// pollHup marks an id in ready's ids whose socket has ended (the peer's
// FIN, a reset or an error): ids are counted from 1 and never reach it.
const pollHup = 1 << 63

// ready starts the reader of each registration in ids (from one wait,
// which returned at woke: monoNow, one clock reading per wait).
func (p *poller) ready(ids []uint64, regs []*pollReg, woke int64) []*pollReg {
	regs = regs[:0]
	p.mu.Lock()
	for _, id := range ids {
		if r := p.regs[id&^pollHup]; r != nil {
			if id&pollHup != 0 {
				// Before start: the reader it starts, or the one running,
				// must not park again (see pollReg.hup).
				r.hup.Store(true)
			}
			regs = append(regs, r)
		}
	}
	p.mu.Unlock()
	for i, r := range regs {
		if p.claim(r) {
			r.woke = woke
			// The poller's loop holds no lock: it may yield to the
			// readers it started rather than start more (startYielding).
			p.readers.startYielding((*readerTask)(r))
		}
		regs[i] = nil
	}
	return regs
}

// poller returns the server's poller, starting it on first use; nil when
// none can run here (then connections keep a reader goroutine).
func (s *Server) poller() *poller {
	s.pollMu.Lock()
	defer s.pollMu.Unlock()
	if s.poll == nil && !s.pollOff && !s.closing.Load() {
		p, err := newPoller()
		if err != nil {
			s.pollOff = true
			if rawReads {
				s.log.Warn("no poller: idle connections keep a reader goroutine", "err", err)
			}
			return nil
		}
		p.regs = make(map[uint64]*pollReg)
		p.log = s.log
		p.readers.init(maxIdleReaders)
		p.wg.Add(1)
		go p.loop()
		s.poll = p
	}
	return s.poll
}

// closePoller stops the poller, once every connection has ended, and
// waits for its goroutines.
func (s *Server) closePoller() {
	s.pollMu.Lock()
	p := s.poll
	s.poll, s.pollOff = nil, true
	s.pollMu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	p.off.Store(true)
	p.mu.Unlock()
	p.stopLoop()
	p.wg.Wait()
	p.readers.close()
	p.release()
}
