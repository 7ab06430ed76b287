package clustertest_test

import (
	"fmt"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/natsbroker"
	"github.com/parleychat/parley/protocol"
)

// TestRemoteEventsNotDecoded: a node decodes no payload of the events it
// hears from another node (natsbroker wire version 2: the server
// publishes each event as its clients' bytes, parley.Event.Data). Node 0
// serves a group whose members are all on it, and one member of a second
// group whose other member is on node 1. After node 1's client has the
// last message (node 0's publishes reach node 1 in order, so node 1 has
// heard every earlier one), node 1 has read node 0's messages and decoded
// none of their events, those with no audience on it included; its
// client got every message of its group once, in order, written from the
// bytes node 0 encoded.
func TestRemoteEventsNotDecoded(t *testing.T) {
	nodes, secret := startNodes(t, 2)
	ctx := t.Context()
	clients := make([]*client, 6)
	for i := range clients {
		id := fmt.Sprintf("wire%02d", i)
		clients[i] = newClient(ctx, t, nodes[0].store, secret, i, id, id)
	}
	clients[3].node = 1 // the only client on node 1
	groupsOfThree(ctx, t, clients, 2, "wire", func(int) parley.Store { return nodes[0].store })
	connectAll(ctx, t, clients, nodes)

	const n = 30
	for i := range n {
		for _, c := range []*client{clients[0], clients[4]} {
			s := protocol.Send{ConversationID: c.conv, ClientID: fmt.Sprintf("%s-%d", c.user, i), Type: parley.Text, Text: fmt.Sprintf("%s <&> %d ☃", c.user, i)}
			if err := c.send(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitUntil(t, "node 1's client to have every message of its group", func() bool { return clients[3].count() >= n })
	nb := nodes[1].broker.Broker.(*natsbroker.Broker)
	c := nb.Counts()
	t.Logf("node 1: %+v", c)
	if c.Read == 0 || c.Payloads != 0 || c.Dropped != 0 {
		t.Errorf("node 1 read %d messages and decoded %d event payloads (dropped %d), want > 0 read and 0 decoded", c.Read, c.Payloads, c.Dropped)
	}
	// The same counts as metrics on node 1's /metrics (presence reports
	// may still arrive, so read is between the counts before and after).
	rec := httptest.NewRecorder()
	nodes[1].srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	metric := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindStringSubmatch(rec.Body.String())
		if m == nil {
			t.Fatalf("node 1's metrics lack %s", name)
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	if read, after := metric("parley_broker_messages_read_total"), nb.Counts().Read; read < c.Read || read > after {
		t.Errorf("parley_broker_messages_read_total %d, want %d to %d", read, c.Read, after)
	}
	if v := metric("parley_broker_payloads_decoded_total"); v != 0 {
		t.Errorf("parley_broker_payloads_decoded_total %d, want 0", v)
	}
	if v := metric("parley_broker_messages_dropped_total"); v != 0 {
		t.Errorf("parley_broker_messages_dropped_total %d, want 0", v)
	}
	c3 := clients[3]
	c3.mu.Lock()
	defer c3.mu.Unlock()
	if c3.violation != "" {
		t.Error(c3.violation)
	}
	if len(c3.got) != n {
		t.Fatalf("node 1's client got %d messages, want %d", len(c3.got), n)
	}
	for i, m := range c3.got {
		if want := fmt.Sprintf("%s <&> %d ☃", clients[4].user, i); m.Text != want {
			t.Fatalf("message %d: %q, want %q", i, m.Text, want)
		}
	}
}
