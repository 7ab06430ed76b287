package server

import "github.com/parleychat/parley"

// RequestQueue is the per-connection request queue bound, for tests that
// fill it.
const RequestQueue = requestQueue

// MaxBatchBytes is the bound of one batched message.
const MaxBatchBytes = maxBatchBytes

// PausedConns counts the registered connections the server is not reading
// from for its own reasons (see conn.paused).
func (s *Server) PausedConns() int {
	n := 0
	for _, c := range s.hub.conns() {
		if c.paused.Load() {
			n++
		}
	}
	return n
}

// DeliverForBench delivers a durable event to the local connections of its
// audience as the sequencer does. Only for benchmarks that have no other
// durable traffic, from one goroutine.
func (s *Server) DeliverForBench(ev parley.Event) { s.hub.deliver(ev) }
