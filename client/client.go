// Package client is Parley's Go SDK: a connection that stays up by itself,
// an outbox that never loses or duplicates a message, and the state a chat
// app shows (conversations with unread counts, message history, typing,
// presence), kept right by the server's events.
//
// A Client connects over WebSocket (protocol v1, see package protocol and
// docs/protocol.md), reconnects with exponential backoff and full jitter
// when the link drops, notices half-open links with application-level
// heartbeats, and resumes from the last event position it saw, so every
// durable event reaches the app exactly once and in order. Send returns an
// optimistic message at once; the outbox delivers it, in order, exactly
// once, across reconnects and (with WithOutboxFile) process restarts.
//
// # Concurrency
//
// Every method is safe for concurrent use. State changes happen only in
// the client's moveTo* methods under one mutex. Listeners and event
// handlers run on one callback goroutine, outside the client's locks, in
// the order things happened, never two at once; they may call any Client
// method. A listener that panics is recovered and reported (to the other
// listeners' OnConnectionError and the logger) and stays registered. A
// listener that blocks holds up the callbacks queued behind it (they wait
// in an unbounded in-memory queue) but never the connection, the outbox or
// the state machine; Close waits for the callback in progress to return,
// so a listener must not block forever.
//
// See docs/sdk.md for the state diagram and a walkthrough.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Defaults.
const (
	// DefaultBackoffBase is the ceiling of the first retry delay; it
	// doubles with every failed attempt (1, 2, 4, 8, 16 s...).
	DefaultBackoffBase = time.Second
	// DefaultBackoffMax caps the retry delay.
	DefaultBackoffMax = 30 * time.Second
	// DefaultOutboxLimit is how many messages may wait in the outbox.
	DefaultOutboxLimit = 1000
	// DefaultDialTimeout bounds one dial plus handshake.
	DefaultDialTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds a request made without a deadline.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultSendWindow is how many sends the outbox keeps in flight.
	DefaultSendWindow = 32
)

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("client: closed")

// TokenSource returns a token for the next connection. It is called before
// every connection attempt, and once more right away when the server
// rejects a token (close code 4100), so an app can refresh an expired
// token; a second rejection in a row is terminal. Because it runs before
// every attempt (also for image uploads), it must be cheap: return a cached
// token while it is valid and log in (Login) only when it is close to
// expiry or was just rejected, not on every call.
type TokenSource func(ctx context.Context) (string, error)

// Option configures a Client.
type Option func(*options)

type options struct {
	tokens         TokenSource
	backoffBase    time.Duration
	backoffMax     time.Duration
	maxAttempts    int
	hbInterval     time.Duration
	hbTimeout      time.Duration
	dial           func(ctx context.Context, network, addr string) (net.Conn, error)
	logger         *slog.Logger
	outboxLimit    int
	outboxFile     string
	outboxUser     string               // WithOutboxFile's user
	resumeFrom     protocol.ShardCursor // nil: start from the server's heads
	protocol       int                  // the hello's protocol version (protocol.Version2 unless WithProtocol)
	dialTimeout    time.Duration
	requestTimeout time.Duration
	listBytes      int   // MaxConversationListBytes; smaller in tests
	fileBytes      int64 // MaxFileBytes for downloads; smaller in tests
	caps           stateCaps
	sendWindow     int
	batch          bool
	tls            *tls.Config
	// deliveredInterval: see WithDeliveredInterval.
	deliveredInterval time.Duration
}

// WithToken sets a fixed token.
func WithToken(token string) Option {
	return func(o *options) {
		o.tokens = func(context.Context) (string, error) { return token, nil }
	}
}

// WithTokenSource sets a function that returns a token for each connection.
func WithTokenSource(ts TokenSource) Option { return func(o *options) { o.tokens = ts } }

// WithBackoff sets the retry delay's base (the ceiling of the first delay)
// and cap. Defaults: DefaultBackoffBase, DefaultBackoffMax. The delay
// before attempt n is uniformly random in [0, min(max, base*2^(n-1))]
// ("full jitter"), so a crowd of clients does not reconnect in step.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoffBase, o.backoffMax = base, max }
}

// WithMaxAttempts makes the client give up after n failed attempts in a
// row (status Disconnected, with an error saying so). 0, the default,
// retries forever.
func WithMaxAttempts(n int) Option { return func(o *options) { o.maxAttempts = n } }

// WithHeartbeat overrides the ping interval and the silence after which
// the link counts as dead; by default the client uses the values in the
// server's welcome frame (protocol.HeartbeatInterval and
// protocol.HeartbeatTimeout unless the server says otherwise).
func WithHeartbeat(interval, timeout time.Duration) Option {
	return func(o *options) { o.hbInterval, o.hbTimeout = interval, timeout }
}

// WithDialer sets how TCP connections are made (tests route the client
// through a fault proxy or in-memory pipes with it).
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *options) { o.dial = dial }
}

// WithTLSConfig sets the TLS configuration of the client's connections
// (wss:// and https:// servers: the WebSocket and image uploads), e.g.
// RootCAs that trust a private certificate authority, or a client
// certificate. Default: Go's (the system's roots). The Client does not
// change cfg; do not change it after New.
func WithTLSConfig(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithLogger sets where the client logs (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithOutboxLimit bounds the outbox (default DefaultOutboxLimit). Send
// fails with ErrOutboxFull (code EUNAVAILABLE) while it is full.
func WithOutboxLimit(n int) Option { return func(o *options) { o.outboxLimit = n } }

// WithOutboxFile keeps the outbox in a SQLite file at path, so messages
// sent while offline survive a process restart: a new Client on the same
// file sends them (same client ids, so nothing is stored twice). Only one
// Client may use a file at a time, and New enforces it on Unix systems:
// it locks the file (flock on path+".lock") until Close, and fails with
// ErrOutboxInUse while another Client, in this process or another, holds
// it. Elsewhere (Windows) nothing is locked: the app must see to it.
//
// The file records which user queued each message, and a client sends
// only its own user's: messages another user's client left in the file
// stay there, unsent, for that user's next client (the client logs how
// many it left). A message's user is the one the last welcome named, or,
// before this client's first welcome, the user passed with
// WithOutboxUser; a message queued with neither known (and those in a file
// from before this record) goes to the first user welcomed. Give
// WithOutboxUser when the app knows whose credentials it holds.
func WithOutboxFile(path string) Option { return func(o *options) { o.outboxFile = path } }

// WithOutboxUser names the user whose credentials the client holds, for
// the outbox file (WithOutboxFile) until the server's welcome says: the
// messages queued before the first welcome are recorded as that user's.
// The welcome is the authority: if it names another user, the messages
// recorded as userID stay in the file for that user's client.
func WithOutboxUser(userID string) Option { return func(o *options) { o.outboxUser = userID } }

// WithResumeFrom makes the first connection replay every event after
// position pos (0: from the start of the user's history, within
// parley.ResumeLimit). Without it the client starts from the server's head
// at the first connection and resumes from what it saw after that.
// It is WithCursor of {0: pos}: with a server whose log has one shard,
// the same thing.
func WithResumeFrom(pos int64) Option {
	return func(o *options) { o.resumeFrom = protocol.ShardCursor{0: pos} }
}

// WithCursor makes the first connection replay every event after cursor
// (the last position seen per shard, as Cursor returned it; a shard left
// out is at 0). It is copied.
func WithCursor(cursor map[int]int64) Option {
	return func(o *options) { o.resumeFrom = protocol.ShardCursor(cursor).Clone() }
}

// WithProtocol sets the protocol version the client speaks in hello:
// protocol.Version2 (the default: a cursor per shard, needed by a server
// whose log has more than one shard) or protocol.Version (1: one
// position; a server whose log has shards refuses it). For tests and for
// servers older than protocol 2, which ignore a protocol-2 hello's
// cursor (they would not replay).
func WithProtocol(v int) Option { return func(o *options) { o.protocol = v } }

// WithSendWindow sets how many sends the outbox keeps in flight on a
// connection (default DefaultSendWindow; 1 sends one at a time). See the
// package doc on ordering.
func WithSendWindow(n int) Option { return func(o *options) { o.sendWindow = n } }

// WithBatching sets whether the client asks the server to pack several
// frames into one WebSocket message (hello "batch", docs/protocol.md
// section 2): fewer writes on both sides when many events flow. On by
// default; the client splits every message either way, so a server that
// ignores it works the same.
func WithBatching(on bool) Option { return func(o *options) { o.batch = on } }

// WithDialTimeout bounds one dial plus handshake (default DefaultDialTimeout).
func WithDialTimeout(d time.Duration) Option { return func(o *options) { o.dialTimeout = d } }

// Client is a connection to a Parley server. Create it with New, start it
// with Connect, stop it with Close. See the package doc for the
// concurrency rules.
type Client struct {
	wsURL string
	opts  options
	log   *slog.Logger
	http  *http.Client
	q     *callbackQueue

	// mu guards the connection state and everything tied to one
	// connection. State changes only in moveTo* methods, which hold it.
	mu        sync.Mutex
	status    Status
	changed   chan struct{} // closed and replaced on every state change
	started   bool
	closed    bool
	gaveUp    bool
	gen       uint64 // bumped for every new connection
	conn      *wsConn
	connected chan struct{} // closed while a connection is up and its replay is over (the outbox sends)
	lost      chan struct{} // closed when the current connection ends
	pending   map[string]chan reply
	reqSeq    uint64
	// cursor is the last durable position seen per shard; nil before
	// the first (welcome, WithCursor or WithResumeFrom). Positions only
	// move forwards, except on a resync that says the log was lost.
	cursor   protocol.ShardCursor
	user     parley.User
	wake     chan struct{} // Reconnect: skip the wait, reset the backoff
	throttle *time.Timer
	// life ends when Close is called; every goroutine the client starts
	// derives its context from it (kept in the struct because it is the
	// client's lifetime, not a request's).
	life     context.Context
	stopLife context.CancelFunc

	listeners registry[connListener]
	handlers  registry[func(Event)]
	// smu guards subs, the StatusChanges channels (not held while
	// sending to them).
	smu  sync.Mutex
	subs map[*statusSub]struct{}
	// changes counts the state changes (setState) and error reports
	// (pushError) made, under mu: a StatusChanges channel or a connection
	// listener gets only those made after it was asked for or added,
	// though the callback goroutine may deliver earlier ones later.
	changes uint64

	out      *outbox
	state    *chatState
	acks     *deliveredAcks
	duplicat uint64 // durable events dropped as already seen (under mu)

	// wg counts the goroutines the Client owns besides the callback queue:
	// the runner, the outbox pump and view refreshers. Close waits for it.
	wg sync.WaitGroup
}

// New returns a Client for the server at serverURL: either the server's
// base URL ("http://host:port", "https://...") or the WebSocket URL
// ("ws://host:port/v1/ws"). It does not connect; call Connect. With
// WithOutboxFile, New locks the file (ErrOutboxInUse when another client
// holds it), opens it and loads what waits in it.
func New(serverURL string, opts ...Option) (*Client, error) {
	o := options{
		backoffBase:       DefaultBackoffBase,
		backoffMax:        DefaultBackoffMax,
		outboxLimit:       DefaultOutboxLimit,
		dialTimeout:       DefaultDialTimeout,
		requestTimeout:    DefaultRequestTimeout,
		listBytes:         MaxConversationListBytes,
		fileBytes:         MaxFileBytes,
		caps:              defaultStateCaps,
		deliveredInterval: DefaultDeliveredInterval,
		sendWindow:        DefaultSendWindow,
		batch:             true,
		logger:            slog.Default(),
		protocol:          protocol.Version2,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.protocol != protocol.Version && o.protocol != protocol.Version2 {
		return nil, parley.Errorf(parley.EINVALID, "client: protocol must be %d or %d", protocol.Version, protocol.Version2)
	}
	if _, ok := o.resumeFrom[0]; o.protocol == protocol.Version && (len(o.resumeFrom) > 1 || len(o.resumeFrom) == 1 && !ok) {
		return nil, parley.Errorf(parley.EINVALID, "client: protocol 1 resumes from one position (shard 0's)")
	}
	if o.tokens == nil {
		return nil, parley.Errorf(parley.EINVALID, "client: a token is required (WithToken or WithTokenSource)")
	}
	if o.backoffBase <= 0 || o.backoffMax < o.backoffBase {
		return nil, parley.Errorf(parley.EINVALID, "client: backoff base must be > 0 and max >= base")
	}
	if o.sendWindow <= 0 {
		return nil, parley.Errorf(parley.EINVALID, "client: send window must be > 0")
	}
	if o.outboxLimit <= 0 {
		return nil, parley.Errorf(parley.EINVALID, "client: outbox limit must be > 0")
	}
	ws, err := wsURL(serverURL)
	if err != nil {
		return nil, err
	}
	// ExpectContinueTimeout: uploads send Expect: 100-continue (see
	// postUpload) and wait this long for the server's go-ahead before
	// sending the body anyway.
	tr := &http.Transport{DialContext: o.dial, ForceAttemptHTTP2: false, MaxIdleConns: -1, TLSClientConfig: o.tls,
		ExpectContinueTimeout: uploadContinueWait}
	if o.dial == nil {
		var d net.Dialer
		tr.DialContext = d.DialContext
	}
	c := &Client{
		wsURL:     ws,
		opts:      o,
		log:       o.logger,
		http:      &http.Client{Transport: tr},
		changed:   make(chan struct{}),
		connected: make(chan struct{}),
		lost:      make(chan struct{}),
		pending:   make(map[string]chan reply),
		wake:      make(chan struct{}, 1),
		subs:      make(map[*statusSub]struct{}),
	}
	c.cursor = o.resumeFrom.Clone()
	c.life, c.stopLife = context.WithCancel(context.Background())
	c.state = newChatState(c)
	c.acks = newDeliveredAcks(c, o.deliveredInterval)
	c.out, err = newOutbox(c, o.outboxLimit, o.outboxFile, o.outboxUser)
	if err != nil {
		return nil, err
	}
	c.q = newCallbackQueue()
	return c, nil
}

func wsURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", parley.Errorf(parley.EINVALID, "client: bad server URL %q", s)
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	case "ws", "wss":
	default:
		return "", parley.Errorf(parley.EINVALID, "client: server URL %q must be http(s) or ws(s)", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = protocol.Path
	}
	return u.String(), nil
}

// Connect starts the connection and waits until it is up. It returns nil
// once connected; the error that made the client give up (a terminal close
// code, MaxAttempts); or ctx's error when ctx ends first.
//
// ctx bounds only the wait, not the client: when Connect returns ctx's
// error the client is still started and keeps retrying in the background
// (Reconnecting, with backoff, forever unless WithMaxAttempts), and
// connects by itself once the server answers; listeners, StatusChanges
// and Status say when. Call Close to stop it. The TokenSource runs before
// every attempt, in the background too. Calling Connect again after the
// client gave up starts over, like Reconnect; calling it while it retries
// only waits.
func (c *Client) Connect(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	if !c.started {
		c.started = true
		c.wg.Add(2)
		go c.run(c.life) // owned by c; Close cancels c.life and waits
		go c.out.pump(c.life)
	} else if c.status.State == Disconnected {
		c.kick()
	}
	c.mu.Unlock()
	for {
		c.mu.Lock()
		st, ch, gaveUp := c.status, c.changed, c.gaveUp
		closed := c.closed
		c.mu.Unlock()
		switch {
		case closed:
			return ErrClosed
		case st.Connected():
			return nil
		case st.State == Disconnected && gaveUp:
			return st.Err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Reconnect retries at once: it cuts the wait of a Reconnecting client and
// resets the backoff to its first step, and restarts a client that gave up
// (Disconnected after MaxAttempts or a terminal code). It does nothing
// while connecting or connected, or before Connect: there is only ever one
// attempt at a time, and a Reconnect made during one (an app coming to the
// foreground while the client dials) does not cut the wait after it short
// if it fails. Safe for concurrent use.
func (c *Client) Reconnect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.started || c.closed {
		return
	}
	// Only a runner that waits (between attempts, or after giving up)
	// takes the kick. One kept in the channel during an attempt or a
	// connection would skip the next backoff wait however long after.
	if st := c.status.State; st == Reconnecting || st == Disconnected {
		c.kick()
	}
}

// kick wakes the runner. Caller holds c.mu.
func (c *Client) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// dropKick forgets a kick the runner did not take (its wait ended as
// Reconnect was called): it is about to attempt anyway. Caller holds
// c.mu; the runner calls it as it moves to Connecting.
func (c *Client) dropKick() {
	select {
	case <-c.wake:
	default:
	}
}

// Status returns the current status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status.clone()
}

// Connected reports whether the client is connected now: State
// Connected or FeatureThrottled (connected with some features switched
// off). A shortcut for Status().Connected().
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status.Connected()
}

// User returns the user the server welcomed us as (zero before the first
// connection).
func (c *Client) User() parley.User {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.user
}

// Position returns the last durable event position the client has seen and
// whether it has one.
func (c *Client) Position() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor[0], c.cursor != nil
}

// Cursor returns a copy of the last durable position the client has seen
// in each shard of the server's log (nil before it has one): what to pass
// to WithCursor to resume in a new process. With a log of one shard it is
// {0: Position()}.
func (c *Client) Cursor() map[int]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cursor.Clone()
}

// Close stops the connection, the outbox and every goroutine the client
// started, and waits for them (including the callback in progress, see the
// package doc). Messages still in a durable outbox stay in its file; in a
// memory outbox they are lost (their Messages end Failed). Close is
// idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.wg.Wait()
		return nil
	}
	c.closed = true
	c.stopLife()
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	c.moveToDisconnected(nil, false)
	c.mu.Unlock()
	c.state.close()
	c.http.CloseIdleConnections() // uploads' keep-alive connections
	err := c.out.close()
	c.q.close()
	c.smu.Lock()
	subs := c.subs
	c.subs = make(map[*statusSub]struct{})
	c.smu.Unlock()
	for s := range subs {
		s.stop()
		s.close()
	}
	return err
}

// AddConnectionListener registers l under id, replacing any listener with
// that id. Listeners are called in the order they were first added. l gets
// the status changes and OnConnectionError reports made after this call,
// not those made before it that the callback goroutine has yet to deliver
// (as StatusChanges).
func (c *Client) AddConnectionListener(id string, l ConnectionListener) {
	// Under mu, as setState and pushError number changes and reports: one
	// is numbered either before (from counts it) or after l is in the
	// registry.
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners.add(id, connListener{ConnectionListener: l, from: c.changes})
}

// connListener is a ConnectionListener and Client.changes when it was
// added: it gets the later changes and reports.
type connListener struct {
	ConnectionListener
	from uint64
}

// RemoveConnectionListener unregisters the listener with this id. A change
// already being delivered may still reach it; none queued after this call
// returns does... unless it was queued before: removal takes effect for
// every callback that starts after it returns.
func (c *Client) RemoveConnectionListener(id string) {
	c.listeners.remove(id)
}

// AddEventHandler registers fn under id to receive every Event, replacing
// any handler with that id. Handlers run on the callback goroutine (see the
// package doc), in the order they were first added.
func (c *Client) AddEventHandler(id string, fn func(Event)) {
	c.handlers.add(id, fn)
}

// RemoveEventHandler unregisters the handler with this id.
func (c *Client) RemoveEventHandler(id string) {
	c.handlers.remove(id)
}

// StatusChanges returns a channel that receives status changes from now
// until ctx ends or the client closes; then it is closed. The channel
// holds the last StatusChangesBuffer changes: a reader that keeps up sees
// every change in order, and one that lags loses the oldest changes it has
// not read, never the newest, so the last value it reads is always the
// current state (Current of the last change). Sending never waits for the
// reader: a reader that stops reading holds up nothing (not the other
// listeners, event handlers, views or Close), it only misses changes.
// Status() is the state now, whatever the channel holds.
func (c *Client) StatusChanges(ctx context.Context) <-chan StatusChange {
	s := &statusSub{ch: make(chan StatusChange, StatusChangesBuffer)}
	c.mu.Lock()
	defer c.mu.Unlock()
	s.from = c.changes
	if c.closed {
		close(s.ch)
		return s.ch
	}
	c.smu.Lock()
	c.subs[s] = struct{}{}
	c.smu.Unlock()
	s.stop = context.AfterFunc(ctx, func() {
		c.smu.Lock()
		delete(c.subs, s)
		c.smu.Unlock()
		s.close()
	})
	return s.ch
}

// StatusChangesBuffer is how many changes a StatusChanges channel holds
// for a reader that lags; older ones are dropped to make room.
const StatusChangesBuffer = 16

// statusSub is one StatusChanges channel. mu orders sends and the close;
// it is never held while waiting on the reader.
type statusSub struct {
	ch     chan StatusChange
	from   uint64 // Client.changes when it was made: it gets the later ones
	stop   func() bool
	mu     sync.Mutex
	closed bool
}

// send queues ch without waiting: when the buffer is full it drops the
// oldest change to make room. Only the callback goroutine sends (under
// s.mu), so after one receive here there is room for ch.
func (s *statusSub) send(ch StatusChange) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for {
		select {
		case s.ch <- ch:
			return
		default:
		}
		select {
		case <-s.ch: // the oldest goes; the reader may have taken it already
		default:
		}
	}
}

func (s *statusSub) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
}

func (s Status) clone() Status {
	if s.Throttled != nil {
		t := make(map[string]time.Time, len(s.Throttled))
		for k, v := range s.Throttled {
			t[k] = v
		}
		s.Throttled = t
	}
	return s
}

// setState records a transition and queues its callbacks. Caller holds
// c.mu; only the moveTo* methods call it.
func (c *Client) setState(next Status) {
	prev := c.status
	c.status = next
	close(c.changed)
	c.changed = make(chan struct{})
	ch := StatusChange{
		Previous: prev.State, Current: next.State, Attempt: next.Attempt,
		NextRetryAt: next.NextRetryAt, Err: next.Err, Throttled: next.clone().Throttled,
		At: time.Now(),
	}
	c.changes++
	n := c.changes
	c.q.push(func() { c.deliverChange(ch, n) })
}

func (c *Client) moveToConnecting(attempt int) {
	if c.status.State == Connecting && c.status.Attempt == attempt {
		return
	}
	c.setState(Status{State: Connecting, Attempt: attempt, Err: c.status.Err})
}

func (c *Client) moveToConnected(sessionID string) {
	c.gaveUp = false
	c.setState(Status{State: Connected, SessionID: sessionID})
}

func (c *Client) moveToReconnecting(attempt int, at time.Time, err error) {
	c.setState(Status{State: Reconnecting, Attempt: attempt, NextRetryAt: at, Err: err})
}

// moveToThrottled sets or lifts throttled features; with none left the
// client is plain Connected again.
func (c *Client) moveToThrottled(throttled map[string]time.Time) {
	if c.status.State != Connected && c.status.State != FeatureThrottled {
		return
	}
	if len(throttled) == 0 {
		if c.status.State == FeatureThrottled {
			c.setState(Status{State: Connected, SessionID: c.status.SessionID})
		}
		return
	}
	c.setState(Status{State: FeatureThrottled, SessionID: c.status.SessionID, Throttled: throttled})
}

// moveToDisconnected stops at Disconnected; gaveUp marks a client that
// stopped retrying (Send is refused and Connect returns err).
func (c *Client) moveToDisconnected(err error, gaveUp bool) {
	c.gaveUp = gaveUp
	if c.status.State == Disconnected && c.status.Err == err {
		return
	}
	c.setState(Status{State: Disconnected, Err: err})
}

// deliverChange runs on the callback goroutine; n numbers the change
// (Client.changes).
func (c *Client) deliverChange(ch StatusChange, n uint64) {
	ls := c.listeners.snapshot()
	c.smu.Lock()
	subs := make([]*statusSub, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	c.smu.Unlock()
	for _, e := range ls {
		if n <= e.fn.from { // made before the listener was added
			continue
		}
		c.safeCall(e.id, func() {
			switch ch.Current {
			case Connecting:
				e.fn.OnConnecting(ch)
			case Connected:
				e.fn.OnConnected(ch)
			case Reconnecting:
				e.fn.OnReconnecting(ch)
			case Disconnected:
				e.fn.OnDisconnected(ch)
			case FeatureThrottled:
				e.fn.OnFeatureThrottled(ch)
			}
			if ch.Err != nil && ch.Current != Connecting && ch.Current != Connected {
				e.fn.OnConnectionError(ch.Err)
			}
		})
	}
	for _, s := range subs {
		if n > s.from { // made after the channel was asked for
			s.send(ch)
		}
	}
}

// reportError tells listeners about an error outside a state change,
// the report numbered n (Client.changes): listeners added after it was
// made do not get it. Runs on the callback goroutine.
func (c *Client) reportError(err error, skip string, n uint64) {
	ls := c.listeners.snapshot()
	for _, e := range ls {
		if e.id == skip || n <= e.fn.from {
			continue
		}
		c.safeCall(e.id, func() { e.fn.OnConnectionError(err) })
	}
}

// safeCall runs a listener's callback, recovering a panic and reporting it.
func (c *Client) safeCall(id string, f func()) {
	defer func() {
		if v := recover(); v != nil {
			perr := &ListenerPanicError{ListenerID: id, Value: v}
			c.log.Error("client: listener panicked", "listener", id, "panic", fmt.Sprint(v))
			// Made now, on the callback goroutine: every listener
			// registered now was added before it.
			c.reportError(perr, id, math.MaxUint64)
		}
	}()
	f()
}

// pushError queues an error report to listeners, numbered as setState
// numbers changes. Caller does not hold c.mu.
func (c *Client) pushError(err error) {
	c.mu.Lock()
	c.changes++
	n := c.changes
	// Queued under mu, as setState queues: reports and changes reach the
	// callback goroutine in the order they were numbered.
	c.q.push(func() { c.reportError(err, "", n) })
	c.mu.Unlock()
}

// emit queues an event for the app's handlers. Caller keeps the order by
// calling it from one goroutine (the connection's reader) or under c.mu.
func (c *Client) emit(ev Event) {
	c.q.push(func() {
		hs := c.handlers.snapshot()
		for _, h := range hs {
			c.safeCall(h.id, func() { h.fn(ev) })
		}
	})
}

// errorf builds a *parley.Error.
func errorf(code, format string, args ...any) error { return parley.Errorf(code, format, args...) }

// closeErrText names a close code for humans.
func closeErrText(code int) string {
	switch code {
	case protocol.CloseUnauthorized:
		return "unauthorized"
	case protocol.CloseProtocolError:
		return "protocol error"
	case protocol.CloseAuthRevoked:
		return "access revoked"
	case protocol.CloseTooManyConnections:
		return "too many connections"
	case protocol.CloseTooLarge:
		return "frame too large"
	case protocol.CloseSlowConsumer:
		return "slow consumer"
	case protocol.CloseHeartbeatTimeout:
		return "heartbeat timeout"
	case protocol.CloseShutdown:
		return "server shutting down"
	case protocol.CloseHelloTimeout:
		return "hello timeout"
	}
	return strings.TrimSpace(fmt.Sprintf("close code %d", code))
}
