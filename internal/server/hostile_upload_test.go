package server_test

import (
	"bytes"
	"encoding/json"
	"image/gif"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media/mediatest"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// Hostile uploads over real HTTP against a real server (SQLite store).
// Memory is the in-process heap: the server runs in the test's process.

// heapPeak runs fn and returns how far the server's heap (it runs in
// this process) rose above where it was before.
func heapPeak(fn func()) uint64 {
	peak, _ := mediatest.HeapPeak(0, time.Millisecond, fn)
	return peak
}

// uploadErr posts body as an upload and returns the status and the error
// body (zero when accepted).
func uploadErr(t testing.TB, srv *servertest.Server, tok string, body []byte) (rawResp, protocol.ErrorBody) {
	t.Helper()
	return postErr(t, srv, "/v1/uploads", tok, "image/png", body)
}

// postErr POSTs body to path and decodes the error of a reply other than
// 201.
func postErr(t testing.TB, srv *servertest.Server, path, tok, contentType string, body []byte) (rawResp, protocol.ErrorBody) {
	t.Helper()
	r := rawDo(t, "POST", srv.URL+path, tok, contentType, body)
	var e struct{ Error protocol.ErrorBody }
	if r.status != 201 {
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatalf("upload: %d %q is not a JSON error", r.status, r.body)
		}
	}
	return r, e.Error
}

// stillServes checks that another user can still upload and send.
func stillServes(t *testing.T, srv *servertest.Server) {
	t.Helper()
	tok := srv.Token(t, "bystander", "Bystander")
	r, e := uploadErr(t, srv, tok, testPNG(t, 64, 48))
	if r.status != 201 {
		t.Fatalf("another user's upload after the attack: %d %+v", r.status, e)
	}
	if r := rawDo(t, "GET", srv.URL+"/healthz", "", "", nil); r.status != 200 {
		t.Fatalf("/healthz after the attack: %d", r.status)
	}
}

// TestHostileUploadBomb sends the 303 KB-class 16-bit RGBA PNG of
// 6324x6324 (just under the 40 MP cap, 320 MiB decoded; the old server
// took ~600 MiB of RSS for it), once and then 4 at a time: each is refused
// with too_large before decoding, and the heap stays far below one canvas.
func TestHostileUploadBomb(t *testing.T) {
	srv := servertest.Start(t)
	tok := srv.Token(t, "mallory", "Mallory")
	start := time.Now()
	bomb := mediatest.PNG16(6324, 6324)
	t.Logf("bomb: %d bytes, made in %v", len(bomb), time.Since(start))

	var r rawResp
	var e protocol.ErrorBody
	peak := heapPeak(func() { r, e = uploadErr(t, srv, tok, bomb) })
	t.Logf("one bomb: %d %s %q; heap +%d MiB", r.status, e.Code, e.Message, peak>>20)
	if r.status != 413 || e.Code != parley.ETOOLARGE || !strings.Contains(e.Message, "MiB budget") {
		t.Fatalf("bomb: %d %+v, want 413 too_large over the budget", r.status, e)
	}
	// Refused from its header: a few MiB of request handling, not the
	// 320 MiB canvas (nor the 64 MiB budget).
	if peak > 32<<20 {
		t.Errorf("the heap rose by %d MiB for one refused bomb", peak>>20)
	}

	var wg sync.WaitGroup
	statuses := make([]int, 4)
	peak = heapPeak(func() {
		for i := range statuses {
			wg.Go(func() { r, _ := uploadErr(t, srv, tok, bomb); statuses[i] = r.status })
		}
		wg.Wait()
	})
	t.Logf("4 bombs at once: %v; heap +%d MiB", statuses, peak>>20)
	for _, s := range statuses {
		if s != 413 {
			t.Errorf("concurrent bombs answered %v, want all 413", statuses)
			break
		}
	}
	if peak > 64<<20 {
		t.Errorf("the heap rose by %d MiB for 4 refused bombs", peak>>20)
	}
	stillServes(t, srv)
}

// TestHostileUploadDecodeSlots: with every decode slot busy, an upload
// waits DecodeWait, then gets 503 unavailable with Retry-After; once a
// slot frees, it goes through.
func TestHostileUploadDecodeSlots(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.DecodeWait = 50 * time.Millisecond
	}))
	tok := srv.Token(t, "alice", "Alice")
	release := srv.Server.HoldUploadDecodes()
	r, e := uploadErr(t, srv, tok, testPNG(t, 64, 64))
	release()
	if r.status != 503 || e.Code != parley.EUNAVAILABLE || e.RetryAfterMS <= 0 || r.header.Get("Retry-After") == "" {
		t.Fatalf("upload with no decode slot: %d %+v Retry-After %q, want 503 unavailable with a retry hint", r.status, e, r.header.Get("Retry-After"))
	}
	if r, e := uploadErr(t, srv, tok, testPNG(t, 64, 64)); r.status != 201 {
		t.Fatalf("upload with a free slot: %d %+v", r.status, e)
	}
}

// TestHostileUploadGIF: a 3,000-frame animated GIF on a 39.6 MP canvas
// (accepted whole before) and a 9.9 MB GIF of one 1x1 frame and comment
// blocks are stored as their first frame: a few dozen bytes, one frame.
func TestHostileUploadGIF(t *testing.T) {
	srv := servertest.Start(t)
	tok := srv.Token(t, "mallory", "Mallory")
	for name, data := range map[string][]byte{
		"3000 frames on 6292x6292":   mediatest.GIF(3000, 6292, 6292, 0),
		"1x1 and 9.9 MB of comments": mediatest.GIF(1, 1, 1, 9_900_000),
	} {
		var r rawResp
		peak := heapPeak(func() { r = rawDo(t, "POST", srv.URL+"/v1/uploads", tok, "image/gif", data) })
		if r.status != 201 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
		a := decodeJSON[parley.Attachment](t, r.body)
		got := rawDo(t, "GET", srv.URL+a.URL, tok, "", nil)
		g, err := gif.DecodeAll(bytes.NewReader(got.body))
		if err != nil || len(g.Image) != 1 || len(got.body) > 1024 {
			t.Fatalf("%s: stored %d bytes, %v, want one small frame", name, len(got.body), err)
		}
		t.Logf("%s: uploaded %d bytes, stored %d (1 frame, %dx%d); heap +%d MiB", name, len(data), len(got.body), a.Width, a.Height, peak>>20)
		// One canvas at one byte per pixel at most (39.6 MiB), not 3,000.
		// (The 9.9 MB upload's heap is its body, read whole, on both ends.)
		if strings.HasPrefix(name, "3000") && peak > 64<<20 {
			t.Errorf("%s: the heap rose by %d MiB", name, peak>>20)
		}
	}
	stillServes(t, srv)
}

// TestHostileUploadRateLimit: over the per-user upload rate, rate_limited
// (429, Retry-After); other users are not affected.
func TestHostileUploadRateLimit(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.PerSecond, c.Uploads.Burst = 0.01, 3
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	img := testPNG(t, 16, 16)
	for i := range 3 {
		if r, e := uploadErr(t, srv, tok, img); r.status != 201 {
			t.Fatalf("upload %d within the burst: %d %+v", i, r.status, e)
		}
	}
	r, e := uploadErr(t, srv, tok, img)
	if r.status != 429 || e.Code != parley.ERATELIMITED || e.RetryAfterMS <= 0 || r.header.Get("Retry-After") == "" {
		t.Fatalf("upload over the rate: %d %+v, want 429 rate_limited with Retry-After", r.status, e)
	}
	t.Logf("4th upload: %d %s retry_after_ms %d", r.status, e.Code, e.RetryAfterMS)
	stillServes(t, srv)
}

// TestHostileUploadQuota: uploads stop at the user's quota with
// too_large; deleting unsent uploads frees it.
func TestHostileUploadQuota(t *testing.T) {
	img := testPNG(t, 200, 200)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.Quota = 4 * int64(len(img))
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	stored := 0
	var r rawResp
	var e protocol.ErrorBody
	for range 20 {
		if r, e = uploadErr(t, srv, tok, img); r.status != 201 {
			break
		}
		stored++
	}
	t.Logf("stored %d, then %d %s %q", stored, r.status, e.Code, e.Message)
	if stored == 0 || stored >= 4 || r.status != 413 || e.Code != parley.ETOOLARGE || !strings.Contains(e.Message, "quota") {
		t.Fatalf("stored %d then %d %+v, want fewer than 4 then 413 too_large (quota)", stored, r.status, e)
	}
	stillServes(t, srv)
	// None was sent: an hour later the janitor deletes them, and the quota
	// is free again.
	n, err := srv.Server.SweepUploads(t.Context(), time.Now().Add(server.DefaultUploadOrphanTTL+time.Minute))
	if err != nil || n < stored {
		t.Fatalf("sweep deleted %d, %v; want at least %d", n, err, stored)
	}
	if r, e := uploadErr(t, srv, tok, img); r.status != 201 {
		t.Fatalf("upload after the sweep: %d %+v", r.status, e)
	}
}

// TestHostileUploadOrphans: uploads never sent are deleted (row and
// bytes) once older than the orphan TTL; a sent one stays.
func TestHostileUploadOrphans(t *testing.T) {
	srv := servertest.Start(t)
	alice := srv.Token(t, "alice", "Alice")
	bob := srv.Token(t, "bob", "Bob")
	var atts []parley.Attachment
	for range 3 {
		r, e := uploadErr(t, srv, alice, testPNG(t, 32, 32))
		if r.status != 201 {
			t.Fatalf("upload: %d %+v", r.status, e)
		}
		atts = append(atts, decodeJSON[parley.Attachment](t, r.body))
	}
	conv := decodeJSON[parley.Conversation](t, httpDo(t, srv, "POST", "/v1/conversations/direct", alice, `{"user_id":"bob"}`).body)
	if r := httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/messages", alice,
		`{"client_id":"img1","type":"image","attachment_id":"`+atts[0].ID+`"}`); r.status != 201 {
		t.Fatalf("send: %d %s", r.status, r.body)
	}
	// Younger than the TTL: nothing goes.
	if n, err := srv.Server.SweepUploads(t.Context(), time.Now()); err != nil || n != 0 {
		t.Fatalf("sweep now = %d, %v; want 0", n, err)
	}
	if n := servertest.StoredAttachments(t, srv.Dir); n != 3 {
		t.Fatalf("%d attachments before the TTL, want 3", n)
	}
	n, err := srv.Server.SweepUploads(t.Context(), time.Now().Add(server.DefaultUploadOrphanTTL+time.Minute))
	if err != nil || n != 2 {
		t.Fatalf("sweep after the TTL = %d, %v; want 2", n, err)
	}
	if n := servertest.StoredAttachments(t, srv.Dir); n != 1 {
		t.Fatalf("%d attachments after the sweep, want 1", n)
	}
	for _, a := range atts[1:] {
		if r := rawDo(t, "GET", srv.URL+a.URL, alice, "", nil); r.status != 404 {
			t.Errorf("orphan %s after the sweep: %d, want 404", a.ID, r.status)
		}
	}
	if r := rawDo(t, "GET", srv.URL+atts[0].URL, bob, "", nil); r.status != 200 {
		t.Errorf("the sent image after the sweep: %d, want 200", r.status)
	}
	// An orphan's id cannot be sent any more.
	if r := httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/messages", alice,
		`{"client_id":"img2","type":"image","attachment_id":"`+atts[1].ID+`"}`); r.status != 400 {
		t.Errorf("sending a deleted orphan: %d %s, want 400", r.status, r.body)
	}
}
