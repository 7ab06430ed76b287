package server

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// sizes crosses every frame length encoding, the bufio, read-ahead and
// frame buffer sizes, and the largest frame.
var wsbufSizes = []int{0, 1, 15, 16, 17, 125, 126, 127, 1000, readAheadBytes - 1, readAheadBytes,
	readAheadBytes + 1, frameBufBytes - 14, frameBufBytes, 65535, 65536, 70000, 1 << 20}

// plainListener hides the accepted connections' SyscallConn, as TLS
// does, so smallBuffers takes its path without RawConn.
type plainListener struct{ net.Listener }

func (l plainListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return struct{ net.Conn }{c}, nil
}

// TestSmallBuffersEcho runs messages of every size both ways, and
// WebSocket pings, through a server connection made with smallBuffers,
// reading as conn.readLoop does: between messages it waits on the socket
// only when nothing is pending. A pending check that missed bytes
// coder/websocket's bufio.Reader holds would leave a message unanswered
// (the burst of small messages puts whole messages there). It runs with
// RawConn (idleConn) and without.
func TestSmallBuffersEcho(t *testing.T) {
	for _, raw := range []bool{true, false} {
		name := "RawConn"
		if !raw {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			if raw && !rawReads {
				t.Skip("no RawConn reads on this platform")
			}
			testSmallBuffersEcho(t, raw)
		})
	}
}

func testSmallBuffersEcho(t *testing.T, raw bool) {
	var wg sync.WaitGroup
	defer wg.Wait()
	hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb := &smallBuffers{ResponseWriter: w}
		ws, err := websocket.Accept(sb, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		if (sb.io.ic != nil) != raw {
			t.Errorf("idleConn %v on a connection with RawConn %v", sb.io.ic != nil, raw)
		}
		ws.SetReadLimit(2 << 20)
		c := &conn{ws: ws, io: sb.io}
		for {
			if sb.io.ic != nil && !sb.io.pending() {
				ic := sb.io.ic
				ic.mu.Lock()
				held := ic.pooled != nil || len(ic.ahead) > 0
				ic.mu.Unlock()
				if held {
					t.Errorf("a read-ahead buffer is held with nothing pending")
				}
				ic.wait() // as the reader does
			}
			typ, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			if typ == websocket.MessageText {
				err = c.wsWrite(context.Background(), b)
			} else {
				err = ws.Write(context.Background(), typ, b) // not gathered: straight through
			}
			if err != nil {
				t.Errorf("echo: %v", err)
				return
			}
			if sb.io.fw.buf != nil {
				t.Errorf("a write buffer is held after a message")
			}
		}
	}))
	if !raw {
		hs.Listener = plainListener{hs.Listener}
	}
	hs.Start()
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(2 << 20)
	// The client reads on its own goroutine so that pings get their pongs.
	got := make(chan []byte, len(wsbufSizes)*2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(got)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			got <- b
		}
	}()
	next := func() ([]byte, bool) {
		select {
		case b, ok := <-got:
			return b, ok
		case <-ctx.Done():
			t.Fatal("no echo: the server waits on the socket with a message pending")
			return nil, false
		}
	}
	// A burst: many messages (and pings) in flight at once, so that one
	// read from the socket holds several frames.
	var burst [][]byte
	for i := range 200 {
		burst = append(burst, []byte(strings.Repeat("x", i%40)))
		if err := c.Write(ctx, websocket.MessageText, burst[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range burst {
		b, ok := next()
		if !ok || !bytes.Equal(b, burst[i]) {
			t.Fatalf("burst message %d: got %q (ok %v)", i, b, ok)
		}
	}
	for round := range 2 {
		for i, n := range wsbufSizes {
			typ := websocket.MessageText
			if i%2 == 1 {
				typ = websocket.MessageBinary
			}
			want := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			if n > 0 {
				want[n-1] = byte('0' + round)
			}
			if err := c.Write(ctx, typ, want); err != nil {
				t.Fatalf("write %d: %v", n, err)
			}
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("ping after %d: %v", n, err)
			}
			b, ok := next()
			if !ok {
				t.Fatalf("connection ended at size %d", n)
			}
			if !bytes.Equal(b, want) {
				t.Fatalf("size %d: got %d bytes back, not the same", n, len(b))
			}
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// recordConn is a net.Conn that records each Write.
type recordConn struct {
	net.Conn
	writes [][]byte
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

// writeLikeCoder writes a frame the way coder/websocket does: the header
// byte by byte through its 16-byte bufio.Writer, the payload, a flush.
func writeLikeCoder(t *testing.T, bw *bufio.Writer, n int, fill byte) []byte {
	t.Helper()
	payload := bytes.Repeat([]byte{fill}, n)
	hdr := []byte{0x81}
	switch {
	case n > 65535:
		hdr = append(hdr, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	case n > 125:
		hdr = append(hdr, 126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, byte(n))
	}
	for _, b := range hdr {
		if err := bw.WriteByte(b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bw.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	return append(hdr, payload...)
}

// TestFrameWriterOneWritePerMessage checks that a message that fits the
// buffer, written between begin and end, is one write of exactly that
// message; that a larger one arrives whole; that no buffer is held after
// end; and that writes outside begin and end (coder/websocket's own pongs
// and closes) go straight through.
func TestFrameWriterOneWritePerMessage(t *testing.T) {
	rc := &recordConn{}
	fw := &frameWriter{nc: rc}
	bw := bufio.NewWriterSize(fw, tinyBuffer)
	for i, n := range []int{0, 1, 14, 15, 16, 30, 125, 126, 500, frameBufBytes - 4, frameBufBytes - 10} {
		rc.writes = nil
		fw.begin()
		want := writeLikeCoder(t, bw, n, byte(i))
		if len(rc.writes) != 0 {
			t.Fatalf("message of %d: written before end", n)
		}
		if err := fw.end(); err != nil {
			t.Fatal(err)
		}
		if fw.buf != nil {
			t.Fatalf("message of %d: a buffer is held after end", n)
		}
		if len(rc.writes) != 1 || !bytes.Equal(rc.writes[0], want) {
			t.Fatalf("message of %d: %d writes, want one of the message", n, len(rc.writes))
		}
	}
	for _, n := range []int{frameBufBytes, 3 * frameBufBytes, 70000} {
		rc.writes = nil
		fw.begin()
		want := writeLikeCoder(t, bw, n, 'x')
		if err := fw.end(); err != nil {
			t.Fatal(err)
		}
		if got := bytes.Join(rc.writes, nil); !bytes.Equal(got, want) {
			t.Fatalf("message of %d: got %d bytes, want %d", n, len(got), len(want))
		}
		if fw.buf != nil {
			t.Fatalf("message of %d: a buffer is held after end", n)
		}
	}
	rc.writes = nil
	want := writeLikeCoder(t, bw, 4, 'p') // a pong of 4 bytes: header and payload fit bufio
	if len(rc.writes) != 1 || !bytes.Equal(rc.writes[0], want) || fw.buf != nil {
		t.Fatalf("a control frame outside begin/end: %d writes, buffer held %v", len(rc.writes), fw.buf != nil)
	}
}

// discardConn is a net.Conn whose writes go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkFrameWrite writes a 200-byte frame the way coder/websocket does,
// through frameWriter (pool) or a 2 KiB bufio.Writer (the old buffers).
func BenchmarkFrameWrite(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 200)
	hdr := []byte{0x81, 126, 0, 200}
	run := func(b *testing.B, bw *bufio.Writer, fw *frameWriter) {
		b.ReportAllocs()
		for b.Loop() {
			fw.begin()
			for _, c := range hdr {
				bw.WriteByte(c)
			}
			bw.Write(payload)
			bw.Flush()
			fw.end()
		}
	}
	b.Run("frameWriter", func(b *testing.B) {
		fw := &frameWriter{nc: discardConn{}}
		run(b, bufio.NewWriterSize(fw, tinyBuffer), fw)
	})
	b.Run("bufio2KiB", func(b *testing.B) { run(b, bufio.NewWriterSize(discardConn{}, 2<<10), nil) })
}
