package bench

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// refusals shares one worker's knowledge that the server refuses
// connections (its port is closed: killed, or warming up before it
// listens), so that a storm's thousands of clients do not each pay a
// socket, a connect and a close per retry to learn the same thing.
//
// While the server is known to refuse, at most one dial is in flight (the
// probe); a client whose backoff ends meanwhile waits for that dial and
// takes its outcome as its own attempt's: refused, it backs off as if it
// had been refused itself; accepted, it dials at once. Every client still
// retries on its own backoff schedule and learns the truth at the moment
// it retries (give or take one loopback connect), so when the server comes
// back the clients arrive as they would have, but the load tool's CPU no
// longer grows with the number of clients times their retries while the
// server is down. A client of the SDK on its own device pays its own
// refused connects; on the load tool's machine they are paid from the CPU
// the restarted server needs.
//
// Probes are at least probeGap apart: a client whose backoff ends just
// after a probe waits up to probeGap for the next one, i.e. its attempt
// is late by at most that much, and the load tool dials at most
// 1/probeGap times a second per worker while the server is down.
//
// Any dial that succeeds, or fails otherwise than by a refusal, ends the
// refusing state.
type refusals struct {
	mu     sync.Mutex
	down   bool    // the last dial that reached a verdict was refused
	flight *flight // the probe in flight while down, or nil
	probed time.Time

	dials   atomic.Int64 // dials made (TCP connects tried)
	refused atomic.Int64 // of those, refused
	shared  atomic.Int64 // attempts answered by another client's refused dial
}

// flight is one probe dial; done is closed when refused is set.
// probeGap is the least time between two probes while the server refuses.
const probeGap = 2 * time.Millisecond

type flight struct {
	done    chan struct{}
	refused error // the refusal, or nil if the probe was not refused
}

// errorIsRefused reports whether err is a refused TCP connect.
func errorIsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// errDownNow is dialNow's answer when the server was found refusing while
// the dial waited for sem: the caller asks again (and waits for the probe).
var errDownNow = errors.New("bench: server refusing")

// dial dials through dial, with one of sem's slots, or while the server
// refuses, shares one dial's outcome between the clients that retry
// meanwhile (see refusals). It is safe for concurrent use.
func (r *refusals) dial(ctx context.Context, sem *semaphore, dial func(context.Context) (*wsConn, error)) (*wsConn, error) {
	for {
		r.mu.Lock()
		if !r.down {
			r.mu.Unlock()
			conn, err := r.dialNow(ctx, sem, dial, nil)
			if err == errDownNow {
				continue
			}
			return conn, err
		}
		if f := r.flight; f != nil {
			r.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if f.refused != nil {
				r.shared.Add(1)
				return nil, f.refused
			}
			continue // the server answers: dial for real
		}
		f := &flight{done: make(chan struct{})}
		r.flight = f
		wait := time.Until(r.probed.Add(probeGap))
		r.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		return r.dialNow(ctx, sem, dial, f)
	}
}

// dialNow makes one dial with a slot of sem and records its verdict; f,
// when not nil, is the probe it answers. Any other dial that finds the
// server refusing once it has its slot (the refusal came while it waited
// in a burst) gives the slot back and returns errDownNow.
func (r *refusals) dialNow(ctx context.Context, sem *semaphore, dial func(context.Context) (*wsConn, error), f *flight) (*wsConn, error) {
	err := sem.Acquire(ctx)
	if err == nil && f == nil {
		r.mu.Lock()
		down := r.down
		r.mu.Unlock()
		if down {
			sem.Release()
			return nil, errDownNow
		}
	}
	var conn *wsConn
	if err == nil {
		r.dials.Add(1)
		conn, err = dial(ctx)
		sem.Release()
	}
	refused := err != nil && errorIsRefused(err)
	if refused {
		r.refused.Add(1)
	}
	// A dial cut short by ctx says nothing about the server.
	verdict := err == nil || refused || ctx.Err() == nil
	r.mu.Lock()
	if verdict {
		r.down = refused
	}
	if refused {
		r.probed = time.Now()
	}
	if f != nil {
		r.flight = nil
		if refused {
			f.refused = err
		}
		close(f.done)
	}
	r.mu.Unlock()
	return conn, err
}
