package server_test

import (
	"fmt"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestSendStartsNoGoroutine: a send on a connection that has nothing else
// under way (each publisher of a fan-out, most of the time) is read by a
// reader goroutine of the poller's and run by a worker goroutine of the
// server's that were waiting for such work (goPool), not by two
// goroutines started for it and ended after it; its reply and event are
// written by the hub. So sends one after another start (next to) no
// goroutine.
func TestSendStartsNoGoroutine(t *testing.T) {
	srv := servertest.Start(t)
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	srv.Token(t, "carol", "Carol")
	var conv parley.Conversation // a group, as in `parley bench fanout`
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob", "carol"}}, &conv)
	send := func(i int) {
		if f := a.call(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: fmt.Sprint("c", i), Text: "hi"}); f.Type != protocol.TypeReply {
			t.Fatalf("send %d: %s %s", i, f.Type, f.Data)
		}
		b.event(parley.EventNewMessage)
	}
	for i := range 20 { // the pools fill
		send(i)
	}
	const n = 200
	g0 := goroutinesCreatedNow()
	for i := range n {
		send(20 + i)
	}
	if per := float64(goroutinesCreatedNow()-g0) / n; per > 0.5 {
		t.Errorf("%.2f goroutines started per send, want at most 0.5", per)
	}
}
