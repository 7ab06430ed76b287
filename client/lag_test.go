package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// scriptedServer answers each WebSocket connection with the next script:
// it reads the hello, reports its resume_from on hellos (its cursor on
// cursors), and hands the connection to the script. A script that
// returns closes the connection with 4000 (reconnect).
type scriptedServer struct {
	t       *testing.T
	hellos  chan *int64
	cursors chan protocol.ShardCursor
	scripts chan func(ctx context.Context, ws *websocket.Conn)
}

// startScripted starts a scripted server and a client of it (not yet
// connected) that speaks protocol 1 and retries at once; both close when
// the test ends.
func startScripted(t *testing.T, opts ...client.Option) (*scriptedServer, *client.Client) {
	s := &scriptedServer{t: t, hellos: make(chan *int64, 8), cursors: make(chan protocol.ShardCursor, 8),
		scripts: make(chan func(context.Context, *websocket.Conn), 8)}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		defer cancel()
		_, b, err := ws.Read(ctx)
		if err != nil {
			return
		}
		var req protocol.Request
		var h protocol.Hello
		if json.Unmarshal(b, &req) != nil || json.Unmarshal(req.Data, &h) != nil {
			t.Errorf("bad hello %s", b)
			return
		}
		s.hellos <- h.ResumeFrom
		s.cursors <- h.Cursor
		select {
		case script := <-s.scripts:
			script(ctx, ws)
			ws.Close(protocol.CloseReconnect, "next")
		case <-ctx.Done():
		}
	}))
	t.Cleanup(hs.Close)
	opts = append([]client.Option{client.WithToken("t"), client.WithBackoff(time.Millisecond, 5*time.Millisecond), client.WithProtocol(protocol.Version)}, opts...)
	c, err := client.New(hs.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c
}

// replayEvents returns a function that waits for c's next NewMessage,
// Resynced or Resumed event.
func replayEvents(t *testing.T, c *client.Client) func(what string) client.Event {
	got := make(chan client.Event, 64)
	c.AddEventHandler("test", func(ev client.Event) {
		switch ev.(type) {
		case client.NewMessage, client.Resynced, client.Resumed:
			got <- ev
		}
	})
	return func(what string) client.Event {
		t.Helper()
		select {
		case ev := <-got:
			return ev
		case <-time.After(20 * time.Second): // a liveness bound, not a timing assertion
			t.Fatalf("waiting for %s: nothing", what)
			return nil
		}
	}
}

// holding returns a function that queues a script which, after f, holds
// the connection until done is signalled (the test has checked what f
// sent) or closed.
func (s *scriptedServer) holding(done chan struct{}) func(f func(ctx context.Context, ws *websocket.Conn)) {
	return func(f func(ctx context.Context, ws *websocket.Conn)) {
		s.scripts <- func(ctx context.Context, ws *websocket.Conn) {
			f(ctx, ws)
			select {
			case <-done:
			case <-ctx.Done():
			}
		}
	}
}

func writeFrame(ctx context.Context, t *testing.T, ws *websocket.Conn, typ string, data any) {
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(protocol.Frame{Type: typ, Data: raw})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Errorf("writing %s: %v", typ, err)
	}
}

func welcomeWith(head int64) protocol.Welcome {
	return protocol.Welcome{User: parley.User{ID: "bob", Name: "Bob"}, SessionID: "s", Head: head,
		HeartbeatIntervalMS: 4000, HeartbeatTimeoutMS: 9000}
}

func messageAt(pos int64) parley.Event {
	return parley.Event{Pos: pos, Type: parley.EventNewMessage, ConversationID: "c1",
		Message: &parley.Message{ID: "m" + string(rune('a'+pos)), ConversationID: "c1", Seq: pos, SenderID: "alice", Type: parley.Text, Text: "x"}}
}

// TestLowerHeadNeverRewinds: a welcome or a resync whose head is below
// the client's position (a node that has not caught up: an older server
// answers so) never moves the position back, and events at or below it
// stay dropped as already seen. Only a resync that says the log was lost
// (cause log_lost) moves it to the server's head.
func TestLowerHeadNeverRewinds(t *testing.T) {
	srv, c := startScripted(t)
	next := replayEvents(t, c)
	hello := func(want int64) {
		t.Helper()
		select {
		case from := <-srv.hellos:
			if from == nil || *from != want {
				t.Fatalf("hello resume_from %v, want %d", from, want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no hello")
		}
	}
	position := func(want int64) {
		t.Helper()
		if pos, ok := c.Position(); !ok || pos != want {
			t.Fatalf("position %d (%v), want %d", pos, ok, want)
		}
	}
	done := make(chan struct{}) // a script's end: the test has checked what it sent
	script := srv.holding(done)

	// First connection: head 10, then the event at 11.
	script(func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(10))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageAt(11))
	})
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if <-srv.hellos != nil {
		t.Fatal("first hello resumes")
	}
	if ev := next("message 11").(client.NewMessage); ev.Pos != 11 {
		t.Fatalf("got %+v", ev)
	}
	position(11)

	// A lagging node, as an older server answers: welcome head 5, resync
	// {head 5} without a cause, then live events from 6 on.
	script(func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(5))
		writeFrame(ctx, t, ws, protocol.TypeResync, protocol.Resync{Head: 5, Reason: "resume_from is ahead of this server's log"})
		for p := int64(6); p <= 12; p++ {
			writeFrame(ctx, t, ws, protocol.TypeEvent, messageAt(p))
		}
	})
	done <- struct{}{}
	hello(11)
	if ev := next("resync").(client.Resynced); ev.Head != 5 || ev.Reason != client.ResyncAheadOfLog {
		t.Fatalf("got %+v", ev)
	}
	if ev := next("message 12").(client.NewMessage); ev.Pos != 12 {
		t.Fatalf("after the lagging resync got message %d, want 12 (6..11 were seen)", ev.Pos)
	}
	position(12)

	// A welcome with a lower head and an empty replay.
	script(func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(3))
		writeFrame(ctx, t, ws, protocol.TypeResumed, protocol.Resumed{From: 12, To: 12})
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageAt(4))
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageAt(13))
	})
	done <- struct{}{}
	hello(12)
	next("resumed")
	if ev := next("message 13").(client.NewMessage); ev.Pos != 13 {
		t.Fatalf("after a welcome with head 3 got message %d, want 13", ev.Pos)
	}
	position(13)

	// The log really lost: the position follows the server's head.
	script(func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(2))
		writeFrame(ctx, t, ws, protocol.TypeResync, protocol.Resync{Head: 2, From: 13, Cause: protocol.ResyncLogLost, Reason: "lost"})
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageAt(3))
	})
	done <- struct{}{}
	hello(13)
	if ev := next("resync").(client.Resynced); ev.Head != 2 || ev.From != 13 || ev.Reason != client.ResyncAheadOfLog {
		t.Fatalf("got %+v", ev)
	}
	if ev := next("message 3").(client.NewMessage); ev.Pos != 3 {
		t.Fatalf("after log_lost got message %d, want 3", ev.Pos)
	}
	position(3)
	close(done)
}

// TestNetworkFaultClosesAreNotTerminal: the closes a network fault causes
// (a hello that never arrived: 4004; a heartbeat timeout: 4002; a
// restart: 4003; a server bug: 1011; a generic reconnect: 4000) never
// leave the client Disconnected: it says hello again on a new connection.
func TestNetworkFaultClosesAreNotTerminal(t *testing.T) {
	srv, c := startScripted(t)
	codes := []websocket.StatusCode{protocol.CloseHelloTimeout, protocol.CloseHeartbeatTimeout, protocol.CloseShutdown,
		websocket.StatusInternalError, protocol.CloseReconnect}
	for _, code := range codes {
		srv.scripts <- func(ctx context.Context, ws *websocket.Conn) { ws.Close(code, "fault") }
	}
	final := make(chan struct{})
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(1))
		select {
		case <-final:
		case <-ctx.Done():
		}
	}
	defer close(final)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // a liveness bound
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("after closes %v: %v (status %+v)", codes, err, c.Status())
	}
	if n := len(srv.hellos); n != len(codes)+1 {
		t.Fatalf("%d hellos, want %d (one per connection)", n, len(codes)+1)
	}
}

// TestPresenceRepeatsDropped: the server may send a presence state twice
// (docs/protocol.md: userOnline is a state, not a count), or one the
// welcome gave already; handlers hear only changes of what IsOnline says.
func TestPresenceRepeatsDropped(t *testing.T) {
	srv, c := startScripted(t)
	got := make(chan client.Event, 16)
	c.AddEventHandler("test", func(ev client.Event) {
		switch ev.(type) {
		case client.UserOnline, client.UserOffline, client.NewMessage:
			got <- ev
		}
	})
	done := make(chan struct{})
	srv.holding(done)(func(ctx context.Context, ws *websocket.Conn) {
		w := welcomeWith(0)
		w.Online = []string{"carol"}
		writeFrame(ctx, t, ws, protocol.TypeWelcome, w)
		for _, e := range []struct {
			typ  parley.EventType
			user string
		}{
			{parley.EventUserOnline, "carol"}, // the welcome said so
			{parley.EventUserOnline, "bob"},
			{parley.EventUserOnline, "bob"}, // again
			{parley.EventUserOffline, "bob"},
			{parley.EventUserOffline, "bob"},  // again
			{parley.EventUserOffline, "dave"}, // never online
			{parley.EventUserOnline, "bob"},
		} {
			writeFrame(ctx, t, ws, protocol.TypeEvent, parley.Event{Type: e.typ, UserID: e.user})
		}
		writeFrame(ctx, t, ws, protocol.TypeEvent, messageIn(0, 1)) // the end
	})
	defer close(done)
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	var seen []string
	for {
		select {
		case ev := <-got:
			switch e := ev.(type) {
			case client.UserOnline:
				seen = append(seen, "online "+e.UserID)
			case client.UserOffline:
				seen = append(seen, "offline "+e.UserID)
			case client.NewMessage:
				if want := []string{"online bob", "offline bob", "online bob"}; !slices.Equal(seen, want) {
					t.Fatalf("handlers heard %q, want %q", seen, want)
				}
				if !c.IsOnline("bob") || !c.IsOnline("carol") || c.IsOnline("dave") {
					t.Fatalf("online %v, want bob and carol", c.Online())
				}
				return
			}
		case <-time.After(20 * time.Second): // a liveness bound, not a timing assertion
			t.Fatalf("no end; heard %q", seen)
		}
	}
}
