package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// The attacks on accounts (issue 11, "What must hold" 5), each over real
// HTTP against a real server. The client's IP is its socket's: clients
// bind to 127.0.0.2 / 127.0.0.3 (the server reads RemoteAddr and trusts
// no forwarding header).

// clientFrom is an HTTP client whose connections come from ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}}
}

type authResp struct {
	status int
	body   []byte
	err    protocol.ErrorBody
}

func postAuth(t testing.TB, c *http.Client, srv *servertest.Server, path, user, pw string) authResp {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"username": user, "password": pw})
	resp, err := c.Post(srv.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return authResp{}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := authResp{status: resp.StatusCode, body: body}
	if resp.StatusCode >= 400 {
		var e struct{ Error protocol.ErrorBody }
		json.Unmarshal(body, &e)
		r.err = e.Error
	}
	return r
}

const hashesMetric = "parley_password_hashes_total"

// TestHostileLoginEnumeration: a login of a user who does not exist runs
// the same argon2id check as a wrong password of one who does (the hash
// counter moves by one for each), and answers the same status and body.
// Before: the missing user answered in 0.6 ms with no hash.
func TestHostileLoginEnumeration(t *testing.T) {
	srv := servertest.Start(t)
	srv.Register(t, "alice", "correct horse")
	c := clientFrom("127.0.0.2")

	h0 := metric(t, srv, hashesMetric)
	wrong := postAuth(t, c, srv, "/v1/auth/login", "alice", "wrong horse")
	h1 := metric(t, srv, hashesMetric)
	missing := postAuth(t, c, srv, "/v1/auth/login", "nobody", "wrong horse")
	h2 := metric(t, srv, hashesMetric)

	if wrong.status != http.StatusUnauthorized || wrong.err.Code != "unauthorized" {
		t.Fatalf("wrong password: %d %s", wrong.status, wrong.body)
	}
	if missing.status != wrong.status || !bytes.Equal(missing.body, wrong.body) {
		t.Errorf("missing user: %d %s; wrong password: %d %s; want the same", missing.status, missing.body, wrong.status, wrong.body)
	}
	if h1-h0 != 1 || h2-h1 != 1 {
		t.Errorf("argon2 checks: wrong password %v, missing user %v; want 1 each", h1-h0, h2-h1)
	}
	if r := postAuth(t, c, srv, "/v1/auth/login", "alice", "correct horse"); r.status != http.StatusOK {
		t.Fatalf("the right password after: %d %s", r.status, r.body)
	}
}

// TestHostileLoginBackoff: after LoginFailures failed logins an account
// is locked: further logins, even with the right password, get 429
// rate_limited with retry_after and run no hash. A name with no user is
// locked the same way (its answers do not reveal it has none), as is a
// look-alike of a locked name. A success resets the count. Memory: the
// throttle remembers at most LoginAccounts accounts.
// Before: 7-9 guesses/s per IP forever, no 429.
func TestHostileLoginBackoff(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		// Fewer than the defaults (5 failures, 100,000 accounts): each
		// failure costs a full argon2id check.
		c.Accounts.LoginFailures = 2
		c.Accounts.LoginAccounts = 4
	}))
	srv.Register(t, "alice", "correct horse")
	srv.Register(t, "bob", "battery staple")
	c := clientFrom("127.0.0.2")
	const n = 2 // LoginFailures

	locked := map[string]authResp{}
	for _, name := range []string{"alice", "ghost"} {
		for i := range n {
			if r := postAuth(t, c, srv, "/v1/auth/login", name, "guess-"+strconv.Itoa(i)); r.status != http.StatusUnauthorized {
				t.Fatalf("%s: guess %d: %d %s, want 401", name, i, r.status, r.body)
			}
		}
		h := metric(t, srv, hashesMetric)
		for _, pw := range []string{"guess-x", "correct horse"} {
			r := postAuth(t, c, srv, "/v1/auth/login", name, pw)
			if r.status != http.StatusTooManyRequests || r.err.Code != "rate_limited" || r.err.RetryAfterMS < 29_000 || r.err.RetryAfterMS > 30_000 {
				t.Fatalf("%s locked, password %q: %d %s; want 429 rate_limited, retry_after about 30 s", name, pw, r.status, r.body)
			}
			locked[name] = r
		}
		if got := metric(t, srv, hashesMetric); got != h {
			t.Errorf("%s locked: %v hashes ran, want none", name, got-h)
		}
	}
	if a, g := locked["alice"], locked["ghost"]; a.err.Code != g.err.Code || a.err.Message != g.err.Message {
		t.Errorf("locked existing user %s, locked missing user %s: want the same answer", a.body, g.body)
	}
	// A look-alike of a locked name is the same account.
	if r := postAuth(t, c, srv, "/v1/auth/login", "\u0430lice", "correct horse"); r.status != http.StatusTooManyRequests {
		t.Errorf("look-alike of a locked name: %d %s, want 429", r.status, r.body)
	}
	// Another account and another client are served meanwhile.
	if r := postAuth(t, clientFrom("127.0.0.3"), srv, "/v1/auth/login", "bob", "battery staple"); r.status != http.StatusOK {
		t.Fatalf("bob while alice is locked: %d %s", r.status, r.body)
	}
	// A success resets: n-1 failures, a success, n-1 failures: not locked.
	for round := range 2 {
		for i := range n - 1 {
			if r := postAuth(t, c, srv, "/v1/auth/login", "bob", "nope-"+strconv.Itoa(i)); r.status != http.StatusUnauthorized {
				t.Fatalf("bob round %d guess %d: %d %s, want 401", round, i, r.status, r.body)
			}
		}
		if r := postAuth(t, c, srv, "/v1/auth/login", "bob", "battery staple"); r.status != http.StatusOK {
			t.Fatalf("bob round %d: right password after %d failures: %d %s, want 200", round, n-1, r.status, r.body)
		}
	}
	// Memory: names sprayed past the bound are not all remembered.
	for i := range 6 {
		postAuth(t, c, srv, "/v1/auth/login", fmt.Sprintf("spray%d", i), "guess-guess")
	}
	if got := srv.Server.LoginAccountsTracked(); got > 4 {
		t.Errorf("throttle remembers %d accounts, want at most LoginAccounts = 4", got)
	}
}

// TestHostileLoginFlood: 16 concurrent logins from one IP (127.0.0.2),
// each a different name so no account back-off stops them, fill the hash
// queue; a legitimate login from 127.0.0.3 sent after them is admitted
// to a hash slot ahead of most of them (an IP runs one hash at a time,
// waiting IPs take turns), and succeeds. Asserted on the admission order,
// not on time. Before: the 4-slot semaphore served the flood first.
func TestHostileLoginFlood(t *testing.T) {
	srv := servertest.Start(t)
	srv.Register(t, "alice", "correct horse")
	var (
		mu    sync.Mutex
		order []string
	)
	srv.Server.OnHashAdmit(func(ip string) {
		mu.Lock()
		order = append(order, ip)
		mu.Unlock()
	})

	const flood = 16
	attacker := clientFrom("127.0.0.2")
	results := make(chan authResp, flood)
	var wg sync.WaitGroup
	for i := range flood {
		wg.Go(func() {
			results <- postAuth(t, attacker, srv, "/v1/auth/login", fmt.Sprintf("victim%d", i), "guess-guess")
		})
	}
	// Wait until the flood is queued: one runs, the rest wait.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for metric(t, srv, "parley_password_hashes_waiting") < flood-1 {
		select {
		case <-ctx.Done():
			t.Fatalf("the flood never queued: %v waiting", metric(t, srv, "parley_password_hashes_waiting"))
		case <-time.After(5 * time.Millisecond):
		}
	}
	legit := postAuth(t, clientFrom("127.0.0.3"), srv, "/v1/auth/login", "alice", "correct horse")
	wg.Wait()
	close(results)

	if legit.status != http.StatusOK {
		t.Fatalf("legitimate login during the flood: %d %s", legit.status, legit.body)
	}
	mu.Lock()
	defer mu.Unlock()
	before := -1
	for i, ip := range order {
		if ip == "127.0.0.3" {
			before = i
			break
		}
	}
	if before < 0 || before > 2 {
		t.Errorf("admission order %v: the legitimate login came after %d flood hashes, want at most 2", order, before)
	}
	for r := range results {
		ok := r.status == http.StatusUnauthorized ||
			(r.status == http.StatusServiceUnavailable && r.err.Code == "unavailable" && r.err.RetryAfterMS > 0)
		if !ok {
			t.Errorf("a flood login: %d %s; want 401, or 503 unavailable with retry_after", r.status, r.body)
		}
	}
}

// TestHostileRegistrationClosed: with registration closed, register
// answers 403 forbidden with a clear message and creates nobody;
// accounts made by the operator (the store, as `parley user create`
// does) and integrators' tokens still work.
func TestHostileRegistrationClosed(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Accounts.Registration = server.RegistrationClosed
	}))
	c := clientFrom("127.0.0.2")
	r := postAuth(t, c, srv, "/v1/auth/register", "mallory", "correct horse")
	if r.status != http.StatusForbidden || r.err.Code != "forbidden" || !strings.Contains(r.err.Message, "registration is closed") {
		t.Fatalf("register while closed: %d %s; want 403 forbidden, registration is closed", r.status, r.body)
	}
	if r := postAuth(t, c, srv, "/v1/auth/login", "mallory", "correct horse"); r.status != http.StatusUnauthorized {
		t.Fatalf("login of the refused registration: %d %s, want 401", r.status, r.body)
	}
	hash, err := auth.NewHasher(1).Hash(t.Context(), "", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Store.CreateUser(t.Context(), "carol", hash); err != nil {
		t.Fatal(err)
	}
	if r := postAuth(t, c, srv, "/v1/auth/login", "carol", "correct horse"); r.status != http.StatusOK {
		t.Fatalf("login of an operator-made user: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "GET", "/v1/me", srv.Token(t, "ext-1", "Ext One"), ""); r.status != http.StatusOK {
		t.Fatalf("integrator token while registration is closed: %d %s", r.status, r.body)
	}
}

// TestHostileConfusableNames: "admin", "аdmin" (Cyrillic а), "admın"
// (dotless ı), "ADMIN" and full-width "ａｄｍｉｎ" cannot all be accounts:
// the first wins, the others get 409 conflict, the look-alikes with
// "looks like an existing one". A token whose name looks like an existing
// user's is served, its user shown as "name (id)", never as the look-alike
// alone. Before: three accounts.
func TestHostileConfusableNames(t *testing.T) {
	srv := servertest.Start(t)
	c := clientFrom("127.0.0.2")
	if r := postAuth(t, c, srv, "/v1/auth/register", "Admin", "correct horse"); r.status != http.StatusCreated || !strings.Contains(string(r.body), `"name":"admin"`) {
		t.Fatalf("register Admin: %d %s; want 201 with the PRECIS name admin", r.status, r.body)
	}
	for _, tt := range []struct {
		name, msg string
	}{
		{"\u0430dmin", "looks like an existing one"},
		{"adm\u0131n", "looks like an existing one"},
		{"\u0430dm\u0131n", "looks like an existing one"},
		{"ADMIN", "is taken"},
		{"ａｄｍｉｎ", "is taken"},
	} {
		r := postAuth(t, c, srv, "/v1/auth/register", tt.name, "correct horse")
		if r.status != http.StatusConflict || r.err.Code != "conflict" || !strings.Contains(r.err.Message, tt.msg) {
			t.Errorf("register %q: %d %s, want 409 conflict saying %q", tt.name, r.status, r.body, tt.msg)
		}
	}
	tok, _, err := auth.Mint(srv.Secret, "ext-1", "\u0430dmin", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r := httpDo(t, srv, "GET", "/v1/me", tok, ""); r.status != http.StatusOK || !strings.Contains(string(r.body), `"name":"аdmin (ext-1)"`) {
		t.Errorf("token named like an existing user: %d %s, want 200 named \u0430dmin (ext-1)", r.status, r.body)
	}
	if r := postAuth(t, c, srv, "/v1/auth/login", "admin", "correct horse"); r.status != http.StatusOK {
		t.Fatalf("the real admin after the attempts: %d %s", r.status, r.body)
	}
}

// TestHostileBannedLogin: a banned user's right password is refused at
// login with what their token gets (401 unauthorized, "this user's
// access was revoked"), not answered with a fresh token that every later
// use refuses; a wrong password answers as for anyone, so the ban shows
// only to who has the password. Before: 200 with a token.
func TestHostileBannedLogin(t *testing.T) {
	srv := servertest.Start(t)
	_, key := newAPIKey(t, srv, auth.ScopeModeration)
	tok, u := srv.Register(t, "eve", "correct horse")
	c := clientFrom("127.0.0.2")
	wrongBefore := postAuth(t, c, srv, "/v1/auth/login", "eve", "wrong horse")
	if r := httpDo(t, srv, "POST", "/v1/server/users/"+u.ID+"/ban", key, ""); r.status != http.StatusOK {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	viaToken := httpDo(t, srv, "GET", "/v1/me", tok, "")
	if viaToken.status != http.StatusUnauthorized || viaToken.err.Code != "unauthorized" {
		t.Fatalf("the banned user's token: %d %s", viaToken.status, viaToken.body)
	}
	login := postAuth(t, c, srv, "/v1/auth/login", "eve", "correct horse")
	if login.status != viaToken.status || login.err != viaToken.err {
		t.Errorf("the banned user's login: %d %s; want what the token gets: %d %s", login.status, login.body, viaToken.status, viaToken.body)
	}
	wrong := postAuth(t, c, srv, "/v1/auth/login", "eve", "wrong horse")
	if wrong.status != wrongBefore.status || !bytes.Equal(wrong.body, wrongBefore.body) {
		t.Errorf("a wrong password after the ban: %d %s; before it: %d %s", wrong.status, wrong.body, wrongBefore.status, wrongBefore.body)
	}
}
