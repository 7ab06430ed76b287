package server

import (
	"bytes"
	"context"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// readHello reads and checks the first frame. On failure it has sent an
// error frame and closed the connection.
func (c *conn) readHello(ctx context.Context, pre *parley.User) (protocol.Hello, bool) {
	var h protocol.Hello
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
		return h, false
	}
	if err != nil {
		if code, reason := closeCodeOf(err); code != closeNow {
			c.closeHello(code, reason)
		}
		c.t.CloseNow()
		return h, false
	}
	if kind != msgText {
		c.closeHello(protocol.CloseProtocolError, "binary frames are not allowed")
		return h, false
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
			c.user, err = c.s.svc.authenticate(ctx, h.Token)
		case pre != nil:
			c.user = *pre
		default:
			err = parley.Errorf(parley.EUNAUTHORIZED, "token is missing")
		}
	}
	if err == nil && h.ResumeFrom != nil && *h.ResumeFrom < 0 {
		err = parley.Errorf(parley.EINVALID, "resume_from must not be negative")
	}
	if err != nil {
		c.reject(ctx, req.ID, err)
		return h, false
	}
	return h, true
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

// start writes welcome, the replay asked for and resumed (or resync),
// before the writer starts, so they come before any live event. With
// batching, the replay goes out in as few messages as maxBatchBytes allows.
// It writes on the calling goroutine, page by page, so the replay is held
// one page at a time.
// quiet (from register) says the replay is empty: no store read.
func (c *conn) start(ctx context.Context, h protocol.Hello, head int64, quiet bool) error {
	s := c.s
	online, err := s.svc.onlineContacts(ctx, c.user.ID)
	if err != nil {
		return err
	}
	w := protocol.Welcome{
		User: c.user, SessionID: c.session.String(), Head: head,
		HeartbeatIntervalMS: s.cfg.HeartbeatInterval.Milliseconds(),
		HeartbeatTimeoutMS:  s.cfg.HeartbeatTimeout.Milliseconds(),
		MaxFrameBytes:       parley.MaxFrameBytes,
		MaxTextRunes:        parley.MaxTextRunes,
		ResumeLimit:         s.cfg.ResumeLimit,
		Online:              online,
	}
	welcome := outFrame{b: encodeData(protocol.TypeWelcome, "", w)}
	if h.ResumeFrom == nil {
		return c.writeFrames([]outFrame{welcome})
	}
	from := *h.ResumeFrom
	if from > head {
		// head is the store's (serve read it when this node was behind
		// from): the log the client's position belongs to is gone.
		s.metrics.resumes.WithLabelValues("resync").Inc()
		return c.writeFrames([]outFrame{welcome, {b: encodeData(protocol.TypeResync, "", protocol.Resync{
			Head: head, From: from, Cause: protocol.ResyncLogLost,
			Reason: "resume_from is beyond the server's log: the events after head were lost"})}})
	}
	// The replay is read and written page by page, each page about the
	// send queue's budget: the socket's drain paces the store reads, and
	// a connection that stops reading holds one page. It stops at the
	// resume limit: when one more event lies in (from, head], the client
	// gets resync after the events already written (it refetches its
	// state either way), so detecting it costs no count of the missed
	// events.
	frames := []outFrame{welcome}
	to, count, page := from, 0, resumePageMin
	for !quiet {
		n := min(page, s.cfg.ResumeLimit+1-count)
		evs, err := s.store.EventsFor(ctx, c.user.ID, to, n)
		if err != nil {
			return err
		}
		done, size := len(evs) < n, 0
		for _, ev := range evs {
			if ev.Pos > head { // live from here on: the hub queues it
				done = true
				break
			}
			if count == s.cfg.ResumeLimit {
				s.metrics.resumes.WithLabelValues("resync").Inc()
				return c.writeFrames(append(frames, outFrame{b: encodeData(protocol.TypeResync, "", protocol.Resync{
					Head: head, From: to, Cause: protocol.ResyncResumeLimit,
					Reason: "more events were missed than the server replays"})}))
			}
			to, count = ev.Pos, count+1
			b := encodeEvent(ev)
			size += len(b)
			frames = append(frames, outFrame{b: b})
		}
		if done {
			break
		}
		if err := c.writeFrames(frames); err != nil {
			return err
		}
		clear(frames)
		frames = frames[:0]
		page = resumePage(s.cfg.Limits.SendQueueBytes, size, len(evs))
	}
	s.metrics.resumes.WithLabelValues("replayed").Inc()
	s.metrics.obs.resumeEvents.Observe(float64(count))
	frames = append(frames, outFrame{b: encodeData(protocol.TypeResumed, "", protocol.Resumed{From: from, To: to, Count: count})})
	return c.writeFrames(frames)
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
