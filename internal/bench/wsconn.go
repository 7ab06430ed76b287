package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/parleychat/parley/internal/iox"
)

// wsConn is one load client's WebSocket, framed by gobwas/ws: wsutil's
// Reader parses the server's frames (headers, fragments, control frames)
// and wsutil's Writer frames and masks the client's messages.
//
// The load tool used coder/websocket before, whose Reader and Write take
// a context per call: each call registered the context (AfterFunc,
// propagateCancel), a send also made a timeout context, and its write
// lock was a select. In the tool's profile at 18k acks/s that was a
// visible part of a CPU that shares its core with what it measures. A
// wsConn takes its context once, at dial (the connection is closed when
// it ends), and bounds writes by a write deadline refreshed at most every
// writeTimeout/2, so a write that cannot proceed fails in 5 to 10 s and
// closes the connection, as the 10 s timeout of each send did.
//
// What the server sees is as before: one text frame per message, masked,
// never fragmented (the Writer grows instead), written with one write(2);
// a ping is answered with a pong, a close with a close echoing its code.
//
// Concurrency: write and closeNow are safe for
// concurrent use (writes are serialised by mu); readMessage and
// setReadDeadline are for the one goroutine that reads (the client's
// session).
type wsConn struct {
	nc   net.Conn
	rd   wsutil.Reader
	stop func() bool // ends the close-on-ctx registration

	mu   sync.Mutex
	wr   *wsutil.Writer
	wdl  int64 // the write deadline set on nc, unix ns
	werr error // the first write error: the connection is closed
}

// writeTimeout bounds a write to the server (see wsConn).
const writeTimeout = 10 * time.Second

// readLimit is the largest message the load tool reads (a resume's
// batch of replayed events fits).
const readLimit = 4 << 20

// closeError is the server's close frame: its status code and reason.
type closeError struct {
	code   int
	reason string
}

func (e closeError) Error() string {
	return fmt.Sprintf("closed by the server: %d %s", e.code, e.reason)
}

// closeStatus is the code of the server's close frame behind err, or -1.
func closeStatus(err error) int {
	var ce closeError
	if errors.As(err, &ce) {
		return ce.code
	}
	return -1
}

// newWSConn wraps an upgraded connection; br holds what the handshake
// read ahead (nil: nothing). The connection is closed when ctx ends.
func newWSConn(ctx context.Context, nc net.Conn, br *bufio.Reader) *wsConn {
	if br == nil {
		br = bufio.NewReaderSize(nc, 4096)
	}
	c := &wsConn{nc: nc}
	c.rd = wsutil.Reader{
		Source:         br,
		State:          ws.StateClientSide,
		MaxMessageSize: readLimit,
		OnIntermediate: c.control,
	}
	c.wr = wsutil.NewWriterSize(nc, ws.StateClientSide, ws.OpText, 1024)
	// One frame per message: Write grows the buffer rather than flush a
	// fragment.
	c.wr.DisableFlush()
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	return c
}

// readMessage reads the next text message, appending it to b[:0].
// Control frames met on the way are answered (ping) or returned as a
// closeError (close).
func (c *wsConn) readMessage(b []byte) ([]byte, error) {
	for {
		h, err := c.rd.NextFrame()
		if err != nil {
			return nil, err
		}
		if h.OpCode.IsControl() {
			if err := c.control(h, &c.rd); err != nil {
				return nil, err
			}
			continue
		}
		if h.OpCode != ws.OpText {
			return nil, fmt.Errorf("frame with opcode %d from server, want text", h.OpCode)
		}
		return iox.AppendAll(b[:0], &c.rd)
	}
}

// control handles one control frame whose payload r yields (at most 125
// bytes, wsutil checked the header): a ping is answered, a pong ignored,
// a close echoed and returned as a closeError.
func (c *wsConn) control(h ws.Header, r io.Reader) error {
	var p [125]byte
	n, err := io.ReadFull(r, p[:h.Length])
	if err != nil {
		return err
	}
	switch h.OpCode {
	case ws.OpPing:
		return c.writeOp(ws.OpPong, p[:n])
	case ws.OpClose:
		code, reason := ws.ParseCloseFrameData(p[:n])
		if n == 0 {
			code = ws.StatusNoStatusRcvd
		}
		var echo []byte
		if n > 0 {
			echo = ws.NewCloseFrameBody(code, "")
		}
		_ = c.writeOp(ws.OpClose, echo)
		return closeError{code: int(code), reason: reason}
	}
	return nil
}

// write sends p as one text message.
func (c *wsConn) write(p []byte) error { return c.writeOp(ws.OpText, p) }

func (c *wsConn) writeOp(op ws.OpCode, p []byte) error {
	now := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if c.wdl-now < int64(writeTimeout/2) {
		c.wdl = now + int64(writeTimeout)
		if err := c.nc.SetWriteDeadline(time.Unix(0, c.wdl)); err != nil {
			return c.failLocked(err)
		}
	}
	if op != ws.OpText {
		c.wr.ResetOp(op)
		defer c.wr.ResetOp(ws.OpText)
	}
	if _, err := c.wr.Write(p); err != nil {
		return c.failLocked(err)
	}
	if err := c.wr.Flush(); err != nil {
		return c.failLocked(err)
	}
	return nil
}

// failLocked records a write error and closes the connection: a frame
// may be half written, and the session's read then fails too.
func (c *wsConn) failLocked(err error) error {
	c.werr = err
	c.nc.Close()
	return err
}

// setReadDeadline bounds the reads until the next call (zero: none).
func (c *wsConn) setReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// closeNow closes the connection without a close handshake.
func (c *wsConn) closeNow() error {
	c.stop()
	return c.nc.Close()
}
