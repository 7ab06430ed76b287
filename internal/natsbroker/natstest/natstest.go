// Package natstest gives tests a NATS server: the machine's, or an
// embedded one.
package natstest

import (
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// URL returns the machine's NATS (PARLEY_TEST_NATS), or else starts an
// embedded one on 127.0.0.1 that is shut down when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("PARLEY_TEST_NATS"); u != "" {
		return u
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
