package client_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/sqlite"
)

// bubble is the real server (SQLite store, in-process broker) on an
// in-memory listener, with the fault proxy in front of it, built inside a
// testing/synctest bubble so the client's timers run on fake time. Nothing
// touches the OS network: a blocked pipe read is durably blocked, so fake
// time advances as soon as every goroutine waits.
type bubble struct {
	t      *testing.T
	dir    string
	secret []byte
	proxy  *faultproxy.Proxy
	front  *faultproxy.PipeListener
	back   *faultproxy.PipeListener
	store  *sqlite.DB
	srv    *server.Server
	broker *membroker.Broker
	served chan error
}

func newBubble(t *testing.T, cfg func(*server.Config)) *bubble {
	t.Helper()
	secret, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b := &bubble{t: t, dir: t.TempDir(), secret: secret, front: faultproxy.NewPipeListener(), back: faultproxy.NewPipeListener()}
	b.proxy = faultproxy.New(b.front, b.back.Dial)
	b.start(cfg)
	t.Cleanup(func() {
		b.stop()
		b.proxy.Close()
	})
	return b
}

func (b *bubble) start(cfg func(*server.Config)) {
	t := b.t
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	b.store, b.broker = st, membroker.New()
	c := server.Config{Store: st, Broker: b.broker, Secret: b.secret, Limits: server.Unlimited(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Static: http.NotFoundHandler()}
	if cfg != nil {
		cfg(&c)
	}
	srv, err := server.New(c)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = srv
	b.served = make(chan error, 1)
	go func() { b.served <- srv.Serve(b.back) }()
}

func (b *bubble) stop() {
	if b.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b.srv.Shutdown(ctx)
	<-b.served
	b.store.Close()
	b.broker.Close()
	b.srv = nil
}

func (b *bubble) token(id string) string {
	if _, err := b.store.EnsureUser(context.Background(), id, "User "+id); err != nil {
		b.t.Fatal(err)
	}
	tok, _, err := auth.Mint(b.secret, id, "User "+id, time.Hour)
	if err != nil {
		b.t.Fatal(err)
	}
	return tok
}

// client makes a client that dials the proxy's pipe listener.
func (b *bubble) client(opts ...client.Option) *client.Client {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return b.front.Dial(ctx) }
	all := append([]client.Option{client.WithDialer(dial)}, opts...)
	c, err := client.New("http://parley.test", all...)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// device returns a maker of clients for user id that share one durable
// outbox file, as the successive runs of an app on one device do, and the
// first run, connected.
func (b *bubble) device(id string) (func() *client.Client, *client.Client) {
	b.t.Helper()
	file := filepath.Join(b.t.TempDir(), "outbox.db")
	tok := b.token(id)
	opts := []client.Option{client.WithToken(tok), client.WithOutboxFile(file)}
	return func() *client.Client { return b.client(opts...) }, b.connected(opts...)
}

// connected makes a client with opts, as client does, and connects it.
func (b *bubble) connected(opts ...client.Option) *client.Client {
	b.t.Helper()
	c := b.client(opts...)
	if err := c.Connect(context.Background()); err != nil {
		b.t.Fatal(err)
	}
	return c
}

// direct makes a client for user id that dials the server around the
// proxy, so the proxy's faults never reach it, and connects it.
func (b *bubble) direct(id string) *client.Client {
	b.t.Helper()
	return b.connected(client.WithToken(b.token(id)), client.WithDialer(func(ctx context.Context, _, _ string) (net.Conn, error) { return b.back.Dial(ctx) }))
}

// bubbleTest runs f in a synctest bubble with a fresh server (newBubble
// with the default config) and a background context: the prologue of
// most tests here.
func bubbleTest(t *testing.T, f func(t *testing.T, b *bubble, ctx context.Context)) {
	synctest.Test(t, func(t *testing.T) { f(t, newBubble(t, nil), context.Background()) })
}
