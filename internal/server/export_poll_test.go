package server

import "fmt"

// ParkedConns counts the connections parked with the poller: no goroutine
// reads them until they are readable (see poller).
func (s *Server) ParkedConns() int {
	s.pollMu.Lock()
	p := s.poll
	s.pollMu.Unlock()
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.regs {
		if r.state.Load() == pollParked {
			n++
		}
	}
	return n
}

// FailPoller does what the poller's loop does when its wait fails:
// parked connections get their reader goroutine back and none parks again.
func (s *Server) FailPoller(err error) {
	s.pollMu.Lock()
	p := s.poll
	s.pollMu.Unlock()
	if p != nil {
		p.fail(err)
	}
}

// PollerState describes the poller for a failing test: whether it is
// off, and its registrations by reader state (running, parked, notified)
// and by flag (stop, hup).
func (s *Server) PollerState() string {
	s.pollMu.Lock()
	p := s.poll
	s.pollMu.Unlock()
	if p == nil {
		return "no poller"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var states [3]int
	stop, hup := 0, 0
	for _, r := range p.regs {
		if st := r.state.Load(); int(st) < len(states) {
			states[st]++
		}
		if r.stop.Load() {
			stop++
		}
		if r.hup.Load() {
			hup++
		}
	}
	return fmt.Sprintf("off=%v closed=%v regs=%d running=%d parked=%d notified=%d stop=%d hup=%d",
		p.off.Load(), p.closed, len(p.regs), states[pollRunning], states[pollParked], states[pollNotified], stop, hup)
}

// StaleWake does what the poller's loop does with an event for each
// connection registered, although no bytes came: an edge the last reader
// had read the bytes of before it parked (see wsConn.Park).
func (s *Server) StaleWake() {
	s.pollMu.Lock()
	p := s.poll
	s.pollMu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	ids := make([]uint64, 0, len(p.regs))
	for id := range p.regs {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	p.ready(ids, nil, monoNow())
}
