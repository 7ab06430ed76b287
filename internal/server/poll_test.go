//go:build linux

package server_test

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// waitParked waits until n connections are parked with the poller.
func waitParked(t *testing.T, srv *servertest.Server, n int) {
	t.Helper()
	// A bound on a broken run, not an assertion on speed.
	for deadline := time.Now().Add(testWait); srv.Server.ParkedConns() != n; runtime.Gosched() {
		if time.Now().After(deadline) {
			// What the readers were doing, for a failure seen once in
			// 40 runs under load (-race, two CPU burners): "0 parked".
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d connections parked, want %d; poller: %s\n%s", srv.Server.ParkedConns(), n, srv.Server.PollerState(), b.String())
		}
	}
}

// TestStaleWakeParksAgain: a reader the poller starts for bytes that are
// gone (its edge came for bytes the last reader read before it parked:
// the poller takes a wait's events before it hands them out) parks again
// at once, and the connections still answer. Before, the reader trusted
// the wake and waited in a read holding its buffer and goroutine until
// the client's next message; under load a whole set of idle connections
// stayed so (TestIdleConnectionsParked, once in 40 runs with two CPU
// burners: "0 connections parked").
func TestStaleWakeParksAgain(t *testing.T) {
	srv := startLimited(t, nil)
	const n = 8
	cs := connectParked(t, srv, n)
	for round := range 3 {
		srv.Server.StaleWake()
		waitParked(t, srv, n)
		pingRound(t, cs, round)
		waitParked(t, srv, n)
	}
}

// TestIdleConnectionsParked: an idle connection has no reader goroutine
// (it is parked with the poller), every request wakes it, also when many
// connections' requests arrive at once and one client sends several
// frames in one burst, and a parked connection ends when its client drops
// it or sends a close frame (goleak checks the goroutines at the end of
// the package). A parked connection the server closes: TestHeartbeatTimeout
// and the shutdown tests.
func TestIdleConnectionsParked(t *testing.T) {
	srv := startLimited(t, nil)
	const n = 24
	cs := connectParked(t, srv, n)
	for round := range 8 {
		pingRound(t, cs, round)
		waitParked(t, srv, n)
	}

	// The client goes: its parked connection wakes on the end of stream.
	cs[0].ws.CloseNow()
	waitParked(t, srv, n-1)
	// The client's close frame: the server answers it (Close returns
	// once it has) and the connection ends.
	if err := cs[1].ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("closing client 1: %v", err)
	}
	waitParked(t, srv, n-2)
}

// pingRound has every client send three pings in a row (they may share
// a read) and read their pongs, in order.
func pingRound(t *testing.T, cs []*wsClient, round int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	for i, c := range cs {
		wg.Go(func() {
			for k := range 3 {
				c.sendOp(protocol.OpPing, fmt.Sprint(round, "-", k), nil)
			}
			for k := range 3 {
				f, err := c.read()
				if err != nil {
					errs <- fmt.Errorf("client %d round %d: %v", i, round, err)
					return
				}
				if want := fmt.Sprint(round, "-", k); f.Type != protocol.TypePong || f.ID != want {
					errs <- fmt.Errorf("client %d round %d: got %s %q, want pong %q", i, round, f.Type, f.ID, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestPollerFailure: when the poller's wait fails (a bug, not a client's
// doing), the process goes on: every parked connection gets its reader
// goroutine back and is served, and none parks again.
func TestPollerFailure(t *testing.T) {
	srv := startLimited(t, nil)
	cs := connectParked(t, srv, 8)
	srv.Server.FailPoller(errors.New("epoll_wait: bad file descriptor (test)"))
	waitParked(t, srv, 0)
	for round := range 3 {
		pingRound(t, cs, round)
		if p := srv.Server.ParkedConns(); p != 0 {
			t.Fatalf("%d connections parked after the poller failed", p)
		}
	}
	// A new connection is served too.
	c := connect(t, srv, srv.Token(t, "late", "Late"), nil)
	pingRound(t, []*wsClient{c}, 0)
}

// connectParked connects n users and waits until their idle connections
// are parked with the poller.
func connectParked(t *testing.T, srv *servertest.Server, n int) []*wsClient {
	t.Helper()
	cs := make([]*wsClient, n)
	for i := range cs {
		cs[i] = connect(t, srv, srv.Token(t, fmt.Sprint("u", i), fmt.Sprint("U", i)), nil)
	}
	waitParked(t, srv, n)
	return cs
}

// TestSendWakeCounted: parley_send_wake_seconds has one sample for each
// wake-up of a parked connection that brings a send, and none for one
// that brings a ping.
func TestSendWakeCounted(t *testing.T) {
	srv := startLimited(t, nil)
	a, conv := aliceToBob(t, srv)
	waitParked(t, srv, 1)
	wakes := func() float64 { return srv.Server.MetricSum("parley_send_wake_seconds", nil) }
	base := wakes() // the create_direct's wake-up, if it came after a park: not a send
	if base != 0 {
		t.Fatalf("%v samples before any send", base)
	}
	a.sendOp(protocol.OpPing, "p", nil)
	a.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypePong })
	waitParked(t, srv, 1)
	if n := wakes(); n != 0 {
		t.Fatalf("%v samples after a ping", n)
	}
	for i := range 4 {
		a.send(conv.ID, fmt.Sprint("c", i), "hi")
		waitParked(t, srv, 1)
		if n := wakes(); n != float64(i+1) {
			t.Fatalf("%v samples after %d sends, each after a park", n, i+1)
		}
	}
}
