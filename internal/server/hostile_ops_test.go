package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// floodResult is what a flood of one op got back.
type floodResult struct {
	ok      int                 // replies
	limited *protocol.ErrorBody // the first rate_limited error
	refused int                 // rate_limited errors
}

// flood writes n requests of op without waiting, then reads their n
// answers: a client hammering the server as fast as its socket allows.
// Any error other than rate_limited fails the test.
func flood(t *testing.T, c *wsClient, n int, op string, data func(i int) any) floodResult {
	t.Helper()
	var r floodResult
	for i := range n {
		c.sendOp(op, fmt.Sprintf("f%d", i), data(i))
	}
	for range n {
		f := c.waitFor(func(f protocol.Frame) bool {
			return strings.HasPrefix(f.ID, "f") && (f.Type == protocol.TypeReply || f.Type == protocol.TypeError)
		})
		switch {
		case f.Type == protocol.TypeReply:
			r.ok++
		case f.Error.Code == parley.ERATELIMITED:
			r.refused++
			if r.limited == nil {
				r.limited = f.Error
			}
		default:
			t.Fatalf("%s flood: %s %+v", op, f.Type, f.Error)
		}
	}
	return r
}

// eventsSince counts the durable events user has after pos, read from the
// store itself (not through the limits under test).
func eventsSince(t *testing.T, srv *servertest.Server, user string, pos int64) int {
	t.Helper()
	evs, err := srv.Store.EventsFor(context.Background(), user, pos, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs.Events)
}

func head(t *testing.T, srv *servertest.Server) int64 {
	t.Helper()
	h, err := srv.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHostileOpFloods floods every family of per-user limit with the
// server's default limits, over a real socket: each flood ends in
// rate_limited with retry_after_ms, the same family's HTTP route answers
// 429 with Retry-After for the attacker (one bucket for both transports),
// another user is unaffected, and for the writes the victim's event log
// grew by no more than the limit allows (burst + rate x time taken).
//
// On the code before the limits (commit 47ac593) every family but
// presence fails: the floods are all answered.
func TestHostileOpFloods(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Limits{} // the defaults under test...
		// ...except what every test client on 127.0.0.1 shares.
		c.Limits.ConnectsPerSecond, c.Limits.IPMessagesPerSecond = -1, -1
		// The clients never ping: the victim's lasts the whole test and
		// the bystanders' a whole family, and under -race on a loaded
		// machine one family has taken over the default 9 s, which
		// closed the victim with 4002 before its next request.
		c.HeartbeatTimeout = 2 * time.Minute
	}))
	// The documented defaults (docs/protocol.md section 9).
	type family struct {
		name       string
		rate       float64
		burst      int
		op         string
		data       func(g, msgID string) func(i int) any
		httpMethod string
		httpPath   func(g, msgID string) string
		httpBody   string
		writes     bool // each accepted request gives the victim one durable event
	}
	families := []family{
		{name: "reads/history", rate: 20, burst: 100, op: protocol.OpHistory,
			data:       func(g, _ string) func(int) any { return func(int) any { return protocol.History{ConversationID: g} } },
			httpMethod: "GET", httpPath: func(g, _ string) string { return "/v1/conversations/" + g + "/messages" }},
		{name: "reads/conversations", rate: 20, burst: 100, op: protocol.OpConversations,
			data:       func(string, string) func(int) any { return func(int) any { return nil } },
			httpMethod: "GET", httpPath: func(string, string) string { return "/v1/events" }},
		{name: "reads/conversation", rate: 20, burst: 100, op: protocol.OpConversation,
			data: func(g, _ string) func(int) any {
				return func(int) any { return protocol.ConversationRef{ConversationID: g} }
			},
			httpMethod: "GET", httpPath: func(string, string) string { return "/v1/users/victim" }},
		{name: "presence", rate: 1, burst: 5, op: protocol.OpPresence,
			data:       func(string, string) func(int) any { return func(int) any { return nil } },
			httpMethod: "GET", httpPath: func(string, string) string { return "/v1/presence" }},
		{name: "conversation_writes/create_group", rate: 2, burst: 20, op: protocol.OpCreateGroup, writes: true,
			data: func(string, string) func(int) any {
				return func(i int) any {
					return protocol.CreateGroup{Title: fmt.Sprint("spam ", i), MemberIDs: []string{"victim"}}
				}
			},
			httpMethod: "POST", httpPath: func(string, string) string { return "/v1/conversations/group" },
			httpBody: `{"title":"spam","member_ids":["victim"]}`},
		{name: "conversation_writes/rename", rate: 2, burst: 20, op: protocol.OpUpdateConversation, writes: true,
			data: func(g, _ string) func(int) any {
				return func(i int) any {
					return protocol.UpdateConversation{ConversationID: g, Title: ptr(fmt.Sprint("title ", i))}
				}
			},
			httpMethod: "PATCH", httpPath: func(g, _ string) string { return "/v1/conversations/" + g },
			httpBody: `{"title":"x"}`},
		{name: "conversation_writes/members", rate: 2, burst: 20, op: protocol.OpUpdateConversation, writes: true,
			data: func(g, _ string) func(int) any {
				return func(i int) any {
					return protocol.UpdateConversation{ConversationID: g, Add: []string{fmt.Sprint("pawn", i)}}
				}
			},
			httpMethod: "POST", httpPath: func(string, string) string { return "/v1/conversations/direct" },
			httpBody: `{"username":"victim"}`},
		{name: "read_marks", rate: 10, burst: 50, op: protocol.OpRead,
			data: func(g, _ string) func(int) any {
				return func(i int) any { return protocol.Read{ConversationID: g, Seq: 1} }
			},
			httpMethod: "POST", httpPath: func(g, _ string) string { return "/v1/conversations/" + g + "/read" },
			httpBody: `{"seq":1}`},
		{name: "deletes", rate: 5, burst: 50, op: protocol.OpDelete,
			data: func(g, m string) func(int) any {
				return func(int) any { return protocol.Delete{ConversationID: g, MessageID: m} }
			},
			httpMethod: "DELETE", httpPath: func(g, m string) string { return "/v1/conversations/" + g + "/messages/" + m }},
	}
	victim := connect(t, srv, srv.Token(t, "victim", "Victim"), nil)
	for i := range 90 { // users to add, one per request
		srv.Token(t, fmt.Sprint("pawn", i), fmt.Sprint("Pawn", i))
	}
	for n, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			attTok := srv.Token(t, fmt.Sprint("attacker", n), fmt.Sprint("Attacker", n))
			byTok := srv.Token(t, fmt.Sprint("bystander", n), fmt.Sprint("Bystander", n))
			a := connect(t, srv, attTok, nil)
			b := connect(t, srv, byTok, nil)
			// Setup: the attacker's group with the victim and the
			// bystander, and a message in it. (One conversation write
			// of the attacker's burst.)
			var g parley.Conversation
			a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"victim", fmt.Sprint("bystander", n)}}, &g)
			m := a.send(g.ID, fmt.Sprint("m", n), "hello")
			// And the bystander's own message, to delete without
			// touching the attacker's.
			bm := b.send(g.ID, fmt.Sprint("bm", n), "hi")
			// The bystander repeats the op after the flood: for group
			// changes they must be an owner (a member's would be
			// forbidden). A second conversation write of the attacker's.
			setupWrites := 1
			if fam.op == protocol.OpUpdateConversation {
				a.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Promote: []string{fmt.Sprint("bystander", n)}}, nil)
				setupWrites++
			}

			from := head(t, srv)
			start := time.Now()
			r := flood(t, a, 3*fam.burst+30, fam.op, fam.data(g.ID, m.ID))
			took := time.Since(start)
			if r.limited == nil || r.limited.RetryAfterMS <= 0 {
				t.Fatalf("%d requests answered, %d refused: want rate_limited with retry_after_ms (got %+v)", r.ok, r.refused, r.limited)
			}
			// The allowance: the burst, what the bucket refilled while
			// the flood ran, and the setup's conversation writes.
			allow := fam.burst + int(math.Ceil(fam.rate*took.Seconds())) + setupWrites
			if r.ok > allow {
				t.Fatalf("%d requests answered in %v, want at most %d (burst %d, %g/s)", r.ok, took, allow, fam.burst, fam.rate)
			}
			t.Logf("%d requests: %d answered, %d refused (retry_after_ms %d) in %v; allowance %d",
				3*fam.burst+30, r.ok, r.refused, r.limited.RetryAfterMS, took.Round(time.Millisecond), allow)
			if fam.writes {
				grew := eventsSince(t, srv, "victim", from)
				t.Logf("the victim's event log grew by %d", grew)
				if grew > allow || grew > r.ok {
					t.Fatalf("the victim's event log grew by %d for %d accepted requests (allowance %d)", grew, r.ok, allow)
				}
			}
			// The HTTP route is limited too (the bucket is the same one:
			// TestLimitsShareBucketAcrossTransports). On a slow machine
			// the bucket may have refilled a little since the flood.
			var hr httpResp
			for range 3*fam.burst + 30 {
				if hr = httpDo(t, srv, fam.httpMethod, fam.httpPath(g.ID, m.ID), attTok, fam.httpBody); hr.status == http.StatusTooManyRequests {
					break
				}
			}
			if hr.status != http.StatusTooManyRequests || hr.err.Code != parley.ERATELIMITED {
				t.Fatalf("HTTP %s %s flood: %d %+v, want 429 rate_limited", fam.httpMethod, fam.httpPath(g.ID, m.ID), hr.status, hr.err)
			}
			if ra, err := strconv.Atoi(hr.header.Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("Retry-After %q", hr.header.Get("Retry-After"))
			}
			// Others are unaffected: the bystander does the same.
			bf := b.call(fam.op, fam.data(g.ID, bm.ID)(0))
			if bf.Type != protocol.TypeReply {
				t.Fatalf("bystander's %s: %s %+v", fam.op, bf.Type, bf.Error)
			}
			if f := victim.call(protocol.OpConversations, nil); f.Type != protocol.TypeReply {
				t.Fatalf("victim's conversations: %s %+v", f.Type, f.Error)
			}
		})
	}
	// Every family counts its hits under its own name.
	for _, name := range []string{"reads", "presence", "conversation_writes", "read_marks", "deletes"} {
		if rateLimited(t, srv, name) == 0 {
			t.Errorf("no parley_rate_limited_total for %s", name)
		}
	}
}

// TestLimitsShareBucketAcrossTransports: a WebSocket op and its HTTP route
// take from one bucket per user and family (rates too small to refill
// during the test), and each family has its own bucket.
func TestLimitsShareBucketAcrossTransports(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits.ReadsPerSecond, c.Limits.ReadBurst = 0.001, 2
		c.Limits.ConversationWritesPerSecond, c.Limits.ConversationWriteBurst = 0.001, 3
		c.Limits.ReadMarksPerSecond, c.Limits.ReadMarkBurst = 0.001, 2
		c.Limits.DeletesPerSecond, c.Limits.DeleteBurst = 0.001, 1
	}))
	tok := srv.Token(t, "alice", "Alice")
	srv.Token(t, "bob", "Bob")
	a := connect(t, srv, tok, nil)
	var g parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"bob"}}, &g) // writes: 1 of 3
	m := a.send(g.ID, "m1", "hi")
	cases := []struct {
		name         string
		op           string
		data         any
		method, path string
		body         string
	}{
		{"reads", protocol.OpConversations, nil, "GET", "/v1/conversations/" + g.ID + "/messages", ""},
		{"conversation writes", protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Title: ptr("t")}, "PATCH", "/v1/conversations/" + g.ID, `{"title":"u"}`},
		{"read marks", protocol.OpRead, protocol.Read{ConversationID: g.ID, Seq: 1}, "POST", "/v1/conversations/" + g.ID + "/read", `{"seq":1}`},
		{"deletes", "", nil, "DELETE", "/v1/conversations/" + g.ID + "/messages/" + m.ID, ""},
	}
	for _, tc := range cases {
		if tc.op != "" {
			a.do(tc.op, tc.data, nil) // the bucket's last token
		}
		if r := httpDo(t, srv, tc.method, tc.path, tok, tc.body); r.status != http.StatusOK {
			t.Fatalf("%s: HTTP %s %s: %d %+v, want 200 (the bucket's last token)", tc.name, tc.method, tc.path, r.status, r.err)
		}
		if r := httpDo(t, srv, tc.method, tc.path, tok, tc.body); r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
			t.Fatalf("%s: HTTP %s %s: %d, want 429 with Retry-After", tc.name, tc.method, tc.path, r.status)
		}
	}
	if code := a.fail(protocol.OpDelete, protocol.Delete{ConversationID: g.ID, MessageID: m.ID}); code != parley.ERATELIMITED {
		t.Fatalf("delete over WebSocket after HTTP took the token: %s", code)
	}
}

// TestHostileConnectionFlood is the 550-connection attack scaled down: one
// user opens 60 WebSocket connections on a node (rate limits off, so only
// the per-user cap stands in the way). Each hello beyond the cap (default
// 20) closes that user's oldest connection with 4103; the 20 newest are
// served; at most 20 are open on the server; another user is unaffected.
//
// On the code before the cap all 60 stay open (the first close-code read
// times out).
func TestHostileConnectionFlood(t *testing.T) {
	srv := servertest.Start(t) // Unlimited rate limits; the cap keeps its default
	tok := srv.Token(t, "hog", "Hog")
	const n = 60
	cap := server.DefaultConnectionsPerUser
	cs := make([]*wsClient, n)
	for i := range cs {
		cs[i] = connect(t, srv, tok, nil)
	}
	for i, c := range cs[:n-cap] {
		if code := c.closeCode(); int(code) != protocol.CloseTooManyConnections {
			t.Fatalf("connection %d (old) closed with %d, want 4103", i, code)
		}
	}
	for i, c := range cs[n-cap:] {
		if f := c.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
			t.Fatalf("connection %d (new) not served: %s", n-cap+i, f.Type)
		}
	}
	other := connect(t, srv, srv.Token(t, "other", "Other"), nil)
	if f := other.call(protocol.OpConversations, nil); f.Type != protocol.TypeReply {
		t.Fatalf("another user: %s %+v", f.Type, f.Error)
	}
	// The server holds the cap's worth for hog, plus other's.
	want := float64(cap + 1)
	var got float64
	for deadline := time.Now().Add(testWait); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got = metric(t, srv, "parley_connections"); got == want {
			break
		}
	}
	if got != want {
		t.Fatalf("parley_connections = %v, want %v", got, want)
	}
	if got := rateLimited(t, srv, "connections_per_user"); got != float64(n-cap) {
		t.Errorf("closed connections counted as connections_per_user: %v, want %d", got, n-cap)
	}
}

// TestConnectionCapOldestClosed: 25 connections of one user: the 5 oldest
// get 4103, the 20 others remain served; with a cap of 3 set in Limits the
// cap follows the configuration.
func TestConnectionCapOldestClosed(t *testing.T) {
	for _, tc := range []struct{ cap, n int }{{0, 25}, {3, 5}} {
		t.Run(fmt.Sprint("cap", tc.cap), func(t *testing.T) {
			srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Limits.ConnectionsPerUser = tc.cap }))
			keep := tc.cap
			if keep == 0 {
				keep = server.DefaultConnectionsPerUser
			}
			tok := srv.Token(t, "multi", "Multi")
			cs := make([]*wsClient, tc.n)
			for i := range cs {
				cs[i] = connect(t, srv, tok, nil)
			}
			for i, c := range cs[:tc.n-keep] {
				if code := c.closeCode(); int(code) != protocol.CloseTooManyConnections {
					t.Fatalf("connection %d closed with %d, want 4103", i, code)
				}
			}
			for i, c := range cs[tc.n-keep:] {
				if f := c.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
					t.Fatalf("connection %d: %s", tc.n-keep+i, f.Type)
				}
			}
		})
	}
}

// presenceAbout returns the presence events about user that c holds up to a
// pong: call it after a contact of user has received a presence event
// about them, which deliverEphemeral queued to every local contact at
// once, so anything for c is queued before the pong.
func presenceAbout(t *testing.T, c *wsClient, user string) []string {
	t.Helper()
	if f := c.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("ping: %s", f.Type)
	}
	var got []string
	for _, f := range c.pending {
		var ev parley.Event
		if f.Type == protocol.TypeEvent && json.Unmarshal(f.Data, &ev) == nil && ev.UserID == user &&
			(ev.Type == parley.EventUserOnline || ev.Type == parley.EventUserOffline) {
			got = append(got, string(ev.Type))
		}
	}
	c.pending = nil
	return got
}

// TestHostileStrangerPresence: a stranger who opens a direct conversation
// with the victim (create_direct by username, no message), and then writes
// in it while the victim never answers, learns nothing of the victim's
// presence: not in welcome.online, not in the presence query (the victim
// is simply absent, as an offline user is), not in userOnline/userOffline
// as the victim comes and goes. Once the victim answers, both see each
// other at once (userOnline), in the presence query and in welcome.online.
//
// On the code before the rule the stranger is a contact from
// create_direct on: the first assertion (welcome.online) fails.
func TestHostileStrangerPresence(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.PresenceGrace = 50 * time.Millisecond }))
	vTok, sTok, fTok := srv.Token(t, "victim", "Victim"), srv.Token(t, "stranger", "Stranger"), srv.Token(t, "friend", "Friend")
	victim := connect(t, srv, vTok, nil)
	friend := connect(t, srv, fTok, nil)
	var g parley.Conversation
	friend.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "friends", MemberIDs: []string{"victim"}}, &g)
	friend.event(parley.EventUserOnline) // the new group's members hear of each other

	stranger := connect(t, srv, sTok, nil)
	var d parley.Conversation
	stranger.do(protocol.OpCreateDirect, protocol.CreateDirect{Username: "victim"}, &d)

	check := func(when string) {
		t.Helper()
		re := connect(t, srv, sTok, nil)
		if contains(re.welcome.Online, "victim") {
			t.Fatalf("%s: the stranger's welcome.online holds the victim: %v", when, re.welcome.Online)
		}
		re.ws.CloseNow()
		var pl protocol.PresenceList
		stranger.do(protocol.OpPresence, nil, &pl)
		if contains(pl.Online, "victim") {
			t.Fatalf("%s: the stranger's presence query holds the victim: %v", when, pl.Online)
		}
		// The victim goes and comes back: the friend hears both, the
		// stranger nothing.
		victim.ws.CloseNow()
		if ev := friend.event(parley.EventUserOffline); ev.UserID != "victim" {
			t.Fatalf("friend got %+v", ev)
		}
		if got := presenceAbout(t, stranger, "victim"); len(got) != 0 {
			t.Fatalf("%s: the stranger heard %v about the victim", when, got)
		}
		victim = connect(t, srv, vTok, nil)
		if ev := friend.event(parley.EventUserOnline); ev.UserID != "victim" {
			t.Fatalf("friend got %+v", ev)
		}
		if got := presenceAbout(t, stranger, "victim"); len(got) != 0 {
			t.Fatalf("%s: the stranger heard %v about the victim", when, got)
		}
		if contains(victim.welcome.Online, "stranger") {
			t.Fatalf("%s: the victim's welcome.online holds the stranger", when)
		}
	}
	check("after create_direct")
	for i := range 5 {
		stranger.send(d.ID, fmt.Sprint("s", i), "hey, answer me")
	}
	check("after the stranger wrote")

	// The victim answers: both took part.
	victim.send(d.ID, "v1", "who is this?")
	if ev := stranger.event(parley.EventUserOnline); ev.UserID != "victim" {
		t.Fatalf("the stranger got %+v after the answer, want userOnline victim", ev)
	}
	if ev := victim.event(parley.EventUserOnline); ev.UserID != "stranger" {
		t.Fatalf("the victim got %+v after answering, want userOnline stranger", ev)
	}
	var pl protocol.PresenceList
	stranger.do(protocol.OpPresence, nil, &pl)
	if !contains(pl.Online, "victim") {
		t.Fatalf("the stranger's presence after the answer: %v", pl.Online)
	}
	if re := connect(t, srv, sTok, nil); !contains(re.welcome.Online, "victim") {
		t.Fatalf("welcome.online after the answer: %v", re.welcome.Online)
	}
	victim.ws.CloseNow()
	if ev := stranger.event(parley.EventUserOffline); ev.UserID != "victim" {
		t.Fatalf("the stranger got %+v, want userOffline victim", ev)
	}
}

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
	if n := rateLimited(t, srv, "ip_messages"); n != 2 {
		t.Fatalf("per-IP limit hits counted as ip_messages: %v, want 2", n)
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
	if n := rateLimited(t, srv, "presence"); n != 1 {
		t.Fatalf("presence limit hits counted: %v, want 1", n)
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

// peersCounting is a SQLite store that counts its Peers reads: the
// store read behind each typing request.
type peersCounting struct {
	*sqlite.DB
	peers atomic.Int64
}

func (s *peersCounting) Peers(ctx context.Context, userID, conversationID string) ([]string, error) {
	s.peers.Add(1)
	return s.DB.Peers(ctx, userID, conversationID)
}

// TestHostileTypingStopFlood: typing:false takes nothing from the typing
// limit (a client stops typing whenever it likes), so it must cost no
// store read unless the user is typing there, which only a typing:true,
// limited, starts. A flood of typing:false, in a conversation of the
// user's and in one that does not exist, is answered {} without asking
// the store (the same answer for both: it tells nothing); a real stop
// after a start still reaches the other member. On the code before, each
// of the requests read the conversation's members and blocks (Peers): an
// unlimited op doing store work.
func TestHostileTypingStopFlood(t *testing.T) {
	cs := &peersCounting{}
	srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		cs.DB = db
		return cs, err
	}), servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Limits{} // the defaults, typing's 2/s (burst 6) among them
		c.Limits.ConnectsPerSecond = -1
	}))
	a, b, conv := directPair(t, srv)
	before := cs.peers.Load()
	for _, id := range []string{conv.ID, "no-such-conversation"} {
		r := flood(t, a, 300, protocol.OpTyping, func(int) any { return protocol.Typing{ConversationID: id} })
		if r.refused != 0 {
			t.Fatalf("typing:false in %s was rate limited %d times: a client may always stop typing", id, r.refused)
		}
		if n := cs.peers.Load() - before; n != 0 {
			t.Fatalf("300 typing:false in %s of a user typing nowhere read the store %d times, want 0", id, n)
		}
	}
	// A start and its stop still reach bob, each after one read.
	a.do(protocol.OpTyping, protocol.Typing{ConversationID: conv.ID, Typing: true}, nil)
	b.event(parley.EventTypingStarted)
	a.do(protocol.OpTyping, protocol.Typing{ConversationID: conv.ID}, nil)
	b.event(parley.EventTypingStopped)
	if n := cs.peers.Load() - before; n != 2 {
		t.Fatalf("a start and a stop read the store %d times, want 2", n)
	}
}

// TestHostileProfileFanout: set_profile makes one event per conversation
// of the user's, written 128 a write. A user who joined many
// conversations (groups of their own cost one conversation write each)
// must not make all of them for one token: each write after the first
// takes a conversation write too. With a burst of 3 and no refill to
// speak of, a user in 641 conversations gets 3 writes (384 events) and
// then rate_limited, with retry_after_ms; before, the one token the op
// took wrote all 641 events, and a day of creating groups made each
// profile change write 170,000.
func TestHostileProfileFanout(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Unlimited()
		c.Limits.ConversationWritesPerSecond, c.Limits.ConversationWriteBurst = 0.001, 3
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	const convs = 5*parley.MaxProfileEventsPerWrite + 1
	for i := range convs { // straight in the store: the setup takes no token
		if _, _, err := srv.Store.CreateGroup(t.Context(), "mallory", fmt.Sprint("g", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	from := head(t, srv)
	m := connect(t, srv, tok, nil)
	f := m.call(protocol.OpSetProfile, protocol.SetProfile{DisplayName: ptr("Mal")})
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED || f.Error.RetryAfterMS <= 0 {
		t.Errorf("set_profile in %d conversations with 3 tokens: %s %+v, want rate_limited with retry_after_ms", convs, f.Type, f.Error)
	}
	if grew := eventsSince(t, srv, "mallory", from); grew > 3*parley.MaxProfileEventsPerWrite {
		t.Fatalf("one set_profile with 3 tokens wrote %d events, want at most %d (3 writes)", grew, 3*parley.MaxProfileEventsPerWrite)
	}
	// The profile is changed all the same (the first write holds it).
	var me parley.User
	if err := json.Unmarshal(httpDo(t, srv, "GET", "/v1/me", tok, "").body, &me); err != nil || me.DisplayName != "Mal" {
		t.Fatalf("GET /v1/me after the change: %+v %v", me, err)
	}
}

// TestHostileNewerOpFloods floods the ops added after TestHostileOpFloods
// was written (reactions, edits, receipts, profiles, blocks, privacy,
// flags, search and mentions) with the server's default limits, over a
// real socket: each flood ends in rate_limited with retry_after_ms, and
// no more requests are answered than the op's family allows (its burst
// and what it refilled while the flood ran).
func TestHostileNewerOpFloods(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits = server.Limits{}
		c.Limits.ConnectsPerSecond, c.Limits.IPMessagesPerSecond = -1, -1
		c.HeartbeatTimeout = 2 * time.Minute // see TestHostileOpFloods
	}))
	srv.Token(t, "victim", "Victim")
	emoji := []string{"👍", "❤", "😂", "🎉", "🔥", "👀", "✅", "🙏", "😮", "😢"}
	type family struct {
		name        string
		rate        float64
		burst       int
		op          string
		data        func(conv, msg string) func(i int) any
		setupWrites int // conversation writes the setup took from the same bucket
	}
	families := []family{
		{"reactions/react", 5, 30, protocol.OpReact, func(c, m string) func(int) any {
			return func(i int) any {
				return protocol.React{ConversationID: c, MessageID: m, Emoji: emoji[i/2%len(emoji)], Remove: i%2 == 1}
			}
		}, 0},
		{"messages/edit", 10, 50, protocol.OpEdit, func(c, m string) func(int) any {
			return func(i int) any {
				return protocol.Edit{ConversationID: c, MessageID: m, ClientID: fmt.Sprint("e", i), Text: fmt.Sprint("edit ", i)}
			}
		}, 0},
		{"read_marks/delivered", 10, 50, protocol.OpDelivered, func(c, _ string) func(int) any {
			return func(int) any {
				return protocol.Delivered{Conversations: []parley.DeliveredMark{{ConversationID: c, Seq: 1}}}
			}
		}, 0},
		{"conversation_writes/set_profile", 2, 20, protocol.OpSetProfile, func(string, string) func(int) any {
			return func(i int) any { return protocol.SetProfile{DisplayName: ptr(fmt.Sprint("name ", i))} }
		}, 1},
		{"conversation_writes/block", 2, 20, protocol.OpBlock, func(string, string) func(int) any {
			return func(int) any { return protocol.UserRef{UserID: "victim"} }
		}, 1},
		{"conversation_writes/set_privacy", 2, 20, protocol.OpSetPrivacy, func(string, string) func(int) any {
			return func(i int) any {
				return protocol.SetPrivacy{Consent: []parley.Consent{parley.ConsentContacts, parley.ConsentEveryone}[i%2]}
			}
		}, 1},
		{"conversation_writes/set_flags", 2, 20, protocol.OpSetFlags, func(c, _ string) func(int) any {
			return func(i int) any { return protocol.SetFlags{ConversationID: c, Muted: ptr(i%2 == 0)} }
		}, 1},
		{"reads/privacy", 20, 100, protocol.OpPrivacy, func(string, string) func(int) any {
			return func(int) any { return nil }
		}, 0},
		{"reads/mentions", 20, 100, protocol.OpMentions, func(string, string) func(int) any {
			return func(int) any { return protocol.Mentions{} }
		}, 0},
		{"searches/search", 1, 10, protocol.OpSearch, func(c, _ string) func(int) any {
			return func(int) any { return protocol.Search{Query: "hello"} }
		}, 0},
	}
	for n, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			a := connect(t, srv, srv.Token(t, fmt.Sprint("flooder", n), fmt.Sprint("Flooder", n)), nil)
			var g parley.Conversation
			a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"victim"}}, &g)
			m := a.send(g.ID, fmt.Sprint("m", n), "hello")
			start := time.Now()
			r := flood(t, a, 3*fam.burst+30, fam.op, fam.data(g.ID, m.ID))
			took := time.Since(start)
			if r.limited == nil || r.limited.RetryAfterMS <= 0 {
				t.Fatalf("%d answered, %d refused: want rate_limited with retry_after_ms (got %+v)", r.ok, r.refused, r.limited)
			}
			allow := fam.burst + int(math.Ceil(fam.rate*took.Seconds())) - fam.setupWrites
			if r.ok > allow {
				t.Fatalf("%d answered in %v, want at most %d (burst %d, %g/s)", r.ok, took, allow, fam.burst, fam.rate)
			}
			t.Logf("%d requests: %d answered, %d refused in %v", 3*fam.burst+30, r.ok, r.refused, took.Round(time.Millisecond))
		})
	}
}
