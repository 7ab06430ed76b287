package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// crashFrame is a masked text frame whose 64-bit payload length has its
// top bit set (issue 11): it crashed the server when wsbuf.go parsed frame
// headers itself.
var crashFrame = []byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0x01, 0x01, 0x02, 0x03, 0x04, 0x78, 0x79}

// attacker is a client that has said a valid hello and then writes raw
// bytes to its TCP socket. The WebSocket handshake and the hello go
// through coder/websocket on the client side; after that nc carries
// whatever the test writes, and ws reads what the server answers (its
// close code).
type attacker struct {
	ws *websocket.Conn
	nc *net.TCPConn
}

// dialAttacker connects, says hello with token and reads the welcome.
func dialAttacker(t testing.TB, srv *servertest.Server, token string) *attacker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	var nc *net.TCPConn
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			nc = c.(*net.TCPConn)
		}
		return c, err
	}}
	defer tr.CloseIdleConnections()
	ws, _, err := websocket.Dial(ctx, srv.WSURL(), &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatalf("attacker dial: %v", err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	ws.SetReadLimit(1 << 20)
	data, _ := json.Marshal(protocol.Hello{Token: token})
	hello, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, Data: data})
	if err := ws.Write(ctx, websocket.MessageText, hello); err != nil {
		t.Fatalf("attacker hello: %v", err)
	}
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatalf("attacker welcome: %v", err)
	}
	var f protocol.Frame
	if json.Unmarshal(b, &f) != nil || f.Type != protocol.TypeWelcome {
		t.Fatalf("attacker: got %s after hello, want welcome", b)
	}
	return &attacker{ws: ws, nc: nc}
}

// closeCode reads what the server sends until the connection ends, for at
// most d, and returns the close code (-1 when the server dropped the
// connection, or when d ran out).
func (a *attacker) closeCode(d time.Duration) websocket.StatusCode {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if _, _, err := a.ws.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// bystander is a client connected before an attack; check asserts that
// the server still serves it after the attack.
type bystander struct {
	srv      *servertest.Server
	bob      *wsClient
	carolTok string
	conv     string
	n        atomic.Int64
}

func newBystander(t testing.TB, srv *servertest.Server) *bystander {
	t.Helper()
	b := &bystander{srv: srv, bob: connect(t, srv, srv.Token(t, "bob", "Bob"), nil), carolTok: srv.Token(t, "carol", "Carol")}
	var conv parley.Conversation
	b.bob.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "carol"}, &conv)
	b.conv = conv.ID
	return b
}

// check has carol send bob a message over HTTP and waits for bob to get
// it on his WebSocket.
func (b *bystander) check(t testing.TB) {
	t.Helper()
	text := fmt.Sprintf("still serving %d", b.n.Add(1))
	body, _ := json.Marshal(map[string]string{"client_id": text, "text": text})
	if r := httpDo(t, b.srv, "POST", "/v1/conversations/"+b.conv+"/messages", b.carolTok, string(body)); r.status != http.StatusCreated {
		t.Fatalf("carol's send after the attack: %d %s", r.status, r.body)
	}
	if ev := b.bob.event(parley.EventNewMessage); ev.Message.Text != text {
		t.Fatalf("bob got %q, want %q", ev.Message.Text, text)
	}
}

// ping asserts bob's connection still answers a ping.
func (b *bystander) ping(t testing.TB) {
	t.Helper()
	if f := b.bob.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("bystander ping: got %s", f.Type)
	}
}

// TestHostileCrashFrame: after a valid hello, the 16 bytes of issue 11 (a
// frame whose 64-bit length has its top bit set) used to panic the
// connection's reader and kill the process. Now coder/websocket refuses
// the frame: the server closes that connection (a protocol error, or a
// drop) and keeps serving the others.
func TestHostileCrashFrame(t *testing.T) {
	srv := servertest.Start(t)
	by := newBystander(t, srv)
	a := dialAttacker(t, srv, srv.Token(t, "mallory", "Mallory"))
	if _, err := a.nc.Write(crashFrame); err != nil {
		t.Fatalf("writing the crash frame: %v", err)
	}
	code := a.closeCode(testWait)
	if code != websocket.StatusProtocolError && code != -1 {
		t.Fatalf("after the crash frame the server closed with %d, want 1002 or a drop", code)
	}
	t.Logf("after the crash frame: close code %d (-1: dropped)", code)
	by.check(t)
	by.ping(t)
	if n := srv.Server.Panics(""); n != 0 {
		t.Fatalf("%v panics recovered, want none: coder/websocket refuses the frame", n)
	}
}
