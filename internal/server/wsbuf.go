package server

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// An idle WebSocket connection should hold no I/O buffer. net/http hands a
// hijacked connection its 4 KiB bufio reader and writer, and coder/websocket
// keeps whatever it is given for the connection's life: with 15k idle
// connections that is most of their live heap (and, at GOGC=100, twice that
// in RSS). smallBuffers gives coder/websocket 16-byte bufio buffers over
// an idleConn (reads) and a frameWriter (writes), which take a pooled
// buffer only while bytes are in flight:
//
//   - reads wait for the socket to be readable holding no buffer (through
//     syscall.RawConn), then read ahead up to readAheadBytes into a pooled
//     buffer, given back once coder/websocket has taken every byte;
//   - writes gather each frame (coder/websocket writes the header byte by
//     byte, then the payload) in a pooled buffer and send it with one write
//     when the frame is complete, so a message still costs one syscall.
//
// Where the connection has no RawConn (TLS, or not Unix), reads keep a
// plain wsReadBuffer bufio reader.
const (
	readAheadBytes = 4 << 10 // one read from the socket
	frameBufBytes  = 4 << 10 // frames up to this size go out in one write; larger ones in one writev
	wsReadBuffer   = 1 << 10 // the reader without RawConn
	tinyBuffer     = 16      // bufio's smallest reader
)

var (
	readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadBytes); return &b }}
	frameBufPool  = sync.Pool{New: func() any { b := make([]byte, 0, frameBufBytes); return &b }}
)

// smallBuffers wraps the ResponseWriter of a WebSocket upgrade so that
// Hijack returns the idle-friendly reader and writer above, carrying over
// any bytes net/http had read ahead.
//
// After the upgrade, ic is the connection's idleConn (nil without RawConn):
// the reader calls its wait between messages.
type smallBuffers struct {
	http.ResponseWriter
	ic *idleConn
}

func (w *smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil { // the 101 response, if still buffered
		nc.Close()
		return nil, nil, err
	}
	n := brw.Reader.Buffered()
	ahead, _ := brw.Reader.Peek(n)
	ahead = bytes.Clone(ahead)
	bw := bufio.NewWriterSize(&frameWriter{nc: nc}, tinyBuffer)
	// coder/websocket resets the reader onto the returned net.Conn (after
	// what the reader has buffered, here nothing), so the read-ahead and
	// the buffering live in the net.Conn.
	if rc := rawConn(nc); rc != nil {
		w.ic = newIdleConn(nc, rc, ahead)
		return w.ic, bufio.NewReadWriter(bufio.NewReaderSize(w.ic, tinyBuffer), bw), nil
	}
	br := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(ahead), nc), max(wsReadBuffer, n))
	if n > 0 {
		// Pull the read-ahead into br's own buffer: coder/websocket takes
		// what is buffered and then reads from nc directly.
		if _, err := br.Peek(n); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	return nc, bufio.NewReadWriter(br, bw), nil
}

// rawConn is nc's RawConn when reads can wait for data without a buffer.
func rawConn(nc net.Conn) syscall.RawConn {
	if !rawReads {
		return nil
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// idleConn is a net.Conn whose reads hold a buffer only while bytes read
// from the socket wait to be taken. It hands bytes out no further than the
// end of the current WebSocket frame, so once coder/websocket has read a
// whole message its bufio.Reader holds nothing and every byte not yet
// read is in ahead: wait can then tell whether anything is pending.
//
// Read and wait are serialised by mu, which is held while they block on
// the socket: the callers are the connection's reader and, while a close
// handshake runs, the writer's Close; data or closing the socket releases
// them.
type idleConn struct {
	net.Conn
	rc     syscall.RawConn
	readFn func(fd uintptr) bool // readFD, bound once

	mu     sync.Mutex
	ahead  []byte  // bytes read and not yet taken
	pooled *[]byte // ahead's buffer when it came from readAheadPool
	frames frameTracker
	n      int   // readFD's result
	err    error // readFD's result
}

func newIdleConn(nc net.Conn, rc syscall.RawConn, ahead []byte) *idleConn {
	c := &idleConn{Conn: nc, rc: rc, ahead: ahead}
	c.readFn = c.readFD
	return c
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.ahead) == 0 {
		if left := c.frames.payloadLeft(); left >= readAheadBytes && len(p) >= readAheadBytes {
			// A large payload: straight into the caller's buffer.
			n, err := c.Conn.Read(p[:min(int64(len(p)), left)])
			c.frames.consume(p[:n])
			return n, err
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	k, _ := c.frames.consume(c.ahead[:min(len(p), len(c.ahead))])
	copy(p, c.ahead[:k])
	c.ahead = c.ahead[k:]
	if len(c.ahead) == 0 {
		c.release()
	}
	return k, nil
}

// wait blocks until there are bytes to read (or the socket fails), with
// a shallow stack and no buffer while the socket is idle. The reader
// calls it between messages: parked in coder/websocket's deeper read
// path instead, idle readers would make the runtime start new goroutines
// with (and keep) larger stacks. A failure is left for the next Read.
func (c *idleConn) wait() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ahead) == 0 {
		_ = c.fill()
	}
}

// pending reports whether bytes read from the socket wait to be taken:
// then the next read does not wait.
func (c *idleConn) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ahead) > 0
}

// fill waits for the socket to be readable, holding no buffer, then
// reads what it has into a pooled buffer. c.mu is held.
func (c *idleConn) fill() error {
	if err := c.rc.Read(c.readFn); err != nil {
		c.release()
		return &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if c.err != nil || c.n == 0 {
		err := c.err
		c.release()
		if err == nil {
			err = io.EOF
		}
		return err
	}
	c.ahead = (*c.pooled)[:c.n]
	return nil
}

// readFD reads what the socket has into a pooled buffer; it reports false
// (wait for readability) when there is nothing, giving the buffer back.
func (c *idleConn) readFD(fd uintptr) bool {
	if c.pooled == nil {
		c.pooled = readAheadPool.Get().(*[]byte)
	}
	n, err := readNonblock(fd, *c.pooled)
	if err == syscall.EAGAIN {
		c.release()
		return false
	}
	c.n, c.err = n, err
	return true
}

func (c *idleConn) release() {
	if c.pooled != nil {
		readAheadPool.Put(c.pooled)
		c.pooled = nil
	}
	c.ahead = nil
}

// frameTracker follows WebSocket frame boundaries in a byte stream,
// reading each header only for the frame's length.
type frameTracker struct {
	hdr  [14]byte // the current frame's header, as far as seen
	nh   int      // bytes of hdr seen
	left int64    // payload bytes still to come, once hdr is whole
}

// consume advances over the leading bytes of p that belong to the current
// frame and returns how many; end reports that they finish it.
func (t *frameTracker) consume(p []byte) (k int, end bool) {
	for k < len(p) {
		if hl := headerLen(t.hdr[:t.nh]); hl == 0 || t.nh < hl {
			t.hdr[t.nh] = p[k]
			t.nh++
			k++
			hl = headerLen(t.hdr[:t.nh])
			if hl == 0 || t.nh < hl {
				continue
			}
			t.left = payloadLen(t.hdr[:t.nh])
		} else {
			m := int(min(int64(len(p)-k), t.left))
			t.left -= int64(m)
			k += m
		}
		if t.left == 0 {
			t.nh = 0
			return k, true
		}
	}
	return k, false
}

// payloadLeft is what remains of the current frame's payload, or 0 while
// its header is not whole.
func (t *frameTracker) payloadLeft() int64 {
	if hl := headerLen(t.hdr[:t.nh]); hl == 0 || t.nh < hl {
		return 0
	}
	return t.left
}

// frameWriter sends what coder/websocket writes through its (16-byte)
// bufio.Writer one WebSocket frame per write syscall. It reads each
// frame's header only for the frame's length, gathers the frame in a
// pooled buffer and writes it once complete; a frame larger than the
// buffer goes out with one writev of what is gathered and the rest. It
// holds no buffer between frames.
//
// Write is called only under coder/websocket's write lock, which also
// orders frames; frameWriter needs no lock of its own.
type frameWriter struct {
	nc     net.Conn
	err    error   // the first write error; every later Write returns it
	buf    *[]byte // the frame gathered so far; nil between frames
	frames frameTracker
}

func (w *frameWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		k, end := w.frames.consume(p)
		if err := w.add(p[:k]); err != nil {
			return 0, err
		}
		p = p[k:]
		if end {
			if err := w.flush(nil); err != nil {
				return 0, err
			}
		}
	}
	return n, nil
}

// headerLen is the length of the frame header that begins with h, or 0
// while h is too short to tell.
func headerLen(h []byte) int {
	if len(h) < 2 {
		return 0
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&0x80 != 0 {
		n += 4 // masking key
	}
	return n
}

// payloadLen is the payload length a whole header h gives.
func payloadLen(h []byte) int64 {
	switch l := h[1] & 0x7f; l {
	case 126:
		return int64(h[2])<<8 | int64(h[3])
	case 127:
		var n int64
		for _, b := range h[2:10] {
			n = n<<8 | int64(b)
		}
		return n
	default:
		return int64(l)
	}
}

// add adds bytes of the current frame: gathered while they fit, else
// written at once after what is gathered (the frame is then larger than
// the buffer).
func (w *frameWriter) add(b []byte) error {
	if w.buf == nil {
		w.buf = frameBufPool.Get().(*[]byte)
	}
	if len(*w.buf)+len(b) > cap(*w.buf) {
		return w.flush(b)
	}
	*w.buf = append(*w.buf, b...)
	return nil
}

// flush writes what is gathered, then extra, in one syscall, and gives the
// buffer back.
func (w *frameWriter) flush(extra []byte) error {
	var err error
	switch {
	case w.buf == nil || len(*w.buf) == 0:
		if len(extra) > 0 {
			_, err = w.nc.Write(extra)
		}
	case len(extra) == 0:
		_, err = w.nc.Write(*w.buf)
	default:
		// Rare (a frame over frameBufBytes): the slice may allocate.
		bufs := net.Buffers{*w.buf, extra}
		_, err = bufs.WriteTo(w.nc)
	}
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		frameBufPool.Put(w.buf)
		w.buf = nil
	}
	if err != nil {
		w.err = err
	}
	return err
}
