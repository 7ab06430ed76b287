package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// laggingStore is a node's view of a store shared with another node.
// While frozen, Events (how the node's hub reads what its broker did not
// bring) finds nothing, so the node's delivery stays behind the store,
// as on a node whose broker subscription stalled or whose process was
// stopped; the other reads (the resume replay, the head) see the store.
// Close is the test's: both nodes share the store.
type laggingStore struct {
	parley.Store
	frozen *atomic.Bool
}

func (s laggingStore) Events(ctx context.Context, after int64, limit int) ([]parley.Event, error) {
	if s.frozen.Load() {
		return nil, nil
	}
	return s.Store.Events(ctx, after, limit)
}

func (laggingStore) Close() error { return nil }

// clusterParts returns what the nodes of an in-process cluster share: a
// SQLite store and a broker, closed when t ends (after the nodes stop),
// and a token secret.
func clusterParts(t *testing.T) (parley.Store, *membroker.Broker, []byte) {
	t.Helper()
	real, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { real.Close() })
	br := membroker.New()
	t.Cleanup(func() { br.Close() })
	secret, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	return real, br, secret
}

// laggingBroker drops what the broker brings to a node while frozen.
type laggingBroker struct {
	parley.Broker
	frozen *atomic.Bool
}

func (b laggingBroker) Subscribe(fn func(parley.BrokerMessage)) (func(), error) {
	return b.Broker.Subscribe(func(m parley.BrokerMessage) {
		if !b.frozen.Load() {
			fn(m)
		}
	})
}

// TestResumeOnLaggingNode: a client that saw positions on node A resumes
// on node B, whose delivery is behind them (its broker subscription and
// its gap fill are stopped). B must replay from the store, up to the
// store's head, not answer resync with its own older head (which would
// rewind the client); when B catches up, it must not deliver again what
// the replay covered. The client's stream holds every event once, in
// position order, and live events follow.
func TestResumeOnLaggingNode(t *testing.T) {
	real, br, secret := clusterParts(t)
	var never, frozen atomic.Bool
	node := func(f *atomic.Bool) *servertest.Server {
		return servertest.Start(t, servertest.WithSecret(secret),
			servertest.WithBroker(laggingBroker{br, f}),
			servertest.WithStore(func(context.Context, string) (parley.Store, error) { return laggingStore{real, f}, nil }))
	}
	a := node(&never)
	frozen.Store(true)
	b := node(&frozen)

	bTok := a.Token(t, "bob", "Bob")
	alice, bob, conv := directPair(t, a)
	var want []string
	var seen []int64
	for i := range 6 {
		want = append(want, fmt.Sprintf("m%d", i))
		alice.send(conv.ID, fmt.Sprint("c", i), want[i])
		seen = append(seen, bob.event(parley.EventNewMessage).Pos)
	}
	bob.ws.CloseNow()

	// Bob has seen m0..m5 and processed up to m2 when his link dropped;
	// he resumes on B, which has delivered none of it.
	from := seen[2]
	bob = connect(t, b, bTok, &from)
	if bob.welcome.Head < seen[5] {
		t.Errorf("welcome head %d on the lagging node, below the store's %d", bob.welcome.Head, seen[5])
	}
	evs, end := collectResume(t, bob)
	if end.Type != protocol.TypeResumed {
		t.Fatalf("resuming from %d on a lagging node: got %s %s, want resumed", from, end.Type, end.Data)
	}
	checkExactlyOnce(t, evs, from, want[3:])

	// B catches up (what it delivers up to the replay's end is not sent
	// to bob again), and a live message follows, once.
	frozen.Store(false)
	alice.send(conv.ID, "live", "live")
	for !containsText(evs, "live") {
		f := bob.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeEvent || f.Type == protocol.TypeResync })
		if f.Type == protocol.TypeResync {
			t.Fatalf("resync after resumed: %s", f.Data)
		}
		if ev := decodeEvent(t, f); ev.Pos > 0 {
			evs = append(evs, ev)
		}
	}
	checkExactlyOnce(t, evs, from, append(want[3:], "live"))
}
