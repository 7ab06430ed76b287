package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/iox"
)

// wsConn is the transport on github.com/gobwas/ws: the library reads and
// checks every frame (wsutil.Reader: masking, opcodes, control frames,
// fragmentation, the length's top bit, the message size, UTF-8) and
// encodes every frame header (ws.WriteHeaderBuffer); wsConn decides only
// where the bytes live:
//
//   - an idle connection holds no read buffer and no goroutine: between
//     messages, when nothing read is left, the 4 KiB bufio.Reader goes
//     back to a pool and the reader parks the connection with the
//     server's poller (Park, poll.go), which starts a reader goroutine
//     again when the socket is readable; without a poller the next Read
//     waits for the socket to be readable through syscall.RawConn (a
//     one-byte MSG_PEEK) before taking a buffer again;
//   - a queue of frames goes out in one write: their headers and
//     payloads are gathered in a pooled buffer (up to writeChunk bytes
//     a write) and the buffer goes back to the pool after the write.
//
// Where the socket has no RawConn (TLS), the reader keeps its buffer and
// its goroutine.
type wsConn struct {
	nc net.Conn
	rc syscall.RawConn // nil: the reader keeps br (no wait without a buffer)

	// Read side: only the reading goroutine touches these.
	pre     []byte        // bytes net/http read past the upgrade request
	br      *bufio.Reader // nil while idle (rc != nil)
	rd      wsutil.Reader
	midPing []byte // a ping received inside a fragmented message, answered after it
	hasPing bool
	peek    [1]byte
	peekFn  func(fd uintptr) bool
	peekErr error
	ctlFn   func(fd uintptr) // c.peekControl
	ctlErr  error            // what peekControl saw
	poll    pollReg          // p nil: no poller, the reader waits in Wait
	// drained: the last read from the socket took less than it asked
	// for, so the socket had nothing more then (bytes that came after
	// are an edge for the poller: see pollReg).
	drained bool

	// Write side: one writer at a time (see transport).
	hdr    [ws.MaxHeaderSize]byte
	wb     appendBuf // the buffer appendHeader appends to (a field: no allocation)
	try    []byte    // TryWrite's bytes, for tryFn
	tryN   int
	tryErr error
	tryFn  func(fd uintptr) bool // c.tryWrite
}

// Sizes of wsConn's pooled buffers.
const (
	wsReadBuffer = 4 << 10  // the bufio.Reader a connection holds while it reads
	writeChunk   = 64 << 10 // a write gathers frames up to this size (a larger frame goes alone)
)

var (
	wsReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, wsReadBuffer) }}
	writeBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}
)

// upgradeWS answers the WebSocket handshake (refusing a foreign Origin
// with 403, as coder/websocket's Accept does) and returns the transport.
// On failure the response is written and the connection closed.
func upgradeWS(w http.ResponseWriter, r *http.Request, origins []string, p func() *poller) (*wsConn, error) {
	if err := checkOrigin(r, origins); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return nil, err
	}
	if code, err := checkUpgrade(r); err != nil {
		http.Error(w, err.Error(), code)
		return nil, err
	}
	// The 101 carries the headers set so far (the security headers).
	u := ws.HTTPUpgrader{Timeout: writeTimeout, Header: w.Header()}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			nc.Close()
		}
		return nil, err
	}
	var pre []byte
	if n := rw.Reader.Buffered(); n > 0 {
		// A client may send its first frames in the upgrade's packet.
		b, _ := rw.Reader.Peek(n)
		pre = bytes.Clone(b)
	}
	return newWSConn(nc, pre, p), nil
}

// newWSConn makes the transport of an upgraded connection; pre are the
// bytes read past the handshake; p (nil: none) gives the poller it parks
// with when idle. p is called only for a socket the poller can watch: it
// starts the server's poller on first use, and a connection without a
// file descriptor (an in-memory one, in tests under testing/synctest)
// must not start it, where its goroutine would wait on I/O in the bubble.
func newWSConn(nc net.Conn, pre []byte, p func() *poller) *wsConn {
	c := &wsConn{nc: nc, pre: pre}
	c.rd = wsutil.Reader{
		State: ws.StateServerSide,
		// Not CheckUTF8: invalid UTF-8 in a request is answered with an
		// error frame, as any undecodable request (protocol.md, section 3).
		MaxFrameSize:   parley.MaxFrameBytes,
		MaxMessageSize: parley.MaxFrameBytes,
		OnIntermediate: c.intermediate,
	}
	if sc, ok := nc.(syscall.Conn); ok && rawReads {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
			c.peekFn = c.peekFD
			c.ctlFn = c.peekControl
			c.tryFn = c.tryWrite
			if p != nil {
				c.poll.p = p()
			}
		}
	}
	return c
}

// checkUpgrade refuses, with a plain HTTP answer (the headers set so far
// included), a request that is no WebSocket handshake, with the statuses
// coder/websocket gives; ws.HTTPUpgrader checks the rest (the key, the
// version) after hijacking.
func checkUpgrade(r *http.Request) (int, error) {
	switch {
	case !r.ProtoAtLeast(1, 1):
		return http.StatusUpgradeRequired, fmt.Errorf("WebSocket protocol violation: handshake request must be at least HTTP/1.1: %q", r.Proto)
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return http.StatusUpgradeRequired, fmt.Errorf("WebSocket protocol violation: Connection header %q does not contain Upgrade", r.Header.Get("Connection"))
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return http.StatusUpgradeRequired, fmt.Errorf("WebSocket protocol violation: Upgrade header %q does not contain websocket", r.Header.Get("Upgrade"))
	case r.Method != http.MethodGet:
		return http.StatusMethodNotAllowed, fmt.Errorf("WebSocket protocol violation: handshake request method is not GET but %q", r.Method)
	}
	return 0, nil
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// checkOrigin refuses a WebSocket upgrade from an origin the HTTP API
// would refuse too (originAllowed, which agrees with coder/websocket's
// OriginPatterns check). No Origin (not a browser) passes.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" || originAllowed(patterns, origin, r.Host) {
		return nil
	}
	return fmt.Errorf("request Origin %q is not authorized for Host %q", origin, r.Host)
}

// Wait implements transport.
func (c *wsConn) Wait() error {
	if c.hasPing {
		return nil
	}
	return c.take()
}

// Park implements transport: with a poller, when the reader holds
// nothing read (no buffer, no bytes from the upgrade, no ping to answer).
//
// The socket must be empty when it parks (the poller is edge-triggered,
// see pollReg): it is when the last read was short (drained); otherwise
// a peek tells. When the poller saw bytes arrive while this goroutine
// read (parkNotified), a peek tells whether they are still to be read
// or were read already.
func (c *wsConn) Park(run resumer) bool {
	if c.poll.p == nil || c.br != nil || len(c.pre) > 0 || c.hasPing {
		return false
	}
	if c.poll.ready {
		// Started by the poller: read what woke it, unless the wake
		// is stale. The poller takes a wait's events before it hands
		// them out, so an edge for bytes the last reader read before
		// it parked can start a reader for an empty socket; trusting
		// it, the read would wait holding its buffer and this
		// goroutine until the client's next message (seen under load:
		// a whole set of idle connections not parked). One peek per
		// wake-up tells; a stale one parks again.
		if c.readable() {
			return false
		}
		c.poll.ready = false
	} else if c.poll.added && !c.drained && c.readable() {
		return false
	}
	for {
		switch c.poll.park(c.rc, run) {
		case parkDone:
			return true
		case parkNotified:
			if c.readable() {
				c.poll.ready = true // Read needs no peek
				return false
			}
		default:
			return false
		}
	}
}

// readable reports whether the socket has bytes to read (or has ended,
// or failed: the read tells), without waiting.
func (c *wsConn) readable() bool {
	if err := c.rc.Control(c.ctlFn); err != nil {
		return true
	}
	perr := c.ctlErr
	c.ctlErr = nil
	return perr != syscall.EAGAIN
}

// peekControl is readable's RawConn callback: a method value made once,
// in ctlFn, because a closure per call cost two allocations per wake-up
// of a parked connection (each client's ping, each send).
func (c *wsConn) peekControl(fd uintptr) { c.ctlErr = peekNonblock(fd, c.peek[:]) }

// Read implements transport.
func (c *wsConn) Read() (msgKind, *[]byte, error) {
	bp := readPool.Get().(*[]byte)
	kind, b, err := c.read((*bp)[:0])
	*bp = b
	if err != nil {
		readPool.Put(bp)
		return 0, nil, err
	}
	return kind, bp, nil
}

func (c *wsConn) read(buf []byte) (msgKind, []byte, error) {
	if c.hasPing {
		c.hasPing = false
		return msgPing, append(buf, c.midPing...), nil
	}
	for {
		if err := c.take(); err != nil {
			return 0, buf, err
		}
		h, err := c.rd.NextFrame()
		if err != nil {
			return 0, buf, c.fail(err)
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			n := len(buf)
			buf, err = iox.AppendAll(buf, &c.rd)
			if err != nil {
				return 0, buf[:n], c.fail(err)
			}
			c.release()
			if h.OpCode == ws.OpBinary {
				return msgBinary, buf, nil
			}
			return msgText, buf, nil
		case ws.OpPing:
			n := len(buf)
			buf, err = iox.AppendAll(buf, &c.rd)
			if err != nil {
				return 0, buf[:n], c.fail(err)
			}
			c.release()
			return msgPing, buf, nil
		case ws.OpPong:
			// Returned, not skipped: it is how a client whose own pings
			// are late (a throttled browser tab) is heard (framePing).
			if err := c.rd.Discard(); err != nil {
				return 0, buf, c.fail(err)
			}
			c.release()
			return msgPong, buf, nil
		case ws.OpClose:
			err := c.closeFrame(&c.rd)
			c.release()
			return 0, buf, err
		}
	}
}

// intermediate handles a control frame inside a fragmented message (the
// wsutil.Reader's OnIntermediate): a ping is answered after the message,
// a close ends the read.
func (c *wsConn) intermediate(h ws.Header, r io.Reader) error {
	switch h.OpCode {
	case ws.OpPing:
		b, err := io.ReadAll(r) // at most 125 bytes: CheckHeader bounds control frames
		if err != nil {
			return err
		}
		c.midPing, c.hasPing = b, true
	case ws.OpClose:
		return c.closeFrame(r)
	}
	return nil
}

// closeFrame reads the client's close frame and returns the closeError
// that echoes its code (1000 when it gave none), or 1002 for a malformed
// one.
func (c *wsConn) closeFrame(r io.Reader) error {
	var p [ws.MaxControlFramePayloadSize]byte
	n, err := io.ReadFull(r, p[:])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return err
	}
	if n == 1 {
		return &closeError{code: int(ws.StatusProtocolError), reason: "malformed close frame"}
	}
	code, reason := ws.ParseCloseFrameData(p[:n])
	if code.Empty() {
		return &closeError{code: int(ws.StatusNormalClosure), reason: "peer closed"}
	}
	if err := ws.CheckCloseFrameData(code, reason); err != nil {
		return &closeError{code: int(ws.StatusProtocolError), reason: "malformed close frame", err: err}
	}
	return &closeError{code: int(code), reason: "peer closed"}
}

// fail maps a read error to what the connection closes with, and gives
// the reader's buffer back: the connection reads no more.
func (c *wsConn) fail(err error) error {
	c.drop()
	var pe ws.ProtocolError
	var ce *closeError
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, wsutil.ErrFrameTooLarge), errors.Is(err, wsutil.ErrMessageTooLarge):
		return &closeError{code: int(ws.StatusMessageTooBig), reason: "message too big", err: err}
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		return &closeError{code: int(ws.StatusInvalidFramePayloadData), reason: "invalid UTF-8", err: err}
	case errors.As(err, &pe), errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
		return &closeError{code: int(ws.StatusProtocolError), reason: "protocol error", err: err}
	}
	return err
}

// take makes sure the reader has its buffer, waiting without one for the
// socket to be readable when nothing read is left.
func (c *wsConn) take() error {
	if c.br != nil {
		return nil
	}
	if c.poll.ready {
		// The poller saw the socket readable (or the connection is
		// closing: the read then fails or meets its deadline).
		c.poll.ready = false
	} else if c.rc != nil && len(c.pre) == 0 {
		c.peekErr = nil
		if err := c.rc.Read(c.peekFn); err != nil {
			return err
		}
		if c.peekErr != nil {
			return c.peekErr
		}
	}
	c.br = wsReaderPool.Get().(*bufio.Reader)
	c.br.Reset(readSource{c})
	c.rd.Source = c.br
	return nil
}

// release gives the reader's buffer back between messages when it holds
// nothing read (and the socket can be waited on without it).
func (c *wsConn) release() {
	if c.rc != nil && c.br != nil && c.br.Buffered() == 0 && len(c.pre) == 0 {
		c.drop()
	}
}

func (c *wsConn) drop() {
	if c.br != nil {
		c.br.Reset(nil)
		wsReaderPool.Put(c.br)
		c.br = nil
		c.rd.Source = nil
	}
}

// peekFD reports whether the socket has a byte to read (or has ended),
// reading nothing: false has the RawConn wait for readability.
func (c *wsConn) peekFD(fd uintptr) bool {
	err := peekNonblock(fd, c.peek[:])
	if err == syscall.EAGAIN {
		return false
	}
	c.peekErr = nil // a failure shows in the read that follows
	return true
}

// readSource is what the reader's bufio.Reader reads: first the bytes
// net/http read ahead, then the socket.
type readSource struct{ c *wsConn }

func (s readSource) Read(p []byte) (int, error) {
	if len(s.c.pre) > 0 {
		n := copy(p, s.c.pre)
		s.c.pre = s.c.pre[n:]
		if len(s.c.pre) == 0 {
			s.c.pre = nil
		}
		return n, nil
	}
	n, err := s.c.nc.Read(p)
	s.c.drained = n < len(p)
	return n, err
}

// Write implements transport: frames are gathered, header and payload,
// in a pooled buffer and written with one write per writeChunk bytes.
func (c *wsConn) Write(frames []outFrame, batch bool) error {
	bp := writeBufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) <= writeChunk+(16<<10) {
			*bp = buf[:0]
			writeBufPool.Put(bp)
		}
	}()
	var err error
	flush := func() {
		if len(buf) > 0 && err == nil {
			_, err = c.nc.Write(buf)
		}
		buf = buf[:0]
	}
	for i := 0; i < len(frames) && err == nil; {
		f := frames[i]
		if f.kind == frameRaw {
			if len(buf) > 0 && len(buf)+len(f.b) > writeChunk {
				flush()
			}
			buf = append(buf, f.b...)
			i++
			continue
		}
		op, n, end := messageAt(frames, i, batch)
		if len(buf) > 0 && len(buf)+ws.MaxHeaderSize+n > writeChunk {
			flush()
		}
		buf = c.appendMessage(buf, frames[i:end], op, n)
		i = end
	}
	flush()
	return err
}

// messageAt returns the WebSocket message that begins with frames[i]
// (not a frameRaw): its opcode, its payload's length and the index after
// its last frame. With batch, the text frames right behind a text frame
// join its message, separated by '\n', up to maxBatchBytes.
func messageAt(frames []outFrame, i int, batch bool) (ws.OpCode, int, int) {
	f := frames[i]
	op, n, end := ws.OpText, len(f.b), i+1
	switch {
	case f.kind == framePong:
		op = ws.OpPong
	case f.kind == framePing:
		op = ws.OpPing
	case batch:
		for end < len(frames) && frames[end].kind == frameText && n+1+len(frames[end].b) <= maxBatchBytes {
			n += 1 + len(frames[end].b)
			end++
		}
	}
	return op, n, end
}

// appendMessage appends the message messageAt found (frames, op, n) to
// buf: its header, then its frames joined by '\n'. Only the goroutine
// holding the write side calls it (it uses c's header scratch).
func (c *wsConn) appendMessage(buf []byte, frames []outFrame, op ws.OpCode, n int) []byte {
	buf = c.appendHeader(buf, ws.Header{Fin: true, OpCode: op, Length: int64(n)})
	for j, f := range frames {
		if j > 0 {
			buf = append(buf, '\n')
		}
		buf = append(buf, f.b...)
	}
	return buf
}

// AppendFrames implements inlineWriter: frames encoded as Write would
// write them.
func (c *wsConn) AppendFrames(dst []byte, frames []outFrame, batch bool) []byte {
	for i := 0; i < len(frames); {
		if frames[i].kind == frameRaw {
			dst = append(dst, frames[i].b...)
			i++
			continue
		}
		op, n, end := messageAt(frames, i, batch)
		dst = c.appendMessage(dst, frames[i:end], op, n)
		i = end
	}
	return dst
}

// Inline implements inlineWriter.
func (c *wsConn) Inline() bool { return c.rc != nil }

// TryWrite implements inlineWriter: one write(2) on the non-blocking
// socket, through the RawConn (which holds the descriptor open and
// excludes the net.Conn's own writes meanwhile), never waiting for it to
// be writable. Without a RawConn (TLS) it takes nothing.
func (c *wsConn) TryWrite(b []byte) (int, error) {
	if c.rc == nil {
		return 0, errWouldBlock
	}
	c.try = b
	err := c.rc.Write(c.tryFn)
	n, werr := c.tryN, c.tryErr
	c.try, c.tryErr = nil, nil
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, errWouldBlock
	case werr != nil:
		return 0, werr
	}
	return n, nil
}

// tryWrite is TryWrite's RawConn callback (a method value made once, in
// tryFn: a closure per write would be an allocation per write).
func (c *wsConn) tryWrite(fd uintptr) bool {
	for {
		c.tryN, c.tryErr = syscall.Write(int(fd), c.try)
		if c.tryErr != syscall.EINTR {
			return true // done, whatever it took: never wait here
		}
	}
}

// appendHeader appends h's encoding to buf. It cannot fail: our lengths
// are never negative.
func (c *wsConn) appendHeader(buf []byte, h ws.Header) []byte {
	c.wb = buf
	_ = ws.WriteHeaderBuffer(&c.wb, h, c.hdr[:])
	buf, c.wb = c.wb, nil
	return buf
}

// appendBuf is an io.Writer appending to itself.
type appendBuf []byte

func (a *appendBuf) Write(p []byte) (int, error) {
	*a = append(*a, p...)
	return len(p), nil
}

// Close implements transport.
func (c *wsConn) Close(code int, reason string) error {
	if len(reason) > ws.MaxControlFramePayloadSize-2 {
		reason = reason[:ws.MaxControlFramePayloadSize-2]
	}
	// Its own buffer, not the writer's scratch: a hello timer may close
	// while serve writes a pong (see transport).
	buf, err := ws.CompileFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusCode(code), reason)))
	if err != nil {
		return err
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeWrite))
	_, err = c.nc.Write(buf)
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(closeLinger))
	if err != nil {
		c.nc.Close()
	}
	// A parked reader must run to read the answer (or see the deadline).
	c.poll.wake(true)
	return err
}

// Linger implements transport.
func (c *wsConn) Linger() {
	c.drop()
	_ = c.nc.SetReadDeadline(time.Now().Add(closeLinger))
	b := make([]byte, 512)
	for {
		if _, err := c.nc.Read(b); err != nil {
			break
		}
	}
	c.nc.Close()
	c.poll.forget()
}

// CloseNow implements transport. A parked reader is started to see the
// closed socket and end the connection.
func (c *wsConn) CloseNow() error {
	err := c.nc.Close()
	c.poll.wake(true)
	c.poll.forget()
	return err
}

// SetWriteDeadline implements transport.
func (c *wsConn) SetWriteDeadline(t time.Time) error { return c.nc.SetWriteDeadline(t) }
