package server

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// TestWSConnTryWritePartial: a frame larger than the socket's buffers is
// taken in part by TryWrite, which never waits; the rest, queued as a
// raw frame ahead of the next frame, completes it on the wire, and the
// client reads both frames whole and in order. A full socket takes
// nothing (errWouldBlock).
func TestWSConnTryWritePartial(t *testing.T) {
	sv, cl := tcpPair(t)
	if err := sv.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := cl.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	c := newWSConn(sv, nil, nil)
	if c.rc == nil {
		t.Skip("no RawConn here: no write without waiting")
	}
	big := []byte(strings.Repeat("0123456789", 100_000)) // 1 MB: more than both buffers
	wire := c.AppendFrames(nil, []outFrame{{b: big}}, false)
	n, err := c.TryWrite(wire)
	if err != nil || n <= 0 || n >= len(wire) {
		t.Fatalf("TryWrite of %d bytes: %d, %v; want part of it taken", len(wire), n, err)
	}
	// The client reads nothing yet: the socket fills up and takes nothing.
	for {
		m, err := c.TryWrite(wire[n:])
		if errors.Is(err, errWouldBlock) {
			break
		}
		if err != nil || m <= 0 || n+m >= len(wire) {
			t.Fatalf("TryWrite of the rest (%d bytes) with no reader: %d, %v; want part of it, then errWouldBlock", len(wire)-n, m, err)
		}
		n += m
	}
	next := []byte(`{"type":"event","data":{}}`)
	done := make(chan error, 1)
	go func() { // owner: this test, which waits for it below
		done <- c.Write([]outFrame{{b: bytes.Clone(wire[n:]), kind: frameRaw}, {b: next}}, false)
	}()
	for i, want := range [][]byte{big, next} {
		h, err := ws.ReadHeader(cl)
		if err != nil {
			t.Fatal(err)
		}
		if h.OpCode != ws.OpText || !h.Fin || h.Masked {
			t.Fatalf("frame %d: header %+v", i, h)
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(cl, p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, want) {
			t.Fatalf("frame %d: %d bytes read, not the %d sent", i, len(p), len(want))
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestAppendFramesIsLibraryEncoding: AppendFrames encodes a lone frame
// as gobwas/ws does for a server (unmasked, final), text and pong alike,
// so TryWrite puts on the wire what the library would.
func TestAppendFramesIsLibraryEncoding(t *testing.T) {
	c := &wsConn{}
	for _, tc := range []struct {
		f  outFrame
		op ws.OpCode
	}{
		{outFrame{b: []byte("hello")}, ws.OpText},
		{outFrame{b: bytes.Repeat([]byte("x"), 300)}, ws.OpText},    // 16-bit length
		{outFrame{b: bytes.Repeat([]byte("y"), 70_000)}, ws.OpText}, // 64-bit length
		{outFrame{b: []byte("ping-payload"), kind: framePong}, ws.OpPong},
	} {
		want, err := ws.CompileFrame(ws.NewFrame(tc.op, true, tc.f.b))
		if err != nil {
			t.Fatal(err)
		}
		for _, batch := range []bool{false, true} {
			if got := c.AppendFrames([]byte("pre"), []outFrame{tc.f}, batch); !bytes.Equal(got, append([]byte("pre"), want...)) {
				t.Fatalf("op %v, %d bytes, batch %v: AppendFrames differs from ws.CompileFrame", tc.op, len(tc.f.b), batch)
			}
		}
	}
}

// TestWSConnReadableAllocs: the peek that tells a stale wake-up from a
// real one (readable, run at every wake-up of a parked connection)
// allocates nothing, with bytes waiting or none.
func TestWSConnReadableAllocs(t *testing.T) {
	sv, cl := tcpPair(t)
	c := newWSConn(sv, nil, nil)
	if c.rc == nil {
		t.Skip("no RawConn here: no peek")
	}
	if n := testing.AllocsPerRun(100, func() {
		if c.readable() {
			t.Fatal("readable with nothing sent")
		}
	}); n != 0 {
		t.Errorf("readable with nothing to read: %.1f allocations, want 0", n)
	}
	if _, err := cl.Write([]byte{0x89}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !c.readable(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // the byte crosses loopback
			t.Fatal("the byte sent never showed")
		}
	}
	if n := testing.AllocsPerRun(100, func() { c.readable() }); n != 0 {
		t.Errorf("readable with a byte to read: %.1f allocations, want 0", n)
	}
}
