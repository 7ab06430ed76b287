package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// Contract tests: what a client written from docs/protocol.md alone
// expects, on the wire (raw JSON and query strings, not the Go structs).

// TestHistoryCursorZero: after 0 is "from the start" (the oldest page),
// not the newest page; before 0 is invalid; both given is invalid; an
// absent (or empty) cursor is the newest page. On the WebSocket and over
// HTTP alike.
func TestHistoryCursorZero(t *testing.T) {
	srv := servertest.Start(t)
	conv := seedConversation(t, srv, 5, "hi")
	tok := srv.Token(t, "alice", "alice")
	a := connect(t, srv, tok, nil)
	seqsOf := func(p parley.MessagePage) []int64 {
		var s []int64
		for _, m := range p.Messages {
			s = append(s, m.Seq)
		}
		return s
	}
	cases := []struct {
		name  string
		data  string // the op's data, after conversation_id
		query string
		want  []int64 // nil: invalid
		more  bool
	}{
		{"after 0", `"after": 0, "limit": 2`, "after=0&limit=2", []int64{1, 2}, true},
		{"after 4", `"after": 4, "limit": 2`, "after=4&limit=2", []int64{5}, false},
		{"newest", `"limit": 2`, "limit=2", []int64{4, 5}, true},
		{"null cursor, empty parameter", `"after": null, "limit": 2`, "after=&before=&limit=2", []int64{4, 5}, true},
		{"before 3", `"before": 3, "limit": 5`, "before=3&limit=5", []int64{1, 2}, false},
		{"before 0", `"before": 0`, "before=0", nil, false},
		{"both", `"before": 3, "after": 0`, "before=3&after=0", nil, false},
		{"negative after", `"after": -1`, "after=-1", nil, false},
	}
	for _, c := range cases {
		f := a.call(protocol.OpHistory, json.RawMessage(fmt.Sprintf(`{"conversation_id": %q, %s}`, conv.ID, c.data)))
		r := httpDo(t, srv, "GET", fmt.Sprintf("/v1/conversations/%s/messages?%s", conv.ID, c.query), tok, "")
		if c.want == nil {
			if f.Type != protocol.TypeError || f.Error.Code != parley.EINVALID {
				t.Errorf("%s: ws got %s %s, want invalid", c.name, f.Type, f.Data)
			}
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"invalid"`) {
				t.Errorf("%s: http got %d %s, want 400 invalid", c.name, r.status, r.body)
			}
			continue
		}
		if f.Type != protocol.TypeReply {
			t.Fatalf("%s: ws got %s %+v", c.name, f.Type, f.Error)
		}
		if r.status != http.StatusOK {
			t.Fatalf("%s: http got %d %s", c.name, r.status, r.body)
		}
		for via, p := range map[string]parley.MessagePage{
			"ws": decodeJSON[parley.MessagePage](t, f.Data), "http": decodeJSON[parley.MessagePage](t, r.body)} {
			if got := seqsOf(p); !slices.Equal(got, c.want) || p.HasMore != c.more {
				t.Errorf("%s: %s gave seqs %v has_more %v, want %v %v", c.name, via, got, p.HasMore, c.want, c.more)
			}
		}
	}
}

// TestShutdownDrain: what docs/protocol.md section 10 says a client sees
// during a shutdown with a drain period: /readyz answers 503, a new
// WebSocket upgrade 503 unavailable with a retry hint, while connected
// clients are still served; then goaway, close 4003, and new connections
// are refused.
func TestShutdownDrain(t *testing.T) {
	// Long enough for the few requests below on a loaded machine; the
	// test asserts no duration.
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ShutdownDrain = 4 * time.Second }))
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	stopped := make(chan struct{})
	go func() { defer close(stopped); srv.Stop(t) }()
	t.Cleanup(func() { <-stopped }) // before servertest's own Stop
	for {                           // until the drain has begun
		r, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatalf("/readyz during the drain: %v (no drain?)", err)
		}
		r.Body.Close()
		if r.StatusCode == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("dialing during the drain: %v", err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", protocol.Path, srv.Addr())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) ||
		!strings.Contains(string(body), "retry_after_ms") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("upgrade during the drain: %d %v %s, want 503 unavailable with a retry hint", resp.StatusCode, resp.Header, body)
	}
	if f := a.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Errorf("a connected client during the drain: %s, want pong", f.Type)
	}
	a.waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeGoAway })
	if code := a.closeCode(); code != protocol.CloseShutdown {
		t.Errorf("close %d, want 4003", code)
	}
	<-stopped
	if c, err := net.Dial("tcp", srv.Addr()); err == nil {
		c.Close()
		t.Error("a new connection was accepted after shutdown")
	}
}

// TestClientIDOtherConversation: a client_id the sender already used in
// another conversation answers conflict (docs/protocol.md section 7), and
// stores nothing.
func TestClientIDOtherConversation(t *testing.T) {
	srv := servertest.Start(t)
	srv.Token(t, "bob", "Bob")
	srv.Token(t, "carol", "Carol")
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	var c1, c2 parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &c1)
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "carol"}, &c2)
	a.do(protocol.OpSend, protocol.Send{ConversationID: c1.ID, ClientID: "same", Text: "one"}, nil)
	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: c2.ID, ClientID: "same", Text: "two"}); code != parley.ECONFLICT {
		t.Fatalf("client_id reused in another conversation: %s, want conflict", code)
	}
	page := a.history(c2.ID)
	if len(page.Messages) != 0 {
		t.Fatalf("%d messages stored in the second conversation", len(page.Messages))
	}
}

// TestIntegratorTokenNameTaken: an integrator's token identifies its user
// by id (sub); a name another user holds (or resembles) does not refuse
// it: the user is shown as "name (id)". Usernames stay unique.
func TestIntegratorTokenNameTaken(t *testing.T) {
	srv := servertest.Start(t)
	srv.Register(t, "john", "correct horse battery")
	me := func(id, name string) parley.User {
		t.Helper()
		tok, _, err := auth.Mint(srv.Secret, id, name, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		r := httpDo(t, srv, "GET", "/v1/me", tok, "")
		if r.status != http.StatusOK {
			t.Fatalf("token for %s named %q: %d %s", id, name, r.status, r.body)
		}
		return decodeJSON[parley.User](t, r.body)
	}
	if u := me("john2", "John"); u.ID != "john2" || u.Name != "John (john2)" {
		t.Errorf("john2 named John: %+v", u)
	}
	if u := me("john3", "John"); u.ID != "john3" || u.Name != "John (john3)" {
		t.Errorf("john3 named John: %+v", u)
	}
	// Again, and on the WebSocket: the same user, no error.
	tok, _, _ := auth.Mint(srv.Secret, "john2", "John", time.Hour)
	c := connect(t, srv, tok, nil)
	if f := c.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("john2 on the WebSocket: %s", f.Type)
	}
	if u := me("long-integrator-user-id-0001", "John"); u.ID != "long-integrator-user-id-0001" || u.Name != "long-integrator-user-id-0001" {
		t.Errorf("a long id named John: %+v", u)
	}
	// The username john is still the registered user's.
	r := httpDo(t, srv, "GET", "/v1/users/john", tok, "")
	if u := decodeJSON[parley.User](t, r.body); r.status != http.StatusOK || u.Name != "john" || u.ID == "john2" {
		t.Errorf("GET /v1/users/john: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "POST", "/v1/auth/register", "", `{"username":"John","password":"correct horse"}`); r.status != http.StatusConflict {
		t.Errorf("registering John: %d, want 409", r.status)
	}
}

// TestGroupWithUnseenUser: create_group refuses an id the server has no
// user for (not_found); the documented workaround, one GET /v1/me with a
// token for that id, creates the user, and the group is then made.
func TestGroupWithUnseenUser(t *testing.T) {
	srv := servertest.Start(t)
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	g := protocol.CreateGroup{Title: "team", MemberIDs: []string{"ext-7"}}
	if code := a.fail(protocol.OpCreateGroup, g); code != parley.ENOTFOUND {
		t.Fatalf("a group with a user never seen: %s, want not_found", code)
	}
	tok, _, err := auth.Mint(srv.Secret, "ext-7", "Seven", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := httpDo(t, srv, "GET", "/v1/me", tok, ""); r.status != http.StatusOK {
		t.Fatalf("GET /v1/me for ext-7: %d %s", r.status, r.body)
	}
	var conv parley.Conversation
	a.do(protocol.OpCreateGroup, g, &conv)
	if len(conv.Members) != 2 {
		t.Fatalf("group members %+v", conv.Members)
	}
}
