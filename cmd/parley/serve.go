package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/natsbroker"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/internal/webhook"
)

// dbFile is the SQLite file's name in the data dir.
const dbFile = "parley.db"

// ServeCmd is `parley serve`: its fields are the server's configuration.
type ServeCmd struct {
	Addr                 string        `default:"127.0.0.1:8080" env:"PARLEY_ADDR" help:"Address to listen on."`
	DataDir              string        `default:"./parley-data" env:"PARLEY_DATA_DIR" help:"Data directory (SQLite file, secret, uploads)."`
	LogLevel             string        `default:"info" enum:"debug,info,warn,error" env:"PARLEY_LOG_LEVEL" help:"Log level (debug, info, warn, error)."`
	LogFormat            string        `default:"text" enum:"text,json" env:"PARLEY_LOG_FORMAT" help:"Log format (text, json)."`
	AllowedOrigins       []string      `env:"PARLEY_ALLOWED_ORIGINS" sep:"," help:"Origin patterns allowed, besides the server's own, to open WebSockets and call the HTTP API from a browser (CORS), e.g. app.example.com,*.example.com,http://localhost:*."`
	WSTransport          string        `name:"ws-transport" env:"PARLEY_WS_TRANSPORT" enum:"gobwas,coder" default:"gobwas" help:"The WebSocket library connections are served with: gobwas (github.com/gobwas/ws, the default) or coder (github.com/coder/websocket, kept to measure against; see docs/benchmarks.md)."`
	Secret               string        `env:"PARLEY_SECRET" help:"Token secret, at least 32 bytes (default: generated and kept in <data-dir>/secret)."`
	Store                string        `env:"PARLEY_STORE" help:"Store: empty for SQLite in the data dir, sqlite:PATH, or a postgres:// URL."`
	Shards               int           `env:"PARLEY_SHARDS" help:"Shards of the event log (1 to 256; docs/deploy.md, \"Choosing shards\"). Set only on an empty log: a store whose log holds events keeps its count, and asking for another one is refused. 0 (the default): whatever the store records (1 for a new one)."`
	SQLiteCommitInterval time.Duration `name:"sqlite-commit-interval" default:"0" env:"PARLEY_SQLITE_COMMIT_INTERVAL" help:"With SQLite: when writes arrived while the last batch ran, let the next batch grow (until it holds as many as the last one plus those) for at most this long after the last one started, so more writes share each commit and its fsync (less CPU per message, up to this much more latency). Writers that each wait for their reply are not held back. 0 or negative: commit each batch at once."`
	Broker               string        `default:"memory" env:"PARLEY_BROKER" help:"Broker: memory (one node), or a nats:// URL."`
	NATSPendingMsgs      int           `name:"nats-pending-msgs" default:"65536" env:"PARLEY_NATS_PENDING_MSGS" help:"With a nats:// broker: messages the node's subscription may hold before NATS drops (the node then reads the missed events from the store)."`
	NATSPendingBytes     int           `name:"nats-pending-bytes" default:"67108864" env:"PARLEY_NATS_PENDING_BYTES" help:"With a nats:// broker: bytes the node's subscription may hold (default 64 MiB)."`
	NodeID               string        `env:"PARLEY_NODE_ID" help:"This node's id in the cluster (default: random)."`
	PresenceGrace        time.Duration `default:"5s" env:"PARLEY_PRESENCE_GRACE" help:"How long a user stays online after their last connection closes."`
	NodeTimeout          time.Duration `default:"6s" env:"PARLEY_NODE_TIMEOUT" help:"How long a node may go unheard on the broker before the others take it as dead (its users go offline after the grace period). A node sends its heartbeat every third of it (at most 2 s): give every node the same value."`
	LimitShareInterval   time.Duration `default:"250ms" env:"PARLEY_LIMIT_SHARE_INTERVAL" help:"How often a node tells the others (through the broker) the rate-limit tokens its clients took, so per-user and per-IP limits hold across the cluster (negative: each node limits alone)."`
	UserSyncInterval     time.Duration `default:"5s" env:"PARLEY_USER_SYNC_INTERVAL" help:"How often the node reads the store's log of changed users (profiles, renames, bans) and forgets them, making good a notice lost on the broker (one indexed query)."`
	HeartbeatInterval    time.Duration `default:"4s" env:"PARLEY_HEARTBEAT_INTERVAL" help:"How often clients ping (told to clients in welcome)."`
	HeartbeatTimeout     time.Duration `default:"9s" env:"PARLEY_HEARTBEAT_TIMEOUT" help:"Close a connection silent for this long (4002)."`
	ResumeLimit          int           `default:"10000" env:"PARLEY_RESUME_LIMIT" help:"Most missed events a resume replays; further behind gets resync."`
	ShutdownTimeout      time.Duration `default:"15s" env:"PARLEY_SHUTDOWN_TIMEOUT" help:"How long a graceful shutdown may take."`
	ShutdownDrain        time.Duration `default:"0s" env:"PARLEY_SHUTDOWN_DRAIN" help:"How long a shutdown keeps serving, with /readyz and new WebSocket upgrades answering 503, before it closes the listener (part of --shutdown-timeout; default 0: none)."`
	PprofAddr            string        `env:"PARLEY_PPROF_ADDR" help:"Serve net/http/pprof on this separate address (e.g. 127.0.0.1:6060; default off). Never expose it publicly."`
	MetricsAddr          string        `env:"PARLEY_METRICS_ADDR" help:"Serve /metrics (Prometheus) on this separate address, e.g. 127.0.0.1:9090 (default off). Keep it private."`
	TimerSlack           time.Duration `default:"1ms" env:"PARLEY_TIMER_SLACK" help:"On Linux with one P (GOMAXPROCS=1, e.g. one vCPU or taskset to one core): the threads' timer slack, which serve sets by executing itself again at start, so the Go runtime's sysmon thread naps up to this long instead of 20 µs while the server is busy (less CPU per message; any timer may fire up to this late). 0: keep the system's (50 µs by default). Ignored with more than one P."`
	MetricsToken         string        `env:"PARLEY_METRICS_TOKEN" help:"Also serve /metrics on --addr to requests with 'Authorization: Bearer TOKEN' (default: /metrics is not on --addr)."`

	TLSCert       string   `name:"tls-cert" env:"PARLEY_TLS_CERT" help:"Serve HTTPS and wss:// on --addr with this PEM certificate (chain) file; needs --tls-key. Default: plain HTTP."`
	TLSKey        string   `name:"tls-key" env:"PARLEY_TLS_KEY" help:"The PEM private key of --tls-cert."`
	ACMEHost      []string `name:"acme-host" env:"PARLEY_ACME_HOST" sep:"," help:"Public host names to get certificates for automatically (ACME, Let's Encrypt by default) and serve HTTPS on --addr; the certificates are kept in <data-dir>/acme. Needs --acme-http-addr reachable from the internet as port 80 (or --addr as 443, for TLS-ALPN)."`
	ACMEHTTPAddr  string   `name:"acme-http-addr" default:":80" env:"PARLEY_ACME_HTTP_ADDR" help:"With --acme-host: where to answer ACME HTTP-01 challenges; other requests there are redirected to https://."`
	ACMEEmail     string   `name:"acme-email" env:"PARLEY_ACME_EMAIL" help:"With --acme-host: a contact address given to the certificate authority (optional)."`
	ACMEDirectory string   `name:"acme-directory" env:"PARLEY_ACME_DIRECTORY" help:"With --acme-host: the ACME directory URL (default: Let's Encrypt's production; e.g. its staging directory to try a set-up)."`

	HTTPReadTimeout  time.Duration `default:"60s" env:"PARLEY_HTTP_READ_TIMEOUT" help:"Time to send a whole HTTP request, body included (uploads too); not WebSockets."`
	HTTPWriteTimeout time.Duration `default:"90s" env:"PARLEY_HTTP_WRITE_TIMEOUT" help:"Time from a request's headers to the end of its response; not WebSockets."`
	HTTPIdleTimeout  time.Duration `default:"60s" env:"PARLEY_HTTP_IDLE_TIMEOUT" help:"How long an idle keep-alive HTTP connection stays open."`
	ConnsPerIP       int           `default:"64" env:"PARLEY_CONNS_PER_IP" help:"Open connections (HTTP and WebSocket) per IPv4 address or IPv6 /64; more are closed at once (negative: no cap)."`
	MaxConns         int           `default:"0" env:"PARLEY_MAX_CONNS" help:"Open connections in all; more are closed at once (0: the fd limit less 128; negative: no cap)."`

	SendQueueBytes              int     `default:"1048576" env:"PARLEY_SEND_QUEUE_BYTES" help:"Bytes queued per connection (default 1 MiB) before dropping typing/presence, then closing 4001; replies are cut to half of it."`
	HubQueueBytes               int     `default:"67108864" env:"PARLEY_HUB_QUEUE_BYTES" help:"Bytes of events from the broker waiting for delivery (default 64 MiB); over it they are read from the store instead."`
	UserCacheBytes              int     `default:"67108864" env:"PARLEY_USER_CACHE_BYTES" help:"Bytes of users this node remembers as checked in the store (default 64 MiB, estimated); past it those not connected here nor seen lately are forgotten, and their next hello reads the store."`
	MessagesPerSecond           float64 `default:"10" env:"PARLEY_MESSAGES_PER_SECOND" help:"Messages per second per user (negative: no limit)."`
	MessageBurst                int     `default:"50" env:"PARLEY_MESSAGE_BURST" help:"Message burst per user."`
	IPMessagesPerSecond         float64 `default:"50" env:"PARLEY_IP_MESSAGES_PER_SECOND" help:"Messages per second per IP (negative: no limit)."`
	IPMessageBurst              int     `default:"200" env:"PARLEY_IP_MESSAGE_BURST" help:"Message burst per IP."`
	TypingPerSecond             float64 `default:"2" env:"PARLEY_TYPING_PER_SECOND" help:"Typing requests per second per user (negative: no limit)."`
	TypingBurst                 int     `default:"6" env:"PARLEY_TYPING_BURST" help:"Typing burst per user."`
	ConnectsPerSecond           float64 `default:"10" env:"PARLEY_CONNECTS_PER_SECOND" help:"New connections and logins per second per IP (negative: no limit)."`
	ConnectBurst                int     `default:"50" env:"PARLEY_CONNECT_BURST" help:"Connection burst per IP."`
	PresencePerSecond           float64 `default:"1" env:"PARLEY_PRESENCE_PER_SECOND" help:"Presence queries per second per user (negative: no limit)."`
	PresenceBurst               int     `default:"5" env:"PARLEY_PRESENCE_BURST" help:"Presence query burst per user."`
	ReadsPerSecond              float64 `default:"20" env:"PARLEY_READS_PER_SECOND" help:"Reads (history, conversations, events, user lookups) per second per user (negative: no limit)."`
	ReadBurst                   int     `default:"100" env:"PARLEY_READ_BURST" help:"Read burst per user."`
	ConversationWritesPerSecond float64 `default:"2" env:"PARLEY_CONVERSATION_WRITES_PER_SECOND" help:"Conversation creations and changes (create_direct, create_group, update_conversation) per second per user (negative: no limit)."`
	ConversationWriteBurst      int     `default:"20" env:"PARLEY_CONVERSATION_WRITE_BURST" help:"Conversation write burst per user."`
	ReadMarksPerSecond          float64 `default:"10" env:"PARLEY_READ_MARKS_PER_SECOND" help:"Read marks per second per user (negative: no limit)."`
	ReadMarkBurst               int     `default:"50" env:"PARLEY_READ_MARK_BURST" help:"Read mark burst per user."`
	DeletesPerSecond            float64 `default:"5" env:"PARLEY_DELETES_PER_SECOND" help:"Message deletes per second per user (negative: no limit)."`
	DeleteBurst                 int     `default:"50" env:"PARLEY_DELETE_BURST" help:"Delete burst per user."`
	ReactionsPerSecond          float64 `default:"5" env:"PARLEY_REACTIONS_PER_SECOND" help:"Reactions added or removed per second per user (negative: no limit)."`
	ReactionBurst               int     `default:"30" env:"PARLEY_REACTION_BURST" help:"Reaction burst per user."`
	SearchesPerSecond           float64 `default:"1" env:"PARLEY_SEARCHES_PER_SECOND" help:"Full-text searches per second per user (negative: no limit)."`
	SearchBurst                 int     `default:"10" env:"PARLEY_SEARCH_BURST" help:"Search burst per user."`
	APIKeyFailuresPerMinute     float64 `default:"10" env:"PARLEY_API_KEY_FAILURES_PER_MINUTE" help:"Failed server API authentications (unknown or revoked API keys) and wrong --metrics-token tokens per minute per IP; past them the IP gets 429 (negative: no limit)."`
	APIKeyFailureBurst          int     `default:"10" env:"PARLEY_API_KEY_FAILURE_BURST" help:"Failed server API authentication burst per IP."`
	ConnectionsPerUser          int     `default:"20" env:"PARLEY_CONNECTIONS_PER_USER" help:"WebSocket connections per user on this node; one more closes the user's oldest with 4103 (negative: no cap)."`

	Registration     string        `default:"open" enum:"open,closed" env:"PARLEY_REGISTRATION" help:"Who may register: open (anyone) or closed (register answers forbidden; parley user create and integrator tokens still work)."`
	LoginFailures    int           `default:"5" env:"PARLEY_LOGIN_FAILURES" help:"Failed logins of one account (within an hour) before it is locked with a growing delay."`
	LoginBackoff     time.Duration `default:"30s" env:"PARLEY_LOGIN_BACKOFF" help:"First lock of an account after --login-failures; doubles with each further failure."`
	LoginBackoffMax  time.Duration `default:"15m" env:"PARLEY_LOGIN_BACKOFF_MAX" help:"Longest lock of an account."`
	PasswordHashWait time.Duration `default:"5s" env:"PARLEY_PASSWORD_HASH_WAIT" help:"Longest wait of a login or register for a password-hash slot before it answers unavailable (503)."`
	UserChecks       int           `default:"64" env:"PARLEY_USER_CHECKS" help:"Store checks of token users this node has not cached (a write on first sight) run at once; other hellos wait their turn with no goroutine."`

	// Webhooks (see package webhook and docs/integrate.md).
	Webhooks            []string      `name:"webhook" env:"PARLEY_WEBHOOKS" sep:";" placeholder:"SPEC" help:"A webhook endpoint: url=https://...,events=message.new,message.deleted,...(or *),secret=S[,name=N]. Repeat the flag (or separate with ';' in PARLEY_WEBHOOKS) for more."`
	WebhookAllowPrivate bool          `env:"PARLEY_WEBHOOK_ALLOW_PRIVATE" help:"Let webhooks reach loopback, private and link-local addresses (refused by default: SSRF)."`
	WebhookMaxBacklog   int           `default:"10000" env:"PARLEY_WEBHOOK_MAX_BACKLOG" help:"Deliveries waiting per endpoint; past it new events for that endpoint are dropped and counted (parley_webhook_dropped_total)."`
	WebhookTimeout      time.Duration `default:"10s" env:"PARLEY_WEBHOOK_TIMEOUT" help:"Time for one delivery, connection included; a slower answer is a failure, retried."`
	WebhookBackoffBase  time.Duration `default:"1s" env:"PARLEY_WEBHOOK_BACKOFF_BASE" help:"Wait after a failed delivery's first attempt; doubles per attempt (jittered) up to --webhook-backoff-max."`
	WebhookBackoffMax   time.Duration `default:"5m" env:"PARLEY_WEBHOOK_BACKOFF_MAX" help:"Longest wait between attempts."`

	// Uploads (see server.UploadLimits).
	UploadDecodeBudgetMiB int64         `name:"upload-decode-budget-mib" default:"64" env:"PARLEY_UPLOAD_DECODE_BUDGET_MIB" help:"Memory one upload's decoding may need, in MiB; bigger images are refused (too_large) before decoding."`
	UploadDecodes         int           `default:"2" env:"PARLEY_UPLOAD_DECODES" help:"Uploads decoded at once per node."`
	UploadDecodeWait      time.Duration `default:"5s" env:"PARLEY_UPLOAD_DECODE_WAIT" help:"How long an upload waits for a decode slot before unavailable (503, Retry-After)."`
	UploadsPerSecond      float64       `default:"0.2" env:"PARLEY_UPLOADS_PER_SECOND" help:"Uploads per second per user (negative: no limit)."`
	UploadBurst           int           `default:"10" env:"PARLEY_UPLOAD_BURST" help:"Upload burst per user."`
	UploadQuotaMiB        int64         `name:"upload-quota-mib" default:"100" env:"PARLEY_UPLOAD_QUOTA_MIB" help:"Stored uploads per user, in MiB (negative: no quota)."`
	UploadOrphanTTL       time.Duration `default:"1h" env:"PARLEY_UPLOAD_ORPHAN_TTL" help:"Delete uploads no message holds after this long."`
	UploadMaxFileMiB      int64         `name:"upload-max-file-mib" default:"25" env:"PARLEY_UPLOAD_MAX_FILE_MIB" help:"Largest file upload (POST /v1/files), in MiB."`
	DownloadBudgetMiB     int64         `name:"download-budget-mib" default:"256" env:"PARLEY_DOWNLOAD_BUDGET_MIB" help:"Attachment bytes held for downloads being served at once per node, in MiB (a download holds 2 MiB at most: the 1 MiB chunk it sends and the store's copy of the next); a download with no room waits --upload-decode-wait, then unavailable (503, Retry-After). One user's downloads hold at most a quarter of it (at least one download); past that theirs are refused at once."`
	UploadFiles           int           `default:"4" env:"PARLEY_UPLOAD_FILES" help:"Uploads, images and files together, received at once per node (each body held in memory up to --upload-max-file-mib)."`
}

// Run serves until ctx ends (SIGINT or SIGTERM), then shuts down
// gracefully.
func (c *ServeCmd) Run(ctx context.Context, s *streams) error {
	if execSelf {
		// Before anything is opened: on success this does not return.
		if err := applyTimerSlack(c.TimerSlack); err != nil {
			fmt.Fprintf(s.err, "parley: %v (running with the system's timer slack)\n", err)
		}
	}
	m := NewMain(*c, s)
	if err := m.Run(ctx); err != nil {
		m.Close()
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-m.serveErr:
		m.Close()
		return err
	}
	return m.Close()
}

// Main is a running server with its store and broker: what `parley serve`
// runs, and what end-to-end tests start. Run starts it; Close stops it.
type Main struct {
	Config ServeCmd
	Logger *slog.Logger

	Store  parley.Store
	Broker parley.Broker
	Server *server.Server
	// Addr is the address listened on, known after Run; URL is it with
	// its scheme (http, or https with TLS).
	Addr string
	URL  string
	// ACMEHTTPAddr is the --acme-http-addr address listened on, known
	// after Run; empty without --acme-host.
	ACMEHTTPAddr string

	serveErr chan error
	// MetricsAddr is the --metrics-addr address listened on, known after
	// Run; empty when off.
	MetricsAddr string
	// aside are the --pprof-addr and --metrics-addr servers, when on;
	// Close shuts them down.
	aside []*asideServer
}

// asideServer is a private HTTP server beside the public one.
type asideServer struct {
	srv  *http.Server
	done chan struct{}
}

// NewMain returns a Main for cfg, logging to s.err.
func NewMain(cfg ServeCmd, s *streams) *Main {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler = slog.NewTextHandler(s.err, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(s.err, opts)
	}
	return &Main{Config: cfg, Logger: slog.New(h)}
}

// Run opens the store and broker, starts the server and listens. It
// returns once the server accepts connections; Close stops it.
func (m *Main) Run(ctx context.Context) (err error) {
	c := m.Config
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return err
	}
	ts, err := c.tlsFromFlags()
	if err != nil {
		return err
	}
	secret, err := loadSecret(c.Secret, c.DataDir, true)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, c.Store, c.DataDir, sqlstore.WithShards(c.Shards), sqlstore.WithCommitInterval(c.SQLiteCommitInterval))
	if err != nil {
		return err
	}
	m.Store = st
	b, err := openBroker(ctx, c)
	if err != nil {
		return err
	}
	m.Broker = b
	hooks, err := webhookConfig(c)
	if err != nil {
		return err
	}
	m.Server, err = server.New(server.Config{
		Webhooks: hooks,
		Store:    m.Store, Broker: m.Broker, NodeID: c.NodeID, Secret: secret,
		AllowedOrigins: c.AllowedOrigins, Logger: m.Logger, Transport: c.WSTransport,
		ResumeLimit:       c.ResumeLimit,
		HeartbeatInterval: c.HeartbeatInterval, HeartbeatTimeout: c.HeartbeatTimeout,
		PresenceGrace: c.PresenceGrace, NodeTimeout: c.NodeTimeout, LimitShareInterval: c.LimitShareInterval,
		ShutdownDrain: c.ShutdownDrain, UserChecks: c.UserChecks, UserSyncInterval: c.UserSyncInterval,
		MetricsToken: c.MetricsToken,
		HTTP: server.HTTPLimits{
			ReadTimeout: c.HTTPReadTimeout, WriteTimeout: c.HTTPWriteTimeout, IdleTimeout: c.HTTPIdleTimeout,
			ConnsPerIP: c.ConnsPerIP, MaxConns: c.MaxConns,
		},
		Limits: server.Limits{
			SendQueueBytes: c.SendQueueBytes, HubQueueBytes: c.HubQueueBytes, UserCacheBytes: c.UserCacheBytes,
			MessagesPerSecond: c.MessagesPerSecond, MessageBurst: c.MessageBurst,
			IPMessagesPerSecond: c.IPMessagesPerSecond, IPMessageBurst: c.IPMessageBurst,
			TypingPerSecond: c.TypingPerSecond, TypingBurst: c.TypingBurst,
			ConnectsPerSecond: c.ConnectsPerSecond, ConnectBurst: c.ConnectBurst,
			PresencePerSecond: c.PresencePerSecond, PresenceBurst: c.PresenceBurst,
			ReadsPerSecond: c.ReadsPerSecond, ReadBurst: c.ReadBurst,
			ConversationWritesPerSecond: c.ConversationWritesPerSecond, ConversationWriteBurst: c.ConversationWriteBurst,
			ReadMarksPerSecond: c.ReadMarksPerSecond, ReadMarkBurst: c.ReadMarkBurst,
			DeletesPerSecond: c.DeletesPerSecond, DeleteBurst: c.DeleteBurst,
			ReactionsPerSecond: c.ReactionsPerSecond, ReactionBurst: c.ReactionBurst,
			SearchesPerSecond: c.SearchesPerSecond, SearchBurst: c.SearchBurst,
			APIKeyFailuresPerSecond: perMinute(c.APIKeyFailuresPerMinute), APIKeyFailureBurst: c.APIKeyFailureBurst,
			ConnectionsPerUser: c.ConnectionsPerUser,
		},
		Accounts: server.AccountLimits{
			Registration:  server.Registration(c.Registration),
			LoginFailures: c.LoginFailures, LoginBackoff: c.LoginBackoff, LoginBackoffMax: c.LoginBackoffMax,
			HashWait: c.PasswordHashWait,
		},
		Uploads: server.UploadLimits{
			Limits:     media.Limits{DecodeBudget: c.UploadDecodeBudgetMiB << 20},
			Decodes:    c.UploadDecodes,
			DecodeWait: c.UploadDecodeWait,
			PerSecond:  c.UploadsPerSecond, Burst: c.UploadBurst,
			Quota:        c.UploadQuotaMiB << 20,
			OrphanTTL:    c.UploadOrphanTTL,
			MaxFileBytes: c.UploadMaxFileMiB << 20, Files: c.UploadFiles,
			DownloadBytes: c.DownloadBudgetMiB << 20,
		},
	})
	if err != nil {
		return err
	}
	// Listen before serving, so a taken port is an error now.
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return err
	}
	m.Addr = ln.Addr().String()
	if c.PprofAddr != "" {
		if _, err := m.serveAside("--pprof-addr", c.PprofAddr, pprofMux()); err != nil {
			ln.Close()
			return err
		}
	}
	if c.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", m.Server.MetricsHandler())
		if m.MetricsAddr, err = m.serveAside("--metrics-addr", c.MetricsAddr, mux); err != nil {
			ln.Close()
			return err
		}
	}
	scheme := "http"
	if ts.config != nil {
		scheme = "https"
	}
	if ts.challenge != nil {
		if m.ACMEHTTPAddr, err = m.serveAside("--acme-http-addr", c.ACMEHTTPAddr, ts.challenge); err != nil {
			ln.Close()
			return err
		}
	}
	m.serveErr = make(chan error, 1)
	// Owned by m: Close waits for it.
	go func() {
		if ts.config != nil {
			m.serveErr <- m.Server.ServeTLS(ln, ts.config)
			return
		}
		m.serveErr <- m.Server.Serve(ln)
	}()
	m.URL = scheme + "://" + m.Addr
	m.Logger.Info("parley serving", "addr", m.URL, "data_dir", c.DataDir,
		"store", describeStore(c.Store, c.DataDir), "broker", describeURL(c.Broker), "tls", describeTLS(c),
		"registration", c.Registration, "allowed_origins", strings.Join(c.AllowedOrigins, ","),
		slog.Group("limits",
			"send_queue_bytes", c.SendQueueBytes, "hub_queue_bytes", c.HubQueueBytes, "user_cache_bytes", c.UserCacheBytes,
			"messages_per_second", c.MessagesPerSecond, "message_burst", c.MessageBurst,
			"connects_per_second", c.ConnectsPerSecond, "connections_per_user", c.ConnectionsPerUser,
			"conns_per_ip", c.ConnsPerIP, "max_conns", c.MaxConns, "resume_limit", c.ResumeLimit,
			"heartbeat_timeout", c.HeartbeatTimeout, "upload_quota_mib", c.UploadQuotaMiB, "user_checks", c.UserChecks))
	return nil
}

// Close shuts the server down gracefully (within ShutdownTimeout), then
// closes the broker and the store.
func (m *Main) Close() error {
	var errs []error
	for _, a := range m.aside {
		a.srv.Close()
		<-a.done
	}
	m.aside = nil
	if m.Server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		errs = append(errs, m.Server.Shutdown(ctx))
		cancel()
		if m.serveErr != nil {
			errs = append(errs, <-m.serveErr)
		}
		m.Server = nil
	}
	if m.Broker != nil {
		errs = append(errs, m.Broker.Close())
		m.Broker = nil
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
		m.Store = nil
	}
	m.Logger.Info("parley stopped")
	return errors.Join(errs...)
}

// serveAside serves h on its own listener at addr (flag names the flag
// for errors) and returns the address listened on: profiling and metrics
// need no route on the public listener. It has the public listener's
// limits (server.AsideServer, LimitListener): the ACME challenge listener
// faces the internet, and the others share the process's descriptors.
// The goroutine is owned by m: Close shuts the server down and waits for
// it.
func (m *Main) serveAside(flag, addr string, h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	a := &asideServer{
		srv:  m.Server.AsideServer(h),
		done: make(chan struct{}),
	}
	m.aside = append(m.aside, a)
	lln := m.Server.LimitListener(ln)
	go func() {
		defer close(a.done)
		_ = a.srv.Serve(lln)
	}()
	m.Logger.Info("serving "+strings.TrimPrefix(flag, "--"), "addr", "http://"+ln.Addr().String())
	return ln.Addr().String(), nil
}

// pprofMux serves the net/http/pprof handlers.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// webhookConfig parses the --webhook specs.
func webhookConfig(c ServeCmd) (webhook.Config, error) {
	cfg := webhook.Config{
		AllowPrivate: c.WebhookAllowPrivate, MaxBacklog: c.WebhookMaxBacklog,
		Timeout: c.WebhookTimeout, BackoffBase: c.WebhookBackoffBase, BackoffMax: c.WebhookBackoffMax,
	}
	for _, spec := range c.Webhooks {
		if strings.TrimSpace(spec) == "" {
			continue
		}
		e, err := webhook.ParseEndpoint(spec)
		if err != nil {
			return cfg, fmt.Errorf("--webhook: %w", err)
		}
		cfg.Endpoints = append(cfg.Endpoints, e)
	}
	return cfg, nil
}

// openStore is the switch point between stores: SQLite in the data dir by
// default; postgres:// URLs go to internal/postgres (wired by the scale
// work).
func openStore(ctx context.Context, store, dataDir string, opts ...sqlstore.Option) (parley.Store, error) {
	switch {
	case store == "":
		return sqlite.Open(ctx, filepath.Join(dataDir, dbFile), opts...)
	case strings.HasPrefix(store, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(store, "sqlite:"), opts...)
	case strings.HasPrefix(store, "postgres://"), strings.HasPrefix(store, "postgresql://"):
		return postgres.Open(ctx, store, opts...)
	}
	return nil, fmt.Errorf("--store: unknown store %q (want empty, sqlite:PATH or postgres://...)", store)
}

// openBroker is the switch point between brokers: in-process by default;
// nats:// URLs go to internal/natsbroker (wired by the scale work).
func openBroker(ctx context.Context, c ServeCmd) (parley.Broker, error) {
	switch {
	case c.Broker == "" || c.Broker == "memory":
		return membroker.New(), nil
	case strings.HasPrefix(c.Broker, "nats://"):
		return natsbroker.Open(ctx, natsbroker.Config{
			URL: c.Broker, Name: strings.TrimSpace("parley " + c.NodeID),
			PendingMsgs: c.NATSPendingMsgs, PendingBytes: c.NATSPendingBytes,
		})
	}
	return nil, fmt.Errorf("--broker: unknown broker %q (want memory or nats://...)", c.Broker)
}

// describeStore names the store for the start-up log line, without
// credentials.
func describeStore(store, dataDir string) string {
	switch {
	case store == "":
		return "sqlite:" + filepath.Join(dataDir, dbFile)
	case strings.HasPrefix(store, "sqlite:"):
		return store
	}
	return describeURL(store)
}

// describeURL is a store or broker URL with no user, password or query
// (which may hold a password): scheme://host/path.
func describeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		if strings.Contains(s, "://") {
			return "(unparsable URL)"
		}
		return s // "memory"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// describeTLS names the TLS mode for the start-up log line.
func describeTLS(c ServeCmd) string {
	switch {
	case c.TLSCert != "":
		return "cert " + c.TLSCert
	case len(c.ACMEHost) > 0:
		return "acme " + strings.Join(c.ACMEHost, ",")
	}
	return "off"
}

// perMinute converts a rate per minute to the per second the limits take,
// keeping a negative one (no limit) negative.
func perMinute(r float64) float64 {
	if r < 0 {
		return -1
	}
	return r / 60
}
