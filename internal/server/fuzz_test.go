package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleychat/parley"
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
			req, _ := http.NewRequest("POST", srv.URL+p, strings.NewReader(body))
			requireJSONNot5xx(t, req, tok, body)
		}
	})
}

// requireJSONNot5xx sends req with tok as bearer and fails t unless the
// answer is below 500 and a JSON document; body only names the request.
func requireJSONNot5xx(t *testing.T, req *http.Request, tok, body string) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	err = json.NewDecoder(resp.Body).Decode(&v)
	resp.Body.Close()
	if resp.StatusCode >= 500 || err != nil {
		t.Fatalf("%s %s %q: %d (json err %v)", req.Method, req.URL.EscapedPath(), body, resp.StatusCode, err)
	}
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
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, nil // not a URL: nothing reaches the server
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v any
		if resp.StatusCode >= 500 || json.Unmarshal(b, &v) != nil {
			t.Fatalf("%s %s %q: %d %s", method, path, body, resp.StatusCode, b)
		}
		return resp.StatusCode, b
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
