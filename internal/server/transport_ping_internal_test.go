package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"
)

// TestWSConnHeartbeatPing: the heartbeat's ping (framePing) goes out as a
// WebSocket ping with an empty payload, between the text frames queued
// around it (a batch does not swallow it), and the client's pong comes
// back from Read as msgPong.
func TestWSConnHeartbeatPing(t *testing.T) {
	sv, cl := tcpPair(t)
	c := newWSConn(sv, nil, nil)
	if err := c.Write([]outFrame{{b: []byte("a")}, {kind: framePing}, {b: []byte("b")}}, true); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < 3 {
		h, err := ws.ReadHeader(cl)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(cl, p); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%#x:%s", byte(h.OpCode), p))
	}
	if want := []string{"0x1:a", "0x9:", "0x1:b"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("the client read %q, want %q", got, want)
	}
	if err := ws.WriteFrame(cl, ws.MaskFrame(ws.NewPongFrame(nil))); err != nil {
		t.Fatal(err)
	}
	if kind, _, err := read(c); err != nil || kind != msgPong {
		t.Fatalf("after the client's pong: kind %v, err %v, want msgPong", kind, err)
	}
}

// TestCoderConnSkipsHeartbeatPing: the coder/websocket transport sends no
// heartbeat ping, and a ping queued between text frames does not join a
// batch either (it would add an empty frame to the message).
func TestCoderConnSkipsHeartbeatPing(t *testing.T) {
	conns := make(chan *coderConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := acceptCoder(w, r, nil)
		if err != nil {
			return
		}
		conns <- c
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.CloseNow()
	c := <-conns
	defer c.CloseNow()
	if err := c.Write([]outFrame{{b: []byte("a")}, {kind: framePing}, {b: []byte("b")}}, true); err != nil {
		t.Fatal(err)
	}
	var got []string
	// Each message split as a client does ('\n' separates a batch's
	// frames) until two frames came.
	for len(strings.Split(strings.Join(got, "\n"), "\n")) < 2 {
		_, b, err := cl.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(b))
	}
	if strings.Join(got, "|") != "a|b" {
		t.Fatalf("the client read the messages %q, want \"a\" then \"b\"", got)
	}
}
