package server

import (
	"context"
	"errors"
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
//     is started by the reader when a request arrives and ends when the
//     request queue is empty, or when it hands a run of sends to a store
//     that replies to them from its batcher (dispatchSends): then the
//     run's last reply starts the worker again if requests wait. The
//     reader starts it on a goroutine of Server.workers (a goPool) that
//     waits for another connection's requests once this one's ended.
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
	noPings bool // t is pingless: the sweep sends it no framePing
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
	writerOn    bool                   // a writer goroutine is running, or a goroutine writes inline (inline.go)
	flushOwed   bool                   // queued by queueForFlush: its caller calls flushInline
	closed      bool                   // the writer closed the WebSocket; no writer starts again
	workerOn    bool                   // a worker goroutine is running
	throttles   map[string]*time.Timer // allocated on first use
	reqs        []request              // requests waiting for the worker
	reqBytes    int                    // the size of reqs' frames (requestQueueBytes)
	held        int                    // requests the worker took and runs (a run of sends), or parked; they count against requestQueue
	heldBytes   int                    // the size of the held requests' frames
	sendsOut    bool                   // a run of sends is in the store, replied to by its batcher (dispatchSends): no worker runs meanwhile
	endSends    context.CancelFunc     // ends the ctx of the run of sends the worker waits for in the store (syncSendsCtx); nil when none
	parked      []request              // requests (decoded) behind that run, for the worker the run's last reply starts
	room        chan struct{}          // made while the reader waits for room in reqs
	wg          sync.WaitGroup         // the writer and worker goroutines

	// replyTake, when not 0, is the commitFlush hand-off (commitFlush.take)
	// that brings the hub the events of a send reply in q: until the
	// hub's flush of that hand-off (or a flush that cannot wait for it,
	// flushInline with a higher limit) writes q, nothing else does (no
	// writer starts, a running one stops, an inline write of an earlier
	// hand-off's frames leaves q), so a sender gets each reply with its
	// own event, in one write. A closing connection ignores it. Guarded
	// by mu.
	replyTake uint64

	// dropSends is set (never unset) once the connection closes: the
	// sends it handed to the store (dispatchSends) that the store has not
	// taken into a batch yet are then not run (parley.AsyncSender's
	// drop). Their replies could not be written, and the client resends
	// every send it has no reply for on its next connection: running
	// them would only make the store do each of them twice, when a
	// reconnect storm leaves it least time to.
	dropSends atomic.Bool

	lastRead atomic.Int64 // unix nanos of the last frame read
	// pinged is when (unix nanos) the heartbeat sweep last sent this
	// connection a WebSocket ping; the sweep writes it, and the send
	// queue clears it when it drops that ping unsent (enqueueLocked). A
	// ping is outstanding while pinged > lastRead, and the sweep sends no
	// other then: at most one per silence.
	pinged   atomic.Int64
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
	// hubFloor: per shard, the hub does not queue durable events at or
	// below it (the replay covers them); nil (the usual case) for none.
	// Set by hub.register, guarded by hub.mu.
	hubFloor shardFloors
}

func newConn(s *Server, t transport, ip string) *conn {
	_, noPings := t.(pingless)
	return &conn{s: s, t: t, noPings: noPings, ip: ip, session: uuid.New()}
}

func (c *conn) touch() { c.lastRead.Store(time.Now().UnixNano()) }

// closeWith asks the writer to close the connection with code, after
// writing the queue when flush is set. The first close asked for wins.
// Either way the sends not yet in a store batch are dropped (dropSends,
// and the end of a synchronous run's ctx, endSends): no reply can be
// queued once a close is asked for (enqueueLocked), and end, which every
// connection's teardown runs, calls it.
func (c *conn) closeWith(code int, reason string, flush bool) {
	c.dropSends.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.endSends != nil {
		c.endSends()
	}
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

// serve runs the connection's hello and start on the calling goroutine
// (serveWS's own, started once net/http's handler is done with the
// upgrade), then starts the connection's reader goroutine and returns. It
// holds a count in connWG (serveWS's) and releases it when it returns,
// or hands it on with the hello: a hello whose token's user is not cached
// waits for its turn to check it in the store (usercheck.go) with no
// goroutine, and serveChecked goes on from there. The hello and the
// replay run deep call chains (JSON, token checks, store reads) that grow
// a stack to tens of KiB, and a goroutine's stack only shrinks at a GC: a
// fresh goroutine for the long-lived reader keeps an idle connection's
// stack small.
//
// ctx is the server's connection context: cancelled when a shutdown runs
// out of time. The hello's read ends with it; after that the shutdown
// closes every registered connection (Server.shutdown), and a connection
// registered after that walk closes itself here: no per-connection
// context.AfterFunc is kept for the connection's life.
func (c *conn) serve(ctx context.Context, pre *parley.User) {
	handed := false
	defer func() {
		if !handed {
			c.s.connWG.Done()
		}
	}()
	registered := false
	defer c.recoverServe(&registered)
	hello, id, check, ok := c.readHello(ctx, pre)
	if !ok {
		return
	}
	if check != nil {
		handed = true
		c.s.svc.checkUser(ctx, check.UserID, check.Name, func(u parley.User, err error) {
			go c.serveChecked(ctx, hello, id, u, err)
		})
		return
	}
	c.begin(ctx, hello, &registered)
}

// serveChecked goes on with a hello once the store checked its token's
// user (u, or err), on a goroutine of its own holding serve's count in
// connWG.
func (c *conn) serveChecked(ctx context.Context, hello protocol.Hello, id string, u parley.User, err error) {
	defer c.s.connWG.Done()
	registered := false
	defer c.recoverServe(&registered)
	if err != nil {
		c.reject(ctx, id, err)
		return
	}
	c.user = u
	c.begin(ctx, hello, &registered)
}

// begin registers a connection whose hello is checked, writes the welcome
// and the replay, and starts the reader; registered is set once end must
// undo the registration.
func (c *conn) begin(ctx context.Context, hello protocol.Hello, registered *bool) {
	s := c.s
	s.testPanic("hello")
	c.batch = hello.Batch
	from := resumeFrom(hello, s.hub.shards)
	var storeHeads []int64
	if behind := s.hub.behind(from); len(behind) > 0 {
		// The client saw a position this node has not delivered (it
		// lags the broker, or was stopped): replay those shards from the
		// store up to its heads rather than answer from this node's own,
		// older ones.
		var err error
		if storeHeads, err = c.storeHeads(ctx, behind); err != nil {
			c.reject(ctx, "", err)
			return
		}
	}
	c.paused.Store(true) // not reading while welcome and the replay are written
	c.touch()
	heads, quiet := s.hub.register(c, from, storeHeads)
	if ctx.Err() != nil {
		c.t.CloseNow() // registered after the shutdown's walk (see Server.shutdown)
	}
	s.metrics.connections.Inc()
	s.pres.connect(c.user.ID)
	*registered = true // end undoes the three steps above
	// A ban adds the user to the list and then walks the hub; a
	// connection whose token was checked before the add and that joined
	// the hub after the walk is caught here, so neither the ban handler
	// nor syncUsers has to walk the hub again for users already banned.
	if s.svc.bans.has(c.user.ID) {
		c.closeWith(protocol.CloseAuthRevoked, "access revoked", false)
	}
	s.testPanic("start")
	s.log.Debug("connected", "user", c.user.ID, "session", c.session, "ip", c.ip)
	if s.closing.Load() {
		c.goaway()
	}

	if err := c.start(ctx, hello, from, heads, quiet); err != nil {
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

	// The reader goroutine is counted in connWG (the caller's count is
	// held until it returns, so the Add cannot race Shutdown's Wait).
	s.connWG.Add(1)
	go c.reader(0)
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
