package server_test

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// rawClient is a WebSocket client on gobwas/ws's low-level frame API: it
// answers nothing by itself (coder/websocket, under wsClient, answers
// every protocol ping inside its reads), so a test decides what a ping
// gets. Frames are built and parsed by the library.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	mu sync.Mutex // one writer at a time
}

// dialRaw connects and says hello with token (one frame per message), and
// returns when the welcome came; hello is when the hello was sent.
func dialRaw(t testing.TB, srv *servertest.Server, token string) (c *rawClient, hello time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	nc, _, _, err := ws.Dial(ctx, srv.WSURL())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	c = &rawClient{t: t, nc: nc}
	hello = time.Now()
	c.text(t, protocol.OpHello, protocol.Hello{Token: token})
	for {
		f := c.frame(t)
		if f.Header.OpCode != ws.OpText {
			continue
		}
		var fr protocol.Frame
		if err := json.Unmarshal(f.Payload, &fr); err != nil {
			t.Fatal(err)
		}
		if fr.Type != protocol.TypeWelcome {
			t.Fatalf("after hello got %s %+v, want welcome", fr.Type, fr.Error)
		}
		return c, hello
	}
}

// text sends a request frame.
func (c *rawClient) text(t testing.TB, op string, data any) {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(protocol.Request{Op: op, Data: raw})
	if err := c.write(ws.NewTextFrame(b)); err != nil {
		t.Fatalf("write %s: %v", op, err)
	}
}

// write sends one frame, masked as a client must.
func (c *rawClient) write(f ws.Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ws.WriteFrame(c.nc, ws.MaskFrame(f))
}

// frame reads the next frame from the server (bounded by testWait).
func (c *rawClient) frame(t testing.TB) ws.Frame {
	t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(testWait))
	f, err := ws.ReadFrame(c.nc)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return f
}

// frameCloseCode is the code of a close frame.
func frameCloseCode(f ws.Frame) ws.StatusCode {
	code, _ := ws.ParseCloseFrameData(f.Payload)
	return code
}

// heartbeatConfig is a short heartbeat with the defaults' shape (the ping
// goes out after 1.5 intervals).
func heartbeatConfig(interval, timeout time.Duration) servertest.Option {
	return servertest.WithConfig(func(c *server.Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = interval, timeout
	})
}

// TestHeartbeatPongKeepsConnection: a client that sends no pings of its
// own (a hidden browser tab whose timers are throttled) but whose
// WebSocket stack answers protocol pings stays connected well past the
// heartbeat timeout: the server pings it once it has been silent for 1.5
// intervals, and the pong counts as hearing from it. A client that pings
// every interval as told is never sent one.
func TestHeartbeatPongKeepsConnection(t *testing.T) {
	const interval, timeout = time.Second, 3 * time.Second
	srv := servertest.Start(t, heartbeatConfig(interval, timeout))
	quiet, _ := dialRaw(t, srv, srv.Token(t, "alice", "Alice"))
	steady, _ := dialRaw(t, srv, srv.Token(t, "bob", "Bob"))
	end := time.Now().Add(8 * time.Second) // 2.7 timeouts

	var wg sync.WaitGroup
	// steady pings in the protocol every interval, from its own goroutine.
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				if steady.write(ws.NewTextFrame([]byte(`{"op":"ping"}`))) != nil {
					return
				}
			}
		}
	}()
	steadyPings := make(chan int, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		defer func() { steadyPings <- n }()
		for {
			steady.nc.SetReadDeadline(end)
			f, err := ws.ReadFrame(steady.nc)
			if err != nil {
				return // the deadline
			}
			switch f.Header.OpCode {
			case ws.OpPing:
				n++
				steady.write(ws.NewPongFrame(f.Payload))
			case ws.OpClose:
				t.Errorf("the client pinging every interval was closed: %d", frameCloseCode(f))
				return
			}
		}
	}()

	pings := 0
	for {
		quiet.nc.SetReadDeadline(end)
		f, err := ws.ReadFrame(quiet.nc)
		if err != nil {
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("quiet client: read: %v", err)
			}
			break
		}
		switch f.Header.OpCode {
		case ws.OpPing:
			pings++
			if err := quiet.write(ws.NewPongFrame(f.Payload)); err != nil {
				t.Fatalf("pong: %v", err)
			}
		case ws.OpClose:
			t.Fatalf("the client answering protocol pings was closed with %d after %d pings", frameCloseCode(f), pings)
		}
	}
	close(stop)
	wg.Wait()
	// 8 s with a ping every 1.5-1.8 s of silence: 4 or 5.
	if pings < 3 {
		t.Errorf("quiet client got %d protocol pings in 8 s, want at least 3", pings)
	}
	if n := <-steadyPings; n != 0 {
		t.Errorf("the client pinging every interval got %d protocol pings, want 0", n)
	}
	if n := metric(t, srv, "parley_heartbeat_pings_total"); n < float64(pings) {
		t.Errorf("parley_heartbeat_pings_total %v, want at least the %d pings received", n, pings)
	}
	// Still served: a request is answered.
	quiet.text(t, protocol.OpPing, nil)
	for {
		f := quiet.frame(t)
		if f.Header.OpCode == ws.OpText {
			var fr protocol.Frame
			if err := json.Unmarshal(f.Payload, &fr); err != nil || fr.Type != protocol.TypePong {
				t.Fatalf("after the pings got %s (%v), want pong", f.Payload, err)
			}
			break
		}
	}
}

// TestHeartbeatTimeout: a client that answers nothing, neither protocol
// pings nor with pings of its own, gets exactly one protocol ping (after
// 1.5 intervals of silence, none while it is outstanding) and is closed
// with 4002 within the documented window: not before the timeout, and by
// 1.1 timeouts after the server last heard it (plus scheduling slack).
func TestHeartbeatTimeout(t *testing.T) {
	const interval, timeout = 400 * time.Millisecond, 1200 * time.Millisecond
	srv := servertest.Start(t, heartbeatConfig(interval, timeout))
	c, hello := dialRaw(t, srv, srv.Token(t, "alice", "Alice"))
	welcomed := time.Now()
	var pingAt []time.Duration
	for {
		f := c.frame(t)
		at := time.Since(hello)
		switch f.Header.OpCode {
		case ws.OpPing:
			pingAt = append(pingAt, at)
			continue
		case ws.OpClose:
		default:
			continue
		}
		if code := frameCloseCode(f); code != protocol.CloseHeartbeatTimeout {
			t.Fatalf("close %d, want 4002", code)
		}
		if at < timeout {
			t.Errorf("closed %v after the hello, before the timeout (%v)", at, timeout)
		}
		// The server last read the hello, before the welcome.
		if late := time.Since(welcomed); late > timeout*11/10+500*time.Millisecond {
			t.Errorf("closed %v after the welcome, want within 1.1 x %v (and 0.5 s slack)", late, timeout)
		}
		break
	}
	if len(pingAt) != 1 {
		t.Fatalf("got protocol pings at %v, want exactly one", pingAt)
	}
	if pingAt[0] < interval*3/2 {
		t.Errorf("pinged %v after the hello, want 1.5 intervals (%v) of silence first", pingAt[0], interval*3/2)
	}
}

// TestPongBeforeHello: a pong the server did not ask for, before the
// hello, is ignored (RFC 6455 allows unsolicited pongs): the hello after
// it is welcomed. The reader returns pongs now (they count as heard), and
// the hello's read must not take one for the hello.
func TestPongBeforeHello(t *testing.T) {
	srv := servertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	nc, _, _, err := ws.Dial(ctx, srv.WSURL())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	c := &rawClient{t: t, nc: nc}
	if err := c.write(ws.NewPongFrame([]byte("unasked"))); err != nil {
		t.Fatal(err)
	}
	c.text(t, protocol.OpHello, protocol.Hello{Token: srv.Token(t, "alice", "Alice")})
	f := c.frame(t)
	var fr protocol.Frame
	if f.Header.OpCode != ws.OpText || json.Unmarshal(f.Payload, &fr) != nil || fr.Type != protocol.TypeWelcome {
		t.Fatalf("after a pong and a hello got %v %q, want a welcome", f.Header.OpCode, f.Payload)
	}
}

// TestHeartbeatCoderCountsNoPings: the coder transport (--ws-transport
// coder, kept for benchmarks) sends no heartbeat pings, so
// parley_heartbeat_pings_total counts none for it: a silent client gets
// no ping and is closed with 4002, and the metric stays 0. The sweep
// queued it a ping the transport skipped, and counted it as sent.
func TestHeartbeatCoderCountsNoPings(t *testing.T) {
	const interval, timeout = 400 * time.Millisecond, 1200 * time.Millisecond
	srv := servertest.Start(t, heartbeatConfig(interval, timeout), servertest.WithConfig(func(c *server.Config) {
		c.Transport = server.TransportCoder
	}))
	c, _ := dialRaw(t, srv, srv.Token(t, "alice", "Alice"))
	for {
		f := c.frame(t)
		if f.Header.OpCode == ws.OpPing {
			t.Fatal("the coder transport sent a heartbeat ping")
		}
		if f.Header.OpCode == ws.OpClose {
			if code := frameCloseCode(f); code != protocol.CloseHeartbeatTimeout {
				t.Fatalf("close %d, want 4002", code)
			}
			break
		}
	}
	// Closed at the timeout: sweeps ran past pingAfter's silence.
	if n := metric(t, srv, "parley_heartbeat_pings_total"); n != 0 {
		t.Errorf("parley_heartbeat_pings_total %v, want 0: the transport sent none", n)
	}
}
