package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/parleychat/parley/internal/natsbroker"
)

// TestOpenBrokerPendingLimits: --nats-pending-msgs and --nats-pending-bytes
// reach the NATS subscription's bounds.
func TestOpenBrokerPendingLimits(t *testing.T) {
	b, err := openBroker(context.Background(), ServeCmd{Broker: testNATS(t), NATSPendingMsgs: 7, NATSPendingBytes: 12345})
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

// testNATS is the machine's NATS (PARLEY_TEST_NATS), or else an embedded
// one that lives as long as the test.
func testNATS(t *testing.T) string {
	t.Helper()
	if url := os.Getenv("PARLEY_TEST_NATS"); url != "" {
		return url
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv.ClientURL()
}
