package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gobwas/ws"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// gatedStore is the real SQLite store whose SendMessage waits until the
// gate is opened: the store is "slow" for as long as the test wants,
// without any sleep.
type gatedStore struct {
	parley.Store
	gate    chan struct{} // closed to let sends through
	entered chan struct{} // one token per SendMessage call that started waiting
}

func (g *gatedStore) SendMessage(ctx context.Context, m parley.NewMessage) (parley.Message, []parley.Event, error) {
	select {
	case g.entered <- struct{}{}:
	default:
	}
	select {
	case <-g.gate:
	case <-ctx.Done():
		return parley.Message{}, nil, ctx.Err()
	}
	return g.Store.SendMessage(ctx, m)
}

func startGated(t *testing.T, cfg func(*server.Config)) (*servertest.Server, *gatedStore) {
	g := &gatedStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	srv := servertest.Start(t,
		servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
			db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
			g.Store = db
			return g, err
		}),
		servertest.WithConfig(func(c *server.Config) {
			c.Limits = server.Unlimited()
			if cfg != nil {
				cfg(c)
			}
		}))
	t.Cleanup(func() {
		select {
		case <-g.gate:
		default:
			close(g.gate)
		}
	})
	return srv, g
}

// TestPingAnsweredWhileOpsWait: requests run on the connection's worker, so
// a ping sent while a send waits on the store is answered at once.
func TestPingAnsweredWhileOpsWait(t *testing.T) {
	srv, g := startGated(t, nil)
	a, conv := aliceToBob(t, srv)

	a.sendOp(protocol.OpSend, "s1", protocol.Send{ConversationID: conv.ID, ClientID: "c1", Text: "hi"})
	<-g.entered // the send is in the store, held there
	if f := a.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("got %s, want pong", f.Type)
	}
	for _, f := range a.pending {
		if f.ID == "s1" {
			t.Fatalf("the send was answered before the store let it through: %s", f.Type)
		}
	}
	close(g.gate)
	f := a.waitFor(func(f protocol.Frame) bool { return f.ID == "s1" })
	if f.Type != protocol.TypeReply {
		t.Fatalf("send: %s %+v", f.Type, f.Error)
	}
}

// TestBackpressureIsNotHeartbeatTimeout: a client floods sends while the
// store is stuck. Its request queue fills, the server stops reading it
// (so its pings go unread), yet it is not closed with 4002: silence while
// the server is not reading does not count. A silent control client
// connected after the flood is closed with 4002, which shows heartbeat
// sweeps ran over a longer silence than the flooding client's. When the
// store recovers, every send is answered and stored in the order sent.
func TestBackpressureIsNotHeartbeatTimeout(t *testing.T) {
	srv, g := startGated(t, func(c *server.Config) { c.HeartbeatTimeout = time.Second })
	a, conv := aliceToBob(t, srv)

	// alice pings as a client should, from her own goroutine, until the
	// test ends; once the server stops reading her, the pings wait unread.
	pingCtx, stopPing := context.WithCancel(context.Background())
	pinged := make(chan struct{})
	go func() {
		defer close(pinged)
		tk := time.NewTicker(100 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-pingCtx.Done():
				return
			case <-tk.C:
				if a.ws.Write(pingCtx, websocket.MessageText, []byte(`{"op":"ping"}`)) != nil {
					return
				}
			}
		}
	}()
	defer func() { stopPing(); <-pinged }()

	n := server.RequestQueue + 8
	for i := range n {
		a.sendOp(protocol.OpSend, fmt.Sprint("s", i), protocol.Send{ConversationID: conv.ID, ClientID: fmt.Sprint("c", i), Text: fmt.Sprint("m", i)})
	}
	// A bound on a broken run, not an assertion on speed.
	for deadline := time.Now().Add(testWait); srv.Server.PausedConns() != 1; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("the server never stopped reading the flooding client")
		}
	}
	// A raw client: it answers nothing, not even the server's protocol
	// ping (a wsClient's library would answer it).
	ctl, _ := dialRaw(t, srv, srv.Token(t, "carol", "Carol"))
	for {
		f := ctl.frame(t)
		if f.Header.OpCode != ws.OpClose {
			continue
		}
		if code := frameCloseCode(f); code != protocol.CloseHeartbeatTimeout {
			t.Fatalf("control client: close %d, want 4002", code)
		}
		break
	}
	if srv.Server.PausedConns() != 1 {
		t.Fatal("the flooding client is no longer paused, yet the store never answered")
	}

	close(g.gate)
	for i := range n {
		f := a.waitFor(func(f protocol.Frame) bool { return f.ID == fmt.Sprint("s", i) })
		if f.Type != protocol.TypeReply {
			t.Fatalf("send %d: %s %+v", i, f.Type, f.Error)
		}
	}
	if f := a.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("got %s, want pong", f.Type)
	}
	var page parley.MessagePage
	a.do(protocol.OpHistory, protocol.History{ConversationID: conv.ID, Limit: 100}, &page)
	if len(page.Messages) != n {
		t.Fatalf("%d messages stored, want %d", len(page.Messages), n)
	}
	for i, m := range page.Messages {
		if m.ClientID != fmt.Sprint("c", i) || m.Seq != int64(i+1) {
			t.Fatalf("message %d is %s seq %d: not in the order sent", i, m.ClientID, m.Seq)
		}
	}
}

// readMessages reads raw WebSocket messages until want frames arrived and
// returns them split into frames, with the number of messages they came in.
func readFrames(t *testing.T, c *wsClient, want int, batch bool) (frames []protocol.Frame, messages int) {
	t.Helper()
	for len(frames) < want {
		ctx, cancel := context.WithTimeout(context.Background(), testWait)
		_, b, err := c.ws.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		messages++
		if len(b) > server.MaxBatchBytes {
			t.Fatalf("a message of %d bytes, over the %d bound", len(b), server.MaxBatchBytes)
		}
		parts := [][]byte{b}
		if batch {
			parts = bytes.Split(b, []byte("\n"))
		} else if bytes.IndexByte(b, '\n') >= 0 {
			t.Fatalf("a newline in an unbatched message: %q", b)
		}
		for _, p := range parts {
			var f protocol.Frame
			if err := json.Unmarshal(p, &f); err != nil {
				t.Fatalf("frame %q: %v", p, err)
			}
			frames = append(frames, f)
		}
	}
	return frames, messages
}

// TestBatchedFrames: with hello batch:true a resume of many events comes in
// few messages, each at most MaxBatchBytes, frames split on "\n", in
// order; without it every message is exactly one frame.
func TestBatchedFrames(t *testing.T) {
	srv := startLimited(t, nil)
	aTok := srv.Token(t, "alice", "Alice")
	srv.Token(t, "bob", "Bob")
	a := connect(t, srv, aTok, nil)
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	const n = 300 // about 150 KiB of events: more than two batches
	text := string(bytes.Repeat([]byte("x"), 400))
	for i := range n {
		a.sendOp(protocol.OpSend, fmt.Sprint("s", i), protocol.Send{ConversationID: conv.ID, ClientID: fmt.Sprint("c", i), Text: text})
	}
	a.waitFor(func(f protocol.Frame) bool { return f.ID == fmt.Sprint("s", n-1) })
	// An acknowledged send is committed, but the hub may deliver its event
	// a moment later; a connection registering before that gets the event
	// live after resumed. Wait until alice has it, so the replays below
	// hold all n.
	a.waitFor(func(f protocol.Frame) bool {
		if f.Type != protocol.TypeEvent {
			return false
		}
		ev := decodeJSON[parley.Event](t, f.Data)
		return ev.Message != nil && ev.Message.ClientID == fmt.Sprint("c", n-1)
	})

	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			c := dial(t, srv, nil)
			from := int64(0)
			c.sendOp(protocol.OpHello, "", protocol.Hello{Token: aTok, ResumeFrom: &from, Batch: batch})
			// welcome, conversationUpdated (created), n newMessage, resumed
			frames, messages := readFrames(t, c, n+3, batch)
			if frames[0].Type != protocol.TypeWelcome || frames[len(frames)-1].Type != protocol.TypeResumed {
				t.Fatalf("first %s, last %s", frames[0].Type, frames[len(frames)-1].Type)
			}
			last := int64(0)
			for _, f := range frames[1 : len(frames)-1] {
				ev := decodeJSON[parley.Event](t, f.Data)
				if f.Type != protocol.TypeEvent || ev.Pos <= last {
					t.Fatalf("%s pos %d after %d", f.Type, ev.Pos, last)
				}
				last = ev.Pos
			}
			if !batch && messages != len(frames) {
				t.Fatalf("%d frames in %d messages without batch", len(frames), messages)
			}
			if batch && (messages < 3 || messages > 10) {
				t.Fatalf("%d frames (~%d KiB) in %d messages with batch", len(frames), n*450/1024, messages)
			}
			// Live frames after the replay: a send's event and reply (in
			// either order) plus a pong, split alike.
			c.sendOp(protocol.OpSend, "live", protocol.Send{ConversationID: conv.ID, ClientID: "live-" + fmt.Sprint(batch), Text: "hi"})
			c.sendOp(protocol.OpPing, "p", nil)
			frames, _ = readFrames(t, c, 3, batch)
			seen := map[string]bool{}
			for _, f := range frames {
				seen[f.Type] = true
			}
			if !seen[protocol.TypeEvent] || !seen[protocol.TypeReply] || !seen[protocol.TypePong] {
				t.Fatalf("live frames %v", seen)
			}
		})
	}
}

// TestPingForms: the reader answers the usual ping without decoding it and
// every other spelling through the decoder; all get the same pong.
func TestPingForms(t *testing.T) {
	srv := servertest.Start(t)
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	for _, tc := range []struct{ frame, id string }{
		{`{"op":"ping"}`, ""},
		{`{"op":"ping","id":"p1"}`, "p1"},
		{`{"id":"p2","op":"ping"}`, "p2"},
		{`{"op":"ping","id":"a\"<b>"}`, `a"<b>`},
		{` {"op":"ping","id":"p3","data":null}`, "p3"},
		{`{"op":"ping","id":"é"}`, "é"},
	} {
		if err := a.writeRaw(websocket.MessageText, []byte(tc.frame)); err != nil {
			t.Fatal(err)
		}
		f := a.next()
		if f.Type != protocol.TypePong || f.ID != tc.id {
			t.Fatalf("%s: got %s id %q, want pong %q", tc.frame, f.Type, f.ID, tc.id)
		}
	}
	if err := a.writeRaw(websocket.MessageText, []byte(`{"op":"ping","id":"`+string(bytes.Repeat([]byte("x"), 65))+`"}`)); err != nil {
		t.Fatal(err)
	}
	if f := a.next(); f.Type != protocol.TypeError || f.Error.Code != parley.EINVALID {
		t.Fatalf("a ping with a 65-byte id: %s %+v", f.Type, f.Error)
	}
}

// TestHelloInUpgradePacket: a client may send its hello right behind the
// upgrade request, before the 101 arrives; the bytes net/http read ahead
// must reach the WebSocket (the server swaps net/http's buffers for
// smaller ones on hijack).
func TestHelloInUpgradePacket(t *testing.T) {
	srv := servertest.Start(t)
	hello, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, Data: mustJSON(t, protocol.Hello{Token: srv.Token(t, "alice", "Alice")})})
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testWait))
	req := "GET " + protocol.Path + " HTTP/1.1\r\nHost: " + srv.Addr() + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	// One masked text frame holding the hello (16-bit length form).
	frame := []byte{0x81, 0x80 | 126, byte(len(hello) >> 8), byte(len(hello))}
	key := []byte{1, 2, 3, 4}
	frame = append(frame, key...)
	for i, c := range hello {
		frame = append(frame, c^key[i%4])
	}
	if _, err := nc.Write(append([]byte(req), frame...)); err != nil { // one write: one packet on loopback
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	h := make([]byte, 2)
	if _, err := io.ReadFull(br, h); err != nil {
		t.Fatal(err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		ext := make([]byte, 2)
		io.ReadFull(br, ext)
		n = int(ext[0])<<8 | int(ext[1])
	case 127:
		t.Fatal("a welcome over 64 KiB")
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatal(err)
	}
	var f protocol.Frame
	if err := json.Unmarshal(payload, &f); err != nil || f.Type != protocol.TypeWelcome {
		t.Fatalf("first frame %q (%v), want welcome", payload, err)
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDeliveryOrderWhenSocketFills: events delivered to a client that
// reads nothing for a while (a 4 KiB receive buffer) are first written
// at once by the hub (the socket takes them), then in part (a frame the
// socket takes only part of) and then not at all (the socket is full),
// when they wait in the queue for the writer. The client, reading at
// last, gets every event whole, once and in order, with or without
// batching: the rest of a frame goes out before anything queued behind
// it.
func TestDeliveryOrderWhenSocketFills(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
				c.Limits.SendQueueBytes = 64 << 20 // room for all: this is about order, not the bound
			}))
			c := dialSmallBuffer(t, srv)
			c.sendOp(protocol.OpHello, "", protocol.Hello{Token: srv.Token(t, "alice", "Alice"), Batch: batch})
			if f := c.next(); f.Type != protocol.TypeWelcome {
				t.Fatalf("after hello got %s, want welcome", f.Type)
			}
			const events = 1000
			now := time.Now().UTC()
			for i := 1; i <= events; i++ {
				// Sizes vary, so frames end at every offset of the socket's buffer.
				text := strings.Repeat(string(rune('a'+i%26)), 1000+i*37%20000)
				srv.Server.DeliverForBench(parley.Event{
					Pos: int64(i), Type: parley.EventNewMessage, ConversationID: "c", UserID: "bob",
					Message: &parley.Message{ID: fmt.Sprint("m", i), ConversationID: "c", Seq: int64(i), SenderID: "bob",
						ClientID: fmt.Sprint("k", i), Type: parley.Text, Text: text, CreatedAt: now},
					At: now, Audience: []string{"alice"},
				})
			}
			frames, _ := readFrames(t, c, events, batch)
			if len(frames) != events {
				t.Fatalf("%d frames read, want %d", len(frames), events)
			}
			for k, f := range frames {
				i := k + 1
				if f.Type != protocol.TypeEvent {
					t.Fatalf("got a %s frame, want events", f.Type)
				}
				ev := decodeJSON[parley.Event](t, f.Data)
				want := strings.Repeat(string(rune('a'+i%26)), 1000+i*37%20000)
				if ev.Pos != int64(i) || ev.Message == nil || ev.Message.Text != want {
					t.Fatalf("event %d of %d: got position %d (text whole: %v)", i, events, ev.Pos, ev.Message != nil && ev.Message.Text == want)
				}
			}
		})
	}
}
