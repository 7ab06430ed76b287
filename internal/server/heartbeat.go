package server

import (
	"context"
	"time"

	"github.com/parleychat/parley/protocol"
)

// pingAfter is how long a connection is silent before the heartbeat
// sweep sends it a WebSocket ping: 1.5 heartbeat intervals, and at most
// two thirds of the timeout (6 s with the defaults, 4 s and 9 s).
//
// Above the interval so that a client pinging as told never gets one: the
// browser SDK pings from a 1 s tick, so its pings come up to interval+1 s
// apart, and the half interval leaves room for that and for network and
// scheduling jitter. Below the timeout by enough for the pong: the ping
// goes out at the first sweep after pingAfter (sweeps are a tenth of the
// timeout apart, at most 1 s), so the pong has at least timeout -
// pingAfter - timeout/10 (2.1 s with the defaults) before the sweep that
// would close the connection with 4002. The cap keeps that margin when
// the interval is configured close to the timeout.
func pingAfter(interval, timeout time.Duration) time.Duration {
	return min(interval+interval/2, timeout*2/3)
}

// sweep closes, with 4002, every registered connection not heard from for
// the heartbeat timeout, sends a WebSocket ping (framePing) to every one
// silent for ping (pingAfter) that has none outstanding and whose
// transport sends pings (not pingless), skipping paused
// ones for both, and drops every connection whose current write began
// writeTimeout ago or more (the peer does not read). One sweep per server
// replaces a timer per connection and per write; Server.heartbeat runs it.
// It returns how many pings it sent.
func (h *hub) sweep(now time.Time, timeout, ping time.Duration) int {
	cut := now.Add(-timeout).UnixNano()
	pcut := now.Add(-ping).UnixNano()
	wcut := now.Add(-writeTimeout).UnixNano()
	var silent, quiet, stuck []*conn
	h.mu.Lock()
	for _, first := range h.users {
		for c := first; c != nil; c = c.hubNext {
			if read := c.lastRead.Load(); read <= pcut && !c.paused.Load() {
				switch {
				case read <= cut:
					silent = append(silent, c)
				case !c.noPings && c.pinged.Load() <= read:
					quiet = append(quiet, c)
				}
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
	sent := 0
	for _, c := range quiet {
		// Droppable: a queue too full to take it, now or later (it is
		// dropped from the queue for a durable frame, which clears
		// pinged), leaves the connection unpinged, and the next sweep
		// tries again. Marked before it is queued, so a drop right after
		// is not overwritten.
		c.pinged.Store(now.UnixNano())
		if c.sendNow(outFrame{kind: framePing, droppable: true}) {
			sent++
		} else {
			c.pinged.Store(0)
		}
	}
	for _, c := range stuck {
		c.t.CloseNow() // the write fails and the writer ends the connection
	}
	return sent
}

// heartbeat closes silent connections with 4002, pings quiet ones and
// drops connections stuck in a write: one sweep (hub.sweep) over every
// connection each tenth of the heartbeat timeout (at most 1 s), instead of
// timers per connection, so a silent client is closed between 1x and 1.1x
// HeartbeatTimeout after the server last read from it, having been sent
// one WebSocket ping after pingAfter. Paused connections are skipped (see
// conn.paused).
func (s *Server) heartbeat(ctx context.Context) {
	timeout := s.cfg.HeartbeatTimeout
	ping := pingAfter(s.cfg.HeartbeatInterval, timeout)
	every(ctx, max(min(timeout/10, time.Second), time.Millisecond), func(now time.Time) {
		if n := s.hub.sweep(now, timeout, ping); n > 0 {
			s.metrics.heartbeatPings.Add(float64(n))
		}
	})
}
