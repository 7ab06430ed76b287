package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestPanicRecovered makes each goroutine that serves a connection or a
// request panic once (the test hook standing for a bug) and checks that
// the process and its other clients go on: the panicking connection gets
// 1011 (or its request a 500), parley_panics_total{where} counts it, the
// connection is torn down (unregistered), a client connected before still
// gets a message sent after, and no goroutine is left behind.
func TestPanicRecovered(t *testing.T) {
	for _, tc := range []struct {
		hook, where string
		// attack makes the hook fire and returns the close code (or HTTP
		// status) the client got.
		attack func(t *testing.T, srv *servertest.Server) int
	}{
		{"reader", "reader", afterHello("reader", protocol.OpPing)},
		{"worker", "worker", afterHello("worker", protocol.OpConversations)},
		{"writer", "writer", afterHello("writer", protocol.OpPing)}, // the pong starts the writer
		{"hello", "hello", atHello("hello")},                        // before the connection is registered
		{"start", "hello", atHello("start")},                        // after: the teardown must unregister it
		{"timer", "timer", func(t *testing.T, srv *servertest.Server) int {
			srv.Server.PanicAt("timer") // the hello timer: no hello is sent
			return int(dial(t, srv, nil).closeCode())
		}},
		{"http", "http", func(t *testing.T, srv *servertest.Server) int {
			srv.Server.PanicAt("http")
			r := httpDo(t, srv, "GET", "/healthz", "", "")
			if r.err.Code != "internal" {
				t.Errorf("500 body: %s", r.body)
			}
			return r.status
		}},
	} {
		t.Run(tc.hook, func(t *testing.T) {
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { // runs last, after the server's cleanup
				http.DefaultClient.CloseIdleConnections()
				goleak.VerifyNone(t, ignore)
			})
			srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.HelloTimeout = 2 * time.Second }))
			by := newBystander(t, srv)
			want := int(websocket.StatusInternalError)
			if tc.hook == "http" {
				want = http.StatusInternalServerError
			}
			if tc.hook != "http" && !protocol.ShouldReconnect(want) {
				t.Fatalf("protocol.ShouldReconnect(%d) is false: clients would not come back", want)
			}
			if got := tc.attack(t, srv); got != want {
				t.Fatalf("the panicking client got %d, want %d", got, want)
			}
			if n := srv.Server.Panics(tc.where); n != 1 {
				t.Fatalf("parley_panics_total{where=%q} = %v, want 1", tc.where, n)
			}
			by.check(t)
			by.ping(t)
			deadline := time.Now().Add(testWait)
			for srv.Server.Conns() != 1 { // the bystander's
				if time.Now().After(deadline) {
					t.Fatalf("%d connections registered, want the bystander's only", srv.Server.Conns())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// afterHello connects, arms the hook at where, sends op and returns the
// close code.
func afterHello(where, op string) func(t *testing.T, srv *servertest.Server) int {
	return func(t *testing.T, srv *servertest.Server) int {
		c := connect(t, srv, srv.Token(t, "mallory", "Mallory"), nil)
		srv.Server.PanicAt(where)
		c.sendOp(op, "r1", nil)
		return int(c.closeCode())
	}
}

// atHello arms the hook at where, then dials and says hello, and returns
// the close code.
func atHello(where string) func(t *testing.T, srv *servertest.Server) int {
	return func(t *testing.T, srv *servertest.Server) int {
		srv.Server.PanicAt(where)
		c := dial(t, srv, nil)
		c.sendOp(protocol.OpHello, "", protocol.Hello{Token: srv.Token(t, "mallory", "Mallory")})
		return int(c.closeCode())
	}
}
