package server_test

import (
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/protocol"
)

// TestIPMessageLimit: the per-IP send limit is shared by every user on the
// address (here all on 127.0.0.1), while each user's own limit is far from
// reached; a refused send is stored nowhere and succeeds when retried after
// the limit allows it.
func TestIPMessageLimit(t *testing.T) {
	srv := startLimited(t, func(l *server.Limits) {
		l.IPMessagesPerSecond, l.IPMessageBurst = 0.001, 3
	})
	a, b, conv := directPair(t, srv)
	a.send(conv.ID, "a1", "one")
	a.send(conv.ID, "a2", "two")
	b.send(conv.ID, "b1", "three")

	f := b.call(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "b2", Text: "four"})
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED || f.Error.RetryAfterMS <= 0 {
		t.Fatalf("fourth send from the address: %s %+v", f.Type, f.Error)
	}
	// Alice is limited too: the bucket is the address's, not bob's.
	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "a3", Text: "five"}); code != parley.ERATELIMITED {
		t.Fatalf("alice's send after the address's burst: %s", code)
	}

	page := a.history(conv.ID)
	if len(page.Messages) != 3 {
		t.Fatalf("%d messages stored, want the 3 accepted", len(page.Messages))
	}
	r := scrapeMetrics(t, srv)
	if !strings.Contains(string(r.body), `parley_rate_limited_total{limit="ip_messages"} 2`) {
		t.Fatal("per-IP limit hits not counted as ip_messages")
	}
}

// TestPresenceQueryLimit: presence queries are limited per user; another
// user's queries are not affected.
func TestPresenceQueryLimit(t *testing.T) {
	srv := startLimited(t, func(l *server.Limits) {
		l.PresencePerSecond, l.PresenceBurst = 0.001, 2
	})
	aTok, bTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	a, b, conv := directPair(t, srv)
	talk(t, srv, conv.ID, aTok, bTok)
	// The reply made them contacts once the hub delivered it: each hears
	// the other online then (a query right after the ack may come first).
	if ev := a.event(parley.EventUserOnline); ev.UserID != "bob" {
		t.Fatalf("alice heard %s online, want bob", ev.UserID)
	}
	if ev := b.event(parley.EventUserOnline); ev.UserID != "alice" {
		t.Fatalf("bob heard %s online, want alice", ev.UserID)
	}

	var pl protocol.PresenceList
	a.do(protocol.OpPresence, nil, &pl)
	if len(pl.Online) != 1 || pl.Online[0] != "bob" {
		t.Fatalf("alice sees %v online, want [bob]", pl.Online)
	}
	a.do(protocol.OpPresence, nil, nil)
	f := a.call(protocol.OpPresence, nil)
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED || f.Error.RetryAfterMS <= 0 {
		t.Fatalf("third presence query: %s %+v", f.Type, f.Error)
	}
	b.do(protocol.OpPresence, nil, &pl)
	if len(pl.Online) != 1 || pl.Online[0] != "alice" {
		t.Fatalf("bob sees %v online, want [alice]", pl.Online)
	}
	r := scrapeMetrics(t, srv)
	if !strings.Contains(string(r.body), `parley_rate_limited_total{limit="presence"} 1`) {
		t.Fatal("presence limit hit not counted")
	}
}
