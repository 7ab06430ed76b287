package server

import (
	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// requestQueue and requestQueueBytes bound the requests read from a
// connection and not yet run: at most requestQueue of them, and once
// they hold requestQueueBytes (their frames' sizes) no more, so a client
// whose requests wait (on a slow store, or behind replies it does not
// read) holds at most requestQueueBytes and one frame in them, not
// requestQueue frames of parley.MaxFrameBytes each (2 MiB). When either
// is reached the reader stops reading (backpressure on the client's
// socket) until the worker takes one; see conn.paused for the
// heartbeat. A request is always taken when none waits.
const (
	requestQueue      = 32
	requestQueueBytes = parley.MaxFrameBytes
)

// requestsFullLocked reports whether the reader must wait before it
// queues another request (requestQueue, requestQueueBytes). c.mu held.
func (c *conn) requestsFullLocked() bool {
	n := len(c.reqs) + c.held
	return n >= requestQueue || n > 0 && c.reqBytes+c.heldBytes >= requestQueueBytes
}

// requestBytes is the size of rs's frames.
func requestBytes(rs []request) int {
	n := 0
	for _, r := range rs {
		n += r.size
	}
	return n
}

// request is a message read for the worker: raw (a readPool buffer) until
// the worker decodes it into req, or the error decoding it gave
// (answered in order with the requests around it). The reader does not
// decode: decoding JSON would grow its stack, which an idle connection
// would then keep.
type request struct {
	raw *[]byte
	req protocol.Request
	err error
	// woke: when the poller saw the socket readable, for the first
	// request read after that wake-up (monoNow); 0 for the others. A
	// send observes it once, when the worker starts handling it
	// (dispatchSends): parley_send_wake_seconds.
	woke int64
	// size is the frame's length: what it counts in requestQueueBytes.
	size int
}

// push queues r for the worker, starting it when none runs. When the queue
// is full (requestQueue requests or requestQueueBytes, counting a run of
// sends the worker holds) it waits for room with the connection paused (not read, and not
// subject to the heartbeat); it returns false when the connection is
// closing meanwhile.
func (c *conn) push(r request) bool {
	c.mu.Lock()
	for c.requestsFullLocked() {
		if c.closeCode != 0 {
			c.mu.Unlock()
			return false
		}
		room := make(chan struct{})
		c.room = room
		c.mu.Unlock()
		c.paused.Store(true)
		select {
		case <-room:
		case <-c.s.connCtx.Done():
		}
		c.touch() // silence is counted again from now
		c.paused.Store(false)
		if c.s.connCtx.Err() != nil {
			return false
		}
		c.mu.Lock()
	}
	c.reqs = append(c.reqs, r)
	c.reqBytes += r.size
	if !c.workerOn && !c.sendsOut { // else sendsDone starts it
		c.startWorkerLocked()
	}
	c.mu.Unlock()
	return true
}

// maxIdleWorkers bounds the worker goroutines waiting for another
// connection's requests (Server.workers). With one P, the readers a wait
// of the poller started (up to 256) may each start a worker before any
// worker runs.
const maxIdleWorkers = 32

// startWorkerLocked starts the connection's worker (work) on a
// Server.workers goroutine, counted in wg. c.mu must be held and the
// worker not running (workerOn).
func (c *conn) startWorkerLocked() {
	c.workerOn = true
	c.wg.Add(1)
	c.s.workers.start((*workerTask)(c))
}

// workerTask is a connection whose worker (work) a Server.workers
// goroutine runs.
type workerTask conn

func (t *workerTask) do() { (*conn)(t).work() }

// work runs queued requests one at a time, in the order read, so a
// client's sends are stored in the order sent; a run of consecutive sends
// counts as one request here, handed to the store together
// (dispatchSends), which keeps their order. It is started by push,
// counted in wg, and returns when the queue is empty. It runs a request
// only while at most half the send queue's budget is queued (waitDrained),
// so a client that asks much and reads nothing holds about its budget.
// Once the connection
// is closing, requests still queued are dropped rather than run: their
// replies would go nowhere, the client resends what it got no reply for
// (sends are idempotent), and running them would only keep a dead
// connection's work (up to a full queue of sends each) in the store's
// batches and in the way of a shutdown. The request in progress finishes,
// except a run of sends handed to the store: the store drops those of
// its sends it has not taken into a batch yet (conn.dropSends).
func (c *conn) work() {
	defer c.wg.Done()
	defer c.recoverWorker()
	var batch []request // taken from reqs, decoded, run in order; counted in held
	for {
		c.mu.Lock()
		c.held, c.heldBytes = len(batch), requestBytes(batch)
		if c.closeCode != 0 {
			clear(c.reqs)
			c.reqs, c.reqBytes = c.reqs[:0], 0
			clear(batch)
			batch = nil
			clear(c.parked)
			c.parked = nil
			c.held, c.heldBytes = 0, 0
		}
		if c.room != nil && !c.requestsFullLocked() { // the reader waits: there is room now
			close(c.room)
			c.room = nil
		}
		if len(batch) == 0 && len(c.parked) > 0 {
			// Left, decoded, by the worker that handed a run of sends
			// to the store (dispatchSends); they run first.
			batch, c.parked = c.parked, nil
			c.held, c.heldBytes = len(batch), requestBytes(batch)
		}
		if len(batch) == 0 {
			if len(c.reqs) == 0 {
				c.workerOn = false
				c.reqs = nil // an idle connection holds no queue
				c.mu.Unlock()
				return
			}
			batch, c.reqs = c.reqs, nil
			c.held, c.heldBytes, c.reqBytes = len(batch), c.reqBytes, 0
			c.mu.Unlock()
			// Decoded here, not by the reader (see request), and outside
			// c.mu. DecodeRequest copies what it keeps (strings, data), so
			// each buffer goes back to the pool at once.
			for i := range batch {
				batch[i].req, batch[i].err = protocol.DecodeRequest(*batch[i].raw)
				readPool.Put(batch[i].raw)
				batch[i].raw = nil
			}
			continue
		}
		if c.queuedLocked() > c.s.cfg.Limits.SendQueueBytes/2 {
			// The client has not read what earlier requests produced:
			// the next reply waits for it (back-pressure), and the reader
			// stops reading once the request queue is full.
			c.mu.Unlock()
			c.waitDrained()
			continue
		}
		c.mu.Unlock()
		r := batch[0]
		n := 1
		if isSend(r) {
			// The sends right behind this one go to the store with it.
			for n < len(batch) && n < maxSendRun && isSend(batch[n]) {
				n++
			}
		}
		c.s.testPanic("worker")
		switch {
		case r.err != nil:
			c.enqueue(errorFrame(c.s, r.req.ID, r.err), false)
		case r.req.Op == protocol.OpPing: // a ping in a form plainPing does not take
			c.enqueue(pongFrame(r.req.ID), false)
		case isSend(r):
			if c.dispatchSends(c.s.connCtx, batch[:n]) {
				// The store replies to the run; the worker parks what
				// follows and exits unless the run was answered already.
				clear(batch[:n])
				if c.park(batch[n:]) {
					return
				}
				batch = batch[n:]
				continue
			}
		default:
			c.dispatch(c.s.connCtx, r.req)
		}
		clear(batch[:n])
		batch = batch[n:]
	}
}

// park ends the worker while a run of sends it handed to the store is not
// answered (c.sendsOut): rest, the requests it took after the run, wait in
// c.parked for the worker sendsDone starts. It reports false, parking
// nothing, when the run was answered already: the worker goes on.
func (c *conn) park(rest []request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sendsOut {
		return false
	}
	c.parked = rest
	c.held, c.heldBytes = len(rest), requestBytes(rest)
	c.workerOn = false
	if c.room != nil && !c.requestsFullLocked() {
		close(c.room)
		c.room = nil
	}
	return true
}

func isSend(r request) bool { return r.err == nil && r.req.Op == protocol.OpSend }
