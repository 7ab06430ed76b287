package server

import (
	"bytes"
	"context"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/protocol"
)

// readHello reads and checks the first frame, and sets c.user when its
// token's user is cached (or pre is given); check is then nil, else the
// token's claims, whose user the store must check (checkUser) before the
// hello is answered. On failure it has sent an error frame and closed the
// connection.
func (c *conn) readHello(ctx context.Context, pre *parley.User) (h protocol.Hello, id string, check *auth.Claims, ok bool) {
	fired := make(chan struct{})
	t := time.AfterFunc(c.s.cfg.HelloTimeout, func() {
		defer close(fired)
		defer c.recoverTimer(false)
		c.s.testPanic("timer")
		// Not a protocol error: a half-open link or a stalled node or
		// proxy loses a hello just so. The client reconnects.
		c.t.Close(protocol.CloseHelloTimeout, "no hello in time")
	})
	// A shutdown that runs out of time ends the hello's read (registered
	// connections are dropped by Server.shutdown's walk instead).
	stop := context.AfterFunc(ctx, func() { c.t.CloseNow() })
	var (
		kind msgKind
		bp   *[]byte
		err  error
	)
	for {
		kind, bp, err = c.t.Read()
		if err == nil && kind == msgPong {
			readPool.Put(bp) // an unsolicited pong: nothing to answer
			continue
		}
		if err != nil || kind != msgPing {
			break
		}
		// A WebSocket ping before the hello: answered here, the only
		// writer until the connection starts.
		err = c.t.Write([]outFrame{{b: *bp, kind: framePong}}, false)
		readPool.Put(bp)
		if err != nil {
			break
		}
	}
	stop()
	var b []byte
	if bp != nil {
		b = bytes.Clone(*bp) // small: the hello; the buffer goes back now
		readPool.Put(bp)
	}
	if !t.Stop() {
		<-fired
		c.t.CloseNow()
		return h, "", nil, false
	}
	if err != nil {
		if code, reason := closeCodeOf(err); code != closeNow {
			c.closeHello(code, reason)
		}
		c.t.CloseNow()
		return h, "", nil, false
	}
	if kind != msgText {
		c.closeHello(protocol.CloseProtocolError, "binary frames are not allowed")
		return h, "", nil, false
	}
	req, err := protocol.DecodeRequest(b)
	if err == nil && req.Op != protocol.OpHello {
		err = parley.Errorf(parley.EINVALID, "the first frame must be hello")
	}
	if err == nil {
		err = protocol.DecodeData(req.Data, &h)
	}
	if err == nil {
		switch {
		case h.Token != "":
			c.user, check, err = c.s.svc.verify(h.Token)
		case pre != nil:
			c.user = *pre
		default:
			err = parley.Errorf(parley.EUNAUTHORIZED, "token is missing")
		}
	}
	if err == nil && h.ResumeFrom != nil && *h.ResumeFrom < 0 {
		err = parley.Errorf(parley.EINVALID, "resume_from must not be negative")
	}
	if err == nil {
		err = checkVersion(h, c.s.hub.shards)
	}
	if err != nil {
		c.reject(ctx, req.ID, err)
		return h, "", nil, false
	}
	return h, req.ID, check, true
}

// reject answers a failed hello with an error frame and closes with the
// code the error table gives.
func (c *conn) reject(ctx context.Context, id string, err error) {
	body := errorBody(c.s.log, err)
	c.s.metrics.obs.countError(body.Code)
	c.s.metrics.obs.countClose(info(body.Code).close)
	c.s.log.Debug("hello refused", "ip", c.ip, "code", body.Code, "err", body.Message)
	// Not registered yet, so not swept: this write has its own deadline.
	c.t.SetWriteDeadline(time.Now().Add(writeTimeout))
	_ = c.t.Write([]outFrame{{b: encodeFrame(protocol.Frame{Type: protocol.TypeError, ID: id, Error: body})}}, false)
	reason := body.Message
	if len(reason) > 120 {
		reason = reason[:120]
	}
	c.closeHello(info(body.Code).close, reason)
}

// closeHello closes a connection that failed its hello with code, on
// serve's goroutine (no reader runs yet): the close frame, then what the
// client sends until its answer or the end of its stream (at most
// closeLinger) is read and dropped, so that dropping the socket then
// resets nothing the client has not read.
func (c *conn) closeHello(code int, reason string) {
	if c.t.Close(code, reason) == nil {
		c.t.Linger()
	}
	c.t.CloseNow()
}

// Bounds of a resume replay's page, in events. The first page holds
// resumePageMin events (at most about 1 MiB: an event frame is at most
// about 64 KiB); later ones as many as the budget holds at the last
// page's average size.
const (
	resumePageMin = 16
	resumePageMax = 1000
)

// resumePage sizes the next page of a replay: about budget bytes at the
// average size of the last page (size bytes in n events).
func resumePage(budget, size, n int) int {
	if n == 0 || size == 0 {
		return resumePageMin
	}
	return min(max(budget/max(size/n, 1), resumePageMin), resumePageMax)
}
