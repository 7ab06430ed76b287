package server_test

import (
	"bytes"
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
// connection's reader and kill the process. Now the WebSocket library refuses
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
		t.Fatalf("%v panics recovered, want none: the WebSocket library refuses the frame", n)
	}
}

// clientFrame encodes one client frame as an attacker's client would:
// fin and opcode, masked with key when masked (a server must refuse an
// unmasked frame), the length in its shortest form unless length is set
// (a lie about the payload that follows).
func clientFrame(fin bool, op byte, payload []byte, masked bool, length ...uint64) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	n := uint64(len(payload))
	if len(length) > 0 {
		n = length[0]
	}
	var mbit byte
	if masked {
		mbit = 0x80
	}
	f := []byte{b0}
	switch {
	case n < 126:
		f = append(f, mbit|byte(n))
	case n <= 0xFFFF:
		f = append(f, mbit|126, byte(n>>8), byte(n))
	default:
		f = append(f, mbit|127)
		for i := 7; i >= 0; i-- {
			f = append(f, byte(n>>(8*i)))
		}
	}
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	if masked {
		f = append(f, key[:]...)
	}
	for i, c := range payload {
		if masked {
			c ^= key[i%4]
		}
		f = append(f, c)
	}
	return f
}

// rawSeeds are the byte streams FuzzHostileWSRaw starts from: the crash
// frame, well-formed requests, fragmentation, lying and oversized lengths,
// control frames too big or fragmented, unmasked frames, closes, garbage.
func rawSeeds() [][]byte {
	const (
		opCont, opText, opBinary, opClose, opPing, opPong = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
	)
	ping := []byte(`{"op":"ping","id":"p1"}`)
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	return [][]byte{
		crashFrame,
		{},
		clientFrame(true, opText, ping, true),
		cat(clientFrame(true, opText, ping, true), clientFrame(true, opText, []byte(`{"op":"conversations","id":"c"}`), true)),
		cat(clientFrame(false, opText, ping[:10], true), clientFrame(true, opPing, []byte("hi"), true), clientFrame(true, opCont, ping[10:], true)),
		clientFrame(true, opCont, ping, true),                                                  // a continuation with no message
		cat(clientFrame(false, opText, ping[:5], true), clientFrame(true, opText, ping, true)), // a new message inside one
		clientFrame(true, opText, ping[:4], true, 1<<40),                                       // 1 TiB announced
		clientFrame(true, opText, ping[:4], true, 1<<63-1),                                     // the largest int64
		clientFrame(true, opText, ping[:4], true, 1<<63+1),                                     // top bit set, unmasked flavour of the crash
		clientFrame(true, opText, ping, true, 65535),                                           // a length the payload never reaches
		clientFrame(true, opText, bytes.Repeat([]byte("a"), 70000), true),                      // over the 64 KiB read limit
		clientFrame(true, opPing, bytes.Repeat([]byte("p"), 200), true),                        // a control frame over 125 bytes
		clientFrame(false, opPing, []byte("frag"), true),                                       // a fragmented control frame
		clientFrame(true, opPong, []byte("unasked"), true),                                     // a pong never asked for
		clientFrame(true, opText, ping, false),                                                 // unmasked
		clientFrame(true, opBinary, []byte{0, 1, 2, 3}, true),                                  // binary
		clientFrame(true, opClose, []byte{0x03, 0xE8}, true),                                   // close 1000
		clientFrame(true, opClose, []byte{0x03}, true),                                         // a one-byte close payload
		clientFrame(true, opClose, []byte{0x03, 0xE7, 'x'}, true),                              // close 999
		cat(clientFrame(true, opClose, nil, true), clientFrame(true, opText, ping, true)),      // a frame after close
		clientFrame(true, 0x3, ping, true),                                                     // a reserved opcode
		{0xF1, 0x80, 1, 2, 3, 4},                                                               // rsv bits
		clientFrame(true, opText, []byte("{\"op\":\"ping\",\"id\":\"\xff\xfe\"}"), true),       // invalid UTF-8
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),                                            // garbage
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		bytes.Repeat(clientFrame(true, opText, ping, true), 40), // more than the request queue
	}
}

// FuzzHostileWSRaw drives raw bytes into a real server over a real socket:
// per input, a handshake and a valid hello, then the input as the rest of
// the stream, then the client's end of the stream (FIN). The server must
// end that connection, recover no panic, and keep serving a client
// connected before, which answers a ping after every input.
func FuzzHostileWSRaw(f *testing.F) {
	for _, s := range rawSeeds() {
		f.Add(s)
	}
	srv := servertest.Start(f)
	by := newBystander(f, srv)
	tok := srv.Token(f, "mallory", "Mallory")
	f.Fuzz(func(t *testing.T, raw []byte) {
		by.bob.t = t
		a := dialAttacker(t, srv, tok)
		a.nc.SetWriteDeadline(time.Now().Add(testWait))
		if _, err := a.nc.Write(raw); err == nil {
			a.nc.CloseWrite()
		}
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		defer cancel()
		for {
			if _, _, err := a.ws.Read(ctx); err != nil {
				if ctx.Err() != nil {
					t.Fatalf("the server still holds the connection %v after the input and the client's FIN", testWait)
				}
				break
			}
		}
		if n := srv.Server.Panics(""); n != 0 {
			t.Fatalf("%v panics recovered", n)
		}
		by.ping(t)
	})
}
