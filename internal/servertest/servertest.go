// Package servertest runs a real Parley server for tests: a real SQLite
// file in a temporary directory, the in-process broker and a listener on
// 127.0.0.1. SDK, web, bench and multi-node tests build on it.
//
//	srv := servertest.Start(t)
//	tok := srv.Token(t, "alice", "Alice")
//	// dial srv.WSURL(), or call srv.URL + "/v1/..."
//	srv.Restart(t) // same data dir, same address
//
// Rate limits are off by default (every test connects from 127.0.0.1);
// WithConfig turns them back on.
package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// Server is a running (or stopped) test server. Its fields are valid while
// it runs and are replaced by each Start.
type Server struct {
	// URL is "http://127.0.0.1:PORT"; it stays the same across restarts.
	URL string
	// Dir is the data directory; it survives Stop and Restart.
	Dir    string
	Secret []byte
	Store  parley.Store
	Broker parley.Broker
	Server *server.Server

	opts      options
	addr      string
	ownBroker bool
	serveErr  chan error
	logw      *LogToTest
}

// Option changes how Start builds the server.
type Option func(*options)

type options struct {
	configs   []func(*server.Config)
	broker    parley.Broker
	openStore func(ctx context.Context, dir string) (parley.Store, error)
	secret    []byte
	dir       string
	addr      string
	logLevel  slog.Level
	// shutdownWait bounds Stop's graceful shutdown (0: 20 s).
	shutdownWait time.Duration
}

// WithConfig edits the server's Config before each start (after the
// test defaults: Unlimited rate limits, the test's logger).
func WithConfig(f func(*server.Config)) Option {
	return func(o *options) { o.configs = append(o.configs, f) }
}

// WithBroker makes the server use b (for several nodes sharing one
// broker). The caller owns b and closes it.
func WithBroker(b parley.Broker) Option { return func(o *options) { o.broker = b } }

// WithStore opens the store with open at each start instead of SQLite in
// Dir; the test server closes it at each stop.
func WithStore(open func(ctx context.Context, dir string) (parley.Store, error)) Option {
	return func(o *options) { o.openStore = open }
}

// WithSecret sets the token secret (default: random), so several nodes
// accept the same tokens.
func WithSecret(secret []byte) Option { return func(o *options) { o.secret = secret } }

// WithDir sets the data directory (default t.TempDir()).
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithAddr sets the listen address (default 127.0.0.1:0).
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// WithLogLevel sets the level of the server's log, written to the test
// log (default slog.LevelWarn).
func WithLogLevel(l slog.Level) Option { return func(o *options) { o.logLevel = l } }

// WithShutdownWait sets how long Stop (and Restart) waits for the
// graceful shutdown to drain the connections before it reports a failure
// (default 20 s). The drain waits for every request the connections read
// to finish, however long the store takes over them.
func WithShutdownWait(d time.Duration) Option { return func(o *options) { o.shutdownWait = d } }

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := options{logLevel: slog.LevelWarn, addr: "127.0.0.1:0"}
	for _, f := range opts {
		f(&o)
	}
	s := &Server{opts: o, Dir: o.dir, Secret: o.secret, Broker: o.broker, addr: o.addr}
	if s.Dir == "" {
		s.Dir = t.TempDir()
	}
	if s.Secret == nil {
		var err error
		if s.Secret, err = auth.NewSecret(); err != nil {
			t.Fatal(err)
		}
	}
	if s.Broker == nil {
		s.Broker = membroker.New()
		s.ownBroker = true
	}
	t.Cleanup(func() {
		if s.Server != nil {
			s.Stop(t)
		}
		if s.ownBroker {
			s.Broker.Close()
		}
	})
	s.Start(t)
	return s
}

// Start starts a stopped server again on the same data directory and
// address.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if s.Server != nil {
		t.Fatal("servertest: Start on a running server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var (
		st  parley.Store
		err error
	)
	if s.opts.openStore != nil {
		st, err = s.opts.openStore(ctx, s.Dir)
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(s.Dir, dbFile))
	}
	if err != nil {
		t.Fatalf("servertest: opening the store: %v", err)
	}
	s.logw = &LogToTest{T: t}
	cfg := server.Config{
		Store: st, Broker: s.Broker, Secret: s.Secret,
		Logger: slog.New(slog.NewTextHandler(s.logw, &slog.HandlerOptions{Level: s.opts.logLevel})),
		Limits: server.Unlimited(),
		// Uploads per user are not rate-limited either (decode slots,
		// budget and quota keep their defaults).
		Uploads: server.UploadLimits{PerSecond: -1},
		// Every test connects from 127.0.0.1: no per-IP connection cap
		// either (the HTTP timeouts and the total cap keep their defaults).
		HTTP: server.HTTPLimits{ConnsPerIP: -1},
	}
	for _, f := range s.opts.configs {
		f(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		st.Close()
		t.Fatalf("servertest: %v", err)
	}
	ln, err := listen(ctx, s.addr)
	if err != nil {
		srv.Shutdown(ctx)
		st.Close()
		t.Fatalf("servertest: %v", err)
	}
	s.addr = ln.Addr().String()
	s.URL = "http://" + s.addr
	s.Store, s.Server = st, srv
	s.serveErr = make(chan error, 1)
	// The goroutine is owned by s: Stop waits for it.
	go func() { s.serveErr <- srv.Serve(ln) }()
}

// listen listens on addr, retrying briefly: on a restart the old
// listener's port may take a moment to be free.
func listen(ctx context.Context, addr string) (net.Listener, error) {
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down gracefully (goaway, close 4003) and closes
// its store. The data directory stays.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.Server == nil {
		return
	}
	wait := s.opts.shutdownWait
	if wait == 0 {
		wait = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := s.Server.Shutdown(ctx); err != nil {
		t.Errorf("servertest: shutdown: %v", err)
	}
	if err := <-s.serveErr; err != nil {
		t.Errorf("servertest: serve: %v", err)
	}
	if err := s.Store.Close(); err != nil {
		t.Errorf("servertest: closing the store: %v", err)
	}
	s.logw.Stop()
	s.Server, s.Store = nil, nil
}

// Restart stops the server and starts it again on the same data
// directory and address.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop(t)
	s.Start(t)
}

// WSURL is the WebSocket endpoint, "ws://127.0.0.1:PORT/v1/ws".
func (s *Server) WSURL() string { return "ws://" + s.addr + protocol.Path }

// Addr is the listen address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// Token creates the user (if new) and returns a token for them, valid for
// an hour.
func (s *Server) Token(t testing.TB, userID, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Store.EnsureUser(ctx, userID, name); err != nil {
		t.Fatalf("servertest: creating user %q: %v", userID, err)
	}
	tok, _, err := auth.Mint(s.Secret, userID, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Register registers an account through the HTTP API and returns its
// token and user.
func (s *Server) Register(t testing.TB, username, password string) (string, parley.User) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	resp, err := http.Post(s.URL+"/v1/auth/register", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("servertest: register: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string      `json:"token"`
		User  parley.User `json:"user"`
	}
	if resp.StatusCode != http.StatusCreated {
		var e struct{ Error protocol.ErrorBody }
		json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("servertest: register %q: %s %s: %s", username, resp.Status, e.Error.Code, e.Error.Message)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("servertest: register: %v", err)
	}
	return out.Token, out.User
}
