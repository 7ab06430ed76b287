package indietest

// Sections 4, 8, 9 and 10 on a server with its default limits: rate
// limits and throttling, the send gate, the connection cap, the
// heartbeat, login locks, and goaway at shutdown.

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestConformanceLimits starts a server whose per-user limits are the
// defaults (section 9), except messages: 1/s, burst 2, to reach the send
// gate quickly, and the download room: 8 MiB, a share of one download.
func TestConformanceLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parley binary")
	}
	bin := buildParley(t)
	srv := startServer(t, bin, t.TempDir(), 0, "--secret="+confSecret, "--connections-per-user=20", "--metrics-token="+confMetricsToken,
		"--messages-per-second=1", "--message-burst=2", "--resume-limit=3", "--download-budget-mib=8")
	e := &env{addr: srv.Addr()}

	t.Run("parallel", func(t *testing.T) {
		t.Run("typing throttled", func(t *testing.T) { t.Parallel(); limitTyping(t, e) })
		t.Run("presence throttled", func(t *testing.T) { t.Parallel(); limitPresence(t, e) })
		t.Run("searches", func(t *testing.T) { t.Parallel(); limitSearch(t, e) })
		t.Run("send gate", func(t *testing.T) { t.Parallel(); limitSendGate(t, e) })
		t.Run("connections per user", func(t *testing.T) { t.Parallel(); limitConns(t, e) })
		t.Run("heartbeat timeout", func(t *testing.T) { t.Parallel(); limitHeartbeat(t, e) })
		t.Run("login lock", func(t *testing.T) { t.Parallel(); limitLogin(t, e) })
		t.Run("resume limit", func(t *testing.T) { t.Parallel(); limitResume(t, e) })
		t.Run("upload slots", func(t *testing.T) { t.Parallel(); limitUploadSlots(t, e) })
		t.Run("download share", func(t *testing.T) { t.Parallel(); limitDownloadShare(t, e) })
		t.Run("metrics token", func(t *testing.T) { t.Parallel(); limitMetricsToken(t, e) })
	})
	t.Run("goaway", func(t *testing.T) { limitGoaway(t, e, srv) })
}

func limitTyping(t *testing.T, e *env) {
	a, b := e.newUser(t, "lt"), e.newUser(t, "lt")
	g := a.group("typing", b)
	var werr *wireError
	n := 0
	for ; n < 20 && werr == nil; n++ {
		_, werr = a.req("typing", map[string]any{"conversation_id": g, "typing": true})
	}
	if werr == nil || werr.Code != "rate_limited" || werr.RetryAfterMS <= 0 || n != 7 {
		t.Fatalf("typing: request %d answered %v, want the 7th rate_limited with retry_after_ms (burst 6)", n, werr)
	}
	f, ok := a.frameOf("throttled", 2*time.Second)
	var th struct {
		Feature string `json:"feature"`
		Until   string `json:"until"`
	}
	json.Unmarshal(f.Data, &th)
	if !ok || th.Feature != "typing" || th.Until == "" {
		t.Errorf("throttled frame %s %v", f.Data, ok)
	}
	// typing:false takes nothing.
	a.ok("typing", map[string]any{"conversation_id": g, "typing": false}, nil)
	f, ok = a.frameOf("unthrottled", 3*time.Second)
	if !ok || string(f.Data) != `{"feature":"typing"}` {
		t.Errorf("unthrottled frame %s %v", f.Data, ok)
	}
	a.ok("typing", map[string]any{"conversation_id": g, "typing": true}, nil)
}

func limitPresence(t *testing.T, e *env) {
	a := e.newUser(t, "lp")
	var werr *wireError
	n := 0
	for ; n < 20 && werr == nil; n++ {
		_, werr = a.req("presence", nil)
	}
	if werr == nil || werr.Code != "rate_limited" || n != 6 {
		t.Fatalf("presence: request %d answered %v, want the 6th rate_limited (burst 5)", n, werr)
	}
	if f, ok := a.frameOf("throttled", 2*time.Second); !ok || !json.Valid(f.Data) {
		t.Errorf("no throttled frame for presence")
	}
	r := e.http(t, "GET", "/v1/presence", a.token, nil)
	if r.status != 429 || r.errCode() != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Errorf("GET /v1/presence over the limit: %d %s %v", r.status, r.body, r.header)
	}
}

func limitSearch(t *testing.T, e *env) {
	a := e.newUser(t, "ls")
	// A query refused as invalid takes nothing.
	for range 15 {
		a.fails("search", map[string]any{"query": "!!"}, "invalid")
	}
	var werr *wireError
	n := 0
	for ; n < 20 && werr == nil; n++ {
		_, werr = a.req("search", map[string]any{"query": "word"})
	}
	if werr == nil || werr.Code != "rate_limited" || n != 11 {
		t.Errorf("search: request %d answered %v, want the 11th rate_limited (burst 10)", n, werr)
	}
	a.none("throttled", nil, 300*time.Millisecond)
}

// limitSendGate: section 9, "Order under the message limit".
func limitSendGate(t *testing.T, e *env) {
	a := e.newUser(t, "lg")
	g := a.group("gate")
	one := a.send(g, "one")
	a.send(g, "two")
	refused := e.unique("c-")
	werr := a.fails("send", map[string]any{"conversation_id": g, "client_id": refused, "text": "three"}, "rate_limited")
	time.Sleep(time.Duration(werr.RetryAfterMS+100) * time.Millisecond)
	// Another send, or an edit, is refused until the refused one is sent again.
	a.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "four"}, "rate_limited")
	a.fails("edit", map[string]any{"conversation_id": g, "message_id": one.ID, "client_id": e.unique("e-"), "text": "one'"}, "rate_limited")
	a.ok("send", map[string]any{"conversation_id": g, "client_id": refused, "text": "three"}, nil)
}

func limitConns(t *testing.T, e *env) {
	name := e.unique("lc")
	tok := mint(name, name)
	first := e.connectAs(t, name, name, tok, nil)
	for range 20 {
		e.connectAs(t, name, name, tok, nil)
	}
	for {
		if _, ok := first.recv(5 * time.Second); !ok {
			break
		}
	}
	if st := websocket.CloseStatus(first.closeErr); st != 4103 {
		t.Errorf("the oldest of 21 connections: close %d (%v), want 4103", st, first.closeErr)
	}
}

func limitHeartbeat(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := e.unique("lh")
	c, err := dialWS(ctx, e.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	w, err := hello(ctx, c, map[string]any{"token": mint(name, name)})
	if err != nil {
		t.Fatal(err)
	}
	// Silent means not reading either: a WebSocket library reading
	// answers the server's protocol ping (section 4), and the pong
	// counts as heard. The close is due between the timeout and 1.1
	// timeouts after the hello; read once that has passed.
	timeout := time.Duration(w.HeartbeatTimeoutMS) * time.Millisecond
	time.Sleep(timeout + timeout/10 + 500*time.Millisecond)
	if st := closeStatus(ctx, c); st != 4002 {
		t.Errorf("a silent client: close %d, want 4002", st)
	}
}

func limitLogin(t *testing.T, e *env) {
	name := e.unique("lock")
	const pw = "the right password"
	if r := e.http(t, "POST", "/v1/auth/register", "", map[string]any{"username": name, "password": pw}); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	for i := range 5 {
		if r := e.http(t, "POST", "/v1/auth/login", "", map[string]any{"username": name, "password": "wrong " + strconv.Itoa(i)}); r.status != 401 {
			t.Fatalf("failure %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := e.http(t, "POST", "/v1/auth/login", "", map[string]any{"username": name, "password": pw})
	var body struct {
		Error wireError `json:"error"`
	}
	json.Unmarshal(r.body, &body)
	if r.status != http.StatusTooManyRequests || body.Error.Code != "rate_limited" || body.Error.RetryAfterMS <= 0 || body.Error.RetryAfterMS > 30000 ||
		r.header.Get("Retry-After") == "" {
		t.Errorf("the right password after 5 failures: %d %s %v", r.status, r.body, r.header)
	}
}

// limitGoaway: section 10, without a drain: goaway with a delay in
// [1 s, 2 s), then close 4003. It ends the server.
func limitGoaway(t *testing.T, e *env, srv *server) {
	var us []*cl
	for range 3 {
		us = append(us, e.newUser(t, "ga"))
	}
	srv.mu.Lock()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	srv.mu.Unlock()
	var wg sync.WaitGroup
	for _, u := range us {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ga struct {
				Reason           string `json:"reason"`
				ReconnectAfterMS int64  `json:"reconnect_after_ms"`
			}
			got := false
			for {
				f, ok := u.recv(10 * time.Second)
				if !ok {
					break
				}
				if f.Type == "goaway" {
					got = true
					json.Unmarshal(f.Data, &ga)
				}
			}
			if !got || ga.Reason == "" || ga.ReconnectAfterMS < 1000 || ga.ReconnectAfterMS >= 2000 {
				t.Errorf("%s: goaway %v %+v, want reconnect_after_ms in [1000, 2000)", u.id, got, ga)
			}
			if st := websocket.CloseStatus(u.closeErr); st != 4003 {
				t.Errorf("%s: close %d (%v), want 4003", u.id, st, u.closeErr)
			}
		}()
	}
	wg.Wait()
}

// limitResume: section 3, protocol 1, case 2: more than resume_limit
// events missed gives the first resume_limit of them, then resync
// {head, from: the last replayed pos, cause: resume_limit}; resuming from
// the larger of the position and head replays nothing.
func limitResume(t *testing.T, e *env) {
	u := e.newUser(t, "lr")
	for i := range 5 {
		u.group(strconv.Itoa(i))
	}
	var w struct {
		ResumeLimit int `json:"resume_limit"`
	}
	json.Unmarshal(u.welcome, &w)
	if w.ResumeLimit != 3 {
		t.Errorf("welcome.resume_limit %d, want 3", w.ResumeLimit)
	}
	u2 := u.reconnect(t, map[string]any{"resume_from": 0})
	var replayed []int64
	var f frame
	for {
		var ok bool
		if f, ok = u2.recv(5 * time.Second); !ok {
			t.Fatalf("no resync (%v)", u2.closeErr)
		}
		if f.Type != "event" {
			break
		}
		var x ev
		json.Unmarshal(f.Data, &x)
		if x.Pos > 0 {
			replayed = append(replayed, x.Pos)
		}
	}
	var rs resyncData
	json.Unmarshal(f.Data, &rs)
	if f.Type != "resync" || len(replayed) != 3 || rs.Cause != "resume_limit" || rs.From != replayed[2] || rs.Head < replayed[2]+2 {
		t.Fatalf("replayed %v then %s %s, want 3 events then resync resume_limit from the third", replayed, f.Type, f.Data)
	}
	u3 := u.reconnect(t, map[string]any{"resume_from": rs.Head})
	f, ok := u3.frameOf("resumed", 5*time.Second)
	var r resumedData
	json.Unmarshal(f.Data, &r)
	if !ok || r.Count != 0 || r.From != rs.Head {
		t.Errorf("resume from the resync's head: %s", f.Data)
	}
}
