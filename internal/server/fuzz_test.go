package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// FuzzHTTPJSON posts arbitrary bodies to every JSON handler: the answer is
// never a 5xx and always JSON.
func FuzzHTTPJSON(f *testing.F) {
	for _, s := range []string{
		`{"username":"alice","password":"longenough"}`, `{"client_id":"c","text":"hi"}`,
		`{"title":"t","member_ids":["bob"]}`, `{"user_id":"bob"}`, `{"seq":1}`, `{"typing":true}`,
		`{"title":5}`, `[]`, `{`, "\xff", ``, `null`, `{"add":[1]}`,
	} {
		f.Add(s)
	}
	srv := servertest.Start(f)
	tok := srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	paths := []string{"/v1/auth/login", "/v1/conversations/direct", "/v1/conversations/group",
		"/v1/conversations/x/messages", "/v1/conversations/x/read", "/v1/conversations/x/typing"}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			requireJSONNot5xx(t, srv, tok, "POST", p, body)
		}
	})
}

// requireJSONNot5xx sends method path with body and tok as bearer to srv
// and fails t unless the answer is below 500 and a JSON document; it
// returns the answer's status and body. A path that is not a URL at all
// (a fuzzed segment) reaches nothing: it returns 0 and nil.
func requireJSONNot5xx(t testing.TB, srv *servertest.Server, tok, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 500 || !json.Valid(b) {
		t.Fatalf("%s %s %q: %d %s", method, path, body, resp.StatusCode, b)
	}
	return resp.StatusCode, b
}

func TestHTTPAPI(t *testing.T) {
	srv := servertest.Start(t)
	tok, alice := srv.Register(t, "alice", "correct horse")
	if r := httpDo(t, srv, "POST", "/v1/auth/register", "", `{"username":"alice","password":"correct horse"}`); r.status != 409 || r.err.Code != "conflict" {
		t.Fatalf("register twice: %d %+v", r.status, r.err)
	}
	if r := httpDo(t, srv, "POST", "/v1/auth/login", "", `{"username":"alice","password":"wrong password"}`); r.status != 401 {
		t.Fatalf("wrong password: %d", r.status)
	}
	if r := httpDo(t, srv, "POST", "/v1/auth/login", "", `{"username":"alice","password":"correct horse"}`); r.status != 200 {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	btok, _ := srv.Register(t, "bob", "correct horse")
	if r := httpDo(t, srv, "GET", "/v1/me", "", ""); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
	if r := httpDo(t, srv, "GET", "/v1/me", tok, ""); r.status != 200 || !strings.Contains(string(r.body), alice.ID) {
		t.Fatalf("me: %d %s", r.status, r.body)
	}
	r := httpDo(t, srv, "POST", "/v1/conversations/direct", tok, `{"username":"bob"}`)
	if r.status != 200 {
		t.Fatalf("direct: %d %s", r.status, r.body)
	}
	conv := decodeJSON[struct{ ID string }](t, r.body).ID
	path := "/v1/conversations/" + conv + "/messages"
	if r := httpDo(t, srv, "POST", path, tok, `{"client_id":"c1","text":"hi"}`); r.status != 201 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "POST", path, tok, `{"client_id":"c1","text":"hi"}`); r.status != 200 {
		t.Fatalf("resend: %d %s", r.status, r.body)
	}
	r = httpDo(t, srv, "GET", path+"?limit=10", btok, "")
	page := decodeJSON[struct {
		Messages []struct{ ID string }
		HasMore  bool `json:"has_more"`
	}](t, r.body)
	if len(page.Messages) != 1 {
		t.Fatalf("history: %s", r.body)
	}
	if r := httpDo(t, srv, "POST", "/v1/conversations/"+conv+"/read", btok, `{"seq":1}`); r.status != 200 || !strings.Contains(string(r.body), `"read_seq":1`) {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "DELETE", path+"/"+page.Messages[0].ID, btok, ""); r.status != 403 {
		t.Fatalf("bob deletes alice's message: %d", r.status)
	}
	if r := httpDo(t, srv, "DELETE", path+"/"+page.Messages[0].ID, tok, ""); r.status != 200 || !strings.Contains(string(r.body), `"deleted":true`) {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	r = httpDo(t, srv, "GET", "/v1/events?after=0", btok, "")
	ev := decodeJSON[struct {
		Events []struct{ Pos int64 }
		Head   int64
		Resync bool
	}](t, r.body)
	if len(ev.Events) != 4 || ev.Head < 4 || ev.Resync {
		t.Fatalf("events: %s", r.body)
	}
	if r := httpDo(t, srv, "GET", "/v1/events?after=999999", btok, ""); !strings.Contains(string(r.body), `"resync":true`) {
		t.Fatalf("events ahead: %s", r.body)
	}
	for _, c := range []struct{ method, path, body, code string }{
		{"POST", path, `{"client_id":`, "bad_json"},
		{"POST", path, "{\"client_id\":\"x\",\"text\":\"\xff\"}", "bad_json"},
		{"POST", path, `{"client_id":5}`, "invalid"},
		{"POST", path, `{"client_id":"x","text":"` + strings.Repeat("a", 70000) + `"}`, "too_large"},
		{"GET", "/v1/conversations/nope", "", "not_found"},
		{"GET", path + "?limit=abc", "", "invalid"},
		{"PATCH", "/v1/conversations/" + conv, `{"title":"x"}`, "invalid"},
	} {
		if r := httpDo(t, srv, c.method, c.path, tok, c.body); r.err.Code != c.code {
			t.Errorf("%s %s: %d %+v, want %s", c.method, c.path, r.status, r.err, c.code)
		}
	}
	if r := httpDo(t, srv, "GET", "/v1/presence", tok, ""); r.status != 200 {
		t.Fatalf("presence: %d", r.status)
	}
	if r := httpDo(t, srv, "GET", "/readyz", "", ""); r.status != 200 {
		t.Fatalf("readyz: %d", r.status)
	}
}

// FuzzEditAndReact: arbitrary edit bodies and reaction path segments on a
// real message never get a 5xx, always JSON, and a reaction the server
// accepts is one parley.ValidateEmoji accepts.
func FuzzEditAndReact(f *testing.F) {
	for _, s := range []string{`{"client_id":"e","text":"hi"}`, `{"client_id":"e","text":""}`, `{"text":5}`,
		"👍", "❤️", "1️⃣", "abc", "%00", "", `{`, "\xff", "🇫🇷", "👩🏻‍❤️‍💋‍👨🏼"} {
		f.Add(s)
	}
	srv := servertest.Start(f)
	tok := srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	do := func(t testing.TB, method, path, body string) (int, []byte) {
		return requireJSONNot5xx(t, srv, tok, method, path, body)
	}
	_, b := do(f, "POST", "/v1/conversations/group", `{"title":"t","member_ids":["bob"]}`)
	var conv struct{ ID string }
	json.Unmarshal(b, &conv)
	_, b = do(f, "POST", "/v1/conversations/"+conv.ID+"/messages", `{"client_id":"m","text":"hi"}`)
	var msg struct{ ID string }
	json.Unmarshal(b, &msg)
	path := "/v1/conversations/" + conv.ID + "/messages/" + msg.ID
	f.Fuzz(func(t *testing.T, s string) {
		do(t, "PATCH", path, s)
		st, _ := do(t, "PUT", path+"/reactions/"+url.PathEscape(s), "")
		if st == http.StatusOK && parley.ValidateEmoji(s) != nil {
			t.Fatalf("the server took %q as a reaction", s)
		}
		do(t, "DELETE", path+"/reactions/"+url.PathEscape(s), "")
	})
}

// FuzzConsentHTTP: arbitrary privacy bodies and user or conversation path
// segments on the consent routes never get a 5xx, and always JSON.
func FuzzConsentHTTP(f *testing.F) {
	for _, s := range [][2]string{
		{`{"consent":"contacts"}`, "bob"}, {`{"consent":"everyone"}`, "alice"}, {`{"consent":""}`, ""},
		{`{"consent":5}`, "nobody"}, {`[]`, "%00"}, {`{`, "x/y"}, {"\xff", "\xff"}, {`null`, strings.Repeat("a", 300)},
	} {
		f.Add(s[0], s[1])
	}
	srv := servertest.Start(f)
	tok := srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	f.Fuzz(func(t *testing.T, body, seg string) {
		seg = url.PathEscape(seg)
		for _, r := range []struct{ method, path, body string }{
			{"PATCH", "/v1/me/privacy", body},
			{"PUT", "/v1/me/blocked/" + seg, ""},
			{"DELETE", "/v1/me/blocked/" + seg, ""},
			{"POST", "/v1/conversations/" + seg + "/accept", ""},
			{"POST", "/v1/conversations/" + seg + "/decline", ""},
		} {
			requireJSONNot5xx(t, srv, tok, r.method, r.path, r.body)
		}
	})
}

// FuzzReceiptsAndProfile: any body to POST /v1/delivered and PATCH
// /v1/me gets a JSON answer below 500, and a profile the server accepted
// holds a display name NormalizeProfileName keeps as it is.
func FuzzReceiptsAndProfile(f *testing.F) {
	for _, s := range []string{
		`{"conversations":[{"conversation_id":"x","seq":1}]}`, `{"conversations":[{"conversation_id":"$conv","seq":1}]}`, `{"conversations":[]}`, `{"conversations":null}`,
		`{"conversations":[{"conversation_id":"","seq":-1}]}`, `{"conversations":[{"seq":9223372036854775807}]}`,
		`{"display_name":"Alice"}`, `{"display_name":"a\u202eb"}`, `{"avatar_id":""}`, `{"avatar_id":"nope"}`,
		`{"display_name":"  x  ","avatar_id":null}`, `{"display_name":5}`, `{}`, `[]`, `{`, "\xff", ``, `null`,
	} {
		f.Add(s)
	}
	srv := servertest.Start(f, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	tok := srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	conv := decodeJSON[parley.Conversation](f, httpDo(f, srv, "POST", "/v1/conversations/direct", tok, `{"user_id":"bob"}`).body).ID
	httpDo(f, srv, "POST", "/v1/conversations/"+conv+"/messages", tok, `{"client_id":"f1","text":"m"}`)
	f.Fuzz(func(t *testing.T, body string) {
		body = strings.ReplaceAll(body, "$conv", conv)
		for _, r := range []struct{ method, path string }{{"POST", "/v1/delivered"}, {"PATCH", "/v1/me"}} {
			status, b := requireJSONNot5xx(t, srv, tok, r.method, r.path, body)
			if r.path == "/v1/me" && status == http.StatusOK {
				var u parley.User
				if err := json.Unmarshal(b, &u); err != nil {
					t.Fatalf("PATCH /v1/me %q: %s: %v", body, b, err)
				}
				if n, err := parley.NormalizeProfileName(u.DisplayName); err != nil || n != u.DisplayName {
					t.Fatalf("accepted display name %q: normalised %q, %v", u.DisplayName, n, err)
				}
			}
		}
	})
}
