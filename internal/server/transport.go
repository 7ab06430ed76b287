package server

import (
	"errors"
	"time"
)

// transport is one WebSocket connection as a conn sees it: read a
// message, write the frames queued, close with a code. It is the only
// place that knows the WebSocket library (as centrifuge's Transport sits
// between its node and the socket library), so the conn's queue, writer,
// worker and budgets do not change with it. wsConn (gobwas/ws, the
// default) and coderConn (coder/websocket, kept to measure against: see
// docs/benchmarks.md) implement it.
//
// Concurrency: Wait, Park and Read are called by one goroutine at a time (the
// hello's, then the reader; after a Park, the goroutine it starts); Write and Close by one goroutine at a time (serve's
// until the connection starts, then the one holding the connection's
// write side: the writer, or a goroutine writing inline through
// inlineWriter, see inline.go; or a hello timer before the connection
// starts); CloseNow and SetWriteDeadline from any goroutine, at any time.
// Read and Write run concurrently.
type transport interface {
	// Wait waits until the client has sent something (or the connection
	// ended: the Read after it tells), holding no buffer, on as shallow a
	// stack as the caller's: the reader idles here between messages.
	Wait() error
	// Park, between messages, hands the reading to a poller when the
	// transport holds nothing read: run is then started on a new
	// goroutine when the client sends something, its stream ends, or the
	// connection is closed (Close, CloseNow), and the caller returns at
	// once without touching the read side again. False: the caller reads
	// on (Wait, then Read), as transports without a poller always do.
	Park(run resumer) bool
	// Read reads the next message from the client into a buffer from
	// readPool, which the caller puts back (also on error: nil then). A
	// ping (msgPing) is to be answered with a pong
	// frame carrying the payload; transports that answer pings
	// themselves never return one. A pong (msgPong: the answer to the
	// heartbeat's ping, framePing) is returned so the client counts as
	// heard; its payload is dropped. A protocol violation, an oversized
	// message or the client's close frame is a *closeError: the code
	// to close with (the client's own, for its close).
	Read() (msgKind, *[]byte, error)
	// Write writes frames in order, coalesced into as few writes as it
	// can (one for a queue of small frames). With batch set (hello
	// batch: true) consecutive text frames share a message, separated by
	// '\n', up to maxBatchBytes.
	Write(frames []outFrame, batch bool) error
	// Close sends a close frame with code and reason (at most 123
	// bytes), then ends the client's half of the connection: a read in
	// progress or the next one ends with the client's answer, its end
	// of stream or closeLinger. The owner calls CloseNow after that read.
	Close(code int, reason string) error
	// Linger, after Close, reads and drops what the client still sends
	// until its end of stream (at most closeLinger), then drops the
	// connection: dropping it with unread bytes would reset it, and the
	// client could lose the close frame. Only the reading goroutine, once
	// it reads no more, calls it.
	Linger()
	// CloseNow drops the connection: reads and writes in progress fail.
	CloseNow() error
	// SetWriteDeadline bounds the writes until the next call (zero: none),
	// for writes not watched by the heartbeat sweep (a refused hello).
	SetWriteDeadline(t time.Time) error
}

// pingless is a transport that sends no heartbeat pings (framePing; its
// Write skips them): the sweep queues it none, so none is counted
// (parley_heartbeat_pings_total) as sent.
type pingless interface{ sendsNoPings() }

// msgKind is the kind of message transport.Read returns.
type msgKind uint8

const (
	msgText msgKind = iota
	msgBinary
	msgPing // answer with a pong frame carrying the payload
	msgPong // a pong (its payload dropped): the client was heard, nothing to do
)

// frameKind is what an outFrame is on the wire.
type frameKind uint8

const (
	frameText frameKind = iota // a text message (the protocol's frames)
	framePong                  // a WebSocket pong answering a ping
	// framePing is a WebSocket ping (empty payload) the heartbeat sweep
	// sends a connection silent for pingAfter (heartbeat.go): the
	// client's WebSocket stack answers it even where its own timers are
	// throttled (a hidden browser tab), and the pong counts as heard.
	// Transports that cannot send one without waiting for its pong
	// (coderConn) skip it.
	framePing
	// frameRaw is the rest of a frame a write without waiting put only
	// partly on the wire (writeInline): bytes already encoded, written
	// as they are, before anything else. Only transports that implement
	// inlineWriter are given one.
	frameRaw
)

// closeError is what transport.Read returns when the connection must
// close with code: the client's close frame (its code echoed), a
// protocol violation (1002), invalid UTF-8 in a text message (1007), a
// message over the read limit (1009).
type closeError struct {
	code   int
	reason string
	err    error // the library's error, for logs
}

func (e *closeError) Error() string {
	if e.err != nil {
		return e.reason + ": " + e.err.Error()
	}
	return e.reason
}

func (e *closeError) Unwrap() error { return e.err }

// closeCodeOf is the code a read error asks to close with, or closeNow
// (drop) for an I/O error.
func closeCodeOf(err error) (int, string) {
	var ce *closeError
	if errors.As(err, &ce) {
		return ce.code, ce.reason
	}
	return closeNow, ""
}

// closeLinger bounds how long a closing connection waits for the
// client's close frame or end of stream after sending its own close
// frame. closeWrite bounds the write of a close frame.
const (
	closeLinger = 2 * time.Second
	closeWrite  = 5 * time.Second
)
