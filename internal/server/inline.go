package server

import (
	"bytes"
	"errors"
	"time"
)

// inlineWriter is implemented by transports that can try a write without
// blocking (wsConn over a socket with a RawConn). With it a frame for a
// connection whose queue is empty and whose writer is not running is
// written by the goroutine that has it (the hub delivering an event, the
// reader answering a ping) in one write(2), instead of starting a writer
// goroutine for it: most deliveries cost one system call and no goroutine
// start, switch or exit. What the socket does not take at once goes to
// the connection's queue and its writer, as before (writeInline).
type inlineWriter interface {
	// AppendFrame appends f encoded as one whole WebSocket frame
	// (header and payload, as the server sends it: unmasked, final) to
	// dst. The encoding depends on f only, so one encoding of an event
	// serves every connection it goes to.
	AppendFrame(dst []byte, f outFrame) []byte
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

// sendNow queues f like enqueueFrame, but when the connection's queue is
// empty, no writer runs, and the transport can try a write without
// blocking, it writes f at once on the calling goroutine (writeInline).
// wire holds f's encoding as a whole frame, or nil: it is encoded then
// and left in *wire, so a caller sending one frame to many connections
// (hub.deliver) encodes it once. at, when positive, is the store time
// of the event f carries, for the delivery lag metric.
//
// The caller must hold no lock another connection's sender needs: the
// write is a system call (non-blocking, so it never waits for the peer).
// It reports whether f was written or queued.
func (c *conn) sendNow(f outFrame, wire *[]byte, at int64) bool {
	iw, ok := c.t.(inlineWriter)
	if !ok {
		return c.queueFrame(f, at)
	}
	c.mu.Lock()
	if !c.started || c.writerOn || c.closed || c.closeCode != 0 || len(c.q) > 0 {
		c.mu.Unlock()
		return c.queueFrame(f, at)
	}
	// This goroutine holds the write side until writeInline returns: no
	// writer starts meanwhile (kickLocked sees writerOn), and end waits
	// for it (wg).
	c.writerOn = true
	c.flying = frameCost(f.b)
	c.wg.Add(1)
	c.mu.Unlock()
	c.writeInline(iw, f, wire, at)
	return true
}

// queueFrame is enqueueFrame, marking the event's lag for the writer.
func (c *conn) queueFrame(f outFrame, at int64) bool {
	if !c.enqueueFrame(f) {
		return false
	}
	c.markLag(at)
	return true
}

// writeInline writes f through iw on the calling goroutine, which holds
// the connection's write side (sendNow). When the socket takes all of
// it, the write side is free again; otherwise what is left (all of f, or
// the rest of its frame's bytes) goes first in the queue and the writer
// starts for it, and for anything queued meanwhile or a close asked for
// meanwhile. A failed socket closes the connection, as a failed write of
// the writer does. A panic closes this connection only, with 1011.
func (c *conn) writeInline(iw inlineWriter, f outFrame, wire *[]byte, at int64) {
	defer c.wg.Done()
	n, err := 0, errWouldBlock
	defer func() {
		if v := recover(); v != nil {
			c.s.caught("writer", v, c)
			c.mu.Lock()
			if c.closeCode == 0 {
				c.closeCode, c.closeReason = closeInternal, internalReason
			}
			c.flush = false
			c.writerOn, c.flying = false, 0
			c.kickLocked() // the writer closes with 1011
			c.mu.Unlock()
		}
	}()
	c.s.testPanic("writer")
	if *wire == nil {
		*wire = iw.AppendFrame(nil, f)
	}
	b := *wire
	n, err = iw.TryWrite(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writerOn, c.flying = false, 0
	switch {
	case err == nil && n == len(b):
		if at > 0 {
			c.s.metrics.obs.deliveryLag.Observe(float64(time.Now().UnixNano()-at) / 1e9)
		}
	case err == nil || errors.Is(err, errWouldBlock):
		rest := f
		if n > 0 {
			// Part of the frame is on the wire: the rest goes out as it
			// is, before anything else (its own copy: wire may be a
			// caller's buffer).
			rest = outFrame{b: bytes.Clone(b[n:]), kind: frameRaw}
		}
		c.q = append(c.q, outFrame{})
		copy(c.q[1:], c.q)
		c.q[0] = rest
		c.qBytes += frameCost(rest.b)
		c.markLag(at)
	default:
		if c.closeCode == 0 {
			c.closeCode = closeNow // the socket failed: nothing more to write
		}
	}
	c.kickLocked()
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
	if _, ok := c.t.(inlineWriter); !ok {
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
func (c *conn) flushInline() {
	iw := c.t.(inlineWriter) // queueForFlush asked for the flush: it is one
	c.mu.Lock()
	c.flushOwed = false
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
	defer func() {
		if v := recover(); v != nil {
			c.s.caught("writer", v, c)
			c.mu.Lock()
			if c.closeCode == 0 {
				c.closeCode, c.closeReason = closeInternal, internalReason
			}
			c.flush = false
			c.writerOn, c.flying = false, 0
			c.kickLocked() // the writer closes with 1011
			c.mu.Unlock()
		}
	}()
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
