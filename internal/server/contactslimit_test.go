package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestContactsLimitOnline: a user others added to more groups than
// parley.MaxContacts contacts fill, every member of them online, hears
// of parley.MaxContacts of them at most: in welcome.online, in the
// presence op and in GET /v1/presence. The members are online on another
// node (its snapshot on the broker), so the test needs no thousand
// connections.
func TestContactsLimitOnline(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Unlimited()
		c.NodeTimeout = time.Minute // the other node's one snapshot lasts the test
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok := srv.Token(t, "victim", "Victim")
	const perGroup = parley.MaxGroupMembers - 1
	others := make([]string, 4*perGroup)
	var wg sync.WaitGroup
	for i := range others {
		others[i] = fmt.Sprintf("member%04d", i)
		wg.Go(func() {
			if _, err := srv.Store.EnsureUser(ctx, others[i], others[i]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		if _, _, err := srv.Store.CreateGroup(ctx, others[g*perGroup], fmt.Sprint("G", g), append(others[g*perGroup+1:(g+1)*perGroup], "victim")); err != nil {
			t.Fatal(err)
		}
	}
	if len(others) <= parley.MaxContacts {
		t.Fatalf("%d members make no more contacts than the limit", len(others))
	}
	online := parley.NodePresence{Snapshot: true, Online: others}
	if err := srv.Broker.Publish(ctx, parley.BrokerMessage{Node: "elsewhere", Presence: &online}); err != nil {
		t.Fatal(err)
	}

	v := connect(t, srv, tok, nil)
	var pl protocol.PresenceList
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		v.do(protocol.OpPresence, nil, &pl)
		if len(pl.Online) >= parley.MaxContacts || time.Now().After(deadline) {
			break
		}
	}
	if len(pl.Online) != parley.MaxContacts {
		t.Fatalf("presence lists %d online contacts, want %d", len(pl.Online), parley.MaxContacts)
	}
	if w := connect(t, srv, tok, nil).welcome; len(w.Online) != parley.MaxContacts {
		t.Errorf("welcome.online lists %d online contacts, want %d", len(w.Online), parley.MaxContacts)
	}
	r := httpDo(t, srv, "GET", "/v1/presence", tok, "")
	if err := json.Unmarshal(r.body, &pl); r.status != 200 || err != nil {
		t.Fatalf("GET /v1/presence: %d %v", r.status, err)
	}
	if len(pl.Online) != parley.MaxContacts {
		t.Errorf("GET /v1/presence lists %d online contacts, want %d", len(pl.Online), parley.MaxContacts)
	}
}
