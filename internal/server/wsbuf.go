package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"

	"github.com/coder/websocket"
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
//   - writes of a message are gathered in a pooled buffer and sent with
//     one write once coder/websocket has written the whole message (the
//     conn brackets each message with frameWriter.begin and end), so a
//     message still costs one syscall.
//
// None of this reads WebSocket framing: frames are coder/websocket's to
// parse. Whether bytes are pending between messages is known without
// frames because coder/websocket reads a connection only through the
// bufio.Reader Hijack returns (it Resets that very reader onto what was
// buffered and the net.Conn; accept.go), reads a message's frames no
// further than its end, and answers control frames inside its read: once
// a message has been read to its end, every byte read from the socket and
// not yet taken is in that reader's buffer or in the idleConn's read-ahead
// (wsIO.pending).
//
// Where the connection has no RawConn (TLS, or not Unix), reads keep a
// plain wsReadBuffer bufio reader.
const (
	readAheadBytes = 4 << 10 // one read from the socket
	frameBufBytes  = 4 << 10 // messages up to this size go out in one write; larger ones in writev's of about this size
	wsReadBuffer   = 1 << 10 // the reader without RawConn
	tinyBuffer     = 16      // bufio's smallest reader
)

var (
	readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAheadBytes); return &b }}
	frameBufPool  = sync.Pool{New: func() any { b := make([]byte, 0, frameBufBytes); return &b }}
)

// wsIO is the I/O smallBuffers set up under one WebSocket connection.
type wsIO struct {
	ic *idleConn     // ws's net.Conn when reads wait with no buffer; else nil
	br *bufio.Reader // the reader coder/websocket reads the connection through
	fw *frameWriter  // under coder/websocket's bufio.Writer
}

// pending reports whether bytes read from the socket wait to be taken by
// coder/websocket, in br or read ahead in ic: between messages, false
// means the next read waits for the socket. Only the reader may call it,
// between messages, and not while a close handshake may run (which reads
// br on the writer's goroutine): see conn.readPending.
func (w *wsIO) pending() bool {
	return w.br.Buffered() > 0 || w.ic.pending()
}

// smallBuffers wraps the ResponseWriter of a WebSocket upgrade so that
// Hijack returns the idle-friendly reader and writer above, carrying over
// any bytes net/http had read ahead. After the upgrade, io holds them.
type smallBuffers struct {
	http.ResponseWriter
	io wsIO
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
	w.io.fw = &frameWriter{nc: nc}
	bw := bufio.NewWriterSize(w.io.fw, tinyBuffer)
	// coder/websocket resets br onto what it has buffered (here nothing)
	// then the returned net.Conn, and reads only through br: the
	// read-ahead and the buffering live in the idleConn.
	if rc := rawConn(nc); rc != nil {
		w.io.ic = newIdleConn(nc, rc, ahead)
		w.io.br = bufio.NewReaderSize(w.io.ic, tinyBuffer)
		return w.io.ic, bufio.NewReadWriter(w.io.br, bw), nil
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
	w.io.br = br
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
// from the socket wait to be taken. It knows nothing of WebSocket frames:
// it hands out what it has read ahead, or reads a large request straight
// into the caller's buffer.
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
	n      int     // readFD's result
	err    error   // readFD's result
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
		if len(p) >= readAheadBytes {
			// A large payload (coder/websocket asks for no more than the
			// frame holds, through bufio, which passes large reads on):
			// straight into the caller's buffer.
			return c.Conn.Read(p)
		}
		if err := c.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.ahead)
	c.ahead = c.ahead[n:]
	if len(c.ahead) == 0 {
		c.release()
	}
	return n, nil
}

// wait blocks until there are bytes to read (or the socket fails), with
// a shallow stack and no buffer while the socket is idle. The reader
// calls it between messages when nothing is pending (wsIO.pending):
// parked in coder/websocket's deeper read path instead, idle readers
// would make the runtime start new goroutines with (and keep) larger
// stacks. A failure is left for the next Read.
func (c *idleConn) wait() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ahead) == 0 {
		_ = c.fill()
	}
}

// pending reports whether bytes read from the socket wait to be taken. c
// may be nil (no RawConn: nothing is read ahead).
func (c *idleConn) pending() bool {
	if c == nil {
		return false
	}
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

// frameWriter is the net.Conn under coder/websocket's 16-byte
// bufio.Writer. Between begin and end (one message written by the conn),
// it gathers what it is given in a pooled buffer and end writes it with
// one syscall; a message larger than the buffer goes out with a writev of
// what is gathered and the write in hand whenever the buffer would
// overflow. Outside begin and end (the control frames coder/websocket
// writes on its own: pong, close) writes go straight to the socket, a
// frame then taking up to two writes. It holds no buffer between messages
// and never reads what it is given.
//
// One goroutine at a time writes messages (serve's before the connection
// starts, then the writer), so begin and end pair up. mu serialises Write
// (under coder/websocket's frame lock, on the goroutine writing a message
// or answering a ping) with begin and end (outside that lock). A nil frameWriter
// (a conn built without smallBuffers) does nothing in begin and end.
type frameWriter struct {
	nc   net.Conn
	mu   sync.Mutex
	hold bool    // between begin and end
	buf  *[]byte // what is gathered; nil when nothing is
	err  error   // the first write error; every later Write returns it
}

// begin starts gathering a message's writes.
func (w *frameWriter) begin() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.hold = true
	w.mu.Unlock()
}

// end writes what was gathered since begin and gives the buffer back.
func (w *frameWriter) end() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.hold = false
	return w.flush(nil)
}

func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if !w.hold {
		n, err := w.nc.Write(p)
		if err != nil {
			w.err = err
		}
		return n, err
	}
	if w.buf == nil {
		w.buf = frameBufPool.Get().(*[]byte)
	}
	if len(*w.buf)+len(p) > cap(*w.buf) {
		if err := w.flush(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}

// flush writes what is gathered, then extra, in one syscall, and gives the
// buffer back. w.mu is held.
func (w *frameWriter) flush(extra []byte) error {
	if w.err != nil {
		w.putBuf()
		return w.err
	}
	var err error
	switch {
	case w.buf == nil || len(*w.buf) == 0:
		if len(extra) > 0 {
			_, err = w.nc.Write(extra)
		}
	case len(extra) == 0:
		_, err = w.nc.Write(*w.buf)
	default:
		// A message over frameBufBytes: the slice may allocate.
		bufs := net.Buffers{*w.buf, extra}
		_, err = bufs.WriteTo(w.nc)
	}
	w.putBuf()
	if err != nil {
		w.err = err
	}
	return err
}

func (w *frameWriter) putBuf() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		frameBufPool.Put(w.buf)
		w.buf = nil
	}
}

// wsWrite writes one text message, gathered by the frameWriter into one
// write (see frameWriter).
// end is deferred: a write that panics (see panics.go) must not leave the
// frameWriter gathering, or the close frame after it would never be sent.
func (c *conn) wsWrite(ctx context.Context, b []byte) (err error) {
	c.io.fw.begin()
	defer func() {
		if e := c.io.fw.end(); err == nil {
			err = e
		}
	}()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// readPending reports whether bytes read from the socket wait to be taken
// (wsIO.pending), or the connection is closing. A close handshake
// (ws.Close, on the writer's goroutine) reads coder/websocket's reader, so
// it is looked at only under c.mu while no close is asked for: the writer
// calls ws.Close only after it saw closeCode set under c.mu. A closing
// connection reports true: the reader goes on to a read, which fails.
func (c *conn) readPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode != 0 || c.io.pending()
}
