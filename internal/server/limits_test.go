package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
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

// TestSendGateKeepsOrder: after a send is refused as rate-limited, a later
// send on the same connection is refused too, even once the limiter has a
// token again, until the refused message comes back: otherwise a client
// with several sends in flight would get them stored out of order.
func TestSendGateKeepsOrder(t *testing.T) {
	srv := startLimited(t, func(l *server.Limits) {
		// One token a second: slow enough that no token comes back while
		// the first three sends run, even on a loaded machine.
		l.MessagesPerSecond, l.MessageBurst = 1, 2
	})
	a, conv := aliceToBob(t, srv)
	a.send(conv.ID, "c1", "one")
	a.send(conv.ID, "c2", "two")
	f := a.call(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c3", Text: "three"})
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED {
		t.Fatalf("third send: %s %+v, want rate_limited", f.Type, f.Error)
	}
	// Let the limiter refill (one token a second). This wait is a
	// precondition, not a timed assertion: waiting longer changes nothing.
	time.Sleep(time.Duration(f.Error.RetryAfterMS)*time.Millisecond + 100*time.Millisecond)

	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c4", Text: "four"}); code != parley.ERATELIMITED {
		t.Fatalf("send after the refused one, before it is retried: %s, want rate_limited", code)
	}
	a.send(conv.ID, "c3", "three")      // the refused message opens the gate
	time.Sleep(1100 * time.Millisecond) // a token for c4 (a precondition, as above)
	a.send(conv.ID, "c4", "four")

	page := a.history(conv.ID)
	var got []string
	for _, m := range page.Messages {
		got = append(got, m.Text)
	}
	if len(got) != 4 || got[0] != "one" || got[1] != "two" || got[2] != "three" || got[3] != "four" {
		t.Fatalf("stored %v, want [one two three four]", got)
	}
}

// TestSendGateHoldsEdits: an edit refused by the messages limit closes
// the gate for sends, and a refused send closes it for edits, so a
// client's sends and edits are applied in the order it sent them.
func TestSendGateHoldsEdits(t *testing.T) {
	srv := startLimited(t, func(l *server.Limits) {
		l.MessagesPerSecond, l.MessageBurst = 1, 2
	})
	a, conv := aliceToBob(t, srv)
	m := a.send(conv.ID, "c1", "one")
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e1", Text: "ONE"}, nil)
	f := a.call(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e2", Text: "ONE!"})
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED {
		t.Fatalf("third write: %s %+v, want rate_limited", f.Type, f.Error)
	}
	// A refill (a precondition, not a timed assertion, as above).
	time.Sleep(time.Duration(f.Error.RetryAfterMS)*time.Millisecond + 100*time.Millisecond)
	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c2", Text: "two"}); code != parley.ERATELIMITED {
		t.Fatalf("a send behind the refused edit: %s, want rate_limited", code)
	}
	var got parley.Message
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e2", Text: "ONE!"}, &got)
	if got.Text != "ONE!" {
		t.Fatalf("the refused edit, resent: %q", got.Text)
	}
}

// TestClusterWideLimits: three nodes on one store and one broker, with a
// sends limit of 20/s and a burst of 5 (per user, then per IP). A client
// spread over the three (a connection on each, sending in turn on each,
// as fast as the replies come, for 2 s) gets about one node's worth: at
// most burst + rate*T, plus the documented tolerance of the usage that
// is in flight between nodes ((k-1) bursts and (k-1)*rate*(interval +
// slack)); three nodes limiting alone would give 3*(burst + rate*T).
func TestClusterWideLimits(t *testing.T) {
	const (
		nodes    = 3
		perSec   = 20.0
		burst    = 5
		interval = 50 * time.Millisecond
		slack    = 500 * time.Millisecond // broker and scheduling delay on a loaded machine
		load     = 2 * time.Second        // how long the client sends: the length of the load, not an assertion
	)
	for _, tc := range []struct {
		name   string
		limits func(*server.Limits)
		users  int // 1: one user on every node; nodes: one user per node, one IP
	}{
		{"per user", func(l *server.Limits) { l.MessagesPerSecond, l.MessageBurst = perSec, burst }, 1},
		{"per IP", func(l *server.Limits) { l.IPMessagesPerSecond, l.IPMessageBurst = perSec, burst }, nodes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			real, br, secret := clusterParts(t)
			var never atomic.Bool
			srvs := make([]*servertest.Server, nodes)
			for i := range srvs {
				srvs[i] = servertest.Start(t, servertest.WithSecret(secret), servertest.WithBroker(br),
					servertest.WithStore(func(context.Context, string) (parley.Store, error) { return laggingStore{real, &never}, nil }),
					servertest.WithConfig(func(c *server.Config) {
						tc.limits(&c.Limits)
						c.LimitShareInterval = interval
					}))
			}
			connect(t, srvs[0], srvs[0].Token(t, "bob", "Bob"), nil) // creates bob
			// A refused send is resent with its client id, as clients do
			// (the send gate keeps a connection's sends in order).
			type sender struct {
				c    *wsClient
				conv string
				next int
			}
			var senders []sender
			for i := range nodes {
				user := fmt.Sprint("user", i%tc.users)
				c := connect(t, srvs[i], srvs[i].Token(t, user, user), nil)
				var conv parley.Conversation
				c.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
				senders = append(senders, sender{c: c, conv: conv.ID})
			}

			start := time.Now()
			accepted, limited := 0, 0
			for i := 0; time.Since(start) < load; i++ {
				s := &senders[i%nodes]
				f := s.c.call(protocol.OpSend, protocol.Send{ConversationID: s.conv, ClientID: fmt.Sprint("m", i%nodes, "-", s.next), Text: "x"})
				switch {
				case f.Type == protocol.TypeReply:
					accepted++
					s.next++
				case f.Error != nil && f.Error.Code == parley.ERATELIMITED:
					limited++
				default:
					t.Fatalf("send %d: %s %+v", i, f.Type, f.Error)
				}
			}
			elapsed := time.Since(start).Seconds()
			oneNode := burst + perSec*elapsed
			tolerance := (nodes-1)*burst + (nodes-1)*perSec*(interval+slack).Seconds()
			t.Logf("%d sends accepted, %d rate_limited in %.2f s over %d nodes; one node's limit %.0f, bound %.0f, %d nodes alone %.0f",
				accepted, limited, elapsed, nodes, oneNode, oneNode+tolerance, nodes, nodes*oneNode)
			if float64(accepted) > oneNode+tolerance {
				t.Errorf("%d sends accepted over %d nodes in %.2f s, want at most %.0f (one node's %.0f + tolerance %.0f)",
					accepted, nodes, elapsed, oneNode+tolerance, oneNode, tolerance)
			}
			if accepted < burst {
				t.Errorf("%d sends accepted, want at least the burst %d", accepted, burst)
			}
		})
	}
}
