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

// TestSmallBuffersEcho runs messages of every size both ways, and
// WebSocket pings, through a server connection made with smallBuffers.
func TestSmallBuffersEcho(t *testing.T) {
	var wg sync.WaitGroup
	defer wg.Wait()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb := &smallBuffers{ResponseWriter: w}
		ws, err := websocket.Accept(sb, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		if sb.ic == nil {
			t.Errorf("no idleConn on a TCP connection")
		}
		ws.SetReadLimit(2 << 20)
		for {
			if sb.ic != nil {
				sb.ic.wait() // as the reader does: must not block with a message buffered
			}
			typ, b, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			if err := ws.Write(context.Background(), typ, b); err != nil {
				t.Errorf("echo: %v", err)
				return
			}
		}
	}))
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
		b, ok := <-got
		if !ok || !bytes.Equal(b, burst[i]) {
			t.Fatalf("burst message %d: got %q (ok %v)", i, b, ok)
		}
	}
	for round := range 2 {
		for i, n := range wsbufSizes {
			want := bytes.Repeat([]byte{byte('a' + i%26)}, n)
			if n > 0 {
				want[n-1] = byte(round)
			}
			if err := c.Write(ctx, websocket.MessageBinary, want); err != nil {
				t.Fatalf("write %d: %v", n, err)
			}
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("ping after %d: %v", n, err)
			}
			b, ok := <-got
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

// TestFrameWriterOneWritePerFrame writes frames the way coder/websocket
// does (header byte by byte through a 16-byte bufio.Writer, the payload,
// a flush) and checks that every frame that fits the buffer is one
// write of exactly that frame, and that no buffer is held between frames.
func TestFrameWriterOneWritePerFrame(t *testing.T) {
	rc := &recordConn{}
	fw := &frameWriter{nc: rc}
	bw := bufio.NewWriterSize(fw, tinyBuffer)
	var want [][]byte
	for i, n := range []int{0, 1, 15, 16, 30, 125, 126, 500, frameBufBytes - 4, frameBufBytes - 14} {
		payload := bytes.Repeat([]byte{byte(i)}, n)
		hdr := []byte{0x81}
		switch {
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
		if fw.buf != nil {
			t.Fatalf("frame of %d: a buffer is held after the frame", n)
		}
		want = append(want, append(hdr, payload...))
	}
	if len(rc.writes) != len(want) {
		t.Fatalf("%d writes for %d frames", len(rc.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(rc.writes[i], want[i]) {
			t.Fatalf("write %d is not frame %d (%d bytes, want %d)", i, i, len(rc.writes[i]), len(want[i]))
		}
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
	run := func(b *testing.B, bw *bufio.Writer) {
		b.ReportAllocs()
		for b.Loop() {
			for _, c := range hdr {
				bw.WriteByte(c)
			}
			bw.Write(payload)
			bw.Flush()
		}
	}
	b.Run("frameWriter", func(b *testing.B) { run(b, bufio.NewWriterSize(&frameWriter{nc: discardConn{}}, tinyBuffer)) })
	b.Run("bufio2KiB", func(b *testing.B) { run(b, bufio.NewWriterSize(discardConn{}, 2<<10)) })
}
