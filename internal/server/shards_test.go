package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/protocol"
)

// startSharded starts a server on a SQLite store (or, with pg, a
// PostgreSQL one) whose event log has shards shards.
func startSharded(t *testing.T, shards int, pg bool) *servertest.Server {
	t.Helper()
	open := func(ctx context.Context, dir string) (parley.Store, error) {
		return sqlite.Open(ctx, filepath.Join(dir, "parley.db"), sqlstore.WithShards(shards))
	}
	if pg {
		dsn := pgtest.Schema(t)
		open = func(ctx context.Context, dir string) (parley.Store, error) {
			return postgres.Open(ctx, dsn, sqlstore.WithShards(shards))
		}
	}
	return servertest.Start(t, servertest.WithStore(open), servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
}

// helloV2 dials and says a protocol-2 hello (cursor nil: a first
// connection) and returns the client after the welcome.
func helloV2(t *testing.T, srv *servertest.Server, token string, cursor protocol.ShardCursor) *wsClient {
	t.Helper()
	return hello(t, srv, protocol.Hello{Token: token, Protocol: protocol.Version2, Cursor: cursor})
}

// TestHelloVersions: on a log of 4 shards, a protocol-1 hello is refused
// with unsupported and close 4101 (do not reconnect), whether it resumes
// or not; a protocol-2 hello is served, its welcome carrying the shard
// count and a cursor; a cursor the log cannot hold (more entries than
// shards, a shard that does not exist, a negative position) and a
// protocol-2 hello with resume_from are refused as invalid.
func TestHelloVersions(t *testing.T) {
	srv := startSharded(t, 4, false)
	tok := srv.Token(t, "alice", "Alice")
	refused := func(hello any, code string, close int) {
		t.Helper()
		c := dial(t, srv, nil)
		c.sendOp(protocol.OpHello, "", hello)
		f := c.next()
		if f.Type != protocol.TypeError || f.Error == nil || f.Error.Code != code {
			t.Fatalf("hello %+v: got %s %+v, want error %s", hello, f.Type, f.Error, code)
		}
		if got := c.closeCode(); int(got) != close {
			t.Fatalf("hello %+v: close %d, want %d", hello, got, close)
		}
	}
	zero := int64(0)
	refused(protocol.Hello{Token: tok}, parley.EUNSUPPORTED, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, ResumeFrom: &zero}, parley.EUNSUPPORTED, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, Protocol: 1}, parley.EUNSUPPORTED, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, Protocol: 3}, parley.EINVALID, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, Protocol: 2, ResumeFrom: &zero}, parley.EINVALID, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, Protocol: 2, Cursor: protocol.ShardCursor{0: 1, 1: 1, 2: 1, 3: 1, 4: 1}}, parley.EINVALID, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, Protocol: 2, Cursor: protocol.ShardCursor{4: 1}}, parley.EINVALID, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, Protocol: 2, Cursor: protocol.ShardCursor{-1: 1}}, parley.EINVALID, protocol.CloseProtocolError)
	refused(protocol.Hello{Token: tok, Protocol: 2, Cursor: protocol.ShardCursor{1: -1}}, parley.EINVALID, protocol.CloseProtocolError)
	refused(json.RawMessage(`{"token":"`+tok+`","protocol":2,"cursor":{"x":1}}`), parley.EINVALID, protocol.CloseProtocolError)
	refused(json.RawMessage(`{"token":"`+tok+`","protocol":2,"cursor":[1]}`), parley.EINVALID, protocol.CloseProtocolError)

	c := helloV2(t, srv, tok, nil)
	if c.welcome.Shards != 4 || c.welcome.Cursor == nil {
		t.Fatalf("welcome %+v, want 4 shards and a cursor", c.welcome)
	}
	c = helloV2(t, srv, tok, protocol.ShardCursor{})
	if _, end := collectResume(t, c); end.Type != protocol.TypeResumed {
		t.Fatalf("resume from {} ended with %s", end.Type)
	}
}

// TestProtocol2OnOneShard: protocol 2 works on a log of one shard (the
// cursor is {"0": N}) side by side with protocol 1, and protocol 1's
// frames do not change.
func TestProtocol2OnOneShard(t *testing.T) {
	srv := servertest.Start(t)
	bTok := srv.Token(t, "bob", "Bob")
	_, _, last, want := bobMisses(t, srv, 5, "m%d")
	b := helloV2(t, srv, bTok, protocol.ShardCursor{0: last})
	if b.welcome.Shards != 1 || len(b.welcome.Cursor) != 1 || b.welcome.Cursor[0] != b.welcome.Head {
		t.Fatalf("welcome %+v, want 1 shard and cursor {0: head}", b.welcome)
	}
	evs, end := collectResume(t, b)
	for !containsText(evs, want[len(want)-1]) {
		f := b.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeEvent })
		if ev := decodeEvent(t, f); ev.Pos > 0 {
			evs = append(evs, ev)
		}
	}
	checkExactlyOnce(t, evs, last, want)
	r := decodeJSON[protocol.Resumed](t, end.Data)
	if end.Type != protocol.TypeResumed || r.Shards != 1 || !maps.Equal(r.Cursor, b.welcome.Cursor) {
		t.Fatalf("%s %+v, want resumed with the welcome's cursor", end.Type, r)
	}
	// A protocol-1 client on the same server gets no protocol-2 field.
	v1 := connect(t, srv, srv.Token(t, "alice", "Alice"), &last)
	f := v1.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeResumed })
	if s := string(f.Data); strings.Contains(s, "cursor") || strings.Contains(s, "shards") {
		t.Fatalf("protocol-1 resumed %s carries protocol-2 fields", s)
	}
	if s, _ := json.Marshal(v1.welcome); strings.Contains(string(s), "cursor") || strings.Contains(string(s), `"shards"`) {
		t.Fatalf("protocol-1 welcome %s carries protocol-2 fields", s)
	}
}

// TestShardedResumeAfterRestart: bob is in twelve groups spread over the
// shards of an 8-shard log; while he is away alice sends three messages
// in each, and the server restarts. Bob resumes with the cursor of his
// welcome: the replay holds every message once, every event in its
// conversation's shard and above his cursor there, positions strictly
// increasing within each shard and each conversation's messages in order;
// resumed carries the heads; and live events follow above them.
func TestShardedResumeAfterRestart(t *testing.T) {
	for _, pg := range []bool{false, true} {
		name := "sqlite"
		if pg {
			name = "postgres"
		}
		t.Run(name, func(t *testing.T) {
			if pg {
				pgtest.URL(t)
			}
			const shards, groups, per = 8, 12, 3
			srv := startSharded(t, shards, pg)
			aTok, bTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
			a := helloV2(t, srv, aTok, nil)
			var convs []string
			used := map[int]bool{}
			for i := range groups {
				srv.Token(t, fmt.Sprint("u", i), fmt.Sprint("U", i))
				var g parley.Conversation
				a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: fmt.Sprint("g", i), MemberIDs: []string{"bob", fmt.Sprint("u", i)}}, &g)
				convs = append(convs, g.ID)
				used[parley.ShardOf(g.ID, shards)] = true
			}
			if len(used) < 3 {
				t.Fatalf("the groups are in %d shards; the test needs several", len(used))
			}
			b := helloV2(t, srv, bTok, nil)
			cursor := b.welcome.Cursor
			b.ws.CloseNow()
			want := map[string][]string{}
			for i := range per {
				for _, conv := range convs {
					text := fmt.Sprintf("%s-%d", conv, i)
					a.send(conv, text, text)
					want[conv] = append(want[conv], text)
				}
			}
			srv.Restart(t)

			b = helloV2(t, srv, bTok, cursor)
			evs, end := collectResume(t, b)
			if end.Type != protocol.TypeResumed {
				t.Fatalf("resume ended with %s %s", end.Type, end.Data)
			}
			r := decodeJSON[protocol.Resumed](t, end.Data)
			if r.Shards != shards || !maps.Equal(r.Cursor, b.welcome.Cursor) || r.Count != len(evs) {
				t.Fatalf("resumed %+v after %d events, welcome cursor %v", r, len(evs), b.welcome.Cursor)
			}
			last := cursor.Clone()
			got := map[string][]string{}
			for _, ev := range evs {
				if sh := parley.ShardOf(ev.ConversationID, shards); ev.Shard != sh {
					t.Fatalf("event %d of %s in shard %d, want %d", ev.Pos, ev.ConversationID, ev.Shard, sh)
				}
				if !last.Advance(ev.Shard, ev.Pos) {
					t.Fatalf("event %d of shard %d after %d: out of order or twice", ev.Pos, ev.Shard, last[ev.Shard])
				}
				if ev.Type == parley.EventNewMessage {
					got[ev.ConversationID] = append(got[ev.ConversationID], ev.Message.Text)
				}
			}
			for _, conv := range convs {
				if fmt.Sprint(got[conv]) != fmt.Sprint(want[conv]) {
					t.Fatalf("%s replayed %v, want %v", conv, got[conv], want[conv])
				}
			}
			for s, p := range r.Cursor {
				if p < last[s] {
					t.Fatalf("resumed cursor %v below the replay's %v", r.Cursor, last)
				}
			}
			a = helloV2(t, srv, aTok, nil) // the restart closed alice's connection
			m := a.send(convs[0], "live", "live")
			ev := b.event(parley.EventNewMessage)
			if ev.Message.ID != m.ID || ev.Pos <= r.Cursor[ev.Shard] {
				t.Fatalf("live event %+v after cursor %v", ev, r.Cursor)
			}
		})
	}
}

// TestEventsHTTPShards: GET /v1/events reads one shard of the log
// (shard, default 0) after a position in it: on a log of 4 shards the
// pages of every shard together hold each of the user's events once, in
// its conversation's shard, and say the shard and the shard count; a
// shard outside the log is invalid.
func TestEventsHTTPShards(t *testing.T) {
	const shards = 4
	srv := startSharded(t, shards, false)
	aTok := srv.Token(t, "alice", "Alice")
	a := helloV2(t, srv, aTok, nil)
	sent := map[string]bool{}
	for i := range 8 {
		srv.Token(t, fmt.Sprint("u", i), fmt.Sprint("U", i))
		var g parley.Conversation
		a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: fmt.Sprint("g", i), MemberIDs: []string{fmt.Sprint("u", i)}}, &g)
		sent[a.send(g.ID, fmt.Sprint("c", i), "x").ID] = true
	}
	got := map[string]bool{}
	for s := range shards {
		type page struct {
			Events []parley.Event `json:"events"`
			Head   int64          `json:"head"`
			Shard  int            `json:"shard"`
			Shards int            `json:"shards"`
		}
		r := httpDo(t, srv, "GET", fmt.Sprintf("/v1/events?shard=%d&after=0&limit=1000", s), aTok, "")
		if r.status != 200 {
			t.Fatalf("shard %d: %d %s", s, r.status, r.body)
		}
		p := decodeJSON[page](t, r.body)
		if p.Shard != s || p.Shards != shards {
			t.Fatalf("shard %d: page of shard %d of %d", s, p.Shard, p.Shards)
		}
		last := int64(0)
		for _, ev := range p.Events {
			if ev.Shard != s || ev.Pos <= last || ev.Pos > p.Head {
				t.Fatalf("shard %d: event %d of shard %d after %d (head %d)", s, ev.Pos, ev.Shard, last, p.Head)
			}
			if ev.ConversationID != "" && parley.ShardOf(ev.ConversationID, shards) != s {
				t.Fatalf("shard %d holds an event of %s, whose shard is %d", s, ev.ConversationID, parley.ShardOf(ev.ConversationID, shards))
			}
			last = ev.Pos
			if ev.Type == parley.EventNewMessage {
				if got[ev.Message.ID] {
					t.Fatalf("message %s twice", ev.Message.ID)
				}
				got[ev.Message.ID] = true
			}
		}
	}
	if !maps.Equal(got, sent) {
		t.Fatalf("the shards' pages hold %d of the %d messages", len(got), len(sent))
	}
	for _, q := range []string{"shard=4", "shard=-1", "shard=x"} {
		if r := httpDo(t, srv, "GET", "/v1/events?"+q, aTok, ""); r.status != 400 {
			t.Fatalf("%s: %d %s, want 400", q, r.status, r.body)
		}
	}
}
