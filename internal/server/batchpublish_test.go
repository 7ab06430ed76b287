package server_test

import (
	"context"
	"sync"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/servertest"
)

// countBroker counts how often each durable position is published.
type countBroker struct {
	parley.Broker
	mu  sync.Mutex
	pub map[int64]int
}

func (b *countBroker) Publish(ctx context.Context, m parley.BrokerMessage) error {
	b.mu.Lock()
	for _, ev := range m.Events {
		if ev.Pos > 0 {
			b.pub[ev.Pos]++
		}
	}
	b.mu.Unlock()
	return b.Broker.Publish(ctx, m)
}

// TestStoreEventsPublishedOnce: on a store that publishes its batches'
// events itself (parley.CommitPublisher), every durable event goes to the
// broker exactly once (the writers do not publish it again), and the
// other member gets each message once, in order.
func TestStoreEventsPublishedOnce(t *testing.T) {
	br := &countBroker{Broker: membroker.New(), pub: map[int64]int{}}
	t.Cleanup(func() { br.Close() })
	srv := servertest.Start(t, servertest.WithBroker(br))
	if _, ok := srv.Store.(parley.CommitPublisher); !ok {
		t.Fatalf("%T is no parley.CommitPublisher", srv.Store)
	}
	a, b, conv := directPair(t, srv)
	b.event(parley.EventConversationUpdated)
	const n = 5
	var last int64
	for i := range n {
		m := a.send(conv.ID, "c"+string(rune('a'+i)), "hi")
		ev := b.event(parley.EventNewMessage)
		if ev.Message == nil || ev.Message.ID != m.ID || ev.Pos <= last {
			t.Fatalf("bob got %d %+v, want message %s after position %d", ev.Pos, ev.Message, m.ID, last)
		}
		last = ev.Pos
	}
	br.mu.Lock()
	defer br.mu.Unlock()
	for pos := int64(1); pos <= last; pos++ {
		if br.pub[pos] != 1 {
			t.Errorf("position %d published %d times, want once", pos, br.pub[pos])
		}
	}
}
