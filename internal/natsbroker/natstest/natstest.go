// Package natstest gives tests a NATS server: the machine's, or an
// embedded one.
package natstest

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
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

var subjects atomic.Int64

// Subject returns a subject no other test shares: tests that share a NATS
// server (the machine's, used by other test runs too) must not hear each
// other. It holds the process id, a count and the test's name.
func Subject(t testing.TB) string {
	name := strings.NewReplacer("/", "_", " ", "_", ".", "_").Replace(t.Name())
	return fmt.Sprintf("parleytest.%d.%d.%s", os.Getpid(), subjects.Add(1), name)
}
