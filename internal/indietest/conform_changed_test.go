package indietest

// The promises docs/protocol.md added on 2026-12-07, after the rest of
// this suite was written: a banned user's password login (sections 1,
// 12), a starter's send right behind the recipient's message in a
// declined request (section 5), uploads sharing their receiving slots and
// the per-user share of the download budget (section 11), and a wrong
// /metrics token counting as a failed API key (section 9).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

var _ = check("login of a banned user", func(t *testing.T, e *env) {
	name := e.unique("bl")
	const pw = "a password long enough"
	r := e.http(t, "POST", "/v1/auth/register", "", map[string]any{"username": name, "password": pw})
	var reg struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	json.Unmarshal(r.body, &reg)
	if r.status != 201 || reg.User.ID == "" {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	key := e.apiKey(t, "moderation")
	if r := e.http(t, "POST", "/v1/server/users/"+reg.User.ID+"/ban", key, nil); r.status != 200 {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	// Section 1: the right password gets what the user's tokens get, and
	// no token; a wrong one answers as for anyone.
	for _, tc := range []struct{ pw, msg string }{
		{pw, "this user's access was revoked"},
		{"not the password", "wrong username or password"},
	} {
		r := e.http(t, "POST", "/v1/auth/login", "", map[string]any{"username": name, "password": tc.pw})
		var body struct {
			Token string `json:"token"`
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(r.body, &body)
		if r.status != 401 || body.Error.Code != "unauthorized" || body.Error.Message != tc.msg || body.Token != "" {
			t.Errorf("a banned user's login with %q: %d %s, want 401 unauthorized %q and no token", tc.pw, r.status, r.body, tc.msg)
		}
	}
})

var _ = check("declined request: a starter's send behind the recipient's message", func(t *testing.T, e *env) {
	// Section 5: in a declined request the starter's send is refused only
	// when the server orders it before the recipient's message; one it
	// takes after it, however close behind, is stored with a higher seq.
	// Each round writes the two sends back to back on the two
	// connections, so the server may take them either way.
	stored := 0
	for round := range 5 {
		a, b := e.newUser(t, "dq"), e.newUser(t, "dq")
		d := a.direct(b)
		a.send(d, "hello stranger")
		b.ok("decline_request", map[string]any{"conversation_id": d}, nil)
		a.fails("send", map[string]any{"conversation_id": d, "client_id": e.unique("c-"), "text": "refused"}, "forbidden")

		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		bid, aid := fmt.Sprint("rb", round), fmt.Sprint("ra", round)
		if err := b.c.write(ctx, request{Op: "send", ID: bid, Data: map[string]any{"conversation_id": d, "client_id": e.unique("c-"), "text": "answer"}}); err != nil {
			t.Fatal(err)
		}
		if err := a.c.write(ctx, request{Op: "send", ID: aid, Data: map[string]any{"conversation_id": d, "client_id": e.unique("c-"), "text": "close behind"}}); err != nil {
			t.Fatal(err)
		}
		cancel()
		answer := func(u *cl, id string) frame {
			f, ok := u.find(func(f frame) bool { return f.ID == id && (f.Type == "reply" || f.Type == "error") }, 15*time.Second)
			if !ok {
				t.Fatalf("no answer to %s's send", u.id)
			}
			return f
		}
		fb, fa := answer(b, bid), answer(a, aid)
		var bm, am wmsg
		json.Unmarshal(fb.Data, &bm)
		if fb.Type != "reply" || bm.Seq == 0 {
			t.Fatalf("the recipient's message: %s %s %v", fb.Type, fb.Data, fb.Error)
		}
		switch {
		case fa.Type == "error" && fa.Error.Code == "forbidden":
			// Ordered before the recipient's message.
		case fa.Type == "reply":
			json.Unmarshal(fa.Data, &am)
			stored++
			if am.Seq <= bm.Seq {
				t.Errorf("round %d: the starter's send stored at seq %d, not after the recipient's message (seq %d) that let it in", round, am.Seq, bm.Seq)
			}
		default:
			t.Errorf("round %d: the starter's send: %s %s %v", round, fa.Type, fa.Data, fa.Error)
		}
		// Once the recipient's message is answered, every send is stored
		// after it.
		if m := a.send(d, "after"); m.Seq <= bm.Seq {
			t.Errorf("round %d: a send after the recipient's message stored at seq %d ≤ %d", round, m.Seq, bm.Seq)
		}
	}
	t.Logf("%d of 5 sends close behind the recipient's message were stored", stored)
})

// heldRequest writes a request's head (and body bytes, if any) over TCP
// and sends nothing more: an upload whose body never comes, or a download
// whose answer is not read. It returns the connection and, when readHead
// is true, the answer's status line and headers once they come.
func heldRequest(t *testing.T, addr, method, path, token string, header map[string]string, readHead bool) (net.Conn, *http.Response) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n", method, path, addr, token)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	if !readHead {
		return conn, nil
	}
	// A small read buffer: the body stays in the socket, unread.
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Time{})
	return conn, resp
}

// limitUploadSlots: section 11, Images and Files: a node receives at
// most 4 uploads at once, images and files together, and one waiting for
// its turn more than 5 s, before any byte of its body is read, gets 503.
func limitUploadSlots(t *testing.T, e *env) {
	u := e.newUser(t, "us")
	// Four image uploads whose bodies never come hold the four slots.
	for range 4 {
		heldRequest(t, e.addr, "POST", "/v1/uploads", u.token, map[string]string{"Content-Type": "image/png", "Content-Length": "100000"}, false)
	}
	time.Sleep(300 * time.Millisecond) // the server has taken them
	start := time.Now()
	r := e.http(t, "POST", "/v1/files?name=wait.txt", u.token, []byte("a file waiting for a slot"))
	took := time.Since(start)
	var body struct {
		Error struct {
			Code         string `json:"code"`
			RetryAfterMS int64  `json:"retry_after_ms"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &body)
	if r.status != 503 || body.Error.Code != "unavailable" || body.Error.RetryAfterMS != 2000 || r.header.Get("Retry-After") != "2" {
		t.Errorf("a file upload while 4 image uploads hold the slots: %d %s (Retry-After %q) after %v, want 503 unavailable, retry_after_ms 2000, Retry-After: 2",
			r.status, r.body, r.header.Get("Retry-After"), took)
	}
	if took < 5*time.Second || took > 5*time.Second+slack+time.Second {
		t.Errorf("the refusal came after %v, want after the 5 s wait", took)
	}
}

// limitDownloadShare: section 11, Attachments: one user's downloads under
// way hold at most a quarter of the node's room (--download-budget-mib 8:
// 2 MiB, at least one download, which holds 2 MiB at most); past it
// theirs get 503 at once. A download with a Range gets 206 and those
// bytes (section 11's ranges). (With the default 256 MiB a user may hold
// 32 downloads: more connections than the checks running beside this
// one leave an address.)
func limitDownloadShare(t *testing.T, e *env) {
	u := e.newUser(t, "ds")
	big := make([]byte, 25<<20) // the largest file (--upload-max-file-mib 25)
	rand.Read(big)
	var f attachment
	var r httpResp
	// The upload slots check holds every slot for 5 s: retry as told.
	// With no slot the server answers 503 before it reads the body and
	// closes the connection, so a client still sending its 25 MiB may
	// see the reset instead of the answer: retry that too.
	waitFor(t, 30*time.Second, "an upload slot", func() bool {
		var err error
		r, err = e.tryHTTP("POST", "/v1/files?name=big.bin", u.token, big)
		return err == nil && r.status != 503
	})
	json.Unmarshal(r.body, &f)
	if r.status != 201 || f.ID == "" {
		t.Fatalf("upload of 25 MiB: %d %.200s", r.status, r.body)
	}
	path := "/v1/attachments/" + f.ID
	// A download not read holds 2 MiB, its share; a second would hold 4.
	held, resp := heldRequest(t, e.addr, "GET", path, u.token, nil, true)
	if resp.StatusCode != 200 {
		t.Fatalf("held download: %s", resp.Status)
	}
	start := time.Now()
	r = e.http(t, "GET", path, u.token, nil)
	took := time.Since(start)
	var body struct {
		Error struct {
			Code         string `json:"code"`
			Message      string `json:"message"`
			RetryAfterMS int64  `json:"retry_after_ms"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &body)
	const msg = "too many of your downloads are under way at once; retry when one has finished"
	if r.status != 503 || body.Error.Code != "unavailable" || body.Error.Message != msg || body.Error.RetryAfterMS != 2000 || r.header.Get("Retry-After") != "2" {
		t.Errorf("a second download of 25 MiB while one is under way: %d %.300s, want 503 unavailable %q, retry_after_ms 2000, Retry-After: 2", r.status, r.body, msg)
	}
	if took > 4*time.Second {
		t.Errorf("the refusal took %v, want it at once", took)
	}
	// One finished (its connection closed): the next is served, with
	// the range it asks.
	held.Close()
	var got httpResp
	waitFor(t, 10*time.Second, "a download served once one finished", func() bool {
		got = e.http(t, "GET", path, u.token, nil, "Range", "bytes=0-9")
		return got.status != 503
	})
	if got.status != 206 || !bytes.Equal(got.body, big[:10]) || got.header.Get("Content-Range") != fmt.Sprintf("bytes 0-9/%d", len(big)) {
		t.Errorf("a download with Range: bytes=0-9: %d, %d bytes, Content-Range %q; want 206 and the first 10 of %d",
			got.status, len(got.body), got.header.Get("Content-Range"), len(big))
	}
}

// limitMetricsToken: section 9: a wrong --metrics-token counts as a
// failed API key (10 a minute, burst 10, per IP); past the budget every
// /metrics request from the address, the right token's too, gets 429
// with Retry-After.
func limitMetricsToken(t *testing.T, e *env) {
	if r := e.http(t, "GET", "/metrics", confMetricsToken, nil); r.status != 200 {
		t.Fatalf("/metrics with the right token: %d %.200s", r.status, r.body)
	}
	var statuses []int
	for range 12 {
		statuses = append(statuses, e.http(t, "GET", "/metrics", "wrong-token", nil).status)
	}
	n401 := 0
	for _, s := range statuses {
		if s == 401 {
			n401++
		}
	}
	if n401 != 10 || statuses[10] != 429 || statuses[11] != 429 {
		t.Errorf("12 wrong /metrics tokens: %v, want 10 × 401 then 429", statuses)
	}
	r := e.http(t, "GET", "/metrics", confMetricsToken, nil)
	if r.status != 429 || r.errCode() != "rate_limited" || r.header.Get("Retry-After") == "" {
		t.Errorf("the right token past the budget: %d %.200s (Retry-After %q), want 429 rate_limited with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
	}
}

// confMetricsToken is TestConformanceLimits's --metrics-token.
const confMetricsToken = "metrics-token-for-the-conformance-checks"
