package server

import (
	"sync"
	"time"

	"github.com/parleychat/parley/protocol"
)

// maxBatchBytes bounds one batched WebSocket message (hello batch: true):
// the transport joins queued frames with '\n' up to this size.
const maxBatchBytes = 64 << 10

type outFrame struct {
	b         []byte
	droppable bool      // typing and presence: the first to go when the queue is full
	kind      frameKind // a protocol frame (text), a pong answering a WebSocket ping, or the heartbeat's ping
}

// frameOverhead is what a queued frame costs besides its bytes (its
// outFrame in the queue, its allocation's header): charged so that many
// tiny frames (pongs) are bounded by the send queue's budget too.
const frameOverhead = 64

func frameCost(b []byte) int { return len(b) + frameOverhead }

// queuedLocked is the cost of what is queued and being written. c.mu
// must be held.
func (c *conn) queuedLocked() int { return c.qBytes + c.flying }

// kickLocked starts the writer when there is something for it to do and
// none runs (and no send reply waits for its events: see heldLocked), and
// wakes a worker waiting for the queue to drain when the connection is
// closing. c.mu must be held.
func (c *conn) kickLocked() {
	c.wakeDrainedLocked()
	if !c.started || c.writerOn || c.closed || (len(c.q) == 0 && c.closeCode == 0) || c.heldLocked() {
		return
	}
	c.writerOn = true
	c.wg.Add(1)
	go c.writeLoop()
}

// heldLocked reports whether the queue waits for the hub's flush of a
// commitFlush hand-off (replyTake) and the connection is not closing:
// then only flushInline writes it. c.mu must be held.
func (c *conn) heldLocked() bool { return c.replyTake != 0 && c.closeCode == 0 }

// enqueue queues a frame for the writer and reports whether it was
// queued. The queue is bounded in bytes (Limits.SendQueueBytes, counting
// the frames the writer is writing): a droppable frame that does not fit
// is dropped; for any other frame the queued droppable frames go first,
// oldest first, and when it still does not fit the connection closes
// with 4001: the client resumes and loses nothing. A frame larger than
// the whole budget is queued when nothing else is, so it can always be
// delivered.
func (c *conn) enqueue(b []byte, droppable bool) bool {
	return c.enqueueFrame(outFrame{b: b, droppable: droppable})
}

// enqueueFrame is enqueue for any outFrame (a pong too).
func (c *conn) enqueueFrame(f outFrame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enqueueLocked(f) {
		return false
	}
	c.kickLocked()
	return true
}

// enqueueLocked is enqueueFrame without starting the writer for f (it
// does start it to close a slow consumer). c.mu must be held.
func (c *conn) enqueueLocked(f outFrame) bool {
	if c.closeCode != 0 {
		return false
	}
	n, budget := frameCost(f.b), c.s.cfg.Limits.SendQueueBytes
	if q := c.queuedLocked(); q > 0 && q+n > budget {
		if f.droppable {
			c.s.metrics.drops.WithLabelValues("ephemeral").Inc()
			return false
		}
		kept := c.q[:0]
		for _, f := range c.q {
			if f.droppable && c.queuedLocked()+n > budget {
				c.qBytes -= frameCost(f.b)
				c.s.metrics.drops.WithLabelValues("ephemeral").Inc()
				if f.kind == framePing {
					// Never sent: not outstanding, so the next sweep
					// pings again (hub.sweep).
					c.pinged.Store(0)
				}
				continue
			}
			kept = append(kept, f)
		}
		clear(c.q[len(kept):])
		c.q = kept
		if q := c.queuedLocked(); q > 0 && q+n > budget {
			c.s.metrics.drops.WithLabelValues("durable").Inc()
			c.s.metrics.slowClosed.Inc()
			c.q, c.qBytes = nil, 0
			c.closeCode, c.closeReason = protocol.CloseSlowConsumer, "slow consumer"
			c.kickLocked()
			return false
		}
	}
	if c.q == nil {
		if c.spare != nil {
			c.q, c.spare = c.spare, nil
		} else {
			c.q = newQueue()
		}
	}
	c.q = append(c.q, f)
	c.qBytes += n
	return true
}

// queueCap is the capacity of the send queues queuePool keeps: a
// connection that gets a frame now and then (most of them, in a fan-out)
// takes its queue from the pool and gives it back when its writer exits,
// instead of allocating one per frame; a queue that grew is left to the
// GC.
const queueCap = 4

var queuePool = sync.Pool{New: func() any { return new([queueCap]outFrame) }}

// newQueue returns an empty send queue from queuePool.
func newQueue() []outFrame { return queuePool.Get().(*[queueCap]outFrame)[:0] }

// freeQueue gives q back to queuePool when it is one of its queues (as
// long as it did not grow); nothing may use q afterwards.
func freeQueue(q []outFrame) {
	if cap(q) != queueCap {
		return
	}
	a := (*[queueCap]outFrame)(q[:queueCap])
	clear(a[:]) // let the frames' bytes go
	queuePool.Put(a)
}

// waitDrained waits, for the worker, until at most half the send queue's
// budget is queued or the connection is closing: replies are produced no
// faster than the client reads them. A client that stops reading ends it
// with its connection: the sweep closes a connection stuck in a write for
// writeTimeout, and the writer's failed write then closes it (kickLocked
// and writeLoop wake the wait).
func (c *conn) waitDrained() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.closeCode == 0 && c.queuedLocked() > c.s.cfg.Limits.SendQueueBytes/2 {
		ch := make(chan struct{})
		c.drained = ch
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// wakeDrainedLocked ends waitDrained's wait when the queue drained below
// half its budget or the connection is closing. c.mu must be held.
func (c *conn) wakeDrainedLocked() {
	if c.drained != nil && (c.closeCode != 0 || c.closed || c.queuedLocked() <= c.s.cfg.Limits.SendQueueBytes/2) {
		close(c.drained)
		c.drained = nil
	}
}

// writeFrames writes frames in order through the transport, coalesced
// into as few writes as it can (with batching, as few messages as
// maxBatchBytes allows, the frames of a message separated by '\n'). Its
// timeout (writeTimeout) is enforced by the server's sweep (hub.sweep),
// which drops a connection whose write has been in progress that long: a
// deadline here would cost a timer per write. A shutdown that runs out of
// time drops the connection too (see Server.shutdown), which ends the
// write. It holds no lock: the hub and the worker enqueue meanwhile.
func (c *conn) writeFrames(frames []outFrame) error {
	if len(frames) == 0 {
		return nil
	}
	c.writing.Store(time.Now().UnixNano())
	err := c.t.Write(frames, c.batch)
	c.writing.Store(0)
	return err
}

// writeLoop drains the queue and closes the connection when asked. It is
// started by kickLocked, counted in wg (serve waits for it), and returns
// when the queue is empty or after closing the WebSocket.
func (c *conn) writeLoop() {
	defer c.wg.Done()
	defer c.recoverWriter()
	var done []outFrame
	for {
		c.mu.Lock()
		if done != nil && c.spare == nil {
			clear(done) // let the frames' bytes go
			c.spare = done[:0]
		}
		if c.heldLocked() {
			// A send reply was queued while this writer wrote: the
			// hub's flush writes it with its events (replyTake).
			c.writerOn = false
			freeQueue(c.spare)
			c.spare = nil
			c.mu.Unlock()
			return
		}
		q := c.q
		c.q = nil
		c.flying, c.qBytes = c.qBytes, 0
		c.wakeDrainedLocked()
		code, reason, flush := c.closeCode, c.closeReason, c.flush
		if len(q) == 0 && code == 0 {
			c.writerOn = false
			freeQueue(c.spare) // an idle connection holds no queue
			c.spare = nil
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.s.testPanic("writer")
		if code != 0 && !flush {
			q = nil
		}
		if err := c.writeFrames(q); err != nil {
			code = closeNow
		}
		c.observeLag()
		if code != 0 {
			// Close sends the close frame and ends the client's half: the
			// reader sees the client's answer or the end of the stream,
			// and end drops the connection.
			if code == closeNow {
				c.t.CloseNow()
			} else if c.t.Close(code, reason) != nil {
				c.t.CloseNow()
			}
			c.mu.Lock()
			c.closed, c.writerOn, c.q, c.spare = true, false, nil, nil
			c.qBytes, c.flying = 0, 0
			if c.closeCode == 0 {
				c.closeCode = closeNow // a failed write: nothing more to queue
			}
			c.wakeDrainedLocked()
			c.mu.Unlock()
			return
		}
		done = q
	}
}
