package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// closeNow is a closeCode that drops the TCP connection without a close
// handshake: the peer is gone already.
const closeNow = -1

// writeTimeout bounds one frame write; a peer that cannot take a frame in
// this long is dead or hopelessly slow.
const writeTimeout = 10 * time.Second

// conn is one WebSocket connection. serve owns it: it reads the hello,
// replays what the client missed, starts the writer goroutine, runs the
// reader loop and tears everything down when the reader ends.
//
// The reader never blocks on the peer's reading: frames for the client go
// into a bounded queue that the writer drains. enqueue is safe from any
// goroutine (the hub, the reader, timers).
type conn struct {
	s       *Server
	ws      *websocket.Conn
	ip      string
	session string
	user    parley.User // set once by hello, before the conn is shared

	mu          sync.Mutex // guards the fields below
	q           []outFrame
	closeCode   int // when non-zero the writer closes the connection with it
	closeReason string
	flush       bool // write the queue before closing (goaway)
	goingAway   bool
	throttles   map[string]*time.Timer

	sig        chan struct{} // wakes the writer; buffered, 1
	writerDone chan struct{}
	lastRead   atomic.Int64 // unix nanos of the last frame read or op finished
}

type outFrame struct {
	b         []byte
	droppable bool // typing and presence: the first to go when the queue is full
}

func newConn(s *Server, ws *websocket.Conn, ip string) *conn {
	return &conn{
		s: s, ws: ws, ip: ip, session: uuid.NewString(),
		throttles:  make(map[string]*time.Timer),
		sig:        make(chan struct{}, 1),
		writerDone: make(chan struct{}),
	}
}

func (c *conn) signal() {
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// enqueue queues a frame for the writer and reports whether it was
// queued. A full queue drops droppable frames; for any other frame it
// first drops the oldest droppable one, and when there is none it closes
// the connection with 4001: the client resumes and loses nothing.
func (c *conn) enqueue(b []byte, droppable bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode != 0 {
		return false
	}
	if len(c.q) >= c.s.cfg.Limits.SendQueue {
		if droppable {
			c.s.metrics.drops.WithLabelValues("ephemeral").Inc()
			return false
		}
		i := 0
		for i < len(c.q) && !c.q[i].droppable {
			i++
		}
		if i == len(c.q) {
			c.s.metrics.drops.WithLabelValues("durable").Inc()
			c.s.metrics.slowClosed.Inc()
			c.q = nil
			c.closeCode, c.closeReason = protocol.CloseSlowConsumer, "slow consumer"
			c.signal()
			return false
		}
		c.s.metrics.drops.WithLabelValues("ephemeral").Inc()
		c.q = append(c.q[:i], c.q[i+1:]...)
	}
	c.q = append(c.q, outFrame{b, droppable})
	c.signal()
	return true
}

// closeWith asks the writer to close the connection with code, after
// writing the queue when flush is set. The first close asked for wins.
func (c *conn) closeWith(code int, reason string, flush bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode != 0 {
		return
	}
	c.closeCode, c.closeReason, c.flush = code, reason, flush
	c.signal()
}

// goaway tells the client the server is shutting down: a goaway frame with
// a jittered reconnect delay, then close 4003 once the queue is written.
func (c *conn) goaway() {
	b := encodeData(protocol.TypeGoAway, "", protocol.GoAway{
		Reason:           "server shutting down",
		ReconnectAfterMS: c.s.reconnectDelay().Milliseconds(),
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.goingAway || c.closeCode != 0 {
		return
	}
	c.goingAway = true
	c.q = append(c.q, outFrame{b: b}) // past the bound on purpose: it is the last frame
	c.closeCode, c.closeReason, c.flush = protocol.CloseShutdown, "server shutting down", true
	c.signal()
}

// throttle switches feature off for d: the client gets a throttled frame
// now and an unthrottled frame when d has passed.
func (c *conn) throttle(feature string, d time.Duration) {
	until := time.Now().Add(d)
	c.mu.Lock()
	if c.throttles[feature] != nil || c.closeCode != 0 {
		c.mu.Unlock()
		return
	}
	// The timer is stopped by stopThrottles when the conn ends; if it
	// fires first, enqueue on a closed conn is a no-op.
	c.throttles[feature] = time.AfterFunc(d, func() {
		c.mu.Lock()
		delete(c.throttles, feature)
		c.mu.Unlock()
		c.enqueue(encodeData(protocol.TypeUnthrottled, "", protocol.Unthrottled{Feature: feature}), false)
	})
	c.mu.Unlock()
	c.enqueue(encodeData(protocol.TypeThrottled, "", protocol.Throttled{Feature: feature, Until: until.UTC()}), false)
}

func (c *conn) stopThrottles() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for f, t := range c.throttles {
		t.Stop()
		delete(c.throttles, f)
	}
}

func (c *conn) write(ctx context.Context, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// writeLoop drains the queue, closes the connection when asked and
// watches the heartbeat. It runs on its own goroutine, started and waited
// for by serve.
func (c *conn) writeLoop(ctx context.Context) {
	defer close(c.writerDone)
	timeout := c.s.cfg.HeartbeatTimeout
	hb := time.NewTimer(timeout)
	defer hb.Stop()
	for {
		c.mu.Lock()
		q := c.q
		c.q = nil
		code, reason, flush := c.closeCode, c.closeReason, c.flush
		c.mu.Unlock()
		if code != 0 && !flush {
			q = nil
		}
		for _, f := range q {
			if err := c.write(ctx, f.b); err != nil {
				c.ws.CloseNow()
				return
			}
		}
		if code == closeNow {
			c.ws.CloseNow()
			return
		}
		if code != 0 {
			c.ws.Close(websocket.StatusCode(code), reason)
			return
		}
		select {
		case <-c.sig:
		case <-hb.C:
			silent := time.Since(time.Unix(0, c.lastRead.Load()))
			if silent >= timeout {
				c.closeWith(protocol.CloseHeartbeatTimeout, "heartbeat timeout", false)
			}
			hb.Reset(max(timeout-silent, time.Millisecond))
		}
	}
}

// serve runs the connection until it ends. ctx is the server's connection
// context: cancelled when a shutdown runs out of time.
func (c *conn) serve(ctx context.Context, pre *parley.User) {
	hello, ok := c.readHello(ctx, pre)
	if !ok {
		return
	}
	s := c.s
	c.touch()
	head := s.hub.register(c)
	s.metrics.connections.Inc()
	s.pres.connect(c.user.ID)
	s.log.Debug("connected", "user", c.user.ID, "session", c.session, "ip", c.ip)
	writerStarted := false
	defer func() {
		c.closeWith(closeNow, "", false)
		if writerStarted {
			<-c.writerDone
		}
		c.stopThrottles()
		last := s.hub.unregister(c)
		s.pres.disconnect(c.user.ID)
		s.metrics.connections.Dec()
		if last {
			s.svc.typingGone(c.user)
		}
		s.log.Debug("disconnected", "user", c.user.ID, "session", c.session)
	}()
	if s.closing.Load() {
		c.goaway()
	}

	if err := c.start(ctx, hello, head); err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("starting a connection", "user", c.user.ID, "err", err)
		}
		c.closeWith(protocol.CloseReconnect, "could not start; reconnect", false)
	}
	writerStarted = true
	go c.writeLoop(ctx)

	for {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			return
		}
		c.touch()
		if typ != websocket.MessageText {
			c.closeWith(protocol.CloseProtocolError, "binary frames are not allowed", false)
			return
		}
		req, err := protocol.DecodeRequest(b)
		if err != nil {
			c.enqueue(errorFrame(s, req.ID, err), false)
			continue
		}
		c.dispatch(ctx, req)
		c.touch()
	}
}

// readHello reads and checks the first frame. On failure it has sent an
// error frame and closed the connection.
func (c *conn) readHello(ctx context.Context, pre *parley.User) (protocol.Hello, bool) {
	var h protocol.Hello
	fired := make(chan struct{})
	t := time.AfterFunc(c.s.cfg.HelloTimeout, func() {
		defer close(fired)
		c.ws.Close(protocol.CloseProtocolError, "no hello in time")
	})
	typ, b, err := c.ws.Read(ctx)
	if !t.Stop() {
		<-fired
		return h, false
	}
	if err != nil {
		c.ws.CloseNow()
		return h, false
	}
	if typ != websocket.MessageText {
		c.ws.Close(protocol.CloseProtocolError, "binary frames are not allowed")
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
	_ = c.write(ctx, encodeFrame(protocol.Frame{Type: protocol.TypeError, ID: id, Error: body}))
	reason := body.Message
	if len(reason) > 120 {
		reason = reason[:120]
	}
	c.ws.Close(websocket.StatusCode(info(body.Code).close), reason)
}

// start writes welcome, the replay asked for and resumed (or resync),
// before the writer starts, so they come before any live event.
func (c *conn) start(ctx context.Context, h protocol.Hello, head int64) error {
	s := c.s
	online, err := s.svc.onlineContacts(ctx, c.user.ID)
	if err != nil {
		return err
	}
	w := protocol.Welcome{
		User: c.user, SessionID: c.session, Head: head,
		HeartbeatIntervalMS: s.cfg.HeartbeatInterval.Milliseconds(),
		HeartbeatTimeoutMS:  s.cfg.HeartbeatTimeout.Milliseconds(),
		MaxFrameBytes:       parley.MaxFrameBytes,
		MaxTextRunes:        parley.MaxTextRunes,
		ResumeLimit:         s.cfg.ResumeLimit,
		Online:              online,
	}
	if err := c.write(ctx, encodeData(protocol.TypeWelcome, "", w)); err != nil {
		return err
	}
	if h.ResumeFrom == nil {
		return nil
	}
	from := *h.ResumeFrom
	if from > head {
		s.metrics.resumes.WithLabelValues("resync").Inc()
		return c.write(ctx, encodeData(protocol.TypeResync, "", protocol.Resync{
			Head: head, Reason: "resume_from is ahead of this server's log"}))
	}
	evs, err := s.store.EventsFor(ctx, c.user.ID, from, s.cfg.ResumeLimit+1)
	if err != nil {
		return err
	}
	n := 0
	for n < len(evs) && evs[n].Pos <= head {
		n++
	}
	evs = evs[:n]
	if len(evs) > s.cfg.ResumeLimit {
		s.metrics.resumes.WithLabelValues("resync").Inc()
		return c.write(ctx, encodeData(protocol.TypeResync, "", protocol.Resync{
			Head: head, Reason: "more events were missed than the server replays"}))
	}
	to := from
	for _, ev := range evs {
		if err := c.write(ctx, encodeEvent(ev)); err != nil {
			return err
		}
		to = ev.Pos
	}
	s.metrics.resumes.WithLabelValues("replayed").Inc()
	return c.write(ctx, encodeData(protocol.TypeResumed, "", protocol.Resumed{From: from, To: to, Count: len(evs)}))
}

func errorFrame(s *Server, id string, err error) []byte {
	return encodeFrame(protocol.Frame{Type: protocol.TypeError, ID: id, Error: errorBody(s.log, err)})
}
