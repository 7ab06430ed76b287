package server

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/iox"
)

// coderConn is the transport on github.com/coder/websocket, as it comes
// (net/http's buffers, kept for the connection's life; a write per
// message; pings answered inside its reads). It is kept to measure
// against wsConn (Config.Transport "coder", docs/benchmarks.md), not as
// the default. It sends no heartbeat pings (framePing): a client that
// does not ping in the protocol is closed with 4002 here.
type coderConn struct {
	ws *websocket.Conn

	mu       sync.Mutex
	deadline time.Time // SetWriteDeadline's; zero: none
}

// sendsNoPings: Write skips framePing (see there).
func (c *coderConn) sendsNoPings() {}

func acceptCoder(w http.ResponseWriter, r *http.Request, origins []string) (*coderConn, error) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OriginPatterns:  origins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(parley.MaxFrameBytes)
	return &coderConn{ws: ws}, nil
}

// Wait does nothing: coder/websocket waits inside its reads (with its
// buffers).
func (c *coderConn) Wait() error { return nil }

// Park does not: coder/websocket keeps its buffers and waits inside its
// reads, on the reader's goroutine.
func (c *coderConn) Park(resumer) bool { return false }

// Read reads a message; coder/websocket answers pings and the client's
// close inside it.
func (c *coderConn) Read() (msgKind, *[]byte, error) {
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	bp := readPool.Get().(*[]byte)
	*bp, err = iox.AppendAll((*bp)[:0], r)
	if err != nil {
		readPool.Put(bp)
		return 0, nil, err
	}
	if typ == websocket.MessageBinary {
		return msgBinary, bp, nil
	}
	return msgText, bp, nil
}

func (c *coderConn) Write(frames []outFrame, batch bool) error {
	ctx := context.Background()
	c.mu.Lock()
	d := c.deadline
	c.mu.Unlock()
	if !d.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d)
		defer cancel()
	}
	var buf []byte
	for i := 0; i < len(frames); {
		if frames[i].kind == framePing {
			// coder/websocket's Ping waits for the pong on the caller's
			// goroutine (the writer's): this transport sends none, so
			// its clients must ping in the protocol (docs/deploy.md,
			// --ws-transport).
			i++
			continue
		}
		end := i + 1
		msg := frames[i].b
		if batch {
			n := len(msg)
			for end < len(frames) && frames[end].kind == frameText && n+1+len(frames[end].b) <= maxBatchBytes {
				n += 1 + len(frames[end].b)
				end++
			}
			if end > i+1 {
				buf = buf[:0]
				for j := i; j < end; j++ {
					if j > i {
						buf = append(buf, '\n')
					}
					buf = append(buf, frames[j].b...)
				}
				msg = buf
			}
		}
		if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
			return err
		}
		i = end
	}
	return nil
}

func (c *coderConn) Close(code int, reason string) error {
	return c.ws.Close(websocket.StatusCode(code), reason)
}

// Linger drops the connection: coder/websocket's Close waited for the
// client's answer already.
func (c *coderConn) Linger() { c.ws.CloseNow() }

func (c *coderConn) CloseNow() error { return c.ws.CloseNow() }

func (c *coderConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}
