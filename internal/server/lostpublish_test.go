package server_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/servertest"
)

// dropBroker loses the next publish of durable events once drop is set,
// as a node that died between commit and publish would.
type dropBroker struct {
	parley.Broker
	drop atomic.Bool
}

func (b *dropBroker) Publish(ctx context.Context, m parley.BrokerMessage) error {
	if len(m.Events) > 0 && m.Events[0].Pos > 0 && b.drop.CompareAndSwap(true, false) {
		return nil
	}
	return b.Broker.Publish(ctx, m)
}

// TestLostPublishIsDelivered: a message committed but never published, with
// no later event to reveal the gap, still reaches the other member, once,
// through the hub's poll of the store's head; the next message follows it
// in order.
func TestLostPublishIsDelivered(t *testing.T) {
	br := &dropBroker{Broker: membroker.New()}
	t.Cleanup(func() { br.Close() })
	srv := servertest.Start(t, servertest.WithBroker(br))
	a, b, conv := directPair(t, srv)
	b.event(parley.EventConversationUpdated)

	br.drop.Store(true)
	lost := a.send(conv.ID, "c1", "lost")
	if br.drop.Load() {
		t.Fatal("the send's events were not published through the broker")
	}
	ev := b.event(parley.EventNewMessage)
	if ev.Message == nil || ev.Message.ID != lost.ID {
		t.Fatalf("bob got %+v, want the unpublished message %s", ev.Message, lost.ID)
	}
	after := a.send(conv.ID, "c2", "after")
	ev2 := b.event(parley.EventNewMessage)
	if ev2.Message == nil || ev2.Message.ID != after.ID || ev2.Pos != ev.Pos+1 {
		t.Fatalf("next event %d %+v, want %s at position %d (no repeat, in order)", ev2.Pos, ev2.Message, after.ID, ev.Pos+1)
	}
}
