package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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
// of parley.MaxContacts of them: in welcome.online, in the presence op
// and in GET /v1/presence, and userOnline of as many. The members are
// online on another node (its snapshot on the broker), so the test needs
// no thousand connections.
//
// A friend whose direct conversation with the user is older than all the
// groups is not among the user's contacts, while the user is among the
// friend's: presence follows each one's own list (docs/protocol.md,
// section 6, Contacts limit), so the friend's welcome lists the user and
// the user hears the friend come online, while the user's presence does
// not list the friend.
func TestContactsLimitOnline(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Unlimited()
		c.NodeTimeout = time.Minute // the other node's one snapshot lasts the test
		// A thousand contact reads take a while under the race detector,
		// in which the victim only listens.
		c.HeartbeatTimeout = time.Minute
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tok, friendTok, pal := srv.Token(t, "victim", "Victim"), srv.Token(t, "friend", "Friend"), srv.Token(t, "pal", "Pal")

	// The friend's conversations come first: a direct one with the
	// victim, both writing, and a group with a pal.
	direct, _, err := srv.Store.CreateDirect(ctx, "friend", "victim")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"friend", "victim"} {
		if _, _, err := srv.Store.SendMessage(ctx, parley.NewMessage{ConversationID: direct.ID, SenderID: u, ClientID: "hi-" + u, Type: parley.Text, Text: "hi"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := srv.Store.CreateGroup(ctx, "friend", "pals", []string{"pal"}); err != nil {
		t.Fatal(err)
	}

	// Small groups, so that the members' own contacts, which the node
	// reads as each comes online, are cheap to read.
	const perGroup, groups = 25, parley.MaxContacts/25 + 1
	others := make([]string, groups*perGroup)
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
	var last parley.Conversation
	for g := range groups {
		members := slices.Concat(others[g*perGroup+1:(g+1)*perGroup], []string{"victim"})
		if last, _, err = srv.Store.CreateGroup(ctx, others[g*perGroup], fmt.Sprint("G", g), members); err != nil {
			t.Fatal(err)
		}
	}
	v := connect(t, srv, tok, nil)
	online := parley.NodePresence{Snapshot: true, Online: others}
	if err := srv.Broker.Publish(ctx, parley.BrokerMessage{Node: "elsewhere", Presence: &online}); err != nil {
		t.Fatal(err)
	}
	// The victim hears them come online, as many as the limit.
	heard := map[string]bool{}
	for len(heard) < parley.MaxContacts {
		heard[v.event(parley.EventUserOnline).UserID] = true
	}
	var pl protocol.PresenceList
	v.do(protocol.OpPresence, nil, &pl)
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

	// The friend comes online: the pal and the victim hear it (a message
	// in the victim's newest group, sent once the pal heard, is the
	// barrier); the friend's welcome lists the victim, while the victim's
	// presence does not list the friend.
	p := connect(t, srv, pal, nil)
	f := connect(t, srv, friendTok, nil)
	if ev := p.event(parley.EventUserOnline); ev.UserID != "friend" {
		t.Fatalf("the pal heard %s come online", ev.UserID)
	}
	marker := `{"client_id":"barrier","text":"barrier"}`
	if r := httpDo(t, srv, "POST", "/v1/conversations/"+last.ID+"/messages", srv.Token(t, last.CreatedBy, last.CreatedBy), marker); r.status != 201 {
		t.Fatalf("barrier: %d %+v", r.status, r.err)
	}
	if got := onlineUntil(t, v, "barrier"); !slices.Contains(got, "friend") {
		t.Error("the victim did not hear the friend come online")
	}
	if !slices.Contains(f.welcome.Online, "victim") {
		t.Errorf("the friend's welcome does not list the victim online: %v", f.welcome.Online)
	}
	v.do(protocol.OpPresence, nil, &pl)
	if slices.Contains(pl.Online, "friend") || len(pl.Online) != parley.MaxContacts {
		t.Errorf("the victim's presence lists %d users, the friend among them: %v", len(pl.Online), slices.Contains(pl.Online, "friend"))
	}
}
