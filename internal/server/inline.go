package server

import (
	"bytes"
	"errors"
)

// inlineWriter is implemented by transports that can try a write without
// blocking (wsConn over a socket with a RawConn). With it a frame for a
// connection whose queue is empty and whose writer is not running is
// written by the goroutine that has it (the hub delivering an event, the
// reader answering a ping) in one write(2), instead of starting a writer
// goroutine for it: most deliveries cost one system call and no goroutine
// start, switch or exit. What the socket does not take at once goes to
// the connection's queue and its writer, as before (writeQueueInline).
type inlineWriter interface {
	// Inline reports whether TryWrite can take anything at all (false
	// over TLS, where the socket has no RawConn): if not, every frame
	// goes to the writer.
	Inline() bool
	// AppendFrames appends frames encoded as Write writes them (with
	// batch, consecutive text frames share a message) to dst.
	AppendFrames(dst []byte, frames []outFrame, batch bool) []byte
	// TryWrite writes b if the socket takes it without waiting: n is
	// what it took (less than len(b) when its send buffer filled up),
	// err is errWouldBlock when it took nothing for that reason, or the
	// socket's failure. Only the goroutine that holds the connection's
	// write side (conn.writerOn) calls it.
	TryWrite(b []byte) (n int, err error)
}

// errWouldBlock is TryWrite's answer when the socket's send buffer is
// full: the frame waits in the queue for the writer.
var errWouldBlock = errors.New("write would block")

// sendNow queues f like enqueueFrame, but when no writer runs it writes
// the queue at once on the calling goroutine (queueForFlush, then
// flushInline): the reader answers a ping this way. The caller must hold
// no lock another connection's sender needs. It reports whether f was
// queued (or written).
func (c *conn) sendNow(f outFrame) bool {
	if !canInline(c.t) {
		return c.enqueueFrame(f)
	}
	c.mu.Lock()
	ok := c.enqueueLocked(f)
	owed := ok && !c.flushOwed && c.started && !c.writerOn && !c.closed && c.closeCode == 0
	if ok && !owed {
		c.kickLocked()
	}
	c.flushOwed = c.flushOwed || owed
	c.mu.Unlock()
	if owed {
		c.flushInline(0) // not past a send reply waiting for its events
	}
	return ok
}

// queueFrame is enqueueFrame, marking the event's lag for the writer.
func (c *conn) queueFrame(f outFrame, at int64) bool {
	if !c.enqueueFrame(f) {
		return false
	}
	c.markLag(at)
	return true
}

// queueForFlush queues f (as enqueueFrame does, within the same byte
// budget) for the caller to write with flushInline once it has queued
// everything it has for now: the hub queues a whole batch of events this
// way, so a connection that gets several of them gets them in one write,
// and a connection that gets one gets it without a writer goroutine. It
// reports whether the caller must call flushInline for c: f is queued, no
// writer runs, and c was not already waiting for the caller's flush.
// Otherwise f is queued for the writer as enqueueFrame does (or dropped:
// the connection is closing, or over its budget).
func (c *conn) queueForFlush(f outFrame, at int64) bool {
	if !canInline(c.t) {
		c.queueFrame(f, at)
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enqueueLocked(f) {
		return false
	}
	c.markLag(at)
	if c.flushOwed {
		return false
	}
	if !c.started || c.writerOn || c.closed || c.closeCode != 0 {
		c.kickLocked()
		return false
	}
	c.flushOwed = true
	return true
}

// flushInline writes what queueForFlush queued for c, on the calling
// goroutine, in one non-blocking write when the socket takes it (see
// writeInline for what it does not take). A writer that started
// meanwhile (another goroutine's enqueue, a close) writes it instead. The
// caller holds no lock.
//
// The queue is written only if its send replies wait for no commitFlush
// hand-off after limit (c.replyTake): the hub passes the last hand-off
// whose events it queued, so a reply a later batch queued meanwhile is
// left, with everything queued, for the flush of its own hand-off (which
// lists c); a caller that cannot wait passes noHold.
func (c *conn) flushInline(limit uint64) {
	iw := c.t.(inlineWriter) // queueForFlush asked for the flush: it is one
	c.mu.Lock()
	c.flushOwed = false
	if c.replyTake > limit && c.closeCode == 0 {
		c.mu.Unlock()
		return
	}
	c.replyTake = 0
	if !c.started || c.writerOn || c.closed || c.closeCode != 0 || len(c.q) == 0 || c.qBytes > writeChunk {
		// A writer runs, or will (a close, a queue larger than one
		// write's chunk): it writes the queue.
		c.kickLocked()
		c.mu.Unlock()
		return
	}
	q := c.q
	c.q = nil
	c.flying, c.qBytes = c.qBytes, 0
	c.writerOn = true
	c.wg.Add(1)
	c.mu.Unlock()
	c.writeQueueInline(iw, q)
}

// writeQueueInline writes q, taken from the queue by flushInline, which
// holds the write side, on the calling goroutine, in one non-blocking
// write; the rest goes first in the queue for the writer. A panic closes
// this connection only, with 1011.
func (c *conn) writeQueueInline(iw inlineWriter, q []outFrame) {
	defer c.wg.Done()
	defer c.recoverInline()
	c.s.testPanic("writer")
	bp := writeBufPool.Get().(*[]byte)
	b := iw.AppendFrames((*bp)[:0], q, c.batch)
	n, err := iw.TryWrite(b)
	var rest []outFrame
	switch {
	case err == nil && n == len(b):
		freeQueue(q)
	case err == nil || errors.Is(err, errWouldBlock):
		if n == 0 {
			rest = q // nothing on the wire: the frames wait as they were
		} else {
			freeQueue(q)
			rest = []outFrame{{b: bytes.Clone(b[n:]), kind: frameRaw}}
		}
	default:
		freeQueue(q)
	}
	if cap(b) <= writeChunk+(16<<10) {
		*bp = b[:0]
		writeBufPool.Put(bp)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writerOn, c.flying = false, 0
	switch {
	case err == nil && n == len(b):
		c.observeLag()
	case rest != nil:
		// Ahead of anything queued meanwhile.
		for _, f := range rest {
			c.qBytes += frameCost(f.b)
		}
		c.q = append(rest, c.q...)
	default:
		if c.closeCode == 0 {
			c.closeCode = closeNow // the socket failed: nothing more to write
		}
	}
	c.kickLocked()
}

// recoverInline is deferred by writeQueueInline: after a panic it gives
// the write side back and has the writer close the connection with 1011
// (the queue dropped), as a panic of the writer itself does.
func (c *conn) recoverInline() {
	v := recover()
	if v == nil {
		return
	}
	c.s.caught("writer", v, c)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = closeInternal, internalReason
	}
	c.flush = false
	c.writerOn, c.flying = false, 0
	c.kickLocked()
}

// noHold is flushInline's limit for a flush that writes the queue whatever
// hand-off its send replies wait for.
const noHold = ^uint64(0)

// queueReply queues a send reply b for the hub's flush of commitFlush
// hand-off take (see replyTake), and reports whether c must be listed
// for that flush: it is not listed yet, and no writer other than that
// flush will write b. Otherwise b is queued as enqueue does (or dropped:
// the connection is closing, or over its budget). Called under
// commitFlush.mu, so that the hand-off that takes the list comes after.
func (c *conn) queueReply(b []byte, take uint64) bool {
	if !canInline(c.t) {
		c.enqueue(b, false)
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enqueueLocked(outFrame{b: b}) {
		return false
	}
	if !c.started || c.closed || c.closeCode != 0 {
		c.kickLocked()
		return false
	}
	if c.replyTake == take {
		return false // listed already
	}
	// A writer running now (or an inline write of an earlier hand-off's
	// frames) stops before it takes b: see heldLocked.
	c.replyTake = take
	c.flushOwed = true
	return true
}

// canInline reports whether t can take a write without a writer goroutine.
func canInline(t transport) bool {
	iw, ok := t.(inlineWriter)
	return ok && iw.Inline()
}
