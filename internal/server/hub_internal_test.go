package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// userConns lists the connections the hub would deliver uid's events to.
func (h *hub) userConns(uid string) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cs []*conn
	for c := h.users[uid]; c != nil; c = c.hubNext {
		cs = append(cs, c)
	}
	return cs
}

// TestHubUserList registers several connections per user and removes them
// in every position of the per-user list: each remaining connection must
// still receive its user's events exactly once, and unregister must say
// when the user's last connection went.
func TestHubUserList(t *testing.T) {
	h := newHub(nil, nil, nil)
	h.start([]int64{0})
	newC := func(uid string) *conn { return &conn{user: parley.User{ID: uid}} }
	a1, a2, a3, a4, b1 := newC("a"), newC("a"), newC("a"), newC("a"), newC("b")
	for _, c := range []*conn{a1, a2, b1, a3, a4} {
		h.register(c, nil, nil)
	}
	same := func(got, want []*conn) bool {
		return len(got) == len(want) && !slices.ContainsFunc(want, func(c *conn) bool { return !slices.Contains(got, c) })
	}
	check := func(uid string, want ...*conn) {
		t.Helper()
		if got := h.userConns(uid); !same(got, want) {
			t.Fatalf("%s's connections: got %d %v, want %d %v", uid, len(got), got, len(want), want)
		}
	}
	check("a", a1, a2, a3, a4)
	check("b", b1)
	if got := h.conns(); !same(got, []*conn{a1, a2, a3, a4, b1}) {
		t.Fatalf("conns: got %v", got)
	}
	steps := []struct {
		c    *conn
		last bool
		left []*conn
	}{
		{a2, false, []*conn{a1, a3, a4}}, // the middle
		{a4, false, []*conn{a1, a3}},     // the first (registered last)
		{a1, false, []*conn{a3}},         // the tail
		{a3, true, nil},                  // the only one
	}
	for _, st := range steps {
		if last := h.unregister(st.c); last != st.last {
			t.Fatalf("unregister: last = %v, want %v", last, st.last)
		}
		check("a", st.left...)
	}
	check("b", b1)
	if _, ok := h.users["a"]; ok {
		t.Fatal("a user with no connection is still in the map")
	}
	if !h.unregister(b1) {
		t.Fatal("b1 was b's last connection")
	}
	if len(h.users) != 0 {
		t.Fatalf("users left: %v", h.users)
	}
}

// TestHubDeliverNoLocalAudience: an event none of whose audience is
// connected to this node (in a cluster, most of the events a node
// sequences: the other nodes' users') is sequenced and recorded as
// delivered, but not encoded into a frame nobody takes: delivering it
// allocates nothing. An event with a local audience still reaches it.
func TestHubDeliverNoLocalAudience(t *testing.T) {
	h := newHub(nil, nil, newMetrics())
	h.start([]int64{0})
	s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}}
	a := &conn{s: s, user: parley.User{ID: "a"}}
	h.register(a, nil, nil)
	pos := int64(0)
	ev := parley.Event{Type: parley.EventNewMessage, ConversationID: "c1", Audience: []string{"b"}}
	if n := testing.AllocsPerRun(100, func() {
		pos++
		ev.Pos = pos
		h.accept(ev)
	}); n != 0 {
		t.Fatalf("%v allocations per event with no local audience, want 0", n)
	}
	if h.delivered[0] != pos || h.seq[0].next != pos+1 {
		t.Fatalf("delivered %d, next %d; want %d, %d", h.delivered[0], h.seq[0].next, pos, pos+1)
	}
	if got := queued(t, a); len(got) != 0 {
		t.Fatalf("a received %v, events of b only", got)
	}
	h.accept(parley.Event{Pos: pos + 1, Type: parley.EventNewMessage, ConversationID: "c1", Audience: []string{"a"}})
	if got, want := queued(t, a), []string{fmt.Sprintf("0/%d", pos+1)}; !slices.Equal(got, want) {
		t.Fatalf("a received %v, want %v", got, want)
	}
}

// BenchmarkHubAccept: the sequencer's cost of one event in order, with a
// local audience (one connection) or none (another node's user, as most
// events a node of a cluster sequences are).
func BenchmarkHubAccept(b *testing.B) {
	for _, name := range []string{"local", "remote", "local-data", "remote-data"} {
		b.Run(name, func(b *testing.B) {
			h := newHub(nil, nil, newMetrics())
			h.start([]int64{0})
			s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 30}}}
			a := &conn{s: s, user: parley.User{ID: "a"}}
			h.register(a, nil, nil)
			to := "a"
			if strings.HasPrefix(name, "remote") {
				to = "b"
			}
			ev := parley.Event{Type: parley.EventNewMessage, ConversationID: "01JEXAMPLECONVERSATION00000", UserID: "01JEXAMPLEUSER000000000000", UserName: "bench-user",
				Message: &parley.Message{ID: "01JEXAMPLEMESSAGE000000000", ConversationID: "01JEXAMPLECONVERSATION00000", SenderID: "01JEXAMPLEUSER000000000000", Seq: 1, Text: "a message of the write benchmark, about this long", ClientID: "c-0001"},
				At:      time.Now(), Audience: []string{to}}
			if strings.HasSuffix(name, "-data") {
				// As a broker brings it (parley.Event.Data): routing
				// fields and the publisher's bytes.
				ev = parley.Event{Type: ev.Type, ConversationID: ev.ConversationID, At: ev.At, Audience: ev.Audience, Data: eventData(ev)}
			}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				ev.Pos = int64(i + 1)
				h.accept(ev)
				if i%256 == 255 {
					a.mu.Lock()
					clear(a.q)
					a.q, a.qBytes = a.q[:0], 0
					a.mu.Unlock()
				}
			}
		})
	}
}

// TestPushLocalInStore: while the hub is in a store call (beforeStore to
// afterStore) pushLocal takes a batch's events but hands the replies'
// connections back for the caller to write: no reply waits for the
// store. Otherwise the hub takes them for its next flush. Calls nest.
func TestPushLocalInStore(t *testing.T) {
	h := newHub(nil, nil, newMetrics())
	h.start([]int64{0})
	c := &conn{user: parley.User{ID: "a"}}
	ev := parley.Event{Pos: 1, Type: parley.EventNewMessage, ConversationID: "c1", Audience: []string{"a"}}
	h.beforeStore(storeFill)
	h.beforeStore(storeContacts) // a contacts read inside a fill, say
	h.afterStore()
	if back := h.pushLocal(1, [][]parley.Event{{ev}}, []*conn{c}); !slices.Equal(back, []*conn{c}) || len(h.flushIn) != 0 {
		t.Fatalf("in a store call: handed back %v, hub took %v; want the connection back", back, h.flushIn)
	}
	if len(h.localIn) != 1 {
		t.Fatalf("%d events queued, want the batch's 1", len(h.localIn))
	}
	h.afterStore()
	if back := h.pushLocal(2, nil, []*conn{c}); back != nil || !slices.Equal(h.flushIn, []*conn{c}) {
		t.Fatalf("out of store calls: handed back %v, hub took %v; want it taken", back, h.flushIn)
	}
}

// TestHubInReused: the arrays push and pushLocal queue events into for the
// run goroutine are given back and reused batch after batch (takeIn), so a
// batch of events costs the hub no array of its own (here with no local
// audience, which allocates nothing else: TestHubDeliverNoLocalAudience),
// and the events are still sequenced and delivered once each.
func TestHubInReused(t *testing.T) {
	h := newHub(nil, nil, newMetrics())
	h.start([]int64{0})
	fills := make([]bool, h.shards)
	batch := make([]parley.Event, 16)
	pos, audience := int64(0), []string{"b"}
	next := func() []parley.Event {
		for i := range batch {
			pos++
			batch[i] = parley.Event{Pos: pos, Type: parley.EventNewMessage, ConversationID: "c1", Audience: audience}
		}
		return batch
	}
	for _, local := range []bool{false, true} {
		cycle := func() {
			if local {
				h.pushLocal(0, [][]parley.Event{next()}, nil)
			} else {
				h.push(next())
			}
			<-h.sig
			h.takeIn(fills)
		}
		cycle() // the first batch makes the array
		if n := testing.AllocsPerRun(100, cycle); n != 0 {
			t.Errorf("local %v: %v allocations per batch of %d events, want 0", local, n, len(batch))
		}
	}
	if h.delivered[0] != pos || h.seq[0].next != pos+1 {
		t.Fatalf("delivered %d, next %d; want %d, %d", h.delivered[0], h.seq[0].next, pos, pos+1)
	}
}

// TestEphemeralNone: this node's own events back from the broker (every
// store batch's, when the store's batches hand them to the hub) have no
// ephemeral one among them: picking none allocates nothing.
func TestEphemeralNone(t *testing.T) {
	evs := []parley.Event{{Pos: 1}, {Pos: 2}, {Pos: 3}}
	if n := testing.AllocsPerRun(100, func() {
		if got := ephemeral(evs); len(got) != 0 {
			t.Fatalf("ephemeral of durable events: %v", got)
		}
	}); n != 0 {
		t.Fatalf("%v allocations, want 0", n)
	}
	mixed := []parley.Event{{Pos: 1}, {Type: parley.EventTypingStarted}, {Pos: 2}, {Type: parley.EventUserOnline}}
	if got := ephemeral(mixed); len(got) != 2 || got[0].Type != parley.EventTypingStarted || got[1].Type != parley.EventUserOnline {
		t.Fatalf("ephemeral of a mixed batch: %v", got)
	}
	if got := ephemeral(mixed[1:2]); len(got) != 1 || &got[0] != &mixed[1] {
		t.Fatalf("ephemeral of ephemeral events: not the same slice: %v", got)
	}
}

// TestConsentChangedInStore: the hub calls consentChanged inside a store
// call (beforeStore to afterStore), as it does newContacts and
// directContacts: an unblock or an accept may read the two users'
// contacts from the store (announceDirectContacts), and no reply may
// wait for that.
func TestConsentChangedInStore(t *testing.T) {
	h := newHub(nil, nil, newMetrics())
	h.start([]int64{0})
	var calls int
	h.consentChanged = func(ev parley.Event) {
		calls++
		if h.storeDepth == 0 {
			t.Errorf("%s: consentChanged ran outside a store call", ev.Type)
		}
	}
	for i, typ := range []parley.EventType{parley.EventUserBlocked, parley.EventUserUnblocked, parley.EventRequestAccepted} {
		h.deliver(parley.Event{Pos: int64(i + 1), Type: typ, UserID: "a", UserIDs: []string{"b"}, Audience: []string{"a"}})
	}
	if calls != 3 || h.storeDepth != 0 {
		t.Errorf("consentChanged ran %d times, want 3; store depth %d after, want 0", calls, h.storeDepth)
	}
}

// TestHubQuoteHiddenFrame: the receivers in an event's QuoteHidden get a
// frame of their own with the reply's quote hidden, the others the
// shared one with the quote whole, whether the event is whole (this
// node's) or comes from the broker as its routing fields and Data only
// (another node's: its Data is decoded for the hidden frame).
func TestHubQuoteHiddenFrame(t *testing.T) {
	h := newHub(nil, nil, newMetrics())
	h.start([]int64{0})
	s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}}
	alice, alice2, bob := &conn{s: s, user: parley.User{ID: "alice"}}, &conn{s: s, user: parley.User{ID: "alice"}}, &conn{s: s, user: parley.User{ID: "bob"}}
	for _, c := range []*conn{alice, alice2, bob} {
		h.register(c, nil, nil)
	}
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	reply := &parley.Message{ID: "m2", ConversationID: "c1", Seq: 2, SenderID: "carol", SenderName: "Carol", Type: parley.Text, Text: "re", CreatedAt: at,
		ReplyTo: &parley.Quote{MessageID: "m1", Seq: 1, SenderID: "bob", SenderName: "Bob", Type: parley.Text, Text: "bob's secret"}}
	whole := parley.Event{Type: parley.EventNewMessage, ConversationID: "c1", UserID: "carol", Message: reply, At: at,
		Audience: []string{"alice", "bob"}, QuoteHidden: []string{"alice"}}
	remote := parley.Event{Type: whole.Type, ConversationID: whole.ConversationID, At: at, Audience: whole.Audience,
		QuoteHidden: whole.QuoteHidden, Data: eventData(whole)}
	for i, ev := range []parley.Event{whole, remote} {
		ev.Pos = int64(i + 1)
		h.accept(ev)
		for _, c := range []*conn{alice, alice2, bob} {
			c.mu.Lock()
			q := c.q
			c.q, c.qBytes = nil, 0
			c.mu.Unlock()
			if len(q) != 1 {
				t.Fatalf("event %d: %s got %d frames", i+1, c.user.ID, len(q))
			}
			var f struct {
				Data parley.Event `json:"data"`
			}
			if err := json.Unmarshal(q[0].b, &f); err != nil || f.Data.Message == nil || f.Data.Message.ReplyTo == nil {
				t.Fatalf("event %d: %s got %s (%v)", i+1, c.user.ID, q[0].b, err)
			}
			got, hidden := *f.Data.Message.ReplyTo, c.user.ID == "alice"
			if want := *reply.ReplyTo.Hide(); hidden && got != want {
				t.Errorf("event %d: %s got the quote %+v, want %+v", i+1, c.user.ID, got, want)
			}
			if !hidden && got != *reply.ReplyTo {
				t.Errorf("event %d: %s got the quote %+v, want it whole", i+1, c.user.ID, got)
			}
			if hidden == bytes.Contains(q[0].b, []byte("bob's secret")) || f.Data.Message.Text != "re" {
				t.Errorf("event %d: %s got %s", i+1, c.user.ID, q[0].b)
			}
		}
	}
}
