package server_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// goroutinesWith counts the goroutines whose stack holds every one of
// frames.
func goroutinesWith(frames ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		all := true
		for _, f := range frames {
			all = all && bytes.Contains(g, []byte(f))
		}
		if all {
			count++
		}
	}
	return count
}

// TestHelloOffHTTPGoroutine: a connection waiting for its hello is no
// longer on net/http's goroutine, which would keep the request, the
// response and their bufio reader and writer (unused after the upgrade)
// and its grown stack for as long as the hello and the replay take.
func TestHelloOffHTTPGoroutine(t *testing.T) {
	srv := servertest.Start(t)
	const n = 16
	for range n {
		dial(t, srv, nil) // upgraded, no hello sent
	}
	deadline := time.Now().Add(testWait)
	for goroutinesWith("server.(*conn).readHello") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections wait for their hello, want %d", goroutinesWith("server.(*conn).readHello"), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := goroutinesWith("server.(*conn).readHello", "net/http.(*conn).serve"); got != 0 {
		t.Fatalf("%d hellos wait on net/http's goroutine, want 0", got)
	}
}

// checkCountingStore counts the EnsureUser calls in progress and keeps
// the most seen at once. Each call waits (at most wait) until one more
// than limit are in progress, so a server that lets more than limit in
// at once is caught whatever the scheduling.
type checkCountingStore struct {
	parley.Store
	limit int
	wait  time.Duration

	mu       sync.Mutex
	in, most int
	more     chan struct{} // closed when in exceeds limit
}

func (s *checkCountingStore) EnsureUser(ctx context.Context, id, name string) (parley.User, error) {
	s.mu.Lock()
	s.in++
	s.most = max(s.most, s.in)
	if s.in > s.limit {
		select {
		case <-s.more:
		default:
			close(s.more)
		}
	}
	s.mu.Unlock()
	select {
	case <-s.more:
	case <-time.After(s.wait):
	}
	defer func() {
		s.mu.Lock()
		s.in--
		s.mu.Unlock()
	}()
	return s.Store.EnsureUser(ctx, id, name)
}

// startUserChecks starts a server on SQLite whose store is wrap's around
// it, checking at most limit users in the store at once.
func startUserChecks(t *testing.T, limit int, wrap func(parley.Store) parley.Store) *servertest.Server {
	return servertest.Start(t,
		servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
			db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
			return wrap(db), err
		}),
		servertest.WithConfig(func(c *server.Config) { c.UserChecks = limit }))
}

// TestHelloBurstUserChecks: a burst of hellos of users the node has not
// cached (each a store write on first sight) checks at most
// Config.UserChecks of them in the store at once; the others wait for a
// turn instead of each waiting in the store's queue on a grown stack.
// Every hello is still welcomed.
func TestHelloBurstUserChecks(t *testing.T) {
	const limit, n = 2, 12
	cs := &checkCountingStore{limit: limit, wait: 100 * time.Millisecond, more: make(chan struct{})}
	srv := startUserChecks(t, limit, func(db parley.Store) parley.Store { cs.Store = db; return cs })
	var wg sync.WaitGroup
	for i := range n {
		tok, _, err := auth.Mint(srv.Secret, fmt.Sprint("burst-", i), fmt.Sprint("Burst ", i), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, srv, nil)
		c.sendOp(protocol.OpHello, "", protocol.Hello{Token: tok})
		wg.Go(func() {
			if f, err := c.read(); err != nil || f.Type != protocol.TypeWelcome {
				t.Errorf("after hello: %v %+v, want welcome", err, f)
			}
		})
	}
	wg.Wait()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.most > limit {
		t.Fatalf("%d users checked in the store at once, want at most %d", cs.most, limit)
	}
}

// gatedUserStore holds every EnsureUser until gate is closed, counting
// the calls that entered.
type gatedUserStore struct {
	parley.Store
	gate    chan struct{}
	entered atomic.Int32
}

func (s *gatedUserStore) EnsureUser(ctx context.Context, id, name string) (parley.User, error) {
	s.entered.Add(1)
	select {
	case <-s.gate:
	case <-ctx.Done():
		return parley.User{}, ctx.Err()
	}
	return s.Store.EnsureUser(ctx, id, name)
}

// TestHelloWaitsWithoutGoroutine: a hello waiting for its turn to check
// its user in the store holds no goroutine (only its connection and its
// decoded hello), so a burst of hellos of new users costs no stack each
// while the store's writer catches up; once the store answers, every one
// is welcomed.
func TestHelloWaitsWithoutGoroutine(t *testing.T) {
	const limit, n = 2, 12
	gs := &gatedUserStore{gate: make(chan struct{})}
	srv := startUserChecks(t, limit, func(db parley.Store) parley.Store { gs.Store = db; return gs })
	released := false
	release := func() {
		if !released {
			released = true
			close(gs.gate)
		}
	}
	defer release()
	clients := make([]*wsClient, n)
	for i := range n {
		tok, _, err := auth.Mint(srv.Secret, fmt.Sprint("wait-", i), fmt.Sprint("Wait ", i), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = dial(t, srv, nil)
		clients[i].sendOp(protocol.OpHello, "", protocol.Hello{Token: tok})
	}
	// Every hello must have reached the server before the count is
	// read: on a loaded machine the last ones are still on their way
	// when the first two have entered the store (a run at load 15 read 9
	// waiting here), so the wait is for all three conditions.
	deadline := time.Now().Add(time.Minute)
	for gs.entered.Load() < limit || goroutinesWith("server.(*conn).serve(") > 0 ||
		metric(t, srv, "parley_user_checks_waiting") < n-limit {
		if time.Now().After(deadline) {
			t.Fatalf("%d checks in the store, %d hellos on goroutines of their own, %v waiting; want %d, 0 and %d",
				gs.entered.Load(), goroutinesWith("server.(*conn).serve("), metric(t, srv, "parley_user_checks_waiting"), limit, n-limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := gs.entered.Load(); got != limit {
		t.Fatalf("%d checks in the store, want %d", got, limit)
	}
	if got := metric(t, srv, "parley_user_checks_waiting"); got != n-limit {
		t.Fatalf("parley_user_checks_waiting %v, want %d", got, n-limit)
	}
	release()
	for i, c := range clients {
		if f, err := c.read(); err != nil || f.Type != protocol.TypeWelcome {
			t.Fatalf("client %d after hello: %v %+v, want welcome", i, err, f)
		}
	}
	if got := gs.entered.Load(); got != n {
		t.Errorf("%d checks in the store, want %d", got, n)
	}
}
