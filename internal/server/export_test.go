package server

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
