package natsbroker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/brokertest"
	"github.com/parleychat/parley/internal/natsbroker"
	"github.com/parleychat/parley/internal/natsbroker/natstest"
)

// embedded is a NATS server started in TestMain for the whole run.
var embedded *server.Server

func TestMain(m *testing.M) {
	srv, err := startServer(&server.Options{Host: "127.0.0.1", Port: -1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	embedded = srv
	code := m.Run()
	srv.Shutdown()
	srv.WaitForShutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func startServer(opts *server.Options) (*server.Server, error) {
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded NATS server did not start")
	}
	return srv, nil
}

func open(t *testing.T, url, subject, name string) *natsbroker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := natsbroker.Open(ctx, natsbroker.Config{URL: url, Subject: subject, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func pairOn(url string) brokertest.NewPair {
	return func(t *testing.T) (parley.Broker, parley.Broker) {
		subject := natstest.Subject(t)
		return open(t, url, subject, "a"), open(t, url, subject, "b")
	}
}

// TestConformance runs the broker suite on an embedded NATS server.
func TestConformance(t *testing.T) {
	brokertest.Run(t, pairOn(embedded.ClientURL()))
}

// TestConformanceRealNATS runs the suite on the machine's NATS server.
func TestConformanceRealNATS(t *testing.T) {
	url := os.Getenv("PARLEY_TEST_NATS")
	if url == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PARLEY_TEST_NATS is not set under CI")
		}
		t.Skip("set PARLEY_TEST_NATS=nats://127.0.0.1:4222 to run against a real NATS server (scripts/test does)")
	}
	brokertest.Run(t, pairOn(url))
}

// TestSplitsLargeMessages: a batch of events bigger than the server's max
// payload arrives whole and in order, in several NATS messages; one event
// too big on its own is an error, not a silent drop.
func TestSplitsLargeMessages(t *testing.T) {
	srv, err := startServer(&server.Options{Host: "127.0.0.1", Port: -1, MaxPayload: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	subject := natstest.Subject(t)
	a, b := open(t, srv.ClientURL(), subject, "a"), open(t, srv.ClientURL(), subject, "b")
	got := make(chan parley.BrokerMessage, 100)
	stop, err := b.Subscribe(func(m parley.BrokerMessage) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	var events []parley.Event
	for i := range 40 {
		events = append(events, parley.Event{Pos: int64(i + 1), Type: parley.EventNewMessage,
			Message: &parley.Message{Text: strings.Repeat("x", 1000)}, Audience: []string{"u1"}})
	}
	if err := a.Publish(context.Background(), parley.BrokerMessage{Node: "a", Events: events}); err != nil {
		t.Fatal(err)
	}
	var parts int
	for next := int64(1); next <= 40; {
		select {
		case m := <-got:
			parts++
			for _, e := range m.Events {
				if e.Pos != next || len(e.Audience) != 1 {
					t.Fatalf("got event %d (audience %v), want %d", e.Pos, e.Audience, next)
				}
				next++
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("gave up waiting for event %d", next)
		}
	}
	if parts < 5 {
		t.Errorf("40 KB of events arrived in %d NATS messages of at most 8 KB", parts)
	}

	huge := parley.BrokerMessage{Node: "a", Events: []parley.Event{{Pos: 1, Type: parley.EventNewMessage,
		Message: &parley.Message{Text: strings.Repeat("x", 10<<10)}}}}
	if err := a.Publish(context.Background(), huge); err == nil {
		t.Error("publishing one event over the max payload succeeded")
	}
}

// TestReconnects: when the NATS server restarts, both nodes reconnect on
// their own and their subscriptions work again, and Lost counts the
// reconnect (what others published meanwhile never came).
func TestReconnects(t *testing.T) {
	port := freePort(t)
	srv, err := startServer(&server.Options{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	subject := natstest.Subject(t)
	a, b := open(t, url, subject, "a"), open(t, url, subject, "b")
	got := make(chan parley.BrokerMessage, 100)
	stop, err := b.Subscribe(func(m parley.BrokerMessage) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	lost := b.Lost()

	srv.Shutdown()
	srv.WaitForShutdown()
	srv, err = startServer(&server.Options{Host: "127.0.0.1", Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })

	// Publish until one arrives: messages sent while a node is still
	// reconnecting may be lost, which the contract allows.
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := int64(1); ; i++ {
		if err := a.Publish(context.Background(), parley.BrokerMessage{Node: "a", Events: []parley.Event{{Pos: i}}}); err != nil {
			t.Fatalf("Publish while reconnecting: %v", err)
		}
		select {
		case <-got:
			// nats.go reports the reconnect on its own goroutine,
			// maybe after the first message.
			for b.Lost() == lost {
				select {
				case <-tick.C:
				case <-deadline:
					t.Fatal("Lost did not move after a reconnect")
				}
			}
			return
		case <-tick.C:
		case <-deadline:
			t.Fatal("no message arrived after the NATS server came back")
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestOpenFails: no server is a clear error at start, not a silent retry.
func TestOpenFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := natsbroker.Open(ctx, natsbroker.Config{URL: fmt.Sprintf("nats://127.0.0.1:%d", freePort(t))})
	if err == nil {
		t.Fatal("Open with no server succeeded")
	}
}

// TestSubjectInURL: "?subject=" in the URL picks the subject, so brokers
// opened with the same URL hear each other and a broker on another
// subject hears nothing of theirs; an unknown parameter is an error.
func TestSubjectInURL(t *testing.T) {
	subject := natstest.Subject(t)
	url := embedded.ClientURL() + "?subject=" + subject
	a, b := open(t, url, "", "a"), open(t, embedded.ClientURL(), subject, "b")
	other := open(t, embedded.ClientURL(), subject+".other", "c")
	got := make(chan parley.BrokerMessage, 10)
	stop, err := b.Subscribe(func(m parley.BrokerMessage) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	stray := make(chan parley.BrokerMessage, 10)
	stop2, err := other.Subscribe(func(m parley.BrokerMessage) { stray <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer stop2()
	if err := a.Publish(context.Background(), parley.BrokerMessage{Node: "a"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("a message on ?subject= did not reach a broker on that subject")
	}
	// other published nothing, so a message on its subject would be a's.
	if err := other.Publish(context.Background(), parley.BrokerMessage{Node: "c"}); err != nil {
		t.Fatal(err)
	}
	if m := <-stray; m.Node != "c" {
		t.Errorf("a broker on another subject heard %q", m.Node)
	}

	_, err = natsbroker.Open(context.Background(), natsbroker.Config{URL: embedded.ClientURL() + "?subjekt=x"})
	if err == nil {
		t.Error("an unknown URL parameter was accepted")
	}
}

// TestPendingLimits: a subscription holds at most Config.PendingMsgs
// messages not yet handed to its callback; past that NATS drops them (a
// slow consumer, logged and counted by Lost) instead of the process
// holding them, and the subscription goes on delivering afterwards.
func TestPendingLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	slow := make(chan struct{})
	var once sync.Once
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) {
		if strings.Contains(string(p), "slow consumer") {
			once.Do(func() { close(slow) })
		}
	}), nil))
	b, err := natsbroker.Open(ctx, natsbroker.Config{URL: embedded.ClientURL(), Subject: natstest.Subject(t), Name: "slow",
		Logger: log, PendingMsgs: 4, PendingBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	release := make(chan struct{})
	var got atomic.Int64
	after := make(chan struct{})
	var afterOnce sync.Once
	stop, err := b.Subscribe(func(m parley.BrokerMessage) {
		<-release // the first call holds the subscription until released
		if m.Node == "after" {
			afterOnce.Do(func() { close(after) })
			return
		}
		got.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	const n = 100
	for i := range n {
		if err := b.Publish(ctx, parley.BrokerMessage{Node: "a", Events: []parley.Event{{Pos: int64(i + 1), Type: parley.EventNewMessage}}}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-slow:
	case <-ctx.Done():
		t.Fatal("no slow consumer reported: the pending limit did not apply")
	}
	if b.Lost() == 0 { // counted before the handler logs
		t.Error("Lost did not move for a slow consumer")
	}
	close(release)
	for {
		if err := b.Publish(ctx, parley.BrokerMessage{Node: "after"}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-after:
			if g := got.Load(); g >= n {
				t.Fatalf("the subscription got all %d messages with a pending limit of 4", g)
			}
			return
		case <-time.After(50 * time.Millisecond): // dropped while still full: publish again
		case <-ctx.Done():
			t.Fatal("the subscription delivered nothing after the slow consumer")
		}
	}
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// TestLostCountsLaterDrops: Lost moves for messages dropped after the
// slow-consumer report too. nats.go reports a slow consumer once, at the
// first drop, and not again until a message gets into the queue; a user
// notice dropped later in the same overload (after the cache emptied on
// the report, and maybe cached that user again, old profile and all)
// must move Lost as well, or the user stays cached with the old profile.
func TestLostCountsLaterDrops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := natsbroker.Open(ctx, natsbroker.Config{URL: embedded.ClientURL(), Subject: natstest.Subject(t), Name: "later-drops",
		Logger: slog.New(slog.DiscardHandler), PendingMsgs: 4, PendingBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	release := make(chan struct{})
	after := make(chan struct{})
	var afterOnce sync.Once
	stop, err := b.Subscribe(func(m parley.BrokerMessage) {
		<-release // the first call holds the subscription until released
		if m.Node == "after" {
			afterOnce.Do(func() { close(after) })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	publish := func(node string, n int) {
		t.Helper()
		for range n {
			if err := b.Publish(ctx, parley.BrokerMessage{Node: node, Users: []parley.UserChange{{ID: node}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("first", 20) // fills the queue (4), the rest dropped: reported
	for b.Lost() == 0 {
		if ctx.Err() != nil {
			t.Fatal("Lost did not move for a slow consumer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the rest of the first drops land
	reported := b.Lost()
	publish("later", 20) // the queue is still full: dropped, no report
	time.Sleep(100 * time.Millisecond)
	close(release)
	for {
		publish("after", 1)
		select {
		case <-after:
			if n := b.Lost(); n == reported {
				t.Fatalf("Lost is %d, as after the first report, though messages were dropped since", n)
			}
			return
		case <-time.After(50 * time.Millisecond): // dropped while still full: publish again
		case <-ctx.Done():
			t.Fatal("the subscription delivered nothing after the slow consumer")
		}
	}
}
