package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// onlineBefore returns the users c hears are online after the
// conversationUpdated event with change and before the newMessage with
// marker. The hub queues presence right behind the event, so a message
// sent after it is a barrier: everything about the event came before.
func onlineBefore(t *testing.T, c *wsClient, change parley.Change, marker string) []string {
	t.Helper()
	for {
		if ev := c.event(parley.EventConversationUpdated); ev.Change == change {
			break
		}
	}
	return onlineUntil(t, c, marker)
}

// onlineUntil returns the users c hears are online before the newMessage
// with text marker, as a set: the regular presence tick may announce the
// same user too; userOnline is a state.
func onlineUntil(t *testing.T, c *wsClient, marker string) []string {
	t.Helper()
	var online []string
	for {
		f := c.next()
		var ev parley.Event
		if f.Type != protocol.TypeEvent || json.Unmarshal(f.Data, &ev) != nil {
			continue
		}
		switch {
		case ev.Type == parley.EventUserOnline:
			online = append(online, ev.UserID)
		case ev.Type == parley.EventNewMessage && ev.Message.Text == marker:
			slices.Sort(online)
			return slices.Compact(online)
		}
	}
}

// onlineBetween returns the users c hears are online after the newMessage
// with text from and before the one with text to.
func onlineBetween(t *testing.T, c *wsClient, from, to string) []string {
	t.Helper()
	for {
		if ev := c.event(parley.EventNewMessage); ev.Message.Text == from {
			break
		}
	}
	return onlineUntil(t, c, to)
}

// talk has each user (by token) write a message in the direct
// conversation convID over HTTP, which makes its two users contacts.
func talk(t *testing.T, srv *servertest.Server, convID string, tokens ...string) {
	t.Helper()
	for i, tok := range tokens {
		body := fmt.Sprintf(`{"client_id":"talk-%d-%d","text":"hi"}`, i, time.Now().UnixNano())
		if r := httpDo(t, srv, "POST", "/v1/conversations/"+convID+"/messages", tok, body); r.status != 201 {
			t.Fatalf("talk: status %d %+v", r.status, r.err)
		}
	}
}

// hears checks that got holds every user in want, and nobody else but
// users in maybe: the regular presence tick may also announce a user who
// connected moments ago, to whoever is their contact by then.
func hears(t *testing.T, who string, got, want, maybe []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Fatalf("%s hears online %v, missing %s", who, got, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) && !slices.Contains(maybe, g) {
			t.Fatalf("%s hears online %v: %s should not be announced", who, got, g)
		}
	}
}

// TestNewContactsHearPresence: userOnline goes only to contacts, so users
// who become contacts hear at once which of each other are online.
func TestNewContactsHearPresence(t *testing.T) {
	srv := servertest.Start(t)
	alice := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	carol := connect(t, srv, srv.Token(t, "carol", "Carol"), nil)
	dave := connect(t, srv, srv.Token(t, "dave", "Dave"), nil)
	srv.Token(t, "erin", "Erin") // exists, never connects

	// A direct conversation makes contacts once both wrote in it: its
	// creation announces nothing, the answer announces both.
	var direct parley.Conversation
	alice.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "carol"}, &direct)
	alice.send(direct.ID, "m1", "barrier 1")
	hears(t, "alice", onlineBefore(t, alice, parley.ChangeCreated, "barrier 1"), nil, nil)
	hears(t, "carol", onlineBefore(t, carol, parley.ChangeCreated, "barrier 1"), nil, nil)
	carol.send(direct.ID, "c1", "answer 1")
	carol.send(direct.ID, "c2", "barrier 1b")
	hears(t, "alice", onlineBetween(t, alice, "answer 1", "barrier 1b"), []string{"carol"}, nil)
	hears(t, "carol", onlineBetween(t, carol, "answer 1", "barrier 1b"), []string{"alice"}, nil)

	var group parley.Conversation
	alice.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"carol", "erin"}}, &group)
	alice.send(group.ID, "m2", "barrier 2")
	// Alice and carol are contacts already; hearing it again is harmless.
	onlineBefore(t, carol, parley.ChangeCreated, "barrier 2")
	alice.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: group.ID, Add: []string{"dave"}}, nil)
	alice.send(group.ID, "m3", "barrier 3")
	// The added user hears of every online member; members hear of the
	// added user only; offline erin is never announced.
	hears(t, "dave", onlineBefore(t, dave, parley.ChangeMembersAdded, "barrier 3"), []string{"alice", "carol"}, nil)
	hears(t, "carol", onlineBefore(t, carol, parley.ChangeMembersAdded, "barrier 3"), []string{"dave"}, []string{"alice"})
}

// TestNewContactsSkipBlocked: members of a new group who blocked one
// another are no contacts, so neither hears that the other is online:
// their userOffline would never reach each other (it follows the
// contacts list), and the dot would stay green.
func TestNewContactsSkipBlocked(t *testing.T) {
	srv := servertest.Start(t)
	alice := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	bob := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	carol := connect(t, srv, srv.Token(t, "carol", "Carol"), nil)
	alice.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, nil)

	var group parley.Conversation
	carol.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"alice", "bob"}}, &group)
	carol.send(group.ID, "m1", "barrier 1")
	hears(t, "alice", onlineBefore(t, alice, parley.ChangeCreated, "barrier 1"), []string{"carol"}, nil)
	hears(t, "bob", onlineBefore(t, bob, parley.ChangeCreated, "barrier 1"), []string{"carol"}, nil)
	hears(t, "carol", onlineBefore(t, carol, parley.ChangeCreated, "barrier 1"), []string{"alice", "bob"}, nil)

	// An addition: bob joins carol and alice's group; alice and bob
	// still hear nothing of each other.
	var duo parley.Conversation
	carol.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "duo", MemberIDs: []string{"alice"}}, &duo)
	carol.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: duo.ID, Add: []string{"bob"}}, nil)
	carol.send(duo.ID, "m2", "barrier 2")
	hears(t, "alice", onlineBefore(t, alice, parley.ChangeMembersAdded, "barrier 2"), nil, []string{"carol"})
	hears(t, "bob", onlineBefore(t, bob, parley.ChangeMembersAdded, "barrier 2"), []string{"carol"}, nil)
	hears(t, "carol", onlineBefore(t, carol, parley.ChangeMembersAdded, "barrier 2"), []string{"bob"}, []string{"alice"})
}

// contactsCounting is a SQLite store (every optional interface kept)
// that counts its Contacts reads and Tie questions.
type contactsCounting struct {
	*sqlite.DB
	reads atomic.Int64 // Contacts
	ties  atomic.Int64 // Tie
}

func (s *contactsCounting) Contacts(ctx context.Context, userID string) ([]string, error) {
	s.reads.Add(1)
	return s.DB.Contacts(ctx, userID)
}

// startContactsCounting starts a server on a contactsCounting store, with
// opts.
func startContactsCounting(t *testing.T, opts ...servertest.Option) (*servertest.Server, *contactsCounting) {
	cs := &contactsCounting{}
	srv := servertest.Start(t, append(opts, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		cs.DB = db
		return cs, err
	}))...)
	return srv, cs
}

// barrier has from (user fromID) send a message to conv and waits until
// to receives it: the hub delivers in position order, so it has then
// handled every event before it.
func barrier(from, to *wsClient, conv, fromID string) {
	from.t.Helper()
	from.send(conv, "barrier", "barrier")
	for {
		if ev := to.eventBy(parley.EventNewMessage, fromID); ev.Message.Text == "barrier" {
			return
		}
	}
}

func (s *contactsCounting) Tie(ctx context.Context, userID, otherID string, groups bool) (parley.Tie, error) {
	s.ties.Add(1)
	return s.DB.Tie(ctx, userID, otherID, groups)
}

// TestAudienceOfTwoAsksOnce: a newMessage whose audience is two users (a
// group of two, or a group whose third member blocked the writer) asks
// the store about the pair once, not once a message: they are contacts
// through the group, so the first answer caches a list that holds the
// other. Asked without groups, the answer was "not contacts" every time
// and each of the run's messages was a store call on the hub goroutine,
// which writes pending send replies ahead of their events.
func TestAudienceOfTwoAsksOnce(t *testing.T) {
	srv, cs := startContactsCounting(t)
	alice := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	bob := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	carol := connect(t, srv, srv.Token(t, "carol", "Carol"), nil)
	var two, three parley.Conversation
	alice.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "two", MemberIDs: []string{"bob"}}, &two)
	carol.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "three", MemberIDs: []string{"alice", "bob"}}, &three)
	carol.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, nil)
	carol.event(parley.EventUserBlocked)

	before := cs.ties.Load()
	const messages = 20
	for i := range messages {
		bob.send(two.ID, fmt.Sprint("two", i), "in two")
		bob.send(three.ID, fmt.Sprint("three", i), "carol blocked me")
	}
	// Once alice has a later message, the hub has handled all of bob's.
	barrier(carol, alice, three.ID, "carol")
	// One question a pair (alice and bob, the audience of both groups'
	// messages), and one more if a presence tick dropped the list
	// between.
	if n := cs.ties.Load() - before; n > 2 {
		t.Errorf("%d messages to an audience of two cost %d store questions about the pair, want at most 2", 2*messages, n)
	}
}

// presenceHold is a broker whose presence reports wait, while held,
// until released: the server's presence goroutine publishes a tick's
// reports before it announces the tick's transitions (presence.tick), so
// the userOnline of every connect made meanwhile waits too.
type presenceHold struct {
	parley.Broker
	held    atomic.Bool
	release chan struct{}
}

func (b *presenceHold) Publish(ctx context.Context, m parley.BrokerMessage) error {
	if m.Presence != nil && b.held.Load() {
		<-b.release
	}
	return b.Broker.Publish(ctx, m)
}

// TestOneSidedDirectReadsNoList: the messages of a direct conversation
// only one of its users wrote in, both online, cost no contacts list
// read: the hub asks the store about the pair instead (Consenter.Tie),
// where it read the writer's whole list for every one of them, and it
// keeps their cached lists, which the store's answer (not contacts)
// shows are right. It dropped them at the first message, so the next
// presence change of each read its whole list again: here the userOnline
// of their connects, announced on a presence tick that came after the
// messages (held here; unheld, the tick, every 50 ms, may come after
// the first message), read both lists: 2 reads, the victim's and the
// stranger's, from presence.tick, notifyPresence, presenceContacts,
// contactsCache.get (the test allowed up to 3).
// TestHostileStrangerPresence checks what is announced.
func TestOneSidedDirectReadsNoList(t *testing.T) {
	br := &presenceHold{Broker: membroker.New(), release: make(chan struct{})}
	t.Cleanup(func() { br.Broker.Close() })
	srv, cs := startContactsCounting(t, servertest.WithBroker(br))
	released := false
	release := func() {
		if !released {
			released = true
			br.held.Store(false)
			close(br.release)
		}
	}
	t.Cleanup(release) // before the server stops, which waits for the presence goroutine
	tokens := map[string]string{}
	for _, u := range []string{"other", "victim", "stranger", "friend", "pal"} {
		tokens[u] = srv.Token(t, u, u)
	}
	// The conversations first, with nobody online: nothing is announced.
	// The victim and the friend are contacts through a group (of three:
	// its messages are no pair's), the stranger and the pal through a
	// group of two, and the stranger writes to the victim.
	create := func(who, kind, body string) string {
		r := httpDo(t, srv, "POST", "/v1/conversations/"+kind, tokens[who], body)
		var c parley.Conversation
		if r.status != 201 && r.status != 200 || json.Unmarshal(r.body, &c) != nil {
			t.Fatalf("create %s: status %d %+v", kind, r.status, r.err)
		}
		return c.ID
	}
	g := create("friend", "group", `{"title":"three","member_ids":["victim","other"]}`)
	create("pal", "group", `{"title":"two","member_ids":["stranger"]}`)
	d := create("stranger", "direct", `{"user_id":"victim"}`)

	// Their connects' userOnline waits for the release.
	br.held.Store(true)
	c := map[string]*wsClient{}
	for _, u := range []string{"victim", "stranger", "friend", "pal"} {
		c[u] = connect(t, srv, tokens[u], nil)
	}
	// Each list in the cache: nothing changes them from here on.
	for _, cl := range c {
		cl.do(protocol.OpPresence, nil, nil)
	}

	before := cs.reads.Load()
	const messages = 20
	for i := range messages {
		c["stranger"].send(d, fmt.Sprint("s", i), "answer me")
	}
	// Once the victim has the group's later message, the hub has
	// handled every one of the stranger's.
	barrier(c["friend"], c["victim"], g, "friend")
	release()
	// Each connect's userOnline, heard by a contact, is announced after
	// the announcer's list is read (or found cached).
	c["friend"].eventBy(parley.EventUserOnline, "victim")
	c["victim"].eventBy(parley.EventUserOnline, "friend")
	c["pal"].eventBy(parley.EventUserOnline, "stranger")
	c["stranger"].eventBy(parley.EventUserOnline, "pal")
	if n := cs.reads.Load() - before; n != 0 {
		t.Errorf("%d messages of a one-sided direct conversation and the announcements of the connects before them cost %d contacts reads, want 0", messages, n)
	}
}
