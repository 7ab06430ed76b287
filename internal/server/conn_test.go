package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestSlowConsumer: a client that stops reading is closed with 4001 once
// its queue is full of durable events, and the server's memory for it
// stays bounded by the queue.
func TestSlowConsumer(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits.SendQueueBytes = 64 << 10
		c.HeartbeatTimeout = time.Hour // neither client pings here
	}))
	aTok := srv.Token(t, "alice", "Alice")
	a := connect(t, srv, aTok, nil)
	// bob's socket takes 4 KiB at a time and he never reads.
	slow := dialSmallBuffer(t, srv)
	slow.sendOp(protocol.OpHello, "", protocol.Hello{Token: srv.Token(t, "bob", "Bob")})
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	// alice leaves: she would not read either, and her socket's buffers
	// could fill about as soon as bob's (both were closed with 4001, the
	// counter going from 0 to 2 between two scrapes, in 2 of 5 runs
	// under load). That others are still served is checked at the end.
	a.ws.CloseNow()
	body := `{"client_id":"%s","text":"` + strings.Repeat("€", parley.MaxTextRunes) + `"}`
	// Senders post over HTTP until the server gives up on bob.
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/conversations/"+conv.ID+"/messages",
					strings.NewReader(fmt.Sprintf(body, fmt.Sprint(w, "-", i))))
				req.Header.Set("Authorization", "Bearer "+aTok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return
				}
				resp.Body.Close()
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second) // a bound on a broken run, not an assertion on speed
	closed := false
	for !closed && time.Now().Before(deadline) {
		closed = metric(t, srv, "parley_slow_consumer_closes_total") == 1
	}
	stop.Store(true)
	wg.Wait()
	if !closed {
		t.Fatal("the slow consumer was never closed")
	}
	for {
		_, err := slow.read()
		if err != nil {
			if code := closeStatus(err); code != protocol.CloseSlowConsumer {
				t.Fatalf("close %d, want 4001", code)
			}
			break
		}
	}
	if f := connect(t, srv, aTok, nil).call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatal("alice is not served after bob's close")
	}
}

func TestRateLimits(t *testing.T) {
	srv := startLimited(t, func(l *server.Limits) {
		l.MessagesPerSecond, l.MessageBurst = 0.5, 2
		l.TypingPerSecond, l.TypingBurst = 5, 1
	})
	a, conv := aliceToBob(t, srv)
	a.send(conv.ID, "c1", "one")
	a.send(conv.ID, "c2", "two")
	f := a.call(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c3", Text: "three"})
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED || f.Error.RetryAfterMS <= 0 {
		t.Fatalf("third send: %s %+v", f.Type, f.Error)
	}

	a.do(protocol.OpTyping, protocol.Typing{ConversationID: conv.ID, Typing: true}, nil)
	if code := a.fail(protocol.OpTyping, protocol.Typing{ConversationID: conv.ID, Typing: true}); code != parley.ERATELIMITED {
		t.Fatalf("second typing: %s", code)
	}
	th := a.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeThrottled })
	if d := decodeJSON[protocol.Throttled](t, th.Data); d.Feature != "typing" || d.Until.IsZero() {
		t.Fatalf("throttled %+v", d)
	}
	un := a.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeUnthrottled })
	if d := decodeJSON[protocol.Unthrottled](t, un.Data); d.Feature != "typing" {
		t.Fatalf("unthrottled %+v", d)
	}
	a.do(protocol.OpTyping, protocol.Typing{ConversationID: conv.ID, Typing: true}, nil)

	if n := rateLimited(t, srv, "messages"); n != 1 {
		t.Fatalf("rate-limit hits counted: %v, want 1", n)
	}
}

// TestPresenceAndTyping over real connections, with a short grace.
func TestPresenceAndTyping(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.PresenceGrace = 200 * time.Millisecond }))
	aTok, bTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	srv.Token(t, "stranger", "S")
	a := connect(t, srv, aTok, nil)
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	talk(t, srv, conv.ID, aTok, bTok) // both wrote: contacts
	s := connect(t, srv, srv.Token(t, "stranger", "S"), nil)

	b := connect(t, srv, bTok, nil)
	if ev := a.event(parley.EventUserOnline); ev.UserID != "bob" {
		t.Fatalf("alice got %+v", ev)
	}
	if !contains(b.welcome.Online, "alice") {
		t.Fatalf("bob's welcome online %v", b.welcome.Online)
	}
	// typingStopped when the typist's last connection goes.
	b.do(protocol.OpTyping, protocol.Typing{ConversationID: conv.ID, Typing: true}, nil)
	a.event(parley.EventTypingStarted)
	b.ws.CloseNow()
	if ev := a.event(parley.EventTypingStopped); ev.UserID != "bob" {
		t.Fatalf("alice got %+v", ev)
	}
	if ev := a.event(parley.EventUserOffline); ev.UserID != "bob" {
		t.Fatalf("alice got %+v", ev)
	}
	// The stranger shares no conversation with bob: nothing about him.
	if f := s.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatal(f.Type)
	}
	for _, f := range s.pending {
		if f.Type == protocol.TypeEvent {
			t.Fatalf("stranger got %s", f.Data)
		}
	}
}

func TestShutdownGoAway(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 500 * time.Millisecond }))
	var delays []int64
	var cs []*wsClient
	for i := range 5 {
		cs = append(cs, connect(t, srv, srv.Token(t, fmt.Sprint("u", i), fmt.Sprint("U", i)), nil))
	}
	srv.Stop(t)
	for _, c := range cs {
		g := c.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeGoAway })
		d := decodeJSON[protocol.GoAway](t, g.Data)
		if d.ReconnectAfterMS < 500 || d.ReconnectAfterMS >= 1000 {
			t.Fatalf("reconnect_after_ms %d outside [500,1000)", d.ReconnectAfterMS)
		}
		delays = append(delays, d.ReconnectAfterMS)
		if code := c.closeCode(); code != protocol.CloseShutdown {
			t.Fatalf("close %d, want 4003", code)
		}
	}
	same := true
	for _, d := range delays {
		same = same && d == delays[0]
	}
	if same {
		t.Fatalf("every connection got the same delay %v: not jittered", delays)
	}
}
