package server

import (
	"bytes"
	"sync"

	"github.com/parleychat/parley/protocol"
)

// reader runs the reader loop until the connection is idle (parked with
// the poller, which calls resume on a new goroutine when it is readable)
// or ends; it ends the connection then. The connection's count in connWG
// is held across parks and released when it ends. woke: when the poller
// saw the socket readable (monoNow; 0: not known, or not started by the
// poller).
func (c *conn) reader(woke int64) {
	parked := false
	s := c.s
	defer func() {
		if !parked {
			s.connWG.Done()
		}
	}()
	ending := false
	defer c.recoverReader(&ending)
	if parked = c.readLoop(woke); parked {
		return // c belongs to the next reader now
	}
	ending = true
	c.end()
}

// resume implements resumer: the poller's goroutine for a parked
// connection that became readable (or is closing), at woke.
func (c *conn) resume(woke int64) { c.reader(woke) }

// readLoop reads messages until the connection ends. It answers pings
// at once (so a client whose requests wait on a slow store still hears
// from the server) and hands every other request to the worker, in
// order. No deadline here: the heartbeat sweep and a shutdown close the
// connection, which ends the read.
//
// Between messages the transport holds no buffer and the reader parks
// the connection (true: no goroutine waits for it, see poller), or, where
// it cannot, waits with a shallow stack (see wsConn): the reader only
// reads, recognises the plain ping and queues; decoding (deep JSON
// frames) is the worker's, so a waiting reader's stack stays near the
// runtime's smallest.
//
// A resumed reader reads before it parks again: the poller woke it for
// bytes the socket has (parking at once would only be woken again), which
// its transport's Park checks (a wake can be stale: see wsConn.Park).
// The first message read after the poller's wake-up carries woke to the
// worker (request.woke): one sample of parley_send_wake_seconds per
// wake-up, when that message is a send. The messages read after it in
// the same run may have come later, so they carry none.
func (c *conn) readLoop(woke int64) (parked bool) {
	for {
		if c.t.Park(c) {
			return true
		}
		if c.t.Wait() != nil || !c.readOne(woke) {
			return false
		}
		woke = 0
	}
}

// readOne reads one message and answers or queues it (a request carries
// woke, see readLoop); false ends the connection.
func (c *conn) readOne(woke int64) bool {
	kind, bp, err := c.t.Read()
	if err != nil {
		if code, reason := closeCodeOf(err); code != closeNow {
			c.closeWith(code, reason, false)
		}
		return false
	}
	c.s.testPanic("reader")
	c.touch()
	b := *bp
	switch kind {
	case msgPing:
		c.sendNow(outFrame{b: bytes.Clone(b), kind: framePong})
		readPool.Put(bp)
		return true
	case msgPong:
		// The answer to the heartbeat's ping: touch (above) is all it is for.
		readPool.Put(bp)
		return true
	case msgBinary:
		readPool.Put(bp)
		c.closeWith(protocol.CloseProtocolError, "binary frames are not allowed", false)
		return false
	}
	if id, ok := plainPing(b); ok {
		readPool.Put(bp)
		c.sendNow(outFrame{b: pongFrame(id)})
		return true
	}
	return c.push(request{raw: bp, woke: woke, size: len(b)})
}

// plainPing recognises the ping every client sends, exactly
// {"op":"ping"} or {"op":"ping","id":"ID"} with a plain ID (at most 64
// bytes, no quote, backslash or control character), and returns its id.
// It keeps the idle reader off encoding/json: decoding grows the reader's
// stack, which then stays grown for the life of the connection. Any other
// form of ping takes the general path and is answered the same way.
func plainPing(b []byte) (string, bool) {
	const bare, pre, post = `{"op":"ping"}`, `{"op":"ping","id":"`, `"}`
	if string(b) == bare {
		return "", true
	}
	if len(b) < len(pre)+len(post) || string(b[:len(pre)]) != pre || string(b[len(b)-len(post):]) != post {
		return "", false
	}
	id := b[len(pre) : len(b)-len(post)]
	if len(id) > protocol.MaxRequestIDLen {
		return "", false
	}
	for _, c := range id {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(id), true
}

// readPool holds the buffers requests are read into: an idle connection
// holds none, and a busy one allocates none per request.
var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
