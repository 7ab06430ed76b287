package main

import (
	"context"
	"testing"

	"github.com/parleychat/parley/internal/natsbroker"
	"github.com/parleychat/parley/internal/natsbroker/natstest"
)

// TestOpenBrokerPendingLimits: --nats-pending-msgs and --nats-pending-bytes
// reach the NATS subscription's bounds.
func TestOpenBrokerPendingLimits(t *testing.T) {
	b, err := openBroker(context.Background(), ServeCmd{Broker: natstest.URL(t), NATSPendingMsgs: 7, NATSPendingBytes: 12345})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	nb, ok := b.(*natsbroker.Broker)
	if !ok {
		t.Fatalf("openBroker gave a %T, want a NATS broker", b)
	}
	if msgs, bytes := nb.PendingLimits(); msgs != 7 || bytes != 12345 {
		t.Fatalf("pending limits %d messages, %d bytes; want 7, 12345", msgs, bytes)
	}
}
