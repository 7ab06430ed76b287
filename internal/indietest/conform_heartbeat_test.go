package indietest

// Section 4, the heartbeat, from the WebSocket frames up: the server's
// own WebSocket ping after 1.5 intervals of silence, its pong counting as
// heard, no ping for a client that pings as told, and a pong before the
// hello. coder/websocket answers pings by itself inside a Read and hides
// them, so these checks speak RFC 6455 over a plain TCP connection.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opCont  = 0x0
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// rawWS is a WebSocket client connection over TCP with no library: every
// frame the server sends, control frames included, reaches the test.
// One goroutine reads; writes may come from any.
type rawWS struct {
	conn net.Conn
	br   *bufio.Reader
}

// wsFrame is one frame as received, with when it was.
type wsFrame struct {
	op      byte
	payload []byte
	at      time.Time
}

// dialRawWS does the opening handshake (RFC 6455 section 4.1) for
// ws://addr/v1/ws. The connection is closed when the test ends.
func dialRawWS(t *testing.T, addr string) *rawWS {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var nonce [16]byte
	rand.Read(nonce[:])
	key := base64.StdEncoding.EncodeToString(nonce[:])
	fmt.Fprintf(conn, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", addr, key)
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) {
		t.Fatalf("handshake: %s %v", resp.Status, resp.Header)
	}
	conn.SetDeadline(time.Time{})
	return &rawWS{conn: conn, br: br}
}

// writeFrame sends one final frame, masked as a client must.
func (c *rawWS) writeFrame(op byte, payload []byte) error {
	hdr := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n <= 0xffff:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = binary.BigEndian.AppendUint64(append(hdr, 0x80|127), uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	b := append(hdr, mask[:]...)
	for i, p := range payload {
		b = append(b, p^mask[i%4])
	}
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// writeJSON sends v as a text message.
func (c *rawWS) writeJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.writeFrame(opText, b)
}

// readFrame returns the next frame before the deadline; a fragmented text
// message comes back whole (control frames between its fragments first).
func (c *rawWS) readFrame(deadline time.Time) (wsFrame, error) {
	c.conn.SetReadDeadline(deadline)
	var text []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return wsFrame{}, err
		}
		at := time.Now()
		fin, op, n := h[0]&0x80 != 0, h[0]&0x0f, uint64(h[1]&0x7f)
		if h[1]&0x80 != 0 {
			return wsFrame{}, errors.New("the server masked a frame (RFC 6455 5.1 forbids it)")
		}
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return wsFrame{}, err
			}
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return wsFrame{}, err
			}
			n = binary.BigEndian.Uint64(l[:])
		}
		if n > 1<<20 {
			return wsFrame{}, fmt.Errorf("a frame of %d bytes", n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(c.br, p); err != nil {
			return wsFrame{}, err
		}
		switch {
		case op >= 0x8: // control frames are never fragmented
			return wsFrame{op: op, payload: p, at: at}, nil
		case op == opText && fin && text == nil:
			return wsFrame{op: op, payload: p, at: at}, nil
		case op == opText || op == opCont:
			text = append(text, p...)
			if fin {
				return wsFrame{op: opText, payload: text, at: at}, nil
			}
		default:
			return wsFrame{}, fmt.Errorf("opcode %#x", op)
		}
	}
}

// closeCode is a close frame's status code (0 if it has none).
func (f wsFrame) closeCode() int {
	if f.op != opClose || len(f.payload) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(f.payload))
}

// rawHello says hello as a new user minted with the server's secret and
// returns the welcome's heartbeat settings and when the welcome came.
func rawHello(t *testing.T, e *env, c *rawWS) (interval, timeout time.Duration, at time.Time) {
	t.Helper()
	name := e.unique("rh")
	if err := c.writeJSON(map[string]any{"op": "hello", "data": map[string]any{"token": mint(name, name)}}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.readFrame(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("waiting for the welcome: %v", err)
		}
		if f.op != opText {
			continue
		}
		var fr frame
		if err := json.Unmarshal(f.payload, &fr); err != nil || fr.Type != "welcome" {
			t.Fatalf("after hello: %s, want welcome", f.payload)
		}
		var w welcomeData
		json.Unmarshal(fr.Data, &w)
		return time.Duration(w.HeartbeatIntervalMS) * time.Millisecond, time.Duration(w.HeartbeatTimeoutMS) * time.Millisecond, f.at
	}
}

// pingAfter is section 4's silence before the server's ping: 1.5
// intervals, at most two thirds of the timeout.
func pingAfter(interval, timeout time.Duration) time.Duration {
	return min(interval*3/2, timeout*2/3)
}

// slack is what a loaded test machine adds to the server's timers.
const slack = 1500 * time.Millisecond

var _ = check("heartbeat: one WebSocket ping after 1.5 intervals of silence, then 4002", func(t *testing.T, e *env) {
	c := dialRawWS(t, e.addr)
	start := time.Now() // before the hello: silence cannot have begun earlier
	interval, timeout, welcomed := rawHello(t, e, c)
	after := pingAfter(interval, timeout)
	var pings []wsFrame
	for {
		f, err := c.readFrame(time.Now().Add(timeout + slack))
		if err != nil {
			t.Fatalf("a silent client: %v after %v, %d pings; want a close 4002", err, time.Since(start), len(pings))
		}
		if f.op == opPing {
			pings = append(pings, f)
			continue
		}
		if f.op != opClose {
			t.Fatalf("a silent client got %#x %q", f.op, f.payload)
		}
		// Section 4: between 9 and 9.9 s of silence.
		if code, took := f.closeCode(), f.at.Sub(start); code != 4002 || took < timeout || f.at.Sub(welcomed) > timeout+timeout/10+slack {
			t.Errorf("a silent client closed %d after %v, want 4002 between %v and %v of silence", code, took, timeout, timeout+timeout/10)
		}
		break
	}
	// Exactly one ping (no other until the client is heard), empty, at
	// 6 to 6.9 s of silence.
	if len(pings) != 1 {
		t.Fatalf("a silent client got %d WebSocket pings, want exactly 1", len(pings))
	}
	p := pings[0]
	if len(p.payload) != 0 {
		t.Errorf("the server's ping carries %q, want an empty payload", p.payload)
	}
	if took := p.at.Sub(start); took < after || p.at.Sub(welcomed) > after+timeout/10+slack {
		t.Errorf("the server's ping came %v after the hello, want between %v and %v of silence", took, after, after+timeout/10)
	}
})

var _ = check("heartbeat: a WebSocket pong counts as heard", func(t *testing.T, e *env) {
	c := dialRawWS(t, e.addr)
	interval, timeout, welcomed := rawHello(t, e, c)
	after := pingAfter(interval, timeout)
	// Answer only the server's pings, as a throttled browser tab does,
	// for well past the timeout: the connection stays, and each pong
	// restarts the silence (so more pings follow).
	until := welcomed.Add(2*after + timeout/2)
	pings := 0
	for time.Now().Before(until) {
		f, err := c.readFrame(until)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				break
			}
			t.Fatalf("a client answering the server's pings: %v after %v (%d pings)", err, time.Since(welcomed), pings)
		}
		switch f.op {
		case opPing:
			pings++
			if err := c.writeFrame(opPong, f.payload); err != nil {
				t.Fatal(err)
			}
		case opClose:
			t.Fatalf("a client answering the server's pings closed %d after %v (%d pings)", f.closeCode(), f.at.Sub(welcomed), pings)
		}
	}
	if pings < 2 {
		t.Errorf("%d pings in %v of answering only pings, want one per %v of silence", pings, until.Sub(welcomed), after)
	}
	// Still open: an application ping is answered.
	if err := c.writeJSON(map[string]any{"op": "ping", "id": "alive"}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.readFrame(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatalf("after %d pongs: %v", pings, err)
		}
		if f.op == opText && strings.Contains(string(f.payload), `"alive"`) {
			break
		}
		if f.op == opClose {
			t.Fatalf("closed %d", f.closeCode())
		}
	}
})

var _ = check("heartbeat: a client pinging every interval gets no WebSocket ping", func(t *testing.T, e *env) {
	c := dialRawWS(t, e.addr)
	interval, timeout, welcomed := rawHello(t, e, c)
	until := welcomed.Add(2*pingAfter(interval, timeout) + interval/2)
	next, n := welcomed.Add(interval), 0
	for time.Now().Before(until) {
		deadline := next
		if until.Before(next) {
			deadline = until
		}
		f, err := c.readFrame(deadline)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			if time.Now().After(next) {
				n++
				if err := c.writeJSON(map[string]any{"op": "ping", "id": fmt.Sprint("hb", n)}); err != nil {
					t.Fatal(err)
				}
				next = next.Add(interval)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		switch f.op {
		case opPing:
			t.Fatalf("a client pinging every %v got a WebSocket ping %v after the welcome", interval, f.at.Sub(welcomed))
		case opClose:
			t.Fatalf("closed %d", f.closeCode())
		}
	}
	if n < 3 {
		t.Fatalf("only %d pings sent", n)
	}
})

var _ = check("heartbeat: a WebSocket pong before the hello is ignored", func(t *testing.T, e *env) {
	c := dialRawWS(t, e.addr)
	// RFC 6455 5.5.3: a pong may be sent unsolicited, as a one-way
	// heartbeat; it is a control frame, not the protocol's first frame.
	if err := c.writeFrame(opPong, []byte("early")); err != nil {
		t.Fatal(err)
	}
	rawHello(t, e, c)
	// And after it: no error, the next request answered. A WebSocket
	// ping of the client's is answered with a pong carrying its payload
	// (RFC 6455 5.5.2), though it counts as heard as any frame does.
	if err := c.writeFrame(opPong, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.writeFrame(opPing, []byte("wsping")); err != nil {
		t.Fatal(err)
	}
	wsPong := false
	if err := c.writeJSON(map[string]any{"op": "ping", "id": "after-pong"}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.readFrame(time.Now().Add(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if f.op == opClose {
			t.Fatalf("closed %d %q after an unsolicited pong", f.closeCode(), f.payload)
		}
		if f.op == opPong && string(f.payload) == "wsping" {
			wsPong = true
		}
		if f.op != opText {
			continue
		}
		var fr frame
		json.Unmarshal(f.payload, &fr)
		if fr.Type == "error" {
			t.Fatalf("an unsolicited pong answered with an error: %s", f.payload)
		}
		if fr.Type == "pong" && fr.ID == "after-pong" {
			if !wsPong {
				t.Errorf("a WebSocket ping of the client's got no pong before the next request's answer")
			}
			return
		}
	}
})
