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
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
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
		ic := &idleConn{Conn: nc, rc: rc, ahead: ahead}
		ic.readFn = ic.readFD
		return ic, bufio.NewReadWriter(bufio.NewReaderSize(ic, tinyBuffer), bw), nil
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
// from the socket wait to be taken. Read is called by one goroutine at a
// time (coder/websocket's reader, under its read lock).
type idleConn struct {
	net.Conn
	rc     syscall.RawConn
	ahead  []byte  // bytes read and not yet taken
	pooled *[]byte // ahead's buffer when it came from readAheadPool
	readFn func(fd uintptr) bool

	// readFD's result
	n   int
	err error
}

func (c *idleConn) Read(p []byte) (int, error) {
	if len(c.ahead) > 0 {
		n := copy(p, c.ahead)
		c.ahead = c.ahead[n:]
		if len(c.ahead) == 0 {
			c.release()
		}
		return n, nil
	}
	if len(p) >= readAheadBytes {
		return c.Conn.Read(p) // a large payload: straight into the caller's buffer
	}
	// Wait for data with no buffer held, then read ahead.
	if err := c.rc.Read(c.readFn); err != nil {
		c.release()
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if c.err != nil || c.n == 0 {
		err := c.err
		c.release()
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	c.ahead = (*c.pooled)[:c.n]
	return c.Read(p)
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
	nc   net.Conn
	err  error    // the first write error; every later Write returns it
	buf  *[]byte  // the frame gathered so far; nil between frames
	hdr  [14]byte // the header of the current frame, as read so far
	nh   int      // bytes of hdr read
	left int64    // payload bytes of the current frame still to come, once hdr is whole
}

func (w *frameWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := len(p)
	for len(p) > 0 {
		if hl := headerLen(w.hdr[:w.nh]); hl == 0 || w.nh < hl {
			w.hdr[w.nh] = p[0]
			w.nh++
			p = p[1:]
			if hl = headerLen(w.hdr[:w.nh]); hl > 0 && w.nh == hl {
				w.left = payloadLen(w.hdr[:w.nh])
				w.gather(w.hdr[:w.nh])
			}
		} else {
			k := int(min(int64(len(p)), w.left))
			if err := w.payload(p[:k]); err != nil {
				return 0, err
			}
			w.left -= int64(k)
			p = p[k:]
		}
		if hl := headerLen(w.hdr[:w.nh]); hl > 0 && w.nh == hl && w.left == 0 {
			if err := w.flush(nil); err != nil {
				return 0, err
			}
			w.nh = 0
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

// gather appends b (small: a header) to the frame buffer.
func (w *frameWriter) gather(b []byte) {
	if w.buf == nil {
		w.buf = frameBufPool.Get().(*[]byte)
	}
	*w.buf = append(*w.buf, b...)
}

// payload adds payload bytes b: gathered while they fit, else written at
// once after what is gathered (the frame is then larger than the buffer).
func (w *frameWriter) payload(b []byte) error {
	if w.buf != nil && len(*w.buf)+len(b) > cap(*w.buf) {
		return w.flush(b)
	}
	w.gather(b)
	return nil
}

// flush writes what is gathered, then extra, in one syscall, and gives the
// buffer back.
func (w *frameWriter) flush(extra []byte) error {
	var err error
	switch {
	case w.buf == nil:
		_, err = w.nc.Write(extra)
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
