package server

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
