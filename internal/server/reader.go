package server

import (
	"bytes"
	"sync"

	"github.com/parleychat/parley/protocol"
)

// reader runs the reader loop on a goroutine counted in connWG and ends
// the connection when the loop ends.
func (c *conn) reader() {
	defer c.s.connWG.Done()
	ending := false
	defer c.recoverReader(&ending)
	c.readLoop()
	ending = true
	c.end()
}

// readLoop reads messages until the connection ends. It answers pings
// at once (so a client whose requests wait on a slow store still hears
// from the server) and hands every other request to the worker, in
// order. No deadline here: the heartbeat sweep and a shutdown close the
// connection, which ends the read.
//
// Between messages the transport holds no buffer and the reader waits
// with a shallow stack (see wsConn): the reader only reads, recognises
// the plain ping and queues; decoding (deep JSON frames) is the worker's,
// so an idle reader's stack stays near the runtime's smallest.
func (c *conn) readLoop() {
	for {
		if c.t.Wait() != nil || !c.readOne() {
			return
		}
	}
}

// readOne reads one message and answers or queues it; false ends the
// connection.
func (c *conn) readOne() bool {
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
		c.enqueueFrame(outFrame{b: bytes.Clone(b), kind: framePong})
		readPool.Put(bp)
		return true
	case msgBinary:
		readPool.Put(bp)
		c.closeWith(protocol.CloseProtocolError, "binary frames are not allowed", false)
		return false
	}
	if id, ok := plainPing(b); ok {
		readPool.Put(bp)
		c.enqueue(pongFrame(id), false)
		return true
	}
	return c.push(request{raw: bp})
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
