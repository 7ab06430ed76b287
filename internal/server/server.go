// Package server is Parley's HTTP and WebSocket server: the protocol v1
// endpoint at /v1/ws, the JSON HTTP API, health and metrics, and the web
// client at "/".
//
// A Server is one node. Its parts, a file (or a few) per concern:
//   - service*.go: the one service layer behind both transports (auth,
//     messages, conversations, presence, events); accounts.go, limits.go,
//     uploads.go its logins, rate limits and uploads;
//   - hub.go: the sequencer that delivers durable events in position
//     order, exactly once, to local connections, and the one entry point
//     per kind of event; frames.go encodes frames, urls.go adds
//     attachment URLs;
//   - conn.go: a connection's life; hello.go its hello and replay,
//     reader.go, worker.go and sendqueue.go its reader, request worker
//     and writer, heartbeat.go the sweep over all connections, ops.go
//     the WebSocket ops;
//   - presence.go, typing.go, contacts.go: the ephemeral features;
//   - http.go: the HTTP API; serverapi.go the server API; errors.go:
//     error code to status table.
//
// docs/protocol.md is the contract clients are written from;
// docs/architecture.md explains how these parts fit.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/webhook"
	"github.com/parleychat/parley/protocol"
	"github.com/parleychat/parley/web"
)

// Config configures a Server. Store, Broker and Secret are required; every
// other zero field takes the default its comment states.
type Config struct {
	// Store and Broker are owned by the caller, who closes them after
	// Shutdown returns.
	Store  parley.Store
	Broker parley.Broker
	// NodeID names this node in the broker (default: a random UUID).
	NodeID string
	// Secret signs and verifies tokens (at least auth.MinSecretLen bytes).
	Secret []byte
	// AllowedOrigins are Origin host patterns (path.Match syntax, e.g.
	// "app.example.com", "*.example.com", or with a scheme
	// "http://localhost:*") allowed, besides the server's own origin, to
	// open WebSockets and to call the HTTP API from a browser (CORS, see
	// cors.go). Default: none.
	AllowedOrigins []string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Limits are rate limits and the per-connection queue bound.
	Limits Limits
	// ResumeLimit is how many missed events a resume replays at most
	// (default parley.ResumeLimit); further behind, the client gets resync.
	ResumeLimit int
	// HeartbeatInterval is how often clients should ping (default
	// protocol.HeartbeatInterval); HeartbeatTimeout how long the server
	// waits without hearing from a client before closing with 4002
	// (default protocol.HeartbeatTimeout).
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	// HelloTimeout is how long a new connection has to send hello (default
	// protocol.HelloTimeout).
	HelloTimeout time.Duration
	// PresenceGrace is how long a user with no connection left stays
	// online, so a quick reconnect does not flap (default 5 s).
	PresenceGrace time.Duration
	// NodeTimeout is how long a node may go unheard on the broker before
	// the others take it as dead (its users offline, after the grace
	// period; default 6 s, at least 300 ms). A node sends its presence
	// snapshot, its heartbeat, every third of its own NodeTimeout (at
	// most 2 s): give every node the same value.
	NodeTimeout time.Duration
	// HeadPollInterval is how often the hub reads the store's heads to
	// find an event whose publish was lost entirely (a node that died
	// between its commit and its publish) when no later event reveals the
	// gap: such an event is delivered within two intervals (default 1 s,
	// one store query per interval).
	HeadPollInterval time.Duration
	// UserSyncInterval is how often the node reads the store's log of
	// changed users (parley.UserChangeLog) for changes whose notice on the
	// broker it missed (a node that died between its commit and its
	// notice, a notice NATS dropped): it forgets those users and applies
	// their bans within one interval (default 5 s, at least 100 ms; one
	// indexed store query per interval).
	UserSyncInterval time.Duration
	// LimitShareInterval is how often the node tells the others, through
	// the broker, the rate-limit tokens its clients took, which they
	// charge to their own buckets so that per-user and per-IP limits hold
	// across the cluster (limitshare.go; default 250 ms; negative: each
	// node limits alone).
	LimitShareInterval time.Duration
	// ReconnectAfter is the base of the goaway delay; each connection gets
	// a random delay between it and twice it (default 1 s).
	ReconnectAfter time.Duration
	// ShutdownDrain is how long Shutdown keeps accepting and serving
	// before it stops: /readyz and new WebSocket upgrades answer 503
	// meanwhile, so a load balancer polling /readyz takes the node out of
	// rotation before its listener closes (default 0: none; Shutdown's
	// ctx ending cuts it short).
	ShutdownDrain time.Duration
	// TokenTTL is how long register and login tokens last (default
	// auth.DefaultTTL).
	TokenTTL time.Duration
	// PasswordHashes bounds concurrent argon2id hashes (default 4).
	PasswordHashes int
	// UserChecks bounds the hellos (and bearer upgrades) that check their
	// token's user in the store at once (Store.EnsureUser, for a user this
	// node has not cached: a write on first sight; default 64). In a
	// connect storm of new users every hello waits for the store's one
	// writer: beyond this bound they wait for a turn after the token
	// check, before the store's read and write grow their stacks, so the
	// storm's memory follows this bound, not the number of hellos in
	// flight (docs/benchmarks.md, "Connect burst"). A hello takes its
	// turn only once its frame is read: a client that sends nothing
	// holds none.
	UserChecks int
	// Accounts protect logins and registration (see AccountLimits).
	Accounts AccountLimits
	// Uploads bounds image and file uploads: size, pixels, decode memory,
	// concurrent decodes and receives, the per-user rate and quota, how
	// long an unsent upload is kept, and the bytes downloads hold (see
	// UploadLimits for the defaults).
	Uploads UploadLimits
	// Static is served at "/" (default: the web client). Set
	// http.NotFoundHandler() to serve nothing.
	Static http.Handler
	// HTTP bounds plain HTTP: timeouts, header size and the caps on open
	// connections (zero fields take the defaults HTTPLimits states).
	HTTP HTTPLimits
	// Transport is the WebSocket library connections are served with:
	// TransportGobwas (the default, "") or TransportCoder, kept to measure
	// against (docs/benchmarks.md).
	Transport string
	// MetricsToken, when set, serves /metrics on the public handler to
	// requests bearing it (Authorization: Bearer TOKEN); others get 401,
	// and count against Limits.APIKeyFailuresPerSecond (then 429).
	// Empty (the default), the public handler has no /metrics: serve
	// MetricsHandler on a separate, private listener instead (`parley
	// serve --metrics-addr`).
	MetricsToken string
	// Webhooks configures webhook deliveries: none unless Endpoints is
	// set, and then Store must implement webhook.Store (both stores do).
	// The server fills Store, Connected (its presence), Prepare,
	// Registerer and Logger; see package webhook for the rest's defaults.
	Webhooks webhook.Config
}

// Config.Transport values.
const (
	TransportGobwas = "gobwas" // github.com/gobwas/ws (wsConn)
	TransportCoder  = "coder"  // github.com/coder/websocket (coderConn)
)

// DefaultUserChecks is the default Config.UserChecks: about what one
// SQLite batch of new users takes in a few milliseconds, enough to keep
// the store's writer busy (a batch of more does not commit sooner).
const DefaultUserChecks = 64

// DefaultUserSyncInterval is the default Config.UserSyncInterval.
const DefaultUserSyncInterval = 5 * time.Second

// DefaultPresenceGrace is the default Config.PresenceGrace.
const DefaultPresenceGrace = 5 * time.Second

// DefaultNodeTimeout is the default Config.NodeTimeout.
const DefaultNodeTimeout = presenceDeadAfter

func (c Config) withDefaults() Config {
	if c.NodeID == "" {
		c.NodeID = uuid.NewString()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Limits = c.Limits.withDefaults()
	orDefault(&c.ResumeLimit, parley.ResumeLimit)
	orDefault(&c.HeartbeatInterval, protocol.HeartbeatInterval)
	orDefault(&c.HeartbeatTimeout, protocol.HeartbeatTimeout)
	orDefault(&c.HelloTimeout, protocol.HelloTimeout)
	orDefault(&c.PresenceGrace, DefaultPresenceGrace)
	if c.LimitShareInterval == 0 { // negative stays: sharing off
		c.LimitShareInterval = DefaultLimitShareInterval
	}
	orDefault(&c.NodeTimeout, DefaultNodeTimeout)
	orDefault(&c.HeadPollInterval, pollEvery)
	orDefault(&c.UserSyncInterval, DefaultUserSyncInterval)
	c.UserSyncInterval = max(c.UserSyncInterval, 100*time.Millisecond)
	c.NodeTimeout = max(c.NodeTimeout, 300*time.Millisecond) // snapshots at most every 100 ms
	orDefault(&c.ReconnectAfter, time.Second)
	orDefault(&c.TokenTTL, auth.DefaultTTL)
	orDefault(&c.PasswordHashes, 4)
	orDefault(&c.UserChecks, DefaultUserChecks)
	c.Accounts = c.Accounts.withDefaults()
	c.HTTP = c.HTTP.withDefaults()
	c.Uploads = c.Uploads.withDefaults()
	if c.Static == nil {
		c.Static = web.Handler()
	}
	return c
}

// Server is one Parley node. Create it with New, serve it with Serve (or
// mount Handler yourself) and always end it with Shutdown, which stops its
// goroutines. Its methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   parley.Store
	broker  parley.Broker
	metrics *metrics
	limits  *limiters
	uploads *uploadGate
	// caps counts the connections of every listener (serve and
	// LimitListener) against Config.HTTP's caps.
	caps    *connCaps
	hub     *hub
	pres    *presence
	svc     *service
	hooks   *webhook.Dispatcher // nil without webhooks
	handler http.Handler
	// routePatterns are the handler's ServeMux patterns (see routeMux).
	routePatterns []string

	// connCtx is the context of every connection; cancelled when a
	// shutdown runs out of time.
	connCtx    context.Context
	cancelConn context.CancelFunc
	// bgCtx ends the background goroutines (hub, presence, janitor),
	// which bg tracks.
	bgCtx    context.Context
	cancelBg context.CancelFunc
	bg       sync.WaitGroup
	unsub    func()

	// ready is /readyz's check of the store, shared (handleReady).
	ready readyCheck

	mu      sync.Mutex // guards servers and connWG.Add against closing
	closing atomic.Bool
	connWG  sync.WaitGroup
	// pollMu guards poll and pollOff: the poller idle connections park
	// with (poll.go), started on first use, stopped by shutdown after
	// every connection ended; pollOff once it cannot (or must not) run.
	pollMu  sync.Mutex
	poll    *poller
	pollOff bool
	// workers runs the connections' request workers (conn.work, started
	// by conn.push): a worker out of requests waits for another
	// connection's instead of exiting. Closed by shutdown once every
	// connection has ended.
	workers  goPool
	servers  []*http.Server
	shutOnce sync.Once
	shutErr  error

	// panicHook, set only by tests (export_test.go), may panic where
	// it is called (see testPanic).
	panicHook atomic.Pointer[func(where string)]
	// httpReplyCap, set only by tests (export_test.go), lowers the HTTP
	// replies' byte cap below MaxReplyBytes (see httpReplyBytes).
	httpReplyCap atomic.Int64
}

// httpReplyBytes bounds the list of an HTTP history, conversations or
// events reply: MaxReplyBytes (a test may set less).
func (s *Server) httpReplyBytes() int {
	if n := s.httpReplyCap.Load(); n > 0 {
		return int(n)
	}
	return MaxReplyBytes
}

// New returns a running Server: it subscribes to the broker, reads the
// store's head and starts the hub and presence goroutines.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Broker == nil {
		return nil, errors.New("server: Config.Store and Config.Broker are required")
	}
	if len(cfg.Secret) < auth.MinSecretLen {
		return nil, errors.New("server: Config.Secret must be at least 32 bytes")
	}
	cfg = cfg.withDefaults()
	origins, err := cleanOrigins(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	cfg.AllowedOrigins = origins
	// Errors repeated on every request (a full disk) are logged once per
	// logThrottleEvery per kind, with a count, not once per request.
	log := slog.New(newThrottledHandler(cfg.Logger.Handler(), logThrottleEvery))
	s := &Server{cfg: cfg, log: log.With("node", cfg.NodeID), store: cfg.Store, broker: cfg.Broker}
	s.metrics = newMetrics()
	s.workers.init(maxIdleWorkers)
	observeBatches(s.metrics.reg, cfg.Store)
	observeStages(s.metrics.reg, cfg.Store)
	s.limits = newLimiters(cfg.Limits, func(name string) { s.metrics.rateLimited.WithLabelValues(name).Inc() })
	if cfg.LimitShareInterval > 0 {
		s.limits.shared() // before any request takes a token
	}
	s.caps = newConnCaps(cfg.HTTP.ConnsPerIP, cfg.HTTP.MaxConns, s.metrics)
	s.uploads = newUploadGate(cfg.Uploads, func(name string) { s.metrics.rateLimited.WithLabelValues(name).Inc() })
	s.hub = newHub(cfg.Store, s.log, s.metrics)
	s.hub.pollEvery = cfg.HeadPollInterval
	s.hub.maxQueue = cfg.Limits.HubQueueBytes
	s.hub.newContacts = s.announceNewContacts
	s.hub.directContacts = s.announceDirectContacts
	s.hub.consentChanged = s.consentChanged
	s.hub.profileChanged = func(id string) { s.svc.ensured.forget(id) } // s.svc is set below, before the hub runs
	s.hub.maxConns = cfg.Limits.ConnectionsPerUser
	s.hub.warmUsers = func(ctx context.Context, ids []string) error { return s.svc.warmUsers(ctx, ids) }
	s.pres = newPresence(cfg.NodeID, cfg.PresenceGrace, cfg.NodeTimeout, s.publishPresence, s.notifyPresence)
	s.svc = &service{
		store: cfg.Store, broker: cfg.Broker, node: cfg.NodeID, log: s.log, metrics: s.metrics,
		limits: s.limits, hasher: newHasher(cfg.PasswordHashes, cfg.Accounts, s.metrics.reg), secret: cfg.Secret,
		accounts: cfg.Accounts, logins: newLoginThrottle(cfg.Accounts),
		ttl: cfg.TokenTTL, pres: s.pres, typers: newTypingTracker(), contacts: s.hub.contacts,
		checks:  newTurns(cfg.UserChecks),
		ensured: userCache{budget: cfg.Limits.UserCacheBytes, inUse: func(id string) bool { return s.hub.local(id) }},
	}
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_user_cache_bytes", Help: "Estimated bytes of the users this node has cached (at most Limits.UserCacheBytes).",
	}, func() float64 { _, n := s.svc.ensured.size(); return float64(n) }))
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_user_checks_waiting", Help: "Store checks of token users not cached (hellos, mostly) waiting for a turn (Config.UserChecks).",
	}, func() float64 { return float64(s.svc.checks.queued()) }))
	if dc, ok := cfg.Broker.(interface{ CarriesEventData() bool }); ok && dc.CarriesEventData() {
		s.svc.eventData = true
	}
	if bc, ok := cfg.Broker.(interface {
		BrokerCounts() (read, payloads, dropped int64)
	}); ok {
		s.metrics.brokerCounts(bc.BrokerCounts)
	}
	if l, ok := cfg.Broker.(interface{ Lost() uint64 }); ok {
		// Notices of changed users lost with the broker's link (or
		// dropped for a slow subscription) would leave old profiles
		// cached: the cache starts afresh when this count moves.
		s.svc.ensured.lost = l.Lost
		s.svc.ensured.lostSeen.Store(l.Lost())
	}
	if cp, ok := cfg.Store.(parley.CommitPublisher); ok {
		// One publish per store batch, from the batcher, instead of
		// one per write from each writer (see publishCommitted).
		cp.PublishCommits(s.svc.publishCommitted)
		s.svc.storePublishes = true
		if ah, ok := cfg.Store.(interface{ SetAnswerHooks(begin, end func()) }); ok {
			// A batch's send replies go out with its events
			// (commitFlush), in one write per connection.
			s.svc.commits = &commitFlush{hub: s.hub}
			ah.SetAnswerHooks(s.svc.commits.begin, s.svc.commits.end)
		}
	}
	s.connCtx, s.cancelConn = context.WithCancel(context.Background())
	s.bgCtx, s.cancelBg = context.WithCancel(context.Background())

	// Subscribe before reading the head: an event committed in between
	// arrives through the broker, and one before it is not delivered twice.
	unsub, err := cfg.Broker.Subscribe(s.onBroker)
	if err != nil {
		return nil, err
	}
	s.unsub = unsub
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	heads, err := shardHeads(ctx, s.hub.events)
	if err != nil {
		unsub()
		return nil, err
	}
	s.hub.start(heads)
	// Before serving: warming costs less than the reads it saves a
	// reconnect storm, but only if it is done before the storm arrives.
	// It is bounded (warmTimeout): a slow store only makes it partial.
	wctx, wcancel := context.WithTimeout(ctx, warmTimeout)
	s.hub.warm(wctx, heads, cfg.ResumeLimit)
	wcancel()
	// recoverHTTP is outermost: a panic anywhere below answers 500 with
	// the headers guard has already set.
	rm := s.routes()
	s.routePatterns = rm.patterns
	s.handler = s.recoverHTTP(s.guard(s.cors(rm)))

	if len(cfg.Webhooks.Endpoints) > 0 {
		if s.hooks, err = s.newWebhooks(); err != nil {
			unsub()
			return nil, err
		}
		s.bg.Go(func() { s.hooks.Run(s.bgCtx) })
	}

	if ks, ok := cfg.Store.(parley.APIKeyStore); ok {
		// The first read is done before serving, so a restarted node
		// never lets a banned user in.
		us := &userSync{ks: ks}
		us.log, _ = cfg.Store.(parley.UserChangeLog)
		s.startUserSync(ctx, us)
		s.bg.Go(func() { s.syncUsers(s.bgCtx, us) })
	}

	if cfg.LimitShareInterval > 0 {
		s.bg.Go(func() { s.shareLimits(s.bgCtx, cfg.LimitShareInterval) })
	}

	s.bg.Add(4)
	go func() { defer s.bg.Done(); s.hub.run(s.bgCtx) }()
	go func() { defer s.bg.Done(); s.heartbeat(s.bgCtx) }()
	go func() { defer s.bg.Done(); s.pres.run(s.bgCtx) }()
	go func() { defer s.bg.Done(); s.janitor(s.bgCtx) }()
	return s, nil
}

// Handler returns the server's HTTP handler: the API, /v1/ws, health,
// metrics and the web client.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves HTTP on ln until Shutdown; it returns nil after a
// shutdown. Listen before calling it, so a taken port is an error at
// start. Connections over Config.HTTP's caps are closed as soon as they
// are accepted; plain HTTP requests get Config.HTTP's timeouts, and
// WebSockets are exempt from them once upgraded (see serveWS).
func (s *Server) Serve(ln net.Listener) error { return s.serve(ln, nil) }

// ServeTLS is Serve with TLS: the caps apply to the TCP connections, before
// any handshake, and cfg (which the caller must not change afterwards)
// terminates TLS over them. cfg's NextProtos should offer "http/1.1" only
// (besides an ACME challenge protocol): a WebSocket upgrade needs HTTP/1.1,
// which is what an empty NextProtos gives.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	if cfg == nil {
		return errors.New("server: ServeTLS needs a tls.Config")
	}
	return s.serve(ln, cfg)
}

// httpServer is an http.Server for h with Config.HTTP's timeouts and
// header bound.
func (s *Server) httpServer(h http.Handler) *http.Server {
	hl := s.cfg.HTTP
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: hl.ReadHeaderTimeout,
		ReadTimeout:       hl.ReadTimeout,
		WriteTimeout:      hl.WriteTimeout,
		IdleTimeout:       hl.IdleTimeout,
		MaxHeaderBytes:    hl.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// AsideServer returns an http.Server for h, to serve on a listener beside
// the public one (metrics, profiling, an ACME HTTP challenge), with the
// public server's Config.HTTP timeouts and header bound: a listener
// beside is reachable too (the ACME one from the whole internet), and
// without them an idle or slow client held its connection for good.
// Serve it on LimitListener(ln); the caller shuts it down. Its handler
// is h as given: no API routes, no CORS, no panic counting.
func (s *Server) AsideServer(h http.Handler) *http.Server { return s.httpServer(h) }

// LimitListener wraps ln so that its connections count against
// Config.HTTP's ConnsPerIP and MaxConns together with the public
// listeners' (one count: they share the process's file descriptors), and
// a connection over a cap is closed as soon as it is accepted.
func (s *Server) LimitListener(ln net.Listener) net.Listener { return newLimitListener(ln, s.caps) }

func (s *Server) serve(ln net.Listener, tlsCfg *tls.Config) error {
	hs := s.httpServer(s.handler)
	ln = newLimitListener(ln, s.caps)
	if tlsCfg != nil {
		// A *tls.Conn offers no RawConn, so WebSockets over it read
		// through a plain buffer (wsbuf.go).
		ln = tls.NewListener(ln, tlsCfg)
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the server: after Config.ShutdownDrain (during which
// /readyz and upgrades answer 503), it stops accepting, tells every connection
// to go away (a goaway frame with a jittered reconnect delay, then close
// 4003), waits for the connections to flush and close, tells other nodes
// its users left and stops its goroutines. When ctx ends first, it drops
// the remaining connections and returns ctx.Err(). It is idempotent. It
// does not close the Store or the Broker.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() { s.shutErr = s.shutdown(ctx) })
	return s.shutErr
}

func (s *Server) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	servers := s.servers
	s.mu.Unlock()
	began := time.Now()
	s.log.Info("shutdown: draining", "connections", len(s.hub.conns()), "drain", s.cfg.ShutdownDrain)
	if d := s.cfg.ShutdownDrain; d > 0 {
		// Still accepting: /readyz and upgrades answer 503 (closing).
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}

	var err error
	for _, hs := range servers {
		// Hijacked WebSocket connections are not waited for here.
		if e := hs.Shutdown(ctx); e != nil && err == nil {
			err = e
		}
	}
	conns := s.hub.conns()
	for _, c := range conns {
		c.goaway()
	}
	s.log.Info("shutdown: told connections to go away", "connections", len(conns))
	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	if !s.waitDrain(ctx, done) {
		err = ctx.Err()
		s.log.Warn("shutdown: out of time, dropping connections", "connections", len(s.hub.conns()), "after", time.Since(began).Round(time.Millisecond))
		// Cancelled before the walk: a connection registering after it
		// sees the cancelled context and closes itself (see conn.serve).
		s.cancelConn()
		for _, c := range s.hub.conns() {
			c.t.CloseNow()
		}
		for _, hs := range servers {
			hs.Close()
		}
		<-done
	} else {
		s.log.Info("shutdown: connections closed", "after", time.Since(began).Round(time.Millisecond))
	}
	s.cancelConn()
	s.closePoller() // every connection has ended: none is parked
	s.workers.close()
	s.svc.checks.wait()

	pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if e := s.broker.Publish(pctx, parley.BrokerMessage{Node: s.cfg.NodeID, Presence: ptr(leaving())}); e != nil {
		s.log.Debug("publishing leave", "err", e)
	}
	s.unsub()
	s.cancelBg()
	s.bg.Wait()
	return err
}

// drainLogEvery is how often a shutdown logs how many connections are
// left while it waits for them.
const drainLogEvery = time.Second

// waitDrain waits for done (every connection closed), logging the
// connections left every drainLogEvery; false when ctx ended first.
func (s *Server) waitDrain(ctx context.Context, done <-chan struct{}) bool {
	t := time.NewTicker(drainLogEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return true
		case <-ctx.Done():
			return false
		case <-t.C:
			s.log.Info("shutdown: waiting for connections", "connections", len(s.hub.conns()))
		}
	}
}

func ptr[T any](v T) *T { return &v }

// reconnectDelay is a goaway delay: uniform in [ReconnectAfter,
// 2*ReconnectAfter), so clients of a restarting server spread out.
func (s *Server) reconnectDelay() time.Duration {
	base := s.cfg.ReconnectAfter
	return base + rand.N(base)
}

// onBroker takes a broker message; it must not block.
func (s *Server) onBroker(m parley.BrokerMessage) {
	if m.Presence != nil {
		s.pres.remoteReport(m.Node, *m.Presence)
	}
	if len(m.Usage) > 0 && m.Node != s.cfg.NodeID {
		s.limits.charge(m.Usage)
	}
	if len(m.Users) > 0 && m.Node != s.cfg.NodeID {
		s.usersChanged(m.Users)
	}
	if len(m.Events) > 0 {
		evs := m.Events
		if s.svc.commits != nil && m.Node == s.svc.node {
			// This node's own events, back from the broker: the
			// store's batches handed them to the hub already
			// (commitFlush); only the ephemeral ones are new.
			evs = ephemeral(evs)
		}
		s.hub.push(evs)
		if s.hooks != nil {
			s.hooks.Poke()
		}
	}
}

// ephemeral returns the events of evs that are not durable (Pos 0: typing
// and the like), evs itself when all are, and nil without allocating
// when none is (this node's echo of a store batch's events, every batch).
func ephemeral(evs []parley.Event) []parley.Event {
	n := 0
	for _, ev := range evs {
		if ev.Pos <= 0 {
			n++
		}
	}
	switch n {
	case len(evs):
		return evs
	case 0:
		return nil
	}
	out := make([]parley.Event, 0, n)
	for _, ev := range evs {
		if ev.Pos <= 0 {
			out = append(out, ev)
		}
	}
	return out
}

// janitor forgets idle rate limiters.
func (s *Server) janitor(ctx context.Context) {
	every(ctx, time.Minute, func(time.Time) {
		s.limits.sweep(10 * time.Minute)
		s.uploads.rate.sweep(10 * time.Minute)
		if n, err := s.sweepUploads(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("deleting unsent uploads", "err", err, "deleted", n)
		}
	})
}

// MetricsHandler serves the server's Prometheus metrics with no access
// check: mount it on a private listener (`parley serve --metrics-addr`).
// The public handler serves them only with Config.MetricsToken.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{})
}
