package client_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/servertest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a real server with a fault proxy in front of it.
type env struct {
	srv   *servertest.Server
	proxy *faultproxy.Proxy
}

func newEnv(t *testing.T, opts ...servertest.Option) *env {
	t.Helper()
	srv := servertest.Start(t, opts...)
	p, err := faultproxy.Listen("127.0.0.1:0", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return &env{srv: srv, proxy: p}
}

// client makes a client for user id through the proxy, closed at the end
// of the test.
func (e *env) client(t *testing.T, id string, opts ...client.Option) *client.Client {
	t.Helper()
	tok := e.srv.Token(t, id, "User "+id)
	all := append([]client.Option{client.WithToken(tok), client.WithBackoff(20*time.Millisecond, 200*time.Millisecond)}, opts...)
	c, err := client.New("http://"+e.proxy.Addr(), all...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return c
}

func connect(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []client.Event
	nmsgs  int // NewMessage events among them
	wake   chan struct{}
}

func record(c *client.Client) *recorder {
	r := &recorder{wake: make(chan struct{}, 1)}
	c.AddEventHandler("recorder", func(ev client.Event) {
		r.mu.Lock()
		r.events = append(r.events, ev)
		if _, ok := ev.(client.NewMessage); ok {
			r.nmsgs++
		}
		r.mu.Unlock()
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})
	return r
}

// recorded returns the events of type T that r saw so far, in order.
func recorded[T client.Event](r *recorder) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, ev := range r.events {
		if e, ok := ev.(T); ok {
			out = append(out, e)
		}
	}
	return out
}

// messages returns the NewMessage events seen so far, by conversation.
func (r *recorder) messages() map[string][]parley.Message {
	out := make(map[string][]parley.Message)
	for _, nm := range recorded[client.NewMessage](r) {
		out[nm.Message.ConversationID] = append(out[nm.Message.ConversationID], nm.Message)
	}
	return out
}

// waitMessages waits until n NewMessage events were recorded.
func (r *recorder) waitMessages(t *testing.T, what string, n int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		r.mu.Lock()
		got := r.nmsgs
		r.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s: %d of %d messages", what, got, n)
		}
	}
}

// waitFor waits until cond holds over the recorded events.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]client.Event) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		r.mu.Lock()
		ok := cond(r.events)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestSendAndReceive(t *testing.T) {
	e := newEnv(t)
	alice := e.client(t, "alice")
	bob := e.client(t, "bob")
	rb := record(bob)
	connect(t, alice)
	connect(t, bob)
	ctx := context.Background()
	cv := mustGroup(t, alice, "bob")
	m, err := alice.Send(ctx, cv.ID, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Status(); got != client.Sending && got != client.Sent {
		t.Fatalf("status %v", got)
	}
	stored, err := m.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Seq != 1 || stored.ClientID != m.ClientID() || stored.Text != "hello" {
		t.Fatalf("stored %+v", stored)
	}
	rb.waitFor(t, "bob gets the message", func(evs []client.Event) bool {
		for _, ev := range evs {
			if nm, ok := ev.(client.NewMessage); ok && nm.Message.ID == stored.ID {
				return true
			}
		}
		return false
	})
}

// BenchmarkSendRoundTrip is Send to Sent against the real server over
// loopback (server and client on the same machine), 32 in flight.
func BenchmarkSendRoundTrip(b *testing.B) {
	srv := servertest.Start(b)
	ctx := context.Background()
	c := servertest.Connect(ctx, b, srv.URL, client.WithToken(srv.Token(b, "alice", "Alice")))
	cv, err := c.CreateGroup(ctx, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var last *client.Message
	for i := 0; i < b.N; i++ {
		m, err := c.Send(ctx, cv.ID, "hello there, how are you today?")
		if err != nil {
			// The outbox is full: wait for the oldest to drain.
			last.Wait(ctx)
			i--
			continue
		}
		last = m
	}
	if _, err := last.Wait(ctx); err != nil {
		b.Fatal(err)
	}
}
