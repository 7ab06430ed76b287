package server

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
)

// countingConn counts the writes made on a net.Conn; it forwards
// SyscallConn so wsConn still waits without a buffer.
type countingConn struct {
	*net.TCPConn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(p)
}

// tcpPair is a real loopback TCP connection: the server's end and the
// client's.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); done <- c }()
	cl, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sv := <-done
	if sv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { sv.Close(); cl.Close() })
	return sv.(*net.TCPConn), cl.(*net.TCPConn)
}

// TestWSConnOneWritePerQueue: a queue of frames (text and a pong) goes
// out in one write, and the client reads each frame as sent; with
// batching, the text frames share one message joined by '\n'.
func TestWSConnOneWritePerQueue(t *testing.T) {
	for _, batch := range []bool{false, true} {
		sv, cl := tcpPair(t)
		cc := &countingConn{TCPConn: sv}
		c := newWSConn(cc, nil, nil)
		var frames []outFrame
		var want []string
		for i := range 40 {
			b := []byte(strings.Repeat(string(rune('a'+i%26)), 10+i*37))
			frames = append(frames, outFrame{b: b})
			want = append(want, string(b))
		}
		frames = append(frames, outFrame{b: []byte("ping-payload"), kind: framePong})
		if err := c.Write(frames, batch); err != nil {
			t.Fatal(err)
		}
		if n := cc.writes.Load(); n != 1 {
			t.Fatalf("batch %v: %d writes for a queue of %d frames, want 1", batch, n, len(frames))
		}
		var texts []string
		gotPong := false
		for !gotPong {
			h, err := ws.ReadHeader(cl)
			if err != nil {
				t.Fatal(err)
			}
			if h.Masked {
				t.Fatal("a server frame is masked")
			}
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(cl, p); err != nil {
				t.Fatal(err)
			}
			switch h.OpCode {
			case ws.OpText:
				texts = append(texts, string(p))
			case ws.OpPong:
				if string(p) != "ping-payload" {
					t.Fatalf("pong payload %q", p)
				}
				gotPong = true
			default:
				t.Fatalf("opcode %v", h.OpCode)
			}
		}
		if batch {
			texts = strings.Split(strings.Join(texts, "\n"), "\n")
		}
		if strings.Join(texts, "|") != strings.Join(want, "|") {
			t.Fatalf("batch %v: the client read %d frames, not the %d sent in order", batch, len(texts), len(want))
		}
	}
}

// read waits for and reads one message, as the reader does, and copies it
// out of the pooled buffer.
func read(c *wsConn) (msgKind, []byte, error) {
	if err := c.Wait(); err != nil {
		return 0, nil, err
	}
	kind, bp, err := c.Read()
	if err != nil {
		return 0, nil, err
	}
	b := bytes.Clone(*bp)
	readPool.Put(bp)
	return kind, b, nil
}

// TestWSConnIdleHoldsNoBuffer: between messages a connection whose
// socket has nothing more holds no read buffer; with a second message
// already read ahead it keeps it; every message arrives whole, and a
// ping comes back as msgPing.
func TestWSConnIdleHoldsNoBuffer(t *testing.T) {
	sv, cl := tcpPair(t)
	c := newWSConn(sv, nil, nil)
	if c.rc == nil {
		t.Skip("no RawConn here: the reader keeps its buffer")
	}
	send := func(fs ...ws.Frame) {
		var b bytes.Buffer
		for _, f := range fs {
			if err := ws.WriteFrame(&b, ws.MaskFrame(f)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cl.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	big := bytes.Repeat([]byte("x"), 10000)
	send(ws.NewTextFrame([]byte("one")), ws.NewTextFrame(big), ws.NewPingFrame([]byte("p")))
	for i, want := range []struct {
		kind msgKind
		b    []byte
	}{{msgText, []byte("one")}, {msgText, big}, {msgPing, []byte("p")}} {
		kind, b, err := read(c)
		if err != nil {
			t.Fatal(err)
		}
		if kind != want.kind || !bytes.Equal(b, want.b) {
			t.Fatalf("message %d: kind %d, %d bytes; want kind %d, %d bytes", i, kind, len(b), want.kind, len(want.b))
		}
	}
	if c.br != nil {
		t.Fatalf("idle after three messages, the reader holds a %d-byte buffer (%d buffered)", c.br.Size(), c.br.Buffered())
	}
	// A fragmented message with a ping inside: whole, then the ping.
	send(ws.NewFrame(ws.OpText, false, []byte("ab")), ws.NewPingFrame([]byte("mid")), ws.NewFrame(ws.OpContinuation, true, []byte("cd")))
	if kind, b, err := read(c); err != nil || kind != msgText || string(b) != "abcd" {
		t.Fatalf("fragmented: %d %q %v", kind, b, err)
	}
	if kind, b, err := read(c); err != nil || kind != msgPing || string(b) != "mid" {
		t.Fatalf("ping inside a fragmented message: %d %q %v", kind, b, err)
	}
	// The client's close: its code, echoed.
	send(ws.NewCloseFrame(ws.NewCloseFrameBody(4321, "bye")))
	_, _, err := read(c)
	if code, _ := closeCodeOf(err); code != 4321 {
		t.Fatalf("after the client's close 4321: %v (code %d)", err, code)
	}
}
