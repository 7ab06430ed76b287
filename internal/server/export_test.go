package server

import (
	"slices"
	"sync/atomic"

	"github.com/parleychat/parley"
)

// RequestQueue is the per-connection request queue bound, for tests that
// fill it.
const RequestQueue = requestQueue

// MaxBatchBytes is the bound of one batched message.
const MaxBatchBytes = maxBatchBytes

// ConvChunk is the most conversations a page holds when the client sets
// no limit.
const ConvChunk = convChunk

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
func (s *Server) DeliverForBench(ev parley.Event) {
	flushOwed(s.hub.deliverOwed(ev, false, nil), noHold) // not the run goroutine's h.owed
}

// PanicAt makes the test hook panic the next time it is called at where
// (once): reader, worker, writer, hello, start, timer or http (see
// testPanic's callers).
func (s *Server) PanicAt(where string) {
	var done atomic.Bool
	f := func(w string) {
		if w == where && done.CompareAndSwap(false, true) {
			panic("test panic at " + where)
		}
	}
	s.panicHook.Store(&f)
}

// Panics is parley_panics_total summed over where ("" ) or for one where.
func (s *Server) Panics(where string) float64 {
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		panic(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "parley_panics_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "where" && (where == "" || l.GetValue() == where) {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// Conns counts the registered connections.
func (s *Server) Conns() int { return len(s.hub.conns()) }

// SetHTTPReplyBytes lowers the HTTP replies' byte cap (0: MaxReplyBytes),
// so a test needs few items to fill a page.
func (s *Server) SetHTTPReplyBytes(n int) { s.httpReplyCap.Store(int64(n)) }

// RoutePatterns are the ServeMux patterns the handler serves.
func (s *Server) RoutePatterns() []string { return slices.Clone(s.routePatterns) }

// OpenAPIJSON is the embedded OpenAPI document.
func OpenAPIJSON() []byte { return openapiJSON }

// MetricSum sums metric name over the series whose labels include want:
// a counter's or gauge's value, a histogram's sample count.
func (s *Server) MetricSum(name string, want map[string]string) float64 {
	mfs, err := s.metrics.reg.Gather()
	if err != nil {
		panic(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == k && l.GetValue() == v)
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetHistogram() != nil:
				n += float64(m.GetHistogram().GetSampleCount())
			case m.GetCounter() != nil:
				n += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				n += m.GetGauge().GetValue()
			}
		}
	}
	return n
}

// ClosingConns counts the registered connections that are closing: a
// close was asked for (or the client left) and their teardown waits for
// what they started (their writer, their worker, their sends in the
// store).
func (s *Server) ClosingConns() int {
	n := 0
	for _, c := range s.hub.conns() {
		if c.closing() {
			n++
		}
	}
	return n
}

// UserCache returns the entries and estimated bytes of the node's user
// cache (the users it has checked in the store).
func (s *Server) UserCache() (entries, bytes int) { return s.svc.ensured.size() }

// UserCached reports whether the node's user cache holds id.
func (s *Server) UserCached(id string) bool {
	_, ok := s.svc.ensured.load(id)
	return ok
}

// EraseConvPages bounds the pages of a user's conversation list one erase
// call reads.
const EraseConvPages = eraseConvPages
