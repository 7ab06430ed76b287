package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// CloseError is a connection the server closed with a close code. Use
// protocol.ShouldReconnect(Code) to tell the kinds apart; the client
// already does.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("client: server closed the connection: %s (%d): %s", closeErrText(e.Code), e.Code, e.Reason)
	}
	return fmt.Sprintf("client: server closed the connection: %s (%d)", closeErrText(e.Code), e.Code)
}

// Terminal reports whether the client stops retrying after this close.
func (e *CloseError) Terminal() bool { return !protocol.ShouldReconnect(e.Code) }

// GaveUpError is the status error after MaxAttempts failed attempts.
type GaveUpError struct {
	Attempts int
	Last     error
}

func (e *GaveUpError) Error() string {
	return fmt.Sprintf("client: gave up after %d failed connection attempts (MaxAttempts): last error: %v", e.Attempts, e.Last)
}

func (e *GaveUpError) Unwrap() error { return e.Last }

// ErrHeartbeatTimeout is why a link was dropped when the server went
// silent for longer than the heartbeat timeout (a half-open link).
var ErrHeartbeatTimeout = errors.New("client: no frame from the server within the heartbeat timeout (link dead)")

// errConnLost fails requests whose connection ended before the reply.
var errConnLost = &parley.Error{Code: parley.EUNAVAILABLE, Message: "connection lost before the reply"}

// wsConn is one live connection.
type wsConn struct {
	ws        *websocket.Conn
	gen       uint64
	token     string       // the hello's: its user is user
	user      string       // the user the welcome named
	lastHeard atomic.Int64 // unix nanos of the last frame read
	hbFail    atomic.Bool
	replaying bool // resumed or resync not yet received (guarded by Client.mu)
}

type reply struct {
	data json.RawMessage
	err  error
}

// backoffCeiling is the ceiling of the delay before attempt n (n >= 1).
func backoffCeiling(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n; i++ {
		d *= 2
		if d >= max || d <= 0 {
			return max
		}
	}
	if d > max {
		return max
	}
	return d
}

// backoffDelay draws a full-jitter delay for attempt n: uniform in
// [0, ceiling].
func backoffDelay(base, max time.Duration, n int) time.Duration {
	ceil := backoffCeiling(base, max, n)
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// run is the runner goroutine: it dials, serves a connection until it
// ends, waits and retries, until ctx (Close) ends it. It is the only
// goroutine that opens connections, so there is never more than one.
func (c *Client) run(ctx context.Context) {
	defer c.wg.Done()
	failures := 0 // failed attempts since the last connection (MaxAttempts)
	step := 0     // backoff steps waited since the last connection
	tokenRetry := false
	var delay time.Duration
	wait := false
	var lastErr error
	for {
		if ctx.Err() != nil {
			return
		}
		if wait {
			at := time.Now().Add(delay)
			c.mu.Lock()
			c.moveToReconnecting(failures+1, at, lastErr)
			c.mu.Unlock()
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-c.wake:
				t.Stop()
				step = 0 // Reconnect(): retry now, backoff from its first step
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		c.mu.Lock()
		c.dropKick()
		c.moveToConnecting(failures + 1)
		c.mu.Unlock()
		connected, hint, err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		lastErr = err
		if connected {
			failures, step, tokenRetry = 0, 0, false
		}
		var ce *CloseError
		if errors.As(err, &ce) && ce.Terminal() {
			if ce.Code == protocol.CloseUnauthorized && !tokenRetry {
				// One immediate retry with a fresh token (TokenSource
				// is called for every attempt).
				tokenRetry = true
				wait = false
				continue
			}
			if !c.giveUp(ctx, err) {
				return
			}
			failures, step, tokenRetry, lastErr, wait = 0, 0, false, nil, false
			continue
		}
		if !connected {
			failures++
			if c.opts.maxAttempts > 0 && failures >= c.opts.maxAttempts {
				if !c.giveUp(ctx, &GaveUpError{Attempts: failures, Last: err}) {
					return
				}
				failures, step, lastErr, wait = 0, 0, nil, false
				continue
			}
		}
		wait = true
		if hint > 0 {
			// The server said when to come back (goaway): honour it; the
			// server already jittered it per connection. Reset the
			// backoff: the server is restarting, not failing. Never wait
			// longer than the backoff's ceiling: a server (or a man in the
			// middle on plain ws) saying an hour would park the client
			// until the app calls Reconnect.
			delay, step = min(hint, c.opts.backoffMax), 0
			continue
		}
		step++
		delay = backoffDelay(c.opts.backoffBase, c.opts.backoffMax, step)
	}
}

// giveUp moves to Disconnected and waits for Reconnect or Close; it
// reports false when the client is closing.
func (c *Client) giveUp(ctx context.Context, err error) bool {
	c.mu.Lock()
	c.moveToDisconnected(err, true)
	c.mu.Unlock()
	select {
	case <-c.wake:
		return true
	case <-ctx.Done():
		return false
	}
}

// session makes one connection and serves it until it ends. connected says
// whether the server welcomed us; hint is the goaway delay, if any.
func (c *Client) session(ctx context.Context) (connected bool, hint time.Duration, err error) {
	token, err := c.opts.tokens(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("client: token source: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.dialTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, c.wsURL, &websocket.DialOptions{HTTPClient: c.http})
	if err != nil {
		return false, 0, fmt.Errorf("client: dial: %w", err)
	}
	defer ws.CloseNow()
	// History pages can be much larger than what clients may send.
	ws.SetReadLimit(32 << 20)

	// Batch: the server may pack several frames into one message,
	// separated by '\n' (fewer writes for both sides); every message is
	// split below, so a server that ignores it works the same.
	hello := protocol.Hello{Token: token, Batch: c.opts.batch}
	c.mu.Lock()
	switch {
	case c.opts.protocol == protocol.Version2:
		hello.Protocol = protocol.Version2
		hello.Cursor = c.cursor.Clone() // nil: a first connection
	case c.cursor != nil:
		p := c.cursor[0]
		hello.ResumeFrom = &p
	}
	resuming := c.cursor != nil
	c.mu.Unlock()
	if err := writeRequest(dctx, ws, protocol.OpHello, "", hello); err != nil {
		return false, 0, readErr(err)
	}
	var welcome protocol.Welcome
	var rest []byte // frames that came in the welcome's message, after it
	for found := false; !found; {
		_, b, err := ws.Read(dctx)
		if err != nil {
			return false, 0, readErr(err)
		}
		for len(b) > 0 && !found {
			var fb []byte
			fb, b = nextFrame(b)
			var f protocol.Frame
			if err := json.Unmarshal(fb, &f); err != nil {
				return false, 0, fmt.Errorf("client: bad frame from server: %w", err)
			}
			if f.Type == protocol.TypeError && f.Error != nil {
				switch f.Error.Code {
				case parley.EUNAUTHORIZED:
					return false, 0, &CloseError{Code: protocol.CloseUnauthorized, Reason: f.Error.Message}
				case parley.EUNSUPPORTED, parley.EINVALID:
					// A hello the server will refuse again (protocol 1
					// on a log of shards, a cursor it cannot take):
					// terminal, like a bad token.
					return false, 0, &CloseError{Code: protocol.CloseProtocolError, Reason: f.Error.Message}
				}
				return false, 0, frameError(f.Error)
			}
			if f.Type != protocol.TypeWelcome {
				continue
			}
			if err := json.Unmarshal(f.Data, &welcome); err != nil {
				return false, 0, fmt.Errorf("client: bad welcome: %w", err)
			}
			found, rest = true, b
		}
	}

	// Before the outbox may send on this connection (c.connected): it
	// sends only the welcomed user's messages.
	c.out.adopt(welcome.User.ID)
	cn := &wsConn{ws: ws, token: token, user: welcome.User.ID}
	cn.lastHeard.Store(time.Now().UnixNano())
	c.mu.Lock()
	c.gen++
	cn.gen = c.gen
	c.conn = cn
	c.user = welcome.User
	if c.cursor == nil {
		// A server of protocol 1 (or one answering a protocol-1 hello)
		// gives one head: shard 0's.
		c.cursor = welcome.Cursor.Clone()
		if c.cursor == nil {
			c.cursor = protocol.ShardCursor{0: welcome.Head}
		}
	}
	c.moveToConnected(welcome.SessionID)
	// The outbox starts once the replay is over: its own newMessage
	// events settle what the last connection stored without a reply, so
	// only what the server never stored is sent again.
	cn.replaying = resuming
	if !cn.replaying {
		close(c.connected)
	}
	c.lost = make(chan struct{})
	c.mu.Unlock()
	c.state.onWelcome(welcome)
	c.out.signal()

	interval, timeout := c.opts.hbInterval, c.opts.hbTimeout
	if interval <= 0 {
		interval = time.Duration(welcome.HeartbeatIntervalMS) * time.Millisecond
		if interval <= 0 {
			interval = protocol.HeartbeatInterval
		}
	}
	if timeout <= 0 {
		timeout = time.Duration(welcome.HeartbeatTimeoutMS) * time.Millisecond
		if timeout <= 0 {
			timeout = protocol.HeartbeatTimeout
		}
	}
	sctx, stop := context.WithCancel(ctx)
	var hbwg sync.WaitGroup
	hbwg.Add(1)
	go func() { // owned by this session: stopped and waited for below
		defer hbwg.Done()
		c.heartbeat(sctx, cn, interval, timeout)
	}()

	var goaway time.Duration
	handle := func(b []byte) {
		for len(b) > 0 {
			var fb []byte
			fb, b = nextFrame(b)
			if d := c.handleFrame(cn, fb); d > 0 {
				goaway = d
			}
		}
	}
	handle(rest)
	for {
		_, b, rerr := ws.Read(sctx)
		if rerr != nil {
			err = readErr(rerr)
			if cn.hbFail.Load() {
				err = ErrHeartbeatTimeout
			}
			break
		}
		cn.lastHeard.Store(time.Now().UnixNano())
		handle(b)
	}
	stop()
	ws.CloseNow()
	hbwg.Wait()
	c.teardown(cn)
	return true, goaway, err
}

// nextFrame splits the first frame off a message: with hello.batch a
// message holds frames separated by '\n' (JSON never holds a raw one).
func nextFrame(b []byte) (frame, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// teardown forgets a connection that ended: pending requests fail, the
// throttle is dropped, and presence/typing learned on it are cleared.
func (c *Client) teardown(cn *wsConn) {
	c.mu.Lock()
	if c.conn == cn {
		c.conn = nil
		if !cn.replaying { // else c.connected is still open: keep it
			c.connected = make(chan struct{})
		}
		close(c.lost)
	}
	for id, ch := range c.pending {
		ch <- reply{err: errConnLost}
		delete(c.pending, id)
	}
	if c.throttle != nil {
		c.throttle.Stop()
		c.throttle = nil
	}
	c.mu.Unlock()
	c.state.onDisconnect()
}

// heartbeat pings every interval and drops the link after timeout of
// silence. The deadline follows the last frame heard, so a dead link is
// noticed timeout after the last frame, not a tick later.
func (c *Client) heartbeat(ctx context.Context, cn *wsConn, interval, timeout time.Duration) {
	ping := time.NewTicker(interval)
	defer ping.Stop()
	dead := time.NewTimer(timeout)
	defer dead.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			n++
			wctx, cancel := context.WithTimeout(ctx, timeout)
			err := writeRequest(wctx, cn.ws, protocol.OpPing, "p"+strconv.Itoa(n), nil)
			cancel()
			if err != nil && ctx.Err() == nil {
				// A failed write kills the conn; the reader reports it.
				return
			}
		case <-dead.C:
			last := time.Unix(0, cn.lastHeard.Load())
			left := time.Until(last.Add(timeout))
			if left > 0 {
				dead.Reset(left)
				continue
			}
			cn.hbFail.Store(true)
			cn.ws.CloseNow()
			return
		}
	}
}

// handleFrame processes one frame from the server on the reader goroutine;
// it returns the goaway delay when the frame is a goaway.
func (c *Client) handleFrame(cn *wsConn, b []byte) time.Duration {
	var f protocol.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.pushError(fmt.Errorf("client: bad frame from server: %w", err))
		return 0
	}
	switch f.Type {
	case protocol.TypePong:
	case protocol.TypeReply, protocol.TypeError:
		if f.ID == "" {
			if f.Error != nil {
				c.pushError(frameError(f.Error))
			}
			return 0
		}
		c.mu.Lock()
		ch, ok := c.pending[f.ID]
		delete(c.pending, f.ID)
		c.mu.Unlock()
		if ok {
			if f.Type == protocol.TypeError && f.Error != nil {
				ch <- reply{err: frameError(f.Error)}
			} else {
				ch <- reply{data: f.Data}
			}
		}
	case protocol.TypeEvent:
		var ev parley.Event
		if err := json.Unmarshal(f.Data, &ev); err != nil {
			c.pushError(fmt.Errorf("client: bad event from server: %w", err))
			return 0
		}
		c.handleEvent(cn, &ev)
	case protocol.TypeResumed:
		var r protocol.Resumed
		if json.Unmarshal(f.Data, &r) == nil {
			c.mu.Lock()
			if c.conn == cn && c.cursor != nil {
				// The replay covered every shard up to the welcome's
				// heads: never moves an entry back.
				c.cursor.Merge(r.Cursor)
			}
			c.mu.Unlock()
			c.emit(Resumed{From: r.From, To: r.To, Count: r.Count})
		}
		c.replayDone(cn)
	case protocol.TypeResync:
		var r protocol.Resync
		if err := json.Unmarshal(f.Data, &r); err != nil {
			c.pushError(fmt.Errorf("client: bad resync: %w", err))
			return 0
		}
		c.mu.Lock()
		reason := resyncReason(c.cursor != nil, c.cursor[r.Shard], r)
		resyncCursor(&c.cursor, r)
		c.mu.Unlock()
		c.emit(Resynced{Head: r.Head, From: r.From, Reason: reason, Text: r.Reason})
		c.state.onResync()
		c.replayDone(cn)
	case protocol.TypeThrottled:
		var t protocol.Throttled
		if json.Unmarshal(f.Data, &t) == nil {
			c.setThrottled(cn, t.Feature, t.Until, true)
		}
	case protocol.TypeUnthrottled:
		var t protocol.Unthrottled
		if json.Unmarshal(f.Data, &t) == nil {
			c.setThrottled(cn, t.Feature, time.Time{}, false)
		}
	case protocol.TypeGoAway:
		var g protocol.GoAway
		if json.Unmarshal(f.Data, &g) == nil && g.ReconnectAfterMS > 0 {
			return time.Duration(g.ReconnectAfterMS) * time.Millisecond
		}
		return time.Millisecond
	}
	return 0
}

// handleEvent drops a durable event already seen (by position), then
// updates the client's state and hands it to the app. Only the reader
// goroutine calls it, so events keep their order.
func (c *Client) handleEvent(cn *wsConn, ev *parley.Event) {
	if ev.Type.Durable() {
		c.mu.Lock()
		if c.conn != cn {
			c.mu.Unlock()
			return
		}
		if c.cursor == nil {
			c.cursor = protocol.ShardCursor{}
		}
		// Per shard: positions of different shards do not compare.
		if !c.cursor.Advance(ev.Shard, ev.Pos) {
			c.duplicat++
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
	out := typedEvent(ev)
	if out == nil {
		return
	}
	out = c.state.named(out)
	if c.state.presenceRepeat(out) {
		return
	}
	c.state.apply(out)
	c.noteReceived(out)
	c.out.onEvent(out)
	c.emit(out)
}

// replayDone lets the outbox send on cn: the replay asked for in hello is
// over (resumed or resync).
func (c *Client) replayDone(cn *wsConn) {
	c.mu.Lock()
	if c.conn == cn && cn.replaying {
		cn.replaying = false
		close(c.connected)
	}
	c.mu.Unlock()
}

func (c *Client) setThrottled(cn *wsConn, feature string, until time.Time, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != cn {
		return
	}
	t := c.status.clone().Throttled
	if t == nil {
		t = make(map[string]time.Time)
	}
	if on {
		t[feature] = until
	} else {
		delete(t, feature)
	}
	// Lift features whose time is up even if no unthrottled frame comes.
	now := time.Now()
	var next time.Time
	for f, u := range t {
		if !u.After(now) {
			delete(t, f)
		} else if next.IsZero() || u.Before(next) {
			next = u
		}
	}
	if c.throttle != nil {
		c.throttle.Stop()
		c.throttle = nil
	}
	if !next.IsZero() {
		gen := cn.gen
		c.throttle = time.AfterFunc(time.Until(next), func() {
			c.mu.Lock()
			ok := c.conn != nil && c.conn.gen == gen
			c.mu.Unlock()
			if ok {
				c.setThrottled(cn, "", time.Time{}, false)
			}
		})
	}
	c.moveToThrottled(t)
}

func writeRequest(ctx context.Context, ws *websocket.Conn, op, id string, data any) error {
	r := protocol.Request{Op: op, ID: id}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		r.Data = b
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, b)
}

// readErr turns a websocket error into a *CloseError when the server sent
// a close code.
func readErr(err error) error {
	if code := websocket.CloseStatus(err); code != -1 {
		var ce websocket.CloseError
		reason := ""
		if errors.As(err, &ce) {
			reason = ce.Reason
		}
		return &CloseError{Code: int(code), Reason: reason}
	}
	return fmt.Errorf("client: connection lost: %w", err)
}

func frameError(e *protocol.ErrorBody) error {
	return &parley.Error{Code: e.Code, Message: e.Message, RetryAfter: serverWait(e.RetryAfterMS, time.Millisecond)}
}

// startRequest sends one request on the current connection and returns
// the channel its reply will come on. The reply is errConnLost if the
// connection ends first. It fails with errConnLost when there is no
// connection or the write fails.
func (c *Client) startRequest(ctx context.Context, op string, data any) (chan reply, string, error) {
	return c.startRequestOn(ctx, nil, op, data)
}

// startRequestOn is startRequest on connection on only (nil: the
// current one): errConnLost when the client's connection is another by
// now. The outbox sends on the connection it began with, whose welcome
// chose the messages it may send (outbox.adopt). It returns the
// request's id too, which keys the wait for its reply (c.pending).
func (c *Client) startRequestOn(ctx context.Context, on *wsConn, op string, data any) (chan reply, string, error) {
	c.mu.Lock()
	cn := c.conn
	if cn == nil || (on != nil && cn != on) {
		c.mu.Unlock()
		return nil, "", errConnLost
	}
	c.reqSeq++
	id := "r" + strconv.FormatUint(c.reqSeq, 10)
	ch := make(chan reply, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
	err := writeRequest(wctx, cn.ws, op, id, data)
	cancel()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		return nil, "", errConnLost
	}
	return ch, id, nil
}

// roundTrip sends one request on the current connection and waits for its
// reply.
func (c *Client) roundTrip(ctx context.Context, op string, data any) (json.RawMessage, error) {
	ch, id, err := c.startRequest(ctx, op, data)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		return r.data, r.err
	case <-ctx.Done():
		// Stop waiting for the reply: a server that never answers
		// would otherwise keep every request given up on, for as long
		// as the connection lasts.
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// call waits for a connection, sends the request and decodes the reply
// into out. Requests that only read (retry=true) are repeated on the next
// connection when the link drops before the reply. Without a deadline in
// ctx, DefaultRequestTimeout applies.
func (c *Client) call(ctx context.Context, op string, in, out any, retry bool) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.requestTimeout)
		defer cancel()
	}
	for {
		if err := c.waitConnected(ctx); err != nil {
			return err
		}
		data, err := c.roundTrip(ctx, op, in)
		if err == errConnLost && retry {
			continue
		}
		if err != nil {
			return err
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return fmt.Errorf("client: bad %s reply: %w", op, err)
			}
		}
		return nil
	}
}

// waitConnected waits until a connection is up. It fails at once when the
// client is Disconnected (before Connect, after giving up, after Close).
func (c *Client) waitConnected(ctx context.Context) error {
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.conn != nil {
			c.mu.Unlock()
			return nil
		}
		if err := c.refuseLocked(); err != nil {
			c.mu.Unlock()
			return err
		}
		ch := c.changed
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// refuseLocked returns the error for calls made while Disconnected. Caller
// holds c.mu.
func (c *Client) refuseLocked() error {
	if c.closed {
		return ErrClosed
	}
	if c.status.State != Disconnected {
		return nil
	}
	if !c.started {
		return coded(ErrDisconnected, &parley.Error{Code: parley.EUNAVAILABLE, Message: "client is disconnected: call Connect first"})
	}
	if c.status.Err != nil {
		return coded(ErrDisconnected, &parley.Error{Code: parley.EUNAVAILABLE, Message: "client is disconnected and stopped retrying: " + c.status.Err.Error() + " (call Reconnect to try again)"})
	}
	return coded(ErrDisconnected, &parley.Error{Code: parley.EUNAVAILABLE, Message: "client is disconnected"})
}

// resyncCursor moves the cursor *cur as a resync says. An entry
// never moves backwards: events at or below it stay dropped as already
// seen. A head below it comes from a node that has not delivered the
// client's position yet (an older server answers so); only a server that
// says the log itself was lost (its positions after head will be given
// again) moves an entry back: the lost shards' (Lost; protocol 1: the one
// shard) to the server's heads. The caller holds Client.mu.
func resyncCursor(cur *protocol.ShardCursor, r protocol.Resync) {
	if *cur == nil {
		*cur = protocol.ShardCursor{}
	}
	c := *cur
	if r.Cursor == nil { // protocol 1: one shard, one head
		if _, ok := c[0]; !ok || r.Head > c[0] || r.Cause == protocol.ResyncLogLost {
			c[0] = r.Head
		}
		return
	}
	if r.Cause == protocol.ResyncLogLost {
		for _, s := range r.Lost {
			if p := r.Cursor[s]; p > 0 {
				c[s] = p
			} else {
				delete(c, s)
			}
		}
	}
	c.Merge(r.Cursor)
}
