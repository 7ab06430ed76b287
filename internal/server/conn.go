package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// closeNow is a closeCode that drops the TCP connection without a close
// handshake: the peer is gone already.
const closeNow = -1

// writeTimeout bounds one message write; a peer that cannot take a message
// in this long is dead or hopelessly slow.
const writeTimeout = 10 * time.Second

// requestQueue bounds the requests read from a connection and not yet run.
// When it is full the reader stops reading (backpressure on the client's
// socket) until the worker takes one; see conn.paused for the heartbeat.
const requestQueue = 32

// maxBatchBytes bounds one batched WebSocket message (hello batch: true):
// the transport joins queued frames with '\n' up to this size.
const maxBatchBytes = 64 << 10

// conn is one WebSocket connection, over a transport. serve owns it: it
// reads the hello, replays what the client missed, then runs the reader
// loop on a goroutine of its own and tears everything down when the
// reader ends.
//
// Goroutines. Besides the reader (started by serve), a connection has at most two
// more, both started on demand and both ending by themselves when they run
// out of work, so an idle connection has the reader only:
//   - the writer drains the send queue (writeLoop); it is started by the
//     first enqueue once the connection is started, and exits when the
//     queue is empty (or after closing the WebSocket);
//   - the worker runs requests one at a time, in the order read (work); it
//     is started by the reader when a request arrives and exits when the
//     request queue is empty.
//
// Both are started under mu, counted in wg, and end waits for them
// before it unregisters the connection. The heartbeat is one sweep per server (Server.heartbeat),
// not a timer per connection.
//
// enqueue, closeWith and goaway are safe from any goroutine (the hub, the
// worker, timers).
type conn struct {
	s       *Server
	t       transport
	ip      string
	session uuid.UUID   // formatted only for welcome and logs
	user    parley.User // set once by hello, before the conn is shared
	batch   bool        // set once by hello: frames may share a message

	mu          sync.Mutex // guards the fields below
	q           []outFrame
	spare       []outFrame    // the writer's last queue, reused while it runs
	qBytes      int           // the cost (frameCost) of the frames in q
	flying      int           // the cost of the frames the writer took and writes
	drained     chan struct{} // made while the worker waits for the queue to drain (waitDrained)
	closeCode   int           // when non-zero the writer closes the connection with it
	closeReason string
	flush       bool // write the queue before closing (goaway)
	goingAway   bool
	started     bool                   // welcome and replay are written: the writer may run
	writerOn    bool                   // a writer goroutine is running
	closed      bool                   // the writer closed the WebSocket; no writer starts again
	workerOn    bool                   // a worker goroutine is running
	throttles   map[string]*time.Timer // allocated on first use
	reqs        []request              // requests waiting for the worker
	held        int                    // requests the worker took and runs (a run of sends); they count against requestQueue
	room        chan struct{}          // made while the reader waits for room in reqs
	wg          sync.WaitGroup         // the writer and worker goroutines

	lastRead atomic.Int64 // unix nanos of the last frame read
	lagSince atomic.Int64 // store time (unix nanos) of the oldest event queued since the last write; 0: none (obs.go)
	writing  atomic.Int64 // unix nanos when the write in progress began; 0 when none
	// paused is set while the server does not read from the connection
	// for its own reasons (writing the hello replay, or the request queue
	// is full). The heartbeat sweep skips paused connections: a client is
	// not closed for the server's slowness.
	paused atomic.Bool
	// gate keeps sends in order after a rate-limited one; only the worker
	// (one request or run of sends at a time) uses it. See dispatchSends.
	// nil (open) until a send is refused: most connections never need one.
	gate *sendGate

	// hubPrev and hubNext link the connections of the same user on this
	// node (hub.users); guarded by hub.mu.
	hubPrev, hubNext *conn
	// hubFloor: the hub does not queue durable events at or below it
	// (the replay covers them); set by hub.register, guarded by hub.mu.
	hubFloor int64
}

type outFrame struct {
	b         []byte
	droppable bool      // typing and presence: the first to go when the queue is full
	kind      frameKind // a protocol frame (text), or a pong answering a WebSocket ping
}

// frameOverhead is what a queued frame costs besides its bytes (its
// outFrame in the queue, its allocation's header): charged so that many
// tiny frames (pongs) are bounded by the send queue's budget too.
const frameOverhead = 64

func frameCost(b []byte) int { return len(b) + frameOverhead }

// queuedLocked is the cost of what is queued and being written. c.mu
// must be held.
func (c *conn) queuedLocked() int { return c.qBytes + c.flying }

// request is a message read for the worker: raw (a readPool buffer) until
// the worker decodes it into req, or the error decoding it gave
// (answered in order with the requests around it). The reader does not
// decode: decoding JSON would grow its stack, which an idle connection
// would then keep.
type request struct {
	raw *[]byte
	req protocol.Request
	err error
}

func newConn(s *Server, t transport, ip string) *conn {
	return &conn{s: s, t: t, ip: ip, session: uuid.New()}
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// kickLocked starts the writer when there is something for it to do and
// none runs, and wakes a worker waiting for the queue to drain when the
// connection is closing. c.mu must be held.
func (c *conn) kickLocked() {
	c.wakeDrainedLocked()
	if !c.started || c.writerOn || c.closed || (len(c.q) == 0 && c.closeCode == 0) {
		return
	}
	c.writerOn = true
	c.wg.Add(1)
	go c.writeLoop()
}

// enqueue queues a frame for the writer and reports whether it was
// queued. The queue is bounded in bytes (Limits.SendQueueBytes, counting
// the frames the writer is writing): a droppable frame that does not fit
// is dropped; for any other frame the queued droppable frames go first,
// oldest first, and when it still does not fit the connection closes
// with 4001: the client resumes and loses nothing. A frame larger than
// the whole budget is queued when nothing else is, so it can always be
// delivered.
func (c *conn) enqueue(b []byte, droppable bool) bool {
	return c.enqueueFrame(outFrame{b: b, droppable: droppable})
}

// enqueueFrame is enqueue for any outFrame (a pong too).
func (c *conn) enqueueFrame(f outFrame) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode != 0 {
		return false
	}
	n, budget := frameCost(f.b), c.s.cfg.Limits.SendQueueBytes
	if q := c.queuedLocked(); q > 0 && q+n > budget {
		if f.droppable {
			c.s.metrics.drops.WithLabelValues("ephemeral").Inc()
			return false
		}
		kept := c.q[:0]
		for _, f := range c.q {
			if f.droppable && c.queuedLocked()+n > budget {
				c.qBytes -= frameCost(f.b)
				c.s.metrics.drops.WithLabelValues("ephemeral").Inc()
				continue
			}
			kept = append(kept, f)
		}
		clear(c.q[len(kept):])
		c.q = kept
		if q := c.queuedLocked(); q > 0 && q+n > budget {
			c.s.metrics.drops.WithLabelValues("durable").Inc()
			c.s.metrics.slowClosed.Inc()
			c.q, c.qBytes = nil, 0
			c.closeCode, c.closeReason = protocol.CloseSlowConsumer, "slow consumer"
			c.kickLocked()
			return false
		}
	}
	if c.q == nil && c.spare != nil {
		c.q, c.spare = c.spare, nil
	}
	c.q = append(c.q, f)
	c.qBytes += n
	c.kickLocked()
	return true
}

// waitDrained waits, for the worker, until at most half the send queue's
// budget is queued or the connection is closing: replies are produced no
// faster than the client reads them. A client that stops reading ends it
// with its connection: the sweep closes a connection stuck in a write for
// writeTimeout, and the writer's failed write then closes it (kickLocked
// and writeLoop wake the wait).
func (c *conn) waitDrained() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.closeCode == 0 && c.queuedLocked() > c.s.cfg.Limits.SendQueueBytes/2 {
		ch := make(chan struct{})
		c.drained = ch
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// wakeDrainedLocked ends waitDrained's wait when the queue drained below
// half its budget or the connection is closing. c.mu must be held.
func (c *conn) wakeDrainedLocked() {
	if c.drained != nil && (c.closeCode != 0 || c.closed || c.queuedLocked() <= c.s.cfg.Limits.SendQueueBytes/2) {
		close(c.drained)
		c.drained = nil
	}
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
	c.kickLocked()
}

// closing reports whether the connection is closing (a close was asked
// for, or it failed).
func (c *conn) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode != 0
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
	c.qBytes += frameCost(b)
	c.closeCode, c.closeReason, c.flush = protocol.CloseShutdown, "server shutting down", true
	c.kickLocked()
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
	if c.throttles == nil {
		c.throttles = make(map[string]*time.Timer)
	}
	// The timer is stopped by stopThrottles when the conn ends; if it
	// fires first, enqueue on a closed conn is a no-op.
	c.throttles[feature] = time.AfterFunc(d, func() {
		defer c.recoverTimer(true)
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

// writeFrames writes frames in order through the transport, coalesced
// into as few writes as it can (with batching, as few messages as
// maxBatchBytes allows, the frames of a message separated by '\n'). Its
// timeout (writeTimeout) is enforced by the server's sweep (hub.sweep),
// which drops a connection whose write has been in progress that long: a
// deadline here would cost a timer per write. A shutdown that runs out of
// time drops the connection too (see Server.shutdown), which ends the
// write. It holds no lock: the hub and the worker enqueue meanwhile.
func (c *conn) writeFrames(frames []outFrame) error {
	if len(frames) == 0 {
		return nil
	}
	c.writing.Store(time.Now().UnixNano())
	err := c.t.Write(frames, c.batch)
	c.writing.Store(0)
	return err
}

// writeLoop drains the queue and closes the connection when asked. It is
// started by kickLocked, counted in wg (serve waits for it), and returns
// when the queue is empty or after closing the WebSocket.
func (c *conn) writeLoop() {
	defer c.wg.Done()
	defer c.recoverWriter()
	var done []outFrame
	for {
		c.mu.Lock()
		if done != nil && c.spare == nil {
			clear(done) // let the frames' bytes go
			c.spare = done[:0]
		}
		q := c.q
		c.q = nil
		c.flying, c.qBytes = c.qBytes, 0
		c.wakeDrainedLocked()
		code, reason, flush := c.closeCode, c.closeReason, c.flush
		if len(q) == 0 && code == 0 {
			c.writerOn = false
			c.spare = nil // an idle connection holds no queue
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.s.testPanic("writer")
		if code != 0 && !flush {
			q = nil
		}
		if err := c.writeFrames(q); err != nil {
			code = closeNow
		}
		c.observeLag()
		if code != 0 {
			// Close sends the close frame and ends the client's half: the
			// reader sees the client's answer or the end of the stream,
			// and end drops the connection.
			if code == closeNow {
				c.t.CloseNow()
			} else if c.t.Close(code, reason) != nil {
				c.t.CloseNow()
			}
			c.mu.Lock()
			c.closed, c.writerOn, c.q, c.spare = true, false, nil, nil
			c.qBytes, c.flying = 0, 0
			if c.closeCode == 0 {
				c.closeCode = closeNow // a failed write: nothing more to queue
			}
			c.wakeDrainedLocked()
			c.mu.Unlock()
			return
		}
		done = q
	}
}

// sweep closes, with 4002, every registered connection not heard from for
// the heartbeat timeout, skipping paused ones, and drops every connection
// whose current write began writeTimeout ago or more (the peer does not
// read). One sweep per server replaces a timer per connection and per
// write; Server.heartbeat runs it.
func (h *hub) sweep(now time.Time, timeout time.Duration) {
	cut := now.Add(-timeout).UnixNano()
	wcut := now.Add(-writeTimeout).UnixNano()
	var silent, stuck []*conn
	h.mu.Lock()
	for _, first := range h.users {
		for c := first; c != nil; c = c.hubNext {
			if c.lastRead.Load() <= cut && !c.paused.Load() {
				silent = append(silent, c)
			}
			if w := c.writing.Load(); w != 0 && w <= wcut {
				stuck = append(stuck, c)
			}
		}
	}
	h.mu.Unlock()
	for _, c := range silent {
		c.closeWith(protocol.CloseHeartbeatTimeout, "heartbeat timeout", false)
	}
	for _, c := range stuck {
		c.t.CloseNow() // the write fails and the writer ends the connection
	}
}

// serve runs the connection's hello and start on the calling goroutine
// (net/http's, counted in connWG by serveWS), then starts the connection's
// reader goroutine and returns. The hello and the replay run deep call
// chains (JSON, token checks, store reads) that grow a stack to tens of
// KiB, and a goroutine's stack only shrinks at a GC: a fresh goroutine
// for the long-lived reader keeps an idle connection's stack small, and
// lets net/http's request and buffers go.
//
// ctx is the server's connection context: cancelled when a shutdown runs
// out of time. The hello's read ends with it; after that the shutdown
// closes every registered connection (Server.shutdown), and a connection
// registered after that walk closes itself here: no per-connection
// context.AfterFunc is kept for the connection's life.
func (c *conn) serve(ctx context.Context, pre *parley.User) {
	registered := false
	defer c.recoverServe(&registered)
	hello, ok := c.readHello(ctx, pre)
	if !ok {
		return
	}
	s := c.s
	s.testPanic("hello")
	c.batch = hello.Batch
	var storeHead int64
	if from := hello.ResumeFrom; from != nil && s.hub.behind(*from) {
		// The client saw a position this node has not delivered (it
		// lags the broker, or was stopped): replay from the store up to
		// its head rather than answer from this node's own, older one.
		var err error
		if storeHead, err = c.storeHead(ctx); err != nil {
			c.reject(ctx, "", err)
			return
		}
	}
	c.paused.Store(true) // not reading while welcome and the replay are written
	c.touch()
	head, quiet := s.hub.register(c, hello.ResumeFrom, storeHead)
	if ctx.Err() != nil {
		c.t.CloseNow() // registered after the shutdown's walk (see Server.shutdown)
	}
	s.metrics.connections.Inc()
	s.pres.connect(c.user.ID)
	registered = true // end undoes the three steps above
	// A ban adds the user to the list and then walks the hub; a
	// connection whose token was checked before the add and that joined
	// the hub after the walk is caught here, so neither the ban handler
	// nor syncBans has to walk the hub again for users already banned.
	if s.svc.bans.has(c.user.ID) {
		c.closeWith(protocol.CloseAuthRevoked, "access revoked", false)
	}
	s.testPanic("start")
	s.log.Debug("connected", "user", c.user.ID, "session", c.session, "ip", c.ip)
	if s.closing.Load() {
		c.goaway()
	}

	if err := c.start(ctx, hello, head, quiet); err != nil {
		if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("starting a connection", "user", c.user.ID, "err", err)
		}
		c.closeWith(protocol.CloseReconnect, "could not start; reconnect", false)
	}
	c.mu.Lock()
	c.started = true
	c.kickLocked()
	c.mu.Unlock()
	c.touch()
	c.paused.Store(false)

	// The reader goroutine is counted in connWG (serveWS's count is held
	// until this returns, so the Add cannot race Shutdown's Wait).
	s.connWG.Add(1)
	go c.reader()
}

// storeHead reads the store's head for a hello whose resume_from this
// node has not delivered yet. A store that does not answer within
// writeTimeout is unavailable: the client is told to come back (4003),
// never to give up.
func (c *conn) storeHead(ctx context.Context) (int64, error) {
	hctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	head, err := c.s.store.Head(hctx)
	if err != nil {
		ue := &parley.Error{Code: parley.EUNAVAILABLE, Message: "the store is unavailable; reconnect", RetryAfter: time.Second}
		return 0, fmt.Errorf("%w (reading its head: %v)", ue, err)
	}
	return head, nil
}

// reader runs the reader loop on a goroutine counted in connWG and ends
// the connection when the loop ends.
func (c *conn) reader() {
	defer c.s.connWG.Done()
	ending := false
	defer c.recoverReader(&ending)
	c.readLoop()
	ending = true
	c.end()
}

// end tears the connection down after the reader returned: it closes the
// WebSocket, waits for the writer and the worker, and unregisters.
func (c *conn) end() {
	s := c.s
	c.closeWith(closeNow, "", false)
	c.wg.Wait() // the writer, and the worker finishing the requests it read
	c.mu.Lock()
	sent := c.closeCode != closeNow // the writer sent a close frame
	c.mu.Unlock()
	if sent {
		c.t.Linger()
	} else {
		c.t.CloseNow()
	}
	c.stopThrottles()
	last := s.hub.unregister(c)
	s.pres.disconnect(c.user.ID)
	s.metrics.connections.Dec()
	s.metrics.obs.countClose(c.closedCode())
	if last {
		s.svc.typingGone(c.user)
	}
	s.log.Debug("disconnected", "user", c.user.ID, "session", c.session)
}

// readLoop reads messages until the connection ends. It answers pings
// at once (so a client whose requests wait on a slow store still hears
// from the server) and hands every other request to the worker, in
// order. No deadline here: the heartbeat sweep and a shutdown close the
// connection, which ends the read.
//
// Between messages the transport holds no buffer and the reader waits
// with a shallow stack (see wsConn): the reader only reads, recognises
// the plain ping and queues; decoding (deep JSON frames) is the worker's,
// so an idle reader's stack stays near the runtime's smallest.
func (c *conn) readLoop() {
	for {
		if c.t.Wait() != nil || !c.readOne() {
			return
		}
	}
}

// readOne reads one message and answers or queues it; false ends the
// connection.
func (c *conn) readOne() bool {
	kind, bp, err := c.t.Read()
	if err != nil {
		if code, reason := closeCodeOf(err); code != closeNow {
			c.closeWith(code, reason, false)
		}
		return false
	}
	c.s.testPanic("reader")
	c.touch()
	b := *bp
	switch kind {
	case msgPing:
		c.enqueueFrame(outFrame{b: bytes.Clone(b), kind: framePong})
		readPool.Put(bp)
		return true
	case msgBinary:
		readPool.Put(bp)
		c.closeWith(protocol.CloseProtocolError, "binary frames are not allowed", false)
		return false
	}
	if id, ok := plainPing(b); ok {
		readPool.Put(bp)
		c.enqueue(pongFrame(id), false)
		return true
	}
	return c.push(request{raw: bp})
}

// plainPing recognises the ping every client sends, exactly
// {"op":"ping"} or {"op":"ping","id":"ID"} with a plain ID (at most 64
// bytes, no quote, backslash or control character), and returns its id.
// It keeps the idle reader off encoding/json: decoding grows the reader's
// stack, which then stays grown for the life of the connection. Any other
// form of ping takes the general path and is answered the same way.
func plainPing(b []byte) (string, bool) {
	const bare, pre, post = `{"op":"ping"}`, `{"op":"ping","id":"`, `"}`
	if string(b) == bare {
		return "", true
	}
	if len(b) < len(pre)+len(post) || string(b[:len(pre)]) != pre || string(b[len(b)-len(post):]) != post {
		return "", false
	}
	id := b[len(pre) : len(b)-len(post)]
	if len(id) > protocol.MaxRequestIDLen {
		return "", false
	}
	for _, c := range id {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			return "", false
		}
	}
	return string(id), true
}

// readPool holds the buffers requests are read into: an idle connection
// holds none, and a busy one allocates none per request.
var readPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// push queues r for the worker, starting it when none runs. When the queue
// is full (requestQueue requests, counting a run of sends the worker holds)
// it waits for room with the connection paused (not read, and not
// subject to the heartbeat); it returns false when the connection is
// closing meanwhile.
func (c *conn) push(r request) bool {
	c.mu.Lock()
	for len(c.reqs)+c.held >= requestQueue {
		if c.closeCode != 0 {
			c.mu.Unlock()
			return false
		}
		room := make(chan struct{})
		c.room = room
		c.mu.Unlock()
		c.paused.Store(true)
		select {
		case <-room:
		case <-c.s.connCtx.Done():
		}
		c.touch() // silence is counted again from now
		c.paused.Store(false)
		if c.s.connCtx.Err() != nil {
			return false
		}
		c.mu.Lock()
	}
	c.reqs = append(c.reqs, r)
	if !c.workerOn {
		c.workerOn = true
		c.wg.Add(1)
		go c.work()
	}
	c.mu.Unlock()
	return true
}

// work runs queued requests one at a time, in the order read, so a
// client's sends are stored in the order sent; a run of consecutive sends
// counts as one request here, handed to the store together
// (dispatchSends), which keeps their order. It is started by push,
// counted in wg, and returns when the queue is empty. It runs a request
// only while at most half the send queue's budget is queued (waitDrained),
// so a client that asks much and reads nothing holds about its budget.
// Once the connection
// is closing, requests still queued are dropped rather than run: their
// replies would go nowhere, the client resends what it got no reply for
// (sends are idempotent), and running them would only keep a dead
// connection's work (up to a full queue of sends each) in the store's
// batches and in the way of a shutdown. The request in progress finishes.
func (c *conn) work() {
	defer c.wg.Done()
	defer c.recoverWorker()
	var batch []request          // taken from reqs, decoded, run in order; counted in held
	var sends []protocol.Request // the run of sends in progress
	for {
		c.mu.Lock()
		c.held = len(batch)
		if c.closeCode != 0 {
			clear(c.reqs)
			c.reqs = c.reqs[:0]
			clear(batch)
			batch = nil
			c.held = 0
		}
		if c.room != nil && len(c.reqs)+c.held < requestQueue { // the reader waits: there is room now
			close(c.room)
			c.room = nil
		}
		if len(batch) == 0 {
			if len(c.reqs) == 0 {
				c.workerOn = false
				c.reqs = nil // an idle connection holds no queue
				c.mu.Unlock()
				return
			}
			batch, c.reqs = c.reqs, nil
			c.held = len(batch)
			c.mu.Unlock()
			// Decoded here, not by the reader (see request), and outside
			// c.mu. DecodeRequest copies what it keeps (strings, data), so
			// each buffer goes back to the pool at once.
			for i := range batch {
				batch[i].req, batch[i].err = protocol.DecodeRequest(*batch[i].raw)
				readPool.Put(batch[i].raw)
				batch[i].raw = nil
			}
			continue
		}
		if c.queuedLocked() > c.s.cfg.Limits.SendQueueBytes/2 {
			// The client has not read what earlier requests produced:
			// the next reply waits for it (back-pressure), and the reader
			// stops reading once requestQueue requests wait.
			c.mu.Unlock()
			c.waitDrained()
			continue
		}
		c.mu.Unlock()
		r := batch[0]
		n := 1
		if isSend(r) {
			// The sends right behind this one go to the store with it.
			sends = append(sends[:0], r.req)
			for n < len(batch) && len(sends) < maxSendRun && isSend(batch[n]) {
				sends = append(sends, batch[n].req)
				n++
			}
		}
		c.s.testPanic("worker")
		switch {
		case r.err != nil:
			c.enqueue(errorFrame(c.s, r.req.ID, r.err), false)
		case r.req.Op == protocol.OpPing: // a ping in a form plainPing does not take
			c.enqueue(pongFrame(r.req.ID), false)
		case isSend(r):
			c.dispatchSends(c.s.connCtx, sends)
			clear(sends)
		default:
			c.dispatch(c.s.connCtx, r.req)
		}
		clear(batch[:n])
		batch = batch[n:]
	}
}

func isSend(r request) bool { return r.err == nil && r.req.Op == protocol.OpSend }

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
			if receiptHidden(&ev, c.user.ID) {
				continue
			}
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

func errorFrame(s *Server, id string, err error) []byte {
	b := errorBody(s.log, err)
	s.metrics.obs.countError(b.Code)
	return encodeFrame(protocol.Frame{Type: protocol.TypeError, ID: id, Error: b})
}
