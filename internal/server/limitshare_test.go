package server_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

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
