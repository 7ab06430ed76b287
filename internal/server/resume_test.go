package server_test

import (
	"fmt"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// collectResume reads the replay after a welcome up to resumed (or
// resync) and returns the events and the final frame.
func collectResume(t *testing.T, c *wsClient) ([]parley.Event, protocol.Frame) {
	t.Helper()
	var evs []parley.Event
	for {
		f := c.next()
		switch f.Type {
		case protocol.TypeEvent:
			ev := decodeEvent(t, f)
			if ev.Pos > 0 {
				evs = append(evs, ev)
			}
		case protocol.TypeResumed, protocol.TypeResync:
			return evs, f
		default:
			t.Fatalf("during replay: %s", f.Type)
		}
	}
}

// checkIncreasing fails t unless the positions of evs strictly increase
// from after from: none out of order or twice.
func checkIncreasing(t *testing.T, evs []parley.Event, from int64) {
	t.Helper()
	last := from
	for _, ev := range evs {
		if ev.Pos <= last {
			t.Fatalf("position %d after %d: out of order or duplicate", ev.Pos, last)
		}
		last = ev.Pos
	}
}

func checkExactlyOnce(t *testing.T, evs []parley.Event, from int64, wantTexts []string) {
	t.Helper()
	checkIncreasing(t, evs, from)
	var texts []string
	for _, ev := range evs {
		if ev.Type == parley.EventNewMessage {
			texts = append(texts, ev.Message.Text)
		}
	}
	if fmt.Sprint(texts) != fmt.Sprint(wantTexts) {
		t.Fatalf("replayed %v, want %v", texts, wantTexts)
	}
}

// bobMisses starts alice and bob in a direct conversation; bob receives
// one message and goes away, then alice sends n more, with the texts
// format (of 0 to n-1). It returns alice, the conversation, bob's last
// position and the texts he missed.
func bobMisses(t *testing.T, srv *servertest.Server, n int, format string) (a *wsClient, conv parley.Conversation, last int64, want []string) {
	t.Helper()
	a, b, conv := directPair(t, srv)
	a.send(conv.ID, "c0", "before")
	last = b.event(parley.EventNewMessage).Pos
	b.ws.CloseNow()
	for i := range n {
		want = append(want, fmt.Sprintf(format, i))
		a.send(conv.ID, fmt.Sprintf("c%d", i+1), want[i])
	}
	return a, conv, last, want
}

func TestResumeAfterDisconnect(t *testing.T) {
	srv := servertest.Start(t)
	bTok := srv.Token(t, "bob", "Bob")
	a, conv, last, want := bobMisses(t, srv, 20, "missed %d")
	b := connect(t, srv, bTok, &last)
	evs, end := collectResume(t, b)
	if end.Type != protocol.TypeResumed {
		t.Fatalf("got %s", end.Type)
	}
	r := decodeJSON[protocol.Resumed](t, end.Data)
	if r.From != last || r.Count != len(evs) || (len(evs) > 0 && r.To != evs[len(evs)-1].Pos) {
		t.Fatalf("resumed %+v after %d replayed events", r, len(evs))
	}
	// The last sends are acknowledged before bob's hello, but the hub may
	// not have delivered them yet when bob registered (welcome.head is the
	// last delivered position): those come live, right after resumed. The
	// replay and the live stream together must hold each event once.
	for !containsText(evs, want[len(want)-1]) {
		f := b.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeEvent })
		if ev := decodeEvent(t, f); ev.Pos > 0 {
			evs = append(evs, ev)
		}
	}
	checkExactlyOnce(t, evs, last, want)
	r.To = evs[len(evs)-1].Pos
	// Live events follow, with no overlap.
	m := a.send(conv.ID, "live", "live")
	if ev := b.event(parley.EventNewMessage); ev.Message.ID != m.ID || ev.Pos <= r.To {
		t.Fatalf("live event %+v after %d", ev, r.To)
	}
}

func TestResumeAfterRestart(t *testing.T) {
	srv := servertest.Start(t)
	aTok, bTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	a, conv, last, want := bobMisses(t, srv, 5, "m%d")

	url := srv.URL
	srv.Restart(t)
	// Alice was told to go away, with a delay hint, then close 4003.
	g := a.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeGoAway })
	if d := decodeJSON[protocol.GoAway](t, g.Data); d.ReconnectAfterMS <= 0 {
		t.Fatalf("goaway %+v", d)
	}
	if code := a.closeCode(); code != protocol.CloseShutdown {
		t.Fatalf("close %d, want 4003", code)
	}
	if srv.URL != url {
		t.Fatalf("restart moved from %s to %s", url, srv.URL)
	}
	// The same message resent after the restart is not stored twice.
	a = connect(t, srv, aTok, nil)
	a.send(conv.ID, "c5", want[4])
	want = append(want, "after")
	a.send(conv.ID, "c6", "after")

	b := connect(t, srv, bTok, &last)
	evs, end := collectResume(t, b)
	if end.Type != protocol.TypeResumed {
		t.Fatalf("got %s", end.Type)
	}
	// "after" is committed before bob's hello, but the hub may not have
	// delivered it yet when bob registered (welcome.head is the last
	// delivered position): it then comes live, right after resumed. The
	// replay and the live stream together must hold each event once.
	for !containsText(evs, "after") {
		f := b.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeEvent })
		if ev := decodeEvent(t, f); ev.Pos > 0 {
			evs = append(evs, ev)
		}
	}
	checkExactlyOnce(t, evs, last, want)
}

func containsText(evs []parley.Event, text string) bool {
	for _, ev := range evs {
		if ev.Message != nil && ev.Message.Text == text {
			return true
		}
	}
	return false
}

func TestResync(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ResumeLimit = 5 }))
	aTok, bTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	a := connect(t, srv, aTok, nil)
	if a.welcome.ResumeLimit != 5 {
		t.Fatalf("welcome resume_limit %d", a.welcome.ResumeLimit)
	}
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	from := int64(0)
	for i := range 6 {
		a.send(conv.ID, fmt.Sprintf("c%d", i), "x")
	}
	// A send is answered once stored; its event reaches the hub just
	// after. Wait until alice has her six, so the hub has delivered them
	// and every welcome below carries the head that includes them (the
	// checks count events back from that head).
	for range 6 {
		a.event(parley.EventNewMessage)
	}
	b := connect(t, srv, bTok, &from)
	replayed, end := collectResume(t, b)
	if end.Type != protocol.TypeResync || len(replayed) != 5 {
		t.Fatalf("7 events behind with limit 5: got %s after %d events", end.Type, len(replayed))
	}
	// The range not replayed is (from, head]: from is the last replayed.
	if r := decodeJSON[protocol.Resync](t, end.Data); r.Head != b.welcome.Head || r.Reason == "" ||
		r.Cause != protocol.ResyncResumeLimit || r.From != replayed[4].Pos {
		t.Fatalf("resync %+v, welcome head %d, last replayed %d", r, b.welcome.Head, replayed[4].Pos)
	}
	// Ahead of the log (a wiped server): resync too, saying the log was
	// lost, with the store's head and the client's position.
	ahead := b.welcome.Head + 100
	c := connect(t, srv, bTok, &ahead)
	_, end = collectResume(t, c)
	if end.Type != protocol.TypeResync {
		t.Fatalf("ahead of the log: got %s", end.Type)
	}
	if r := decodeJSON[protocol.Resync](t, end.Data); r.Cause != protocol.ResyncLogLost || r.From != ahead || r.Head != b.welcome.Head {
		t.Fatalf("ahead of the log: resync %+v, want cause %s from %d head %d", r, protocol.ResyncLogLost, ahead, b.welcome.Head)
	}
	// Exactly at the limit: replayed.
	near := b.welcome.Head - 5
	d := connect(t, srv, bTok, &near)
	evs, end := collectResume(t, d)
	if end.Type != protocol.TypeResumed || len(evs) != 5 {
		t.Fatalf("5 behind: %s with %d events", end.Type, len(evs))
	}
}
