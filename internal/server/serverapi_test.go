package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// newAPIKey stores a key with scopes, as `parley apikey create` does, and
// returns its id and the key.
func newAPIKey(t testing.TB, srv *servertest.Server, scopes ...string) (string, string) {
	t.Helper()
	id, key, err := auth.NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	k := parley.APIKey{ID: id, Name: "test", Scopes: scopes, CreatedAt: parley.Now()}
	if err := srv.Store.(parley.APIKeyStore).CreateAPIKey(t.Context(), k, auth.HashAPIKey(key)); err != nil {
		t.Fatal(err)
	}
	return id, key
}

// TestServerAPIKeys calls every server API route with a key that has its
// scope (it works), the same key revoked (401), a key with every other
// scope (403), no key and a user's token (401).
func TestServerAPIKeys(t *testing.T) {
	srv := servertest.Start(t)
	admin := func(scope string) string { _, k := newAPIKey(t, srv, scope); return k }
	srv.Token(t, "alice", "Alice")
	srv.Token(t, "bob", "Bob")
	aliceTok := srv.Token(t, "alice", "Alice")
	// Fixtures made with an all-scopes key.
	_, all := newAPIKey(t, srv, auth.Scopes...)
	group := decodeJSON[parley.Conversation](t, httpDo(t, srv, "POST", "/v1/server/conversations", all,
		`{"kind":"group","created_by":"alice","title":"fixtures","member_ids":["bob"]}`).body)
	msgs := make([]parley.Message, 2)
	for i := range msgs {
		msgs[i] = decodeJSON[parley.Message](t, httpDo(t, srv, "POST", "/v1/server/conversations/"+group.ID+"/messages", all,
			fmt.Sprintf(`{"as":"alice","client_id":"fx%d","text":"to moderate"}`, i)).body)
	}

	type call struct {
		scope, method, path, body string
		want                      int
	}
	calls := func(round int) []call {
		return []call{
			{auth.ScopeUsers, "POST", "/v1/server/users", fmt.Sprintf(`{"id":"u%d","name":"User %d"}`, round, round), http.StatusOK},
			{auth.ScopeUsers, "PATCH", "/v1/server/users/bob", fmt.Sprintf(`{"name":"Bob %d"}`, round), http.StatusOK},
			{auth.ScopeTokens, "POST", "/v1/server/users/alice/tokens", `{"ttl_seconds":60}`, http.StatusCreated},
			{auth.ScopeConversations, "POST", "/v1/server/conversations", `{"kind":"direct","created_by":"alice","member_ids":["bob"]}`, http.StatusCreated},
			{auth.ScopeConversations, "POST", "/v1/server/conversations/" + group.ID + "/members", fmt.Sprintf(`{"as":"alice","user_ids":["u%d"]}`, round), http.StatusOK},
			{auth.ScopeMessages, "POST", "/v1/server/conversations/" + group.ID + "/messages", fmt.Sprintf(`{"as":"bob","client_id":"api-%d","text":"hi"}`, round), http.StatusCreated},
			{auth.ScopeModeration, "DELETE", "/v1/server/conversations/" + group.ID + "/messages/" + msgs[round].ID, "", http.StatusOK},
			{auth.ScopeUsers, "GET", "/v1/server/users/alice/export", "", http.StatusOK},
			{auth.ScopeUsers, "GET", "/v1/server/users/alice/conversations", "", http.StatusOK},
			{auth.ScopeUsers, "DELETE", fmt.Sprintf("/v1/server/users/u%d", round), "", http.StatusOK},
			// Ban last: it bans a user of its own.
			{auth.ScopeModeration, "POST", fmt.Sprintf("/v1/server/users/u%d/ban", round), "", http.StatusOK},
		}
	}
	for round := range 2 {
		for _, c := range calls(round) {
			name := c.method + " " + c.path
			// A key of every other scope: forbidden.
			var others []string
			for _, s := range auth.Scopes {
				if s != c.scope {
					others = append(others, s)
				}
			}
			_, wrong := newAPIKey(t, srv, others...)
			if r := httpDo(t, srv, c.method, c.path, wrong, c.body); r.status != http.StatusForbidden || r.err.Code != parley.EFORBIDDEN {
				t.Errorf("%s with scopes %v: %d %s, want 403 forbidden", name, others, r.status, r.err.Code)
			}
			for _, bad := range []string{"", aliceTok, auth.APIKeyPrefix + "0000_unknown"} {
				if r := httpDo(t, srv, c.method, c.path, bad, c.body); r.status != http.StatusUnauthorized || r.err.Code != parley.EUNAUTHORIZED {
					t.Errorf("%s with credential %.12q: %d %s, want 401 unauthorized", name, bad, r.status, r.err.Code)
				}
			}
			if round == 0 {
				// The right scope works.
				if r := httpDo(t, srv, c.method, c.path, admin(c.scope), c.body); r.status != c.want {
					t.Errorf("%s: %d %s, want %d", name, r.status, r.body, c.want)
				}
				continue
			}
			// The right scope, revoked: unauthorized, and nothing done.
			id, key := newAPIKey(t, srv, c.scope)
			if err := srv.Store.(parley.APIKeyStore).RevokeAPIKey(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			if r := httpDo(t, srv, c.method, c.path, key, c.body); r.status != http.StatusUnauthorized || r.err.Code != parley.EUNAUTHORIZED {
				t.Errorf("%s with a revoked key: %d %s, want 401 unauthorized", name, r.status, r.err.Code)
			}
		}
	}
	// Round 1's calls, refused, changed nothing.
	if _, err := srv.Store.User(t.Context(), "u1"); parley.ErrorCode(err) != parley.ENOTFOUND {
		t.Errorf("user u1 after refused calls: %v, want not_found", err)
	}
	page := httpDo(t, srv, "GET", "/v1/conversations/"+group.ID+"/messages", aliceTok, "")
	var p parley.MessagePage
	json.Unmarshal(page.body, &p)
	for _, m := range p.Messages {
		if m.ID == msgs[1].ID && m.Deleted {
			t.Error("a refused moderation call deleted the message")
		}
		if m.ID == msgs[0].ID && !m.Deleted {
			t.Error("the moderation call did not delete the message")
		}
	}
}

// TestServerAPIActs: a bot created through the API sends into a group,
// members see it live; a moderation delete reaches them; members are
// added as a member would; bad input gets the documented codes.
func TestServerAPIActs(t *testing.T) {
	srv := servertest.Start(t)
	_, key := newAPIKey(t, srv, auth.Scopes...)
	bob := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	srv.Token(t, "carol", "Carol")
	if r := httpDo(t, srv, "POST", "/v1/server/users", key, `{"id":"support-bot","name":"Support"}`); r.status != http.StatusOK {
		t.Fatalf("creating the bot: %d %s", r.status, r.body)
	}
	r := httpDo(t, srv, "POST", "/v1/server/conversations", key, `{"kind":"group","created_by":"support-bot","title":"Help","member_ids":["bob"]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("creating the group: %d %s", r.status, r.body)
	}
	g := decodeJSON[parley.Conversation](t, r.body)
	bob.event(parley.EventConversationUpdated)
	r = httpDo(t, srv, "POST", "/v1/server/conversations/"+g.ID+"/messages", key, `{"as":"support-bot","client_id":"b1","text":"How can I help?"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("bot send: %d %s", r.status, r.body)
	}
	m := decodeJSON[parley.Message](t, r.body)
	if ev := bob.event(parley.EventNewMessage); ev.Message.ID != m.ID || ev.Message.SenderID != "support-bot" || ev.Message.SenderName != "Support" {
		t.Fatalf("bob got %+v", ev.Message)
	}
	// The same client_id again: the stored message, 200, no new event.
	if r := httpDo(t, srv, "POST", "/v1/server/conversations/"+g.ID+"/messages", key, `{"as":"support-bot","client_id":"b1","text":"How can I help?"}`); r.status != http.StatusOK {
		t.Errorf("resend: %d, want 200", r.status)
	}
	if r := httpDo(t, srv, "DELETE", "/v1/server/conversations/"+g.ID+"/messages/"+m.ID, key, ""); r.status != http.StatusOK {
		t.Fatalf("moderate: %d %s", r.status, r.body)
	}
	if ev := bob.event(parley.EventMessageDeleted); ev.Message.ID != m.ID || !ev.Message.Deleted {
		t.Fatalf("bob got %+v", ev)
	}
	if r := httpDo(t, srv, "POST", "/v1/server/conversations/"+g.ID+"/members", key, `{"as":"support-bot","user_ids":["carol"]}`); r.status != http.StatusOK {
		t.Fatalf("add carol: %d %s", r.status, r.body)
	}
	if ev := bob.event(parley.EventConversationUpdated); ev.Change != parley.ChangeMembersAdded {
		t.Fatalf("bob got %+v", ev)
	}

	for _, c := range []struct {
		method, path, body, code string
	}{
		{"POST", "/v1/server/conversations/" + g.ID + "/messages", `{"as":"carol-not-yet","client_id":"x","text":"hi"}`, parley.ENOTFOUND},
		{"POST", "/v1/server/conversations/" + g.ID + "/messages", `{"client_id":"x","text":"hi"}`, parley.EINVALID},
		{"POST", "/v1/server/conversations/" + g.ID + "/messages", `{"as":"bob","client_id":"x","text":""}`, parley.EINVALID},
		{"POST", "/v1/server/conversations/" + g.ID + "/members", `{"as":"nobody","user_ids":["carol"]}`, parley.ENOTFOUND},
		{"POST", "/v1/server/conversations", `{"kind":"direct","created_by":"bob","member_ids":["carol","x"]}`, parley.EINVALID},
		{"POST", "/v1/server/conversations", `{"kind":"circle","created_by":"bob"}`, parley.EINVALID},
		{"PATCH", "/v1/server/users/nobody", `{"name":"X"}`, parley.ENOTFOUND},
		{"POST", "/v1/server/users", `{"id":"x1","name":"Bob"}`, parley.ECONFLICT},
		{"POST", "/v1/server/users/nobody/tokens", `{}`, parley.ENOTFOUND},
		{"POST", "/v1/server/users/bob/tokens", `{"ttl_seconds":-5}`, parley.EINVALID},
		{"POST", "/v1/server/users/nobody/ban", ``, parley.ENOTFOUND},
		{"DELETE", "/v1/server/conversations/" + g.ID + "/messages/nope", ``, parley.ENOTFOUND},
		{"POST", "/v1/server/users", `{"id":`, parley.EBADJSON},
	} {
		if r := httpDo(t, srv, c.method, c.path, key, c.body); r.err.Code != c.code {
			t.Errorf("%s %s %s: %d %s, want %s", c.method, c.path, c.body, r.status, r.body, c.code)
		}
	}

	// A minted token works as a user's.
	r = httpDo(t, srv, "POST", "/v1/server/users/carol/tokens", key, `{"ttl_seconds":120}`)
	tok := decodeJSON[struct{ Token string }](t, r.body).Token
	if me := httpDo(t, srv, "GET", "/v1/me", tok, ""); me.status != http.StatusOK || decodeJSON[parley.User](t, me.body).ID != "carol" {
		t.Fatalf("minted token: %d %s", me.status, me.body)
	}
}

// TestServerAPIBan: a ban closes the user's live connections with 4102,
// refuses their tokens (HTTP and hello) and minting new ones, and keeps
// them from sending through the API; other users are untouched.
func TestServerAPIBan(t *testing.T) {
	srv := servertest.Start(t)
	_, key := newAPIKey(t, srv, auth.Scopes...)
	eveTok := srv.Token(t, "eve", "Eve")
	alice := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	eve1, eve2 := connect(t, srv, eveTok, nil), connect(t, srv, eveTok, nil)
	r := httpDo(t, srv, "POST", "/v1/server/users/eve/ban", key, "")
	if r.status != http.StatusOK {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	if n := decodeJSON[struct {
		N int `json:"connections_closed"`
	}](t, r.body).N; n != 2 {
		t.Errorf("connections_closed = %d, want 2", n)
	}
	for i, c := range []*wsClient{eve1, eve2} {
		if code := c.closeCode(); int(code) != protocol.CloseAuthRevoked {
			t.Errorf("eve's connection %d closed with %d, want %d", i, code, protocol.CloseAuthRevoked)
		}
	}
	if r := httpDo(t, srv, "GET", "/v1/me", eveTok, ""); r.err.Code != parley.EUNAUTHORIZED {
		t.Errorf("eve's token after the ban: %d %s, want unauthorized", r.status, r.err.Code)
	}
	c := dial(t, srv, nil)
	c.sendOp(protocol.OpHello, "", protocol.Hello{Token: eveTok})
	if code := c.closeCode(); int(code) != protocol.CloseUnauthorized {
		t.Errorf("eve's hello after the ban closed with %d, want %d", code, protocol.CloseUnauthorized)
	}
	if r := httpDo(t, srv, "POST", "/v1/server/users/eve/tokens", key, `{}`); r.err.Code != parley.EFORBIDDEN {
		t.Errorf("minting for eve: %d %s, want forbidden", r.status, r.err.Code)
	}
	if r := httpDo(t, srv, "POST", "/v1/server/users/eve/ban", key, ""); r.status != http.StatusOK {
		t.Errorf("banning again: %d, want 200", r.status)
	}
	// Alice is untouched.
	alice.do(protocol.OpPing, nil, nil)

	// A restarted node still refuses eve (the ban is in the store).
	srv.Restart(t)
	if r := httpDo(t, srv, "GET", "/v1/me", eveTok, ""); r.err.Code != parley.EUNAUTHORIZED {
		t.Errorf("eve's token after a restart: %d %s, want unauthorized", r.status, r.err.Code)
	}
}

// TestServerAPIExportErase: export lists a user's conversations and
// messages; erase closes their connections with 4102, tombstones their
// messages (members see it), takes them out of their groups, replaces
// their name and refuses their token.
func TestServerAPIExportErase(t *testing.T) {
	srv := servertest.Start(t)
	_, key := newAPIKey(t, srv, auth.ScopeUsers)
	daveTok := srv.Token(t, "dave", "Dave")
	dave := connect(t, srv, daveTok, nil)
	alice := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	var g, d parley.Conversation
	dave.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"alice"}}, &g)
	dave.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "alice"}, &d)
	sent := []parley.Message{dave.send(g.ID, "d1", "one"), dave.send(d.ID, "d2", "two"), dave.send(g.ID, "d3", "three")}
	alice.send(g.ID, "a1", "alice's")

	r := httpDo(t, srv, "GET", "/v1/server/users/dave/export", key, "")
	ex := decodeJSON[struct {
		User          parley.User
		Conversations []parley.Conversation
		Messages      []parley.Message
		Next          string
	}](t, r.body)
	if ex.User.ID != "dave" || len(ex.Conversations) != 2 || len(ex.Messages) != 3 || ex.Next != "" {
		t.Fatalf("export = user %+v, %d conversations, %d messages, next %q; want dave, 2, 3, none", ex.User, len(ex.Conversations), len(ex.Messages), ex.Next)
	}
	for i, m := range ex.Messages {
		if m.ID != sent[i].ID || m.Text != sent[i].Text {
			t.Errorf("export message %d = %+v, want %+v", i, m, sent[i])
		}
	}
	// Under a small reply budget the export pages by bytes too, and the
	// pages join up; the conversations take at most half the first page,
	// the rest coming from .../conversations.
	srv.Server.SetHTTPReplyBytes(1400)
	type page struct {
		Conversations     []parley.Conversation
		ConversationsNext string `json:"conversations_next"`
		Messages          []parley.Message
		Next              string
	}
	var pages []page
	for after := ""; len(pages) == 0 || after != ""; after = pages[len(pages)-1].Next {
		if len(pages) > 3 {
			t.Fatal("export does not end")
		}
		pages = append(pages, decodeJSON[page](t, httpDo(t, srv, "GET", "/v1/server/users/dave/export?after="+after, key, "").body))
	}
	convs := len(pages[0].Conversations)
	if next := pages[0].ConversationsNext; next != "" {
		rest := decodeJSON[protocol.ConversationList](t, httpDo(t, srv, "GET", "/v1/server/users/dave/conversations?cursor="+url.QueryEscape(next), key, "").body)
		convs += len(rest.Conversations)
	}
	msgs := 0
	for i, p := range pages {
		msgs += len(p.Messages)
		if i > 0 && len(p.Conversations) != 0 {
			t.Fatalf("export page %d holds conversations: %+v", i, p)
		}
	}
	last := pages[len(pages)-1].Messages
	if len(pages) < 2 || convs != 2 || msgs != 3 || len(last) == 0 || last[len(last)-1].ID != sent[2].ID {
		t.Fatalf("export pages under 1400 bytes (%d conversations) = %+v", convs, pages)
	}
	srv.Server.SetHTTPReplyBytes(0)
	if r := httpDo(t, srv, "GET", "/v1/server/users/nobody/export", key, ""); r.err.Code != parley.ENOTFOUND {
		t.Errorf("export of nobody: %d %s", r.status, r.err.Code)
	}

	r = httpDo(t, srv, "DELETE", "/v1/server/users/dave", key, "")
	res := decodeJSON[struct {
		Deleted int  `json:"messages_deleted"`
		Left    int  `json:"conversations_left"`
		Done    bool `json:"done"`
	}](t, r.body)
	if r.status != http.StatusOK || res.Deleted != 3 || res.Left != 1 || !res.Done {
		t.Fatalf("erase: %d %s", r.status, r.body)
	}
	if code := dave.closeCode(); int(code) != protocol.CloseAuthRevoked {
		t.Errorf("dave's connection closed with %d, want 4102", code)
	}
	for range 3 {
		if ev := alice.event(parley.EventMessageDeleted); ev.Message.SenderID != "dave" || !ev.Message.Deleted {
			t.Errorf("alice got %+v", ev)
		}
	}
	ev := alice.event(parley.EventConversationUpdated)
	for ev.Change == parley.ChangeCreated { // the two creations, still pending
		ev = alice.event(parley.EventConversationUpdated)
	}
	if ev.Change != parley.ChangeMembersRemoved || ev.ConversationID != g.ID || !slices.Equal(ev.UserIDs, []string{"dave"}) {
		t.Errorf("alice got %+v, want dave removed from the group", ev)
	}
	ex2 := decodeJSON[struct {
		User     parley.User
		Messages []parley.Message
	}](t, httpDo(t, srv, "GET", "/v1/server/users/dave/export", key, "").body)
	if ex2.User.Name == "Dave" || len(ex2.Messages) != 3 {
		t.Fatalf("after erase: %+v", ex2)
	}
	for _, m := range ex2.Messages {
		if !m.Deleted || m.Text != "" {
			t.Errorf("after erase: %+v", m)
		}
	}
	if r := httpDo(t, srv, "GET", "/v1/me", daveTok, ""); r.err.Code != parley.EUNAUTHORIZED {
		t.Errorf("dave's token after erase: %d %s", r.status, r.err.Code)
	}
	// Again: nothing left to do.
	if r := httpDo(t, srv, "DELETE", "/v1/server/users/dave", key, ""); !strings.Contains(string(r.body), `"messages_deleted":0`) || !strings.Contains(string(r.body), `"done":true`) {
		t.Errorf("erase again: %s", r.body)
	}
}

// TestServerAPIKeyGuessing: a client guessing API keys gets rate_limited
// (429 with Retry-After) once its IP has used its budget of failures, and
// then even a valid key from that IP waits (the limit is checked before
// any lookup); a valid key from another IP still works, and its calls take
// nothing from any budget.
func TestServerAPIKeyGuessing(t *testing.T) {
	const burst = 10
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		// Slow enough that no token comes back during the test.
		c.Limits.APIKeyFailuresPerSecond, c.Limits.APIKeyFailureBurst = 1.0/3600, burst
	}))
	_, good := newAPIKey(t, srv, auth.ScopeUsers)
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		tr := &http.Transport{DialContext: d.DialContext}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	call := func(c *http.Client, key string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest("POST", srv.URL+"/v1/server/users", strings.NewReader(`{"id":"carol","name":"Carol"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	hostile, other := from("127.0.0.1"), from("127.0.0.2")

	// Successes take nothing: more of them than the burst, then the
	// whole budget of failures is still there.
	for range burst + 5 {
		if st, _, b := call(hostile, good); st != http.StatusOK {
			t.Fatalf("valid key: %d %s", st, b)
		}
	}
	for i := range burst {
		_, guess, err := auth.NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if st, _, b := call(hostile, guess); st != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s, want 401", i, st, b)
		}
	}
	_, guess, _ := auth.NewAPIKey()
	st, h, b := call(hostile, guess)
	if st != http.StatusTooManyRequests || !strings.Contains(string(b), `"rate_limited"`) || h.Get("Retry-After") == "" {
		t.Fatalf("guess past the budget: %d %q %s, want 429 rate_limited with Retry-After", st, h.Get("Retry-After"), b)
	}
	if st, _, _ := call(hostile, good); st != http.StatusTooManyRequests {
		t.Errorf("valid key from the limited IP: %d, want 429", st)
	}
	if st, _, b := call(other, good); st != http.StatusOK {
		t.Errorf("valid key from another IP: %d %s, want 200", st, b)
	}
	if st, _, _ := call(other, guess); st != http.StatusUnauthorized {
		t.Errorf("a guess from another IP: %d, want 401 (its own budget)", st)
	}
	if got := srv.Server.MetricSum("parley_rate_limited_total", map[string]string{"limit": "api_key_failures"}); got < 2 {
		t.Errorf("parley_rate_limited_total{limit=api_key_failures} = %v, want >= 2", got)
	}
}

// TestServerAPIExportManyConversations: a user in more conversations than
// one page holds (added to them by others: nothing the user controls)
// gets an export whose conversations stop at half the reply's bytes, with
// conversations_next to page the rest from .../conversations, each once;
// erase leaves every group however many pages the list takes.
func TestServerAPIExportManyConversations(t *testing.T) {
	srv := startLimited(t, nil)
	_, key := newAPIKey(t, srv, auth.ScopeUsers)
	srv.Token(t, "dave", "Dave")
	alice := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	const groups = 300 // more than one page of the list (256)
	want := map[string]bool{}
	for i := range groups {
		var g parley.Conversation
		alice.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: fmt.Sprint("g", i), MemberIDs: []string{"dave"}}, &g)
		want[g.ID] = true
	}
	var d parley.Conversation
	alice.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "dave"}, &d)
	want[d.ID] = true

	srv.Server.SetHTTPReplyBytes(20000)
	r := httpDo(t, srv, "GET", "/v1/server/users/dave/export", key, "")
	ex := decodeJSON[struct {
		Conversations     []parley.Conversation `json:"conversations"`
		ConversationsNext string                `json:"conversations_next"`
	}](t, r.body)
	// The cap is on the items' JSON (docs/protocol.md, section 9): the
	// reply's other fields (user, the cursors) come on top.
	const envelope = 512
	if len(r.body) > 20000+envelope || len(ex.Conversations) == 0 || ex.ConversationsNext == "" {
		t.Fatalf("export's first page: %d bytes, %d conversations, next %q", len(r.body), len(ex.Conversations), ex.ConversationsNext)
	}
	got := map[string]int{}
	for _, c := range ex.Conversations {
		got[c.ID]++
	}
	pages := 0
	for cursor := ex.ConversationsNext; cursor != ""; pages++ {
		if pages > groups {
			t.Fatal("the pages never end")
		}
		r := httpDo(t, srv, "GET", "/v1/server/users/dave/conversations?cursor="+url.QueryEscape(cursor), key, "")
		p := decodeJSON[protocol.ConversationList](t, r.body)
		if r.status != http.StatusOK || len(r.body) > 20000+envelope || len(p.Conversations) == 0 {
			t.Fatalf("conversations page: %d, %d bytes, %d conversations", r.status, len(r.body), len(p.Conversations))
		}
		for _, c := range p.Conversations {
			got[c.ID]++
		}
		cursor = p.Next
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("conversation %s exported %d times", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("exported %d conversations, want %d", len(got), len(want))
	}
	srv.Server.SetHTTPReplyBytes(0)

	r = httpDo(t, srv, "DELETE", "/v1/server/users/dave", key, "")
	res := decodeJSON[struct {
		Left int  `json:"conversations_left"`
		Done bool `json:"done"`
	}](t, r.body)
	if res.Left != groups || !res.Done {
		t.Fatalf("erase: %s, want %d groups left", r.body, groups)
	}
	if r := httpDo(t, srv, "GET", "/v1/server/users/dave/conversations", key, ""); !strings.Contains(string(r.body), d.ID) || strings.Count(string(r.body), `"kind":"group"`) != 0 {
		t.Errorf("dave's list after erase: %s", r.body)
	}
}

// TestServerAPIEraseBounded: an erase call reads at most eraseScan of the
// user's messages, going on from where the last call stopped, so a pass
// over messages already tombstoned costs each call the same (before, each
// call walked every one of them from the first); the passes delete each
// message once, and a pass that reaches the last message is done.
func TestServerAPIEraseBounded(t *testing.T) {
	srv := startLimited(t, nil)
	_, key := newAPIKey(t, srv, auth.ScopeUsers)
	srv.Token(t, "dave", "Dave")
	srv.Token(t, "alice", "Alice")
	ctx := t.Context()
	g, _, err := srv.Store.CreateGroup(ctx, "dave", "g", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*2000 + 10 // eraseScan is 2000: two full reads and a short one
	nms := make([]parley.NewMessage, n)
	for i := range nms {
		nms[i] = parley.NewMessage{ConversationID: g.ID, SenderID: "dave", ClientID: fmt.Sprintf("c%05d", i), Text: "hi"}
	}
	srv.Store.(parley.MultiSender).SendMessages(ctx, nms, func(i int, _ parley.Message, _ []parley.Event, err error) {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	})
	type result struct {
		Deleted int  `json:"messages_deleted"`
		Done    bool `json:"done"`
	}
	erase := func() result {
		r := httpDo(t, srv, "DELETE", "/v1/server/users/dave", key, "")
		if r.status != http.StatusOK {
			t.Fatalf("erase: %d %s", r.status, r.body)
		}
		return decodeJSON[result](t, r.body)
	}
	// The first pass: 500 a call, each message once.
	total, calls := 0, 0
	for res := (result{}); !res.Done; calls++ {
		if calls > n/500+1 {
			t.Fatalf("erase does not end: %d deleted in %d calls", total, calls)
		}
		res = erase()
		if res.Deleted > 500 {
			t.Fatalf("erase deleted %d in one call, want at most 500", res.Deleted)
		}
		total += res.Deleted
	}
	if total != n {
		t.Fatalf("erase deleted %d messages, want %d", total, n)
	}
	// A second pass finds only tombstones: it takes a call per 2000 of
	// them, each reading no more, and the last one is done.
	for i, want := range []result{{0, false}, {0, false}, {0, true}} {
		if got := erase(); got != want {
			t.Fatalf("erase call %d of the second pass = %+v, want %+v", i, got, want)
		}
	}
}

// TestHostileExportByteCap: a user whose messages are 4000 '<' each (24
// KB of JSON apiece, where the text is 4 KB) gets an export cut to the
// reply's budget as JSON, not as an estimate of the text's bytes: every
// page is at most MaxReplyBytes and a little for the user, and the pages
// hold every message once. Before, the page was cut at 512 bytes and
// the text's length a message, and came to 1.4 MB.
func TestHostileExportByteCap(t *testing.T) {
	srv := servertest.Start(t)
	_, key := newAPIKey(t, srv, auth.ScopeUsers)
	seedConversation(t, srv, 100, strings.Repeat("<", parley.MaxTextRunes))
	seen := map[string]bool{}
	for after, pages := "", 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the export does not end")
		}
		r := httpDo(t, srv, "GET", "/v1/server/users/alice/export?after="+url.QueryEscape(after), key, "")
		if r.status != http.StatusOK {
			t.Fatalf("export: %d %s", r.status, r.body)
		}
		if len(r.body) > server.MaxReplyBytes+4<<10 {
			t.Fatalf("an export page is %d bytes, want at most the reply budget (%d) and a little", len(r.body), server.MaxReplyBytes)
		}
		p := decodeJSON[struct {
			Messages []parley.Message
			Next     string
		}](t, r.body)
		for _, m := range p.Messages {
			if seen[m.ID] {
				t.Fatalf("message %s exported twice", m.ID)
			}
			seen[m.ID] = true
		}
		if after = p.Next; after == "" {
			break
		}
	}
	if len(seen) != 100 {
		t.Fatalf("the export held %d messages, want 100", len(seen))
	}
}

// TestHostileBannedUserLinks: a signed attachment link stops working once
// its user is banned, as their token does, though it has not expired: a
// link is the user's access for five minutes, not a capability that
// outlives it. Before, a banned (or erased) user kept downloading with
// the links made before the ban.
func TestHostileBannedUserLinks(t *testing.T) {
	srv := servertest.Start(t)
	_, key := newAPIKey(t, srv, auth.ScopeModeration)
	tok := srv.Token(t, "mallory", "Mallory")
	a := uploadFile(t, srv, tok, "notes.txt", []byte("my notes"))
	var link server.AttachmentLink
	if err := json.Unmarshal(httpDo(t, srv, "POST", "/v1/attachments/"+a.ID+"/link", tok, "").body, &link); err != nil || link.URL == "" {
		t.Fatalf("link: %v %+v", err, link)
	}
	if r := httpDo(t, srv, "GET", link.URL, "", ""); r.status != http.StatusOK {
		t.Fatalf("the link before the ban: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "POST", "/v1/server/users/mallory/ban", key, ""); r.status != http.StatusOK {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "GET", link.URL, "", ""); r.status == http.StatusOK {
		t.Fatalf("the link after the ban: %d, want it refused", r.status)
	}
	if r := httpDo(t, srv, "GET", "/v1/attachments/"+a.ID, tok, ""); r.status != http.StatusUnauthorized {
		t.Fatalf("the token after the ban: %d, want 401", r.status)
	}
}

// TestHostileEraseManyGroups: erasing a user who joined more groups than
// an erase call leaves (500) takes more calls, each leaving at most 500,
// as for messages, until done; before, one call left every group, one
// store write each, however many the user had joined.
func TestHostileEraseManyGroups(t *testing.T) {
	srv := servertest.Start(t)
	_, key := newAPIKey(t, srv, auth.ScopeUsers)
	srv.Token(t, "mallory", "Mallory")
	const groups = 600
	for i := range groups { // straight in the store
		if _, _, err := srv.Store.CreateGroup(t.Context(), "mallory", fmt.Sprint("g", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	left := 0
	for calls := 1; ; calls++ {
		r := httpDo(t, srv, "DELETE", "/v1/server/users/mallory", key, "")
		res := decodeJSON[struct {
			Left int  `json:"conversations_left"`
			Done bool `json:"done"`
		}](t, r.body)
		if r.status != http.StatusOK || res.Left > 500 {
			t.Fatalf("erase call %d: %d %s, want 200 leaving at most 500 groups", calls, r.status, r.body)
		}
		left += res.Left
		if res.Done {
			break
		}
		if calls > 3 {
			t.Fatalf("erase is not done after %d calls (%d groups left)", calls, left)
		}
	}
	if left != groups {
		t.Fatalf("erase left %d groups, want %d", left, groups)
	}
	cl, err := srv.Store.Conversations(t.Context(), "mallory")
	if err != nil || len(cl) != 0 {
		t.Fatalf("mallory's conversations after the erase: %d %v", len(cl), err)
	}
}
