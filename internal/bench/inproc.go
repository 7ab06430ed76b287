package bench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"time"

	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/sqlite"
)

// InProcServer runs a server in the load tool's process, on SQLite in
// DataDir and the in-process broker, with rate limits off (the load comes
// from a handful of addresses). Its CPU and memory are mixed with the load
// tool's, so PID reports 0; use ChildServer for /proc figures.
type InProcServer struct {
	DataDir string
	Secret  []byte
	Addr    string // default: a free loopback port, kept across restarts
	// Configure, when set, adjusts the server's config before each start.
	Configure func(*server.Config)

	mu     sync.Mutex
	srv    *server.Server
	store  *sqlite.DB
	broker *membroker.Broker
	done   chan error // Serve's result; the goroutine is owned by the InProcServer
}

// Start opens the store and starts serving.
func (s *InProcServer) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	store, err := sqlite.Open(ctx, filepath.Join(s.DataDir, "parley.db"))
	if err != nil {
		return err
	}
	addr := s.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for range 100 { // the port may linger briefly after a restart
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		store.Close()
		return err
	}
	s.Addr = ln.Addr().String()
	b := membroker.New()
	cfg := server.Config{
		Store: store, Broker: b, Secret: s.Secret, Limits: server.Unlimited(),
		// The load comes from a few addresses: no per-IP connection cap.
		HTTP:    server.HTTPLimits{ConnsPerIP: -1},
		Uploads: server.UploadLimits{PerSecond: -1},
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if s.Configure != nil {
		s.Configure(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		ln.Close()
		b.Close()
		store.Close()
		return err
	}
	s.srv, s.store, s.broker = srv, store, b
	s.done = make(chan error, 1)
	go func() { s.done <- srv.Serve(ln) }()
	return nil
}

func (s *InProcServer) URL() string { return "http://" + s.Addr }
func (s *InProcServer) PID() int    { return 0 }

// Restart stops the server and starts it again on the same data and
// address. There is no kill -9 in-process: kill shuts down with a context
// that has already ended, which drops the connections at once.
func (s *InProcServer) Restart(ctx context.Context, kill bool) error {
	if err := s.stop(kill); err != nil {
		return err
	}
	return s.Start(ctx)
}

func (s *InProcServer) stop(abrupt bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	if abrupt {
		cancel()
	}
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
	s.broker.Close()
	err := s.store.Close()
	s.srv = nil
	return err
}

// Close stops the server and closes its store.
func (s *InProcServer) Close() error { return s.stop(false) }
