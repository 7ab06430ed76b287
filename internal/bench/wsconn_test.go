package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// TestWSConnFrames drives a load client's wsConn against a server that
// frames by hand what the Parley server could send: a delivery split in
// two fragments with a ping between them, the same delivery again, a
// delivery after a gap, and a close with a do-not-reconnect code. The
// client must answer the ping with its payload, report the duplicate and
// the missing message as the worker's finish counts them, return the
// close's code, and write its own message as one masked text frame.
func TestWSConnFrames(t *testing.T) {
	const sent = `{"op":"ping","id":"h"}`
	delivery := func(seq string) string {
		return `{"type":"event","data":{"pos":` + seq + `,"type":"message.new","message":{"seq":` + seq +
			`,"text":"pb|` + fuzzRunID + `|3|0|` + seq + `|1000"}}}`
	}
	type got struct {
		hdr     ws.Header
		payload []byte
		pong    []byte
		err     error
	}
	gotc := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			gotc <- got{err: err}
			return
		}
		defer conn.Close()
		var g got
		defer func() { gotc <- g }()
		// The client's message, as it is on the wire.
		if g.hdr, g.err = ws.ReadHeader(conn); g.err != nil {
			return
		}
		g.payload = make([]byte, g.hdr.Length)
		if _, g.err = io.ReadFull(conn, g.payload); g.err != nil {
			return
		}
		if g.hdr.Masked {
			ws.Cipher(g.payload, g.hdr.Mask, 0)
		}
		one := delivery("1")
		frames := []ws.Frame{
			ws.NewFrame(ws.OpText, false, []byte(one[:40])),
			ws.NewPingFrame([]byte("are you there")),
			ws.NewFrame(ws.OpContinuation, true, []byte(one[40:])),
			ws.NewTextFrame([]byte(one)), // again: a duplicate
			ws.NewTextFrame([]byte(delivery("3"))),
			ws.NewCloseFrame(ws.NewCloseFrameBody(4100, "auth revoked")),
		}
		for _, f := range frames {
			if g.err = ws.WriteFrame(conn, f); g.err != nil {
				return
			}
		}
		// The pong to the ping, then the close's echo.
		for {
			h, err := ws.ReadHeader(conn)
			if err != nil {
				g.err = err
				return
			}
			p := make([]byte, h.Length)
			if _, g.err = io.ReadFull(conn, p); g.err != nil {
				return
			}
			ws.Cipher(p, h.Mask, 0)
			switch h.OpCode {
			case ws.OpPong:
				g.pong = p
			case ws.OpClose:
				return
			}
		}
	}))
	defer srv.Close()

	c := scanClient()
	rm := c.room
	rm.members = []*client{c}
	c.w.rooms = []*room{rm}
	c.w.clients = []*client{c}
	for seq := range uint32(3) {
		c.acked.add(seq + 1) // the server acknowledged 1, 2 and 3
	}
	c.pending = map[uint32]pendingSend{}

	conn, err := newDialer(1, 2).dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.closeNow()
	if err := conn.write([]byte(sent)); err != nil {
		t.Fatal(err)
	}
	var readErr error
	for {
		b, err := c.readFrame(conn)
		if err != nil {
			readErr = err
			break
		}
		c.handleAll(t.Context(), conn, b)
	}
	g := <-gotc
	if g.err != nil {
		t.Fatalf("server: %v", g.err)
	}
	if !g.hdr.Fin || g.hdr.OpCode != ws.OpText || !g.hdr.Masked || string(g.payload) != sent {
		t.Errorf("client's frame: fin %v, opcode %d, masked %v, payload %q; want one masked text frame %q",
			g.hdr.Fin, g.hdr.OpCode, g.hdr.Masked, g.payload, sent)
	}
	if !bytes.Equal(g.pong, []byte("are you there")) {
		t.Errorf("pong payload %q, want the ping's", g.pong)
	}
	if cs := closeStatus(readErr); cs != 4100 {
		t.Errorf("read ended with %v (close status %d), want the server's close 4100", readErr, cs)
	}
	r := c.w.finish(t.Context(), command{}, func() {})
	if r.Lost != 1 || r.Duplicated != 1 || r.Unexpected != 0 || r.ProtoErrors != 0 {
		t.Errorf("finish: lost %d, duplicated %d, unexpected %d, protocol errors %d; want 1, 1, 0, 0",
			r.Lost, r.Duplicated, r.Unexpected, r.ProtoErrors)
	}
	if n := c.uniq.Load(); n != 2 {
		t.Errorf("%d distinct deliveries, want 2", n)
	}
}
