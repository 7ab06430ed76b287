package server

import (
	"context"
	"time"

	"github.com/parleychat/parley/protocol"
)

// sweep closes, with 4002, every registered connection not heard from for
// the heartbeat timeout, skipping paused ones, and drops every connection
// whose current write began writeTimeout ago or more (the peer does not
// read). One sweep per server replaces a timer per connection and per
// write; Server.heartbeat runs it.
func (h *hub) sweep(now time.Time, timeout time.Duration) {
	cut := now.Add(-timeout).UnixNano()
	wcut := now.Add(-writeTimeout).UnixNano()
	var silent, stuck []*conn
	h.mu.Lock()
	for _, first := range h.users {
		for c := first; c != nil; c = c.hubNext {
			if c.lastRead.Load() <= cut && !c.paused.Load() {
				silent = append(silent, c)
			}
			if w := c.writing.Load(); w != 0 && w <= wcut {
				stuck = append(stuck, c)
			}
		}
	}
	h.mu.Unlock()
	for _, c := range silent {
		c.closeWith(protocol.CloseHeartbeatTimeout, "heartbeat timeout", false)
	}
	for _, c := range stuck {
		c.t.CloseNow() // the write fails and the writer ends the connection
	}
}

// heartbeat closes silent connections with 4002 and drops connections
// stuck in a write: one sweep (hub.sweep) over every connection each tenth
// of the heartbeat timeout (at most 1 s), instead of timers per connection, so a silent
// client is closed between 1x and 1.1x HeartbeatTimeout after the server
// last read from it. Paused connections are skipped (see conn.paused).
func (s *Server) heartbeat(ctx context.Context) {
	timeout := s.cfg.HeartbeatTimeout
	every(ctx, max(min(timeout/10, time.Second), time.Millisecond), func(now time.Time) {
		s.hub.sweep(now, timeout)
	})
}
