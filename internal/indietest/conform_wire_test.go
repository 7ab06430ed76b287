package indietest

// Sections 2, 3, 4, 7, 8: frames, hello, errors, close codes; section 11:
// the HTTP API's shapes, statuses and headers.

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawConn dials without a hello.
func (e *env) rawConn(t *testing.T) (*wsConn, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, err := dialWS(ctx, e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c, ctx
}

var _ = check("hello refusals and close codes", func(t *testing.T, e *env) {
	u := e.newUser(t, "hc")
	for _, tc := range []struct {
		name  string
		first []byte
		bin   bool
		code  string // "" : no error frame expected
		close websocket.StatusCode
	}{
		{"not hello", []byte(`{"op":"ping","id":"x"}`), false, "invalid", 4101},
		{"bad json", []byte(`{"op":`), false, "bad_json", 4101},
		{"binary", []byte(`{"op":"hello"}`), true, "", 4101},
		{"forged token", []byte(`{"op":"hello","data":{"token":"a.b.c"}}`), false, "unauthorized", 4100},
		{"no token", []byte(`{"op":"hello","data":{}}`), false, "unauthorized", 4100},
		{"protocol 3", []byte(`{"op":"hello","data":{"token":"` + u.token + `","protocol":3}}`), false, "invalid", 4101},
		{"negative resume_from", []byte(`{"op":"hello","data":{"token":"` + u.token + `","resume_from":-1}}`), false, "invalid", 4101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ctx := e.rawConn(t)
			typ := websocket.MessageText
			if tc.bin {
				typ = websocket.MessageBinary
			}
			if err := c.ws.Write(ctx, typ, tc.first); err != nil {
				t.Fatal(err)
			}
			var errFrame *wireError
			for {
				f, err := c.read(ctx)
				if err != nil {
					if st := websocket.CloseStatus(err); st != tc.close {
						t.Errorf("closed with %d (%v), want %d", st, err, tc.close)
					}
					break
				}
				if f.Type == "error" {
					errFrame = f.Error
				}
			}
			if tc.code != "" && (errFrame == nil || errFrame.Code != tc.code) {
				t.Errorf("error frame %v, want %s", errFrame, tc.code)
			}
		})
	}
	t.Run("expired token", func(t *testing.T) {
		c, ctx := e.rawConn(t)
		tok := mintWith(u.id, u.name, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
		c.write(ctx, request{Op: "hello", Data: map[string]any{"token": tok}})
		if st := closeStatus(ctx, c); st != 4100 {
			t.Errorf("expired token: close %d, want 4100", st)
		}
	})
	t.Run("no hello within 5 s", func(t *testing.T) {
		c, ctx := e.rawConn(t)
		if st := closeStatus(ctx, c); st != 4004 {
			t.Errorf("silent client: close %d, want 4004", st)
		}
	})
	t.Run("bearer on the upgrade", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "ws://"+e.addr+"/v1/ws", &websocket.DialOptions{HTTPHeader: map[string][]string{"Authorization": {"Bearer " + u.token}}})
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		ws.Write(ctx, websocket.MessageText, []byte(`{"op":"hello"}`))
		_, b, err := ws.Read(ctx)
		if err != nil || !strings.Contains(string(b), `"type":"welcome"`) {
			t.Errorf("hello without a token after a bearer upgrade: %s %v", b, err)
		}
	})
})

var _ = check("request errors keep the connection", func(t *testing.T, e *env) {
	u := e.newUser(t, "er")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	send := func(b string) frame {
		t.Helper()
		if err := u.c.ws.Write(ctx, websocket.MessageText, []byte(b)); err != nil {
			t.Fatal(err)
		}
		f, ok := u.frameOf("error", 5*time.Second)
		if !ok {
			t.Fatalf("%s: no error frame (%v)", b, u.closeErr)
		}
		return f
	}
	f := send(`{"op":"send","id":"r1",`)
	if f.Error.Code != "bad_json" || f.ID != "" {
		t.Errorf("bad JSON: %s %+v", f.ID, f.Error)
	}
	f = send("{\"op\":\"ping\",\"id\":\"\xff\"}")
	if f.Error.Code != "bad_json" {
		t.Errorf("bad UTF-8: %+v", f.Error)
	}
	f = send(`{"op":"fly","id":"r2"}`)
	if f.Error.Code != "unknown_op" || f.ID != "r2" {
		t.Errorf("unknown op: %s %+v", f.ID, f.Error)
	}
	f = send(`{"op":"send","id":"r3","data":{"conversation_id":5}}`)
	if f.Error.Code != "invalid" && f.Error.Code != "bad_json" || f.ID != "r3" {
		t.Errorf("a wrong type: %s %+v", f.ID, f.Error)
	}
	long := strings.Repeat("i", 63) + "é" + "xyz"
	f = send(`{"op":"ping","id":"` + long + `"}`)
	if f.Error.Code != "invalid" || f.ID != strings.Repeat("i", 63) {
		t.Errorf("a 68-byte id: error id %q %+v, want the first 63 bytes (the 64th is inside é)", f.ID, f.Error)
	}
	// data null is {}.
	u.ok("presence", nil, nil)
	if _, werr := u.req("conversations", json.RawMessage("null")); werr != nil {
		t.Errorf("data null: %v", werr)
	}
	// Still up: a ping is answered.
	u.c.write(ctx, request{Op: "ping", ID: "alive"})
	for {
		f, ok := u.recv(5 * time.Second)
		if !ok {
			t.Fatalf("no pong after the errors (%v)", u.closeErr)
		}
		if f.Type == "pong" && f.ID == "alive" {
			break
		}
	}
})

var _ = check("frame over 64 KiB closes 1009", func(t *testing.T, e *env) {
	u := e.newUser(t, "big")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := `{"op":"ping","id":"x","data":{"pad":"` + strings.Repeat("p", 70<<10) + `"}}`
	u.c.ws.Write(ctx, websocket.MessageText, []byte(b))
	for {
		if _, ok := u.recv(5 * time.Second); !ok {
			break
		}
	}
	if st := websocket.CloseStatus(u.closeErr); st != 1009 {
		t.Errorf("a frame of 70 KiB: close %d (%v), want 1009", st, u.closeErr)
	}
})

var _ = check("welcome", func(t *testing.T, e *env) {
	u := e.newUser(t, "wl")
	var w map[string]json.RawMessage
	json.Unmarshal(u.welcome, &w)
	for _, k := range []string{"user", "session_id", "head", "heartbeat_interval_ms", "heartbeat_timeout_ms", "max_frame_bytes", "max_text_runes", "resume_limit", "online"} {
		if _, ok := w[k]; !ok {
			t.Errorf("welcome has no %s: %s", k, u.welcome)
		}
	}
	want := map[string]string{"heartbeat_interval_ms": "4000", "heartbeat_timeout_ms": "9000", "max_frame_bytes": "65536", "max_text_runes": "4000", "resume_limit": "10000"}
	for k, v := range want {
		if string(w[k]) != v {
			t.Errorf("welcome.%s = %s, want %s", k, w[k], v)
		}
	}
	// Batching: the welcome itself may be packed; frames split on "\n".
	b := u.reconnect(t, map[string]any{"batch": true})
	b.ok("presence", nil, nil)
})

var _ = check("resume", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "rs"), e.newUser(t, "rs")
	g := a.group("resume", b)
	var w struct {
		Head int64 `json:"head"`
	}
	json.Unmarshal(b.welcome, &w)
	b.drain(300 * time.Millisecond)
	var last int64
	for range 3 {
		a.send(g, "while away")
		last = b.expect("newMessage", nil).Pos
	}
	// Resume from the welcome's head: the group's creation and the three
	// messages, in order, then resumed.
	b2 := b.reconnect(t, map[string]any{"resume_from": w.Head})
	var replayed []int64
	for {
		f, ok := b2.recv(5 * time.Second)
		if !ok {
			t.Fatalf("no resumed (%v)", b2.closeErr)
		}
		if f.Type == "resumed" {
			var r resumedData
			json.Unmarshal(f.Data, &r)
			if r.From != w.Head || r.To != last || r.Count != len(replayed) {
				t.Errorf("resumed %s, want from %d to %d count %d", f.Data, w.Head, last, len(replayed))
			}
			break
		}
		var x ev
		json.Unmarshal(f.Data, &x)
		if f.Type == "event" && x.Pos > 0 {
			replayed = append(replayed, x.Pos)
		}
	}
	for i := 1; i < len(replayed); i++ {
		if replayed[i] <= replayed[i-1] {
			t.Errorf("replay out of order: %v", replayed)
		}
	}
	if len(replayed) != 4 || replayed[0] <= w.Head {
		t.Errorf("replayed %v after %d", replayed, w.Head)
	}
	// Beyond the log: resync log_lost.
	b3 := b.reconnect(t, map[string]any{"resume_from": int64(1) << 40})
	f, ok := b3.frameOf("resync", 5*time.Second)
	var rs resyncData
	json.Unmarshal(f.Data, &rs)
	if !ok || rs.Cause != "log_lost" || rs.From != 1<<40 || rs.Reason == "" {
		t.Errorf("resume beyond the log: %s", f.Data)
	}
	// GET /v1/events: the same events.
	r := e.http(t, "GET", "/v1/events?after="+strconv.FormatInt(w.Head, 10)+"&limit=2", b.token, nil)
	var page struct {
		Events  []ev   `json:"events"`
		Head    int64  `json:"head"`
		HasMore bool   `json:"has_more"`
		Next    *int64 `json:"next"`
		Resync  bool   `json:"resync"`
		Shard   int    `json:"shard"`
		Shards  int    `json:"shards"`
	}
	json.Unmarshal(r.body, &page)
	if r.status != 200 || len(page.Events) != 2 || !page.HasMore || page.Next == nil || *page.Next != page.Events[1].Pos || page.Shards != 1 || page.Resync {
		t.Errorf("GET /v1/events limit 2: %d %.300s", r.status, r.body)
	}
	r = e.http(t, "GET", "/v1/events?after=1099511627776", b.token, nil)
	json.Unmarshal(r.body, &page)
	if r.status != 200 || !page.Resync {
		t.Errorf("GET /v1/events beyond the log: %d %s", r.status, r.body)
	}
	for _, q := range []string{"shard=1", "limit=1001", "after=-1"} {
		if r := e.http(t, "GET", "/v1/events?"+q, b.token, nil); r.status != 400 || r.errCode() != "invalid" {
			t.Errorf("GET /v1/events?%s: %d %s", q, r.status, r.body)
		}
	}
})

var _ = check("http api", func(t *testing.T, e *env) {
	u := e.newUser(t, "ht")
	g := u.group("http")
	for _, tc := range []struct {
		method, path, token string
		body                any
		status              int
		code                string
	}{
		{"GET", "/v1/me", "", nil, 401, "unauthorized"},
		{"GET", "/v1/me", "forged", nil, 401, "unauthorized"},
		{"GET", "/v1/conversations/nope", u.token, nil, 404, "not_found"},
		{"POST", "/v1/conversations/" + g + "/messages", u.token, map[string]any{"client_id": "x"}, 400, "invalid"},
		{"POST", "/v1/conversations/" + g + "/messages", u.token, []byte(`{"client_id":`), 400, "bad_json"},
		{"GET", "/v1/users/nobody-at-all", u.token, nil, 404, "not_found"},
		{"GET", "/metrics", "", nil, 404, "not_found"},
	} {
		r := e.http(t, tc.method, tc.path, tc.token, tc.body)
		if r.status != tc.status || r.errCode() != tc.code {
			t.Errorf("%s %s: %d %.200s, want %d %s", tc.method, tc.path, r.status, r.body, tc.status, tc.code)
		}
		if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: Content-Type %q", tc.method, tc.path, r.header.Get("Content-Type"))
		}
	}
	// A body over 64 KiB: 413. The server may close before reading all of
	// it, and the client's write then fails with a reset: try again.
	for i := 0; ; i++ {
		r, err := e.tryHTTP("POST", "/v1/conversations/"+g+"/messages", u.token, map[string]any{"client_id": "y", "text": strings.Repeat("z", 70<<10)})
		if err != nil && i < 5 {
			continue
		}
		if err != nil || r.status != 413 || r.errCode() != "too_large" {
			t.Errorf("a body of 70 KiB: %d %.200s %v, want 413 too_large", r.status, r.body, err)
		}
		break
	}
	// POST messages: 201 new, 200 a resend.
	body := map[string]any{"client_id": e.unique("h-"), "text": "over http"}
	if r := e.http(t, "POST", "/v1/conversations/"+g+"/messages", u.token, body); r.status != 201 {
		t.Errorf("POST message: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/conversations/"+g+"/messages", u.token, body); r.status != 200 {
		t.Errorf("POST message again: %d %s", r.status, r.body)
	}
	// Security headers on every response.
	r := e.http(t, "GET", "/healthz", "", nil)
	if r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
		t.Errorf("healthz: %d %s", r.status, r.body)
	}
	for h, v := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if r.header.Get(h) != v {
			t.Errorf("%s: %q, want %q", h, r.header.Get(h), v)
		}
	}
	if !strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP %q", r.header.Get("Content-Security-Policy"))
	}
	if r := e.http(t, "GET", "/readyz", "", nil); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	if r := e.http(t, "GET", "/v1/openapi.json", "", nil); r.status != 200 || !strings.Contains(string(r.body), `"openapi"`) {
		t.Errorf("openapi.json: %d", r.status)
	}
	// CORS: a foreign origin is refused; no origin is served.
	r = e.http(t, "GET", "/v1/me", u.token, nil, "Origin", "https://evil.example")
	if r.status != 403 || r.errCode() != "forbidden" || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("foreign origin: %d %s %v", r.status, r.body, r.header)
	}
	r = e.http(t, "OPTIONS", "/v1/me", "", nil, "Origin", "http://"+e.addr, "Access-Control-Request-Method", "PATCH")
	if r.status != 204 || r.header.Get("Access-Control-Allow-Origin") != "http://"+e.addr || r.header.Get("Access-Control-Max-Age") != "600" {
		t.Errorf("same-origin preflight: %d %v", r.status, r.header)
	}
	// Register and login.
	name := e.unique("acct")
	r = e.http(t, "POST", "/v1/auth/register", "", map[string]any{"username": strings.ToUpper(name), "password": "long enough pw"})
	var reg struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
		User      struct {
			Name string `json:"name"`
		} `json:"user"`
	}
	json.Unmarshal(r.body, &reg)
	if r.status != 201 || reg.User.Name != name || reg.ExpiresAt == "" {
		t.Errorf("register %s: %d %s", strings.ToUpper(name), r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/auth/register", "", map[string]any{"username": name, "password": "long enough pw"}); r.status != 409 || r.errCode() != "conflict" {
		t.Errorf("register again: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/auth/register", "", map[string]any{"username": e.unique("pw"), "password": "short"}); r.status != 400 {
		t.Errorf("password of 5 bytes: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/auth/login", "", map[string]any{"username": name, "password": "long enough pw"}); r.status != 200 {
		t.Errorf("login: %d %s", r.status, r.body)
	}
	if r := e.http(t, "POST", "/v1/auth/login", "", map[string]any{"username": name, "password": "wrong password"}); r.status != 401 || !strings.Contains(string(r.body), "wrong username or password") {
		t.Errorf("wrong password: %d %s", r.status, r.body)
	}
	if r := e.http(t, "GET", "/v1/users/"+strings.ToUpper(name), u.token, nil); r.status != 200 || !strings.Contains(string(r.body), `"name":"`+name+`"`) {
		t.Errorf("GET /v1/users/%s: %d %s", strings.ToUpper(name), r.status, r.body)
	}
})

var _ = check("http routes of the ops", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "hr"), e.newUser(t, "hr")
	g := a.group("routes", b)
	m := a.send(g, "to delete")
	if r := e.http(t, "POST", "/v1/conversations/"+g+"/typing", a.token, map[string]any{"typing": true}); r.status != 200 || string(bytes.TrimSpace(r.body)) != "{}" {
		t.Errorf("POST typing: %d %s", r.status, r.body)
	}
	b.expect("typingStarted", func(x ev) bool { return x.UserID == a.id })
	r := e.http(t, "DELETE", "/v1/conversations/"+g+"/messages/"+m.ID, a.token, nil)
	var tomb wmsg
	json.Unmarshal(r.body, &tomb)
	if r.status != 200 || !tomb.Deleted || tomb.ID != m.ID {
		t.Errorf("DELETE message: %d %s", r.status, r.body)
	}
	if r := e.http(t, "DELETE", "/v1/conversations/"+g+"/messages/"+m.ID, b.token, nil); r.status != 403 || r.errCode() != "forbidden" {
		t.Errorf("DELETE another's message: %d %s", r.status, r.body)
	}
	if r := e.http(t, "GET", "/v1/conversations/"+g, b.token, nil); r.status != 200 || !strings.Contains(string(r.body), `"id":"`+g+`"`) {
		t.Errorf("GET conversation: %d %.200s", r.status, r.body)
	}
	if r := e.http(t, "GET", "/v1/me", a.token, nil); r.status != 200 || !strings.Contains(string(r.body), `"id":"`+a.id+`"`) {
		t.Errorf("GET /v1/me: %d %s", r.status, r.body)
	}
})

var _ = check("protocol 2 on a log of one shard", func(t *testing.T, e *env) {
	// Section 3: a client may speak protocol 2 to any server of this
	// version; on one shard the cursor is shard 0's position.
	u := e.newUser(t, "p2")
	u.group("one")
	u2 := u.reconnect(t, map[string]any{"protocol": 2, "cursor": map[string]any{}})
	var w welcomeData
	json.Unmarshal(u2.welcome, &w)
	if w.Shards != 1 || w.Cursor["0"] != w.Head || w.Head == 0 {
		t.Errorf("welcome: shards %d cursor %v head %d", w.Shards, w.Cursor, w.Head)
	}
	f, ok := u2.frameOf("resumed", 5*time.Second)
	var r resumedData
	json.Unmarshal(f.Data, &r)
	if !ok || r.Shards != 1 || r.Cursor["0"] != w.Head || r.Count == 0 {
		t.Errorf("resumed %s", f.Data)
	}
	for _, f := range u2.buf {
		var raw map[string]json.RawMessage
		json.Unmarshal(f.Data, &raw)
		if _, has := raw["shard"]; f.Type == "event" && has {
			t.Errorf("an event of shard 0 carries shard: %s", f.Data)
		}
	}
})
