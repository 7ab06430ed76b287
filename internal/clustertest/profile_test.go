package clustertest_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// TestWelcomeProfileAcrossNodes: alice's hello on node 1 leaves her user
// in node 1's cache; she then changes her display name on node 0. Once
// node 1 has the profileUpdated event (carol, on node 1, received it),
// alice's next hello there is welcomed with the new name. (Node 1 kept
// the cached user, and with it the old name, until it restarted.)
func TestWelcomeProfileAcrossNodes(t *testing.T) {
	nodes, secret := startNodes(t, nodeCount)
	ctx := t.Context()
	clients := make([]*client, 3)
	for i, name := range []string{"Alice", "Carol", "Bob"} {
		clients[i] = newClient(ctx, t, nodes[0].store, secret, i, strings.ToLower(name), name)
		clients[i].node = i
		clients[i].keepAll = true
	}
	alice, carol := clients[0], clients[1]
	groupsOfThree(ctx, t, clients, 1, "profiles", func(int) parley.Store { return nodes[0].store })
	connectAll(ctx, t, clients, nodes)
	if w := welcomeUser(ctx, t, nodes[1], alice.token); w.DisplayName != "" {
		t.Fatalf("alice's first welcome on node 1: %+v", w)
	}

	name := "Alice Liddell"
	call(ctx, t, alice, protocol.OpSetProfile, protocol.SetProfile{DisplayName: &name}, nil)
	waitUntil(t, "carol's profileUpdated of alice (node 1)", func() bool {
		carol.mu.Lock()
		defer carol.mu.Unlock()
		for _, d := range carol.all {
			var e keptEvent
			if json.Unmarshal(d, &e) == nil && e.Type == parley.EventProfileUpdated && e.UserID == alice.user {
				return true
			}
		}
		return false
	})
	if w := welcomeUser(ctx, t, nodes[1], alice.token); w.DisplayName != name {
		t.Errorf("alice's welcome on node 1 after her change on node 0: %+v, want display name %q", w, name)
	}
}

// welcomeUser says hello to n with token and returns the welcome's user.
func welcomeUser(ctx context.Context, t *testing.T, n *node, token string) parley.User {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, n.wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	hello, _ := json.Marshal(protocol.Hello{Token: token})
	b, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, Data: hello})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
	_, b, err = ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var f protocol.Frame
	var w protocol.Welcome
	if err := json.Unmarshal(b, &f); err != nil || f.Type != protocol.TypeWelcome || json.Unmarshal(f.Data, &w) != nil {
		t.Fatalf("after hello got %s (%v)", b, err)
	}
	return w.User
}
