package server_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestPipelinedSendsKeepOrder: a client that writes many sends without
// waiting for their replies (the worker hands runs of them to the store at
// once) gets its replies in the order sent, its messages stored and
// delivered in that order, each exactly once, and a client_id repeated
// within the burst stored once; a refused send in the middle of a run
// fails alone.
func TestPipelinedSendsKeepOrder(t *testing.T) {
	srv := servertest.Start(t)
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	srv.Token(t, "carol", "Carol")
	c := connect(t, srv, srv.Token(t, "carol", "Carol"), nil)
	var conv, foreign parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "pipe", MemberIDs: []string{"bob"}}, &conv)
	c.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "not alice's"}, &foreign)
	b.event(parley.EventConversationUpdated)

	const n = 400
	type sent struct {
		op       string
		clientID string // "" for a request that is not a send
		text     string
		want     string // "" stored new, "dup" a resend of an earlier one, else an error code
	}
	reqs := make([]sent, n)
	for i := range reqs {
		r := sent{op: protocol.OpSend, clientID: fmt.Sprintf("p%d", i), text: fmt.Sprintf("m%03d", i)}
		switch {
		case i%97 == 50:
			r = sent{op: protocol.OpConversations} // breaks a run of sends
		case i%13 == 5 && reqs[i-2].op == protocol.OpSend && reqs[i-2].want == "":
			r.clientID, r.want = reqs[i-2].clientID, "dup" // a resend of a stored send
		case i == 120:
			r.text, r.want = "", parley.EINVALID
		case i == 121:
			r.want = parley.ENOTFOUND
		}
		reqs[i] = r
	}
	for i, r := range reqs {
		conv := conv.ID
		if r.want == parley.ENOTFOUND {
			conv = foreign.ID
		}
		var data any
		if r.op == protocol.OpSend {
			data = protocol.Send{ConversationID: conv, ClientID: r.clientID, Text: r.text}
		}
		a.sendOp(r.op, fmt.Sprintf("q%d", i), data)
	}

	// Replies come in the order sent; new messages take consecutive seqs.
	byClient := map[string]parley.Message{}
	var stored []string
	seq := int64(0)
	for i, r := range reqs {
		f := a.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeReply || f.Type == protocol.TypeError })
		if f.ID != fmt.Sprintf("q%d", i) {
			t.Fatalf("reply %d is for %s: replies out of order", i, f.ID)
		}
		if r.op != protocol.OpSend {
			continue
		}
		if r.want != "" && r.want != "dup" {
			if f.Type != protocol.TypeError || f.Error.Code != r.want {
				t.Fatalf("send %d: %s %+v, want error %s", i, f.Type, f.Error, r.want)
			}
			continue
		}
		if f.Type != protocol.TypeReply {
			t.Fatalf("send %d: %s %+v", i, f.Type, f.Error)
		}
		var m parley.Message
		if err := json.Unmarshal(f.Data, &m); err != nil {
			t.Fatal(err)
		}
		if r.want == "dup" {
			if first := byClient[r.clientID]; m.ID != first.ID || m.Seq != first.Seq {
				t.Fatalf("send %d, a resend of %s: message %s seq %d, want %s seq %d", i, r.clientID, m.ID, m.Seq, first.ID, first.Seq)
			}
			continue
		}
		if m.Seq != seq+1 || m.Text != r.text {
			t.Fatalf("send %d: seq %d text %q after seq %d, want seq %d text %q", i, m.Seq, m.Text, seq, seq+1, r.text)
		}
		seq = m.Seq
		byClient[r.clientID] = m
		stored = append(stored, m.Text)
	}

	// Bob receives every new message once, in order, and nothing for the
	// resends; alice (a member too) the same.
	for _, who := range []*wsClient{b, a} {
		for k, text := range stored {
			ev := who.event(parley.EventNewMessage)
			if ev.Message == nil || ev.Message.Text != text || ev.Message.Seq != int64(k+1) {
				t.Fatalf("event %d: %+v, want %q seq %d", k, ev.Message, text, k+1)
			}
		}
	}
	// A last message proves nothing else was delivered in between.
	last := a.send(conv.ID, "last", "last")
	if ev := b.event(parley.EventNewMessage); ev.Message == nil || ev.Message.ID != last.ID {
		t.Fatalf("after the burst bob got %+v, want the last message", ev.Message)
	}
}

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
