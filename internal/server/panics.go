package server

import (
	"bufio"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Panics. Every goroutine that serves one connection or one request
// defers a recovery at its top: the connection's reader (conn.reader),
// worker (conn.work) and writer (conn.writeLoop), the hello and start on
// the goroutine serveWS starts (conn.serve), the timers tied to a connection, and
// recoverHTTP around every plain handler. A recovered panic is logged at
// ERROR with its stack, counted in parley_panics_total{where}, and ends
// only that connection, with 1011 (closeInternal: the
// client reconnects and resumes) or, over plain HTTP, a 500 when the
// headers are not written yet; the connection's teardown still runs. The
// process and every other connection go on.
//
// Each recovery is a function of its own, deferred directly: recover only
// stops a panic when the deferred function itself calls it.

// closeInternal (1011) closes a connection after a panic, with
// internalReason, also the message of the HTTP 500.
const (
	closeInternal  = 1011
	internalReason = "internal error"
)

// caught logs a recovered panic with its stack and counts it. c is nil
// for plain HTTP.
func (s *Server) caught(where string, v any, c *conn, attrs ...any) {
	s.metrics.panics.WithLabelValues(where).Inc()
	attrs = append(attrs, "where", where, "panic", v, "stack", string(debug.Stack()))
	if c != nil {
		attrs = append(attrs, "session", c.session, "ip", c.ip)
	}
	s.log.Error("panic recovered", attrs...)
}

// panicked reports whether v, what a deferred recovery's recover
// returned, is a panic, and logs and counts it as where's (see caught)
// when it is. The recovery passes recover() to it: recover must be called
// by the deferred function itself.
func (c *conn) panicked(where string, v any) bool {
	if v == nil {
		return false
	}
	c.s.caught(where, v, c)
	return true
}

// testPanic calls the test hook, which may panic to stand for a bug at
// where (see export_test.go). Without a hook it is one atomic load.
func (s *Server) testPanic(where string) {
	if f := s.panicHook.Load(); f != nil {
		(*f)(where)
	}
}

// recoverReader is deferred by the reader goroutine. After a panic the
// connection closes with 1011 and ends as when its reader returns, unless
// the panic was in that ending (ending set): then it is only dropped.
func (c *conn) recoverReader(ending *bool) {
	if !c.panicked("reader", recover()) {
		return
	}
	if *ending {
		c.t.CloseNow()
		return
	}
	c.closeWith(closeInternal, internalReason, false)
	c.end()
}

// recoverWorker is deferred by the worker, before its wg.Done runs. After
// a panic it leaves the state as a worker that ran out of work would
// (waking a reader that waits for room) and has the writer close with
// 1011; the reader then ends the connection.
func (c *conn) recoverWorker() {
	if !c.panicked("worker", recover()) {
		return
	}
	c.mu.Lock()
	c.workerOn, c.held, c.heldBytes = false, 0, 0
	clear(c.reqs)
	c.reqs, c.reqBytes = nil, 0
	clear(c.parked)
	c.parked = nil
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
	c.mu.Unlock()
	c.closeWith(closeInternal, internalReason, false)
}

// recoverReply is deferred around a reply queued on the store's batcher
// goroutine (dispatchSends): a panic there closes this connection with
// 1011, as the worker's would, and leaves the batcher running.
func (c *conn) recoverReply() {
	v := recover()
	if v == nil {
		return
	}
	c.s.caught("worker", v, c)
	c.closeWith(closeInternal, internalReason, false)
}

// recoverWriter is deferred by the writer, before its wg.Done runs. The
// writer is the one that closes, so after a panic it closes the
// WebSocket with 1011 itself, leaving the state of a writer that closed.
func (c *conn) recoverWriter() {
	if !c.panicked("writer", recover()) {
		return
	}
	c.mu.Lock()
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = closeInternal, internalReason
	}
	c.closed, c.writerOn, c.q, c.spare = true, false, nil, nil
	c.qBytes, c.flying = 0, 0
	c.wakeDrainedLocked() // a worker waiting for the queue to drain
	c.mu.Unlock()
	if c.t.Close(closeInternal, internalReason) != nil {
		c.t.CloseNow()
	}
}

// recoverServe is deferred by serve, on serveWS's goroutine. Before the
// connection is registered, closing the WebSocket with 1011 is all there
// is to undo; after (registered set), the connection starts its writer,
// which closes with 1011, and ends as when its reader returns.
func (c *conn) recoverServe(registered *bool) {
	if !c.panicked("hello", recover()) {
		return
	}
	if !*registered {
		c.t.Close(closeInternal, internalReason)
		c.t.CloseNow()
		return
	}
	c.closeWith(closeInternal, internalReason, false)
	c.mu.Lock()
	c.started = true
	c.kickLocked()
	c.mu.Unlock()
	c.end()
}

// recoverTimer is deferred by a time.AfterFunc callback tied to c. Before
// the connection is started (the hello timer) the callback's goroutine
// closes the WebSocket with 1011 itself (serve waits for the hello timer,
// so no reader runs yet); after, the writer does.
func (c *conn) recoverTimer(started bool) {
	if !c.panicked("timer", recover()) {
		return
	}
	if !started {
		c.t.Close(closeInternal, internalReason) // serve's read ends, and serve drops the connection
		return
	}
	c.closeWith(closeInternal, internalReason, false)
}

// recoverHTTP recovers a panic in next: it is logged and counted (where
// "http"), and the client gets a 500 internal error when the headers are
// not written yet (else the response is cut short). http.ErrAbortHandler
// is passed on: it is the sanctioned way to abort a response.
func (s *Server) recoverHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &trackWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.caught("http", v, nil, "method", r.Method, "path", r.URL.Path, "ip", clientIP(r))
			if !tw.wrote {
				writeJSON(w, http.StatusInternalServerError, struct {
					Error *protocol.ErrorBody `json:"error"`
				}{&protocol.ErrorBody{Code: parley.EINTERNAL, Message: internalReason}})
			}
		}()
		s.testPanic("http")
		next.ServeHTTP(tw, r)
	})
}

// trackWriter records whether the response's headers were written (or
// the connection hijacked). Hijack and Flush are its own so that
// handlers asserting them directly still find them; the rest goes
// through Unwrap (http.ResponseController).
type trackWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *trackWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

func (w *trackWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *trackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.wrote = true
	return http.NewResponseController(w.ResponseWriter).Hijack()
}
