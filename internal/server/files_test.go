package server_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// uploadFile posts data as a file named name (multipart) and returns the
// attachment.
func uploadFile(t testing.TB, srv *servertest.Server, tok, name string, data []byte) parley.Attachment {
	t.Helper()
	ct, body := multipartBody(t, name, data)
	r, e := postErr(t, srv, "/v1/files", tok, ct, body)
	if r.status != 201 {
		t.Fatalf("file upload %q: %d %+v", name, r.status, e)
	}
	return decodeJSON[parley.Attachment](t, r.body)
}

// wantDownload checks that r serves data as a download named name, typed
// ct, inert.
func wantDownload(t testing.TB, what string, r rawResp, data []byte, name, ct string) {
	t.Helper()
	if r.status != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("%s: %d %q, want 200 %q", what, r.status, r.body, data)
	}
	h := r.header
	disp, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != name {
		t.Errorf("%s: Content-Disposition %q (%v), want attachment with filename %q", what, h.Get("Content-Disposition"), err, name)
	}
	if h.Get("Content-Type") != ct || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("%s: headers %v, want Content-Type %q, nosniff and a sandbox", what, h, ct)
	}
}

// TestFilesEndToEnd: a file goes up over HTTP, is sent over the WebSocket
// as a file message, reaches the other member's newMessage and history
// with name, size and type, and downloads as an attachment (bearer and
// signed link) to members only.
func TestFilesEndToEnd(t *testing.T) {
	srv := servertest.Start(t)
	alice := srv.Token(t, "alice", "Alice")
	bob := srv.Token(t, "bob", "Bob")
	eve := srv.Token(t, "eve", "Eve")
	data := []byte("minutes of the meeting\n")
	name := "notes été 2026.txt"
	a := uploadFile(t, srv, alice, name, data)
	if a.Name != name || a.Size != int64(len(data)) || a.ContentType != "text/plain; charset=utf-8" ||
		a.URL != "/v1/attachments/"+a.ID || a.ThumbURL != "" || a.Width != 0 {
		t.Fatalf("file attachment = %+v", a)
	}
	// A raw body names the file in the query.
	raw := rawDo(t, "POST", srv.URL+"/v1/files?name="+"data.bin", alice, "application/octet-stream", []byte{0, 1, 2})
	if r := decodeJSON[parley.Attachment](t, raw.body); raw.status != 201 || r.Name != "data.bin" || r.ContentType != "application/octet-stream" {
		t.Fatalf("raw file upload: %d %s", raw.status, raw.body)
	}

	ws := connect(t, srv, alice, nil)
	var conv parley.Conversation
	ws.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	bws := connect(t, srv, bob, nil)
	// An image send cannot carry a file, nor can bob send alice's file.
	if code := ws.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "img", Type: parley.Image, AttachmentID: a.ID}); code != parley.EINVALID {
		t.Fatalf("a file sent as an image: %s, want invalid", code)
	}
	if code := bws.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "b", Type: parley.File, AttachmentID: a.ID}); code != parley.EINVALID {
		t.Fatalf("bob sending alice's file: %s, want invalid", code)
	}
	var m parley.Message
	ws.do(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "f1", Type: parley.File, AttachmentID: a.ID, Text: "the notes"}, &m)
	wantFileMsg := func(what string, m *parley.Message) {
		t.Helper()
		if m == nil || m.Type != parley.File || m.Text != "the notes" || m.Attachment == nil || m.Attachment.Name != name ||
			m.Attachment.Size != a.Size || m.Attachment.ContentType != a.ContentType || m.Attachment.URL != a.URL || m.Attachment.ThumbURL != "" {
			t.Fatalf("%s: %+v", what, m)
		}
	}
	wantFileMsg("send reply", &m)
	ev := bws.event(parley.EventNewMessage)
	wantFileMsg("bob's newMessage", ev.Message)
	hist := httpDo(t, srv, "GET", "/v1/conversations/"+conv.ID+"/messages", bob, "")
	page := decodeJSON[parley.MessagePage](t, hist.body)
	if len(page.Messages) != 1 {
		t.Fatalf("history: %s", hist.body)
	}
	wantFileMsg("bob's history over HTTP", &page.Messages[0])

	wantDownload(t, "bob's download", rawDo(t, "GET", srv.URL+a.URL, bob, "", nil), data, name, "text/plain; charset=utf-8")
	// RFC 6266: a name that is not ASCII goes as filename*=utf-8''...
	if d := rawDo(t, "GET", srv.URL+a.URL, bob, "", nil).header.Get("Content-Disposition"); !strings.Contains(d, "filename*=utf-8''notes%20%C3%A9t%C3%A9%202026.txt") {
		t.Errorf("Content-Disposition %q lacks the RFC 2231 filename*", d)
	}
	// A file has no thumbnail; a non-member gets what an unknown id gets.
	if r := rawDo(t, "GET", srv.URL+a.URL+"/thumb", bob, "", nil); r.status != 404 {
		t.Errorf("thumb of a file: %d, want 404", r.status)
	}
	unknown := httpDo(t, srv, "GET", "/v1/attachments/0190aaaa-0000-7000-8000-000000000000", eve, "")
	nonMember := httpDo(t, srv, "GET", a.URL, eve, "")
	if nonMember.status != 404 || nonMember.err != unknown.err || unknown.status != 404 {
		t.Errorf("non-member: %d %+v; unknown id: %d %+v; want the same 404", nonMember.status, nonMember.err, unknown.status, unknown.err)
	}
	if r := httpDo(t, srv, "POST", a.URL+"/link", eve, ""); r.status != 404 {
		t.Errorf("non-member link: %d, want 404", r.status)
	}
	lr := httpDo(t, srv, "POST", a.URL+"/link", bob, "")
	link := decodeJSON[server.AttachmentLink](t, lr.body)
	if lr.status != 200 || link.ThumbURL != "" || !strings.HasPrefix(link.URL, a.URL+"?") {
		t.Fatalf("file link: %d %s", lr.status, lr.body)
	}
	wantDownload(t, "signed link", rawDo(t, "GET", srv.URL+link.URL, "", "", nil), data, name, "text/plain; charset=utf-8")

	// Deleting the message withdraws the file from bob.
	httpDo(t, srv, "DELETE", "/v1/conversations/"+conv.ID+"/messages/"+m.ID, alice, "")
	if r := rawDo(t, "GET", srv.URL+a.URL, bob, "", nil); r.status != 404 {
		t.Fatalf("bob's download after the delete: %d, want 404", r.status)
	}
}

// TestHostileFiles: the file route refuses oversized and empty bodies,
// sanitises hostile names, serves HTML and SVG under any name as inert
// downloads, and is rate limited; the server keeps serving others.
func TestHostileFiles(t *testing.T) {
	const limit = 4096
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.MaxFileBytes = limit
		c.Uploads.PerSecond, c.Uploads.Burst = 0.001, 30
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	before := servertest.StoredAttachments(t, srv.Dir)

	// Oversized: one byte over, declared or not (chunked), and a body
	// far over the limit that claims to be small is cut at the limit.
	over := bytes.Repeat([]byte("a"), limit+1)
	ct, body := multipartBody(t, "big.txt", over)
	for what, tc := range map[string]struct {
		path, ct string
		body     []byte
	}{
		"raw, one byte over":       {"/v1/files?name=big.txt", "text/plain", over},
		"multipart, one byte over": {"/v1/files", ct, body},
		"raw, 1 MiB":               {"/v1/files?name=big.txt", "text/plain", bytes.Repeat([]byte("a"), 1<<20)},
	} {
		r, e := postErr(t, srv, tc.path, tok, tc.ct, tc.body)
		if r.status != 413 || e.Code != parley.ETOOLARGE || !strings.Contains(e.Message, fmt.Sprint(limit)) {
			t.Errorf("%s: %d %+v, want 413 too_large naming the %d-byte limit", what, r.status, e, limit)
		}
	}
	chunked, err := http.NewRequest("POST", srv.URL+"/v1/files?name=c.txt", struct{ *bytes.Reader }{bytes.NewReader(over)})
	if err != nil {
		t.Fatal(err)
	}
	chunked.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(chunked); err != nil || resp.StatusCode != 413 {
		t.Errorf("chunked, one byte over: %v %v, want 413", resp, err)
	} else {
		resp.Body.Close()
	}
	// Exactly at the limit is fine.
	if a := uploadFile(t, srv, tok, "exact.bin", over[:limit]); a.Size != limit {
		t.Errorf("file at the limit: %+v", a)
	}
	// Zero bytes.
	for what, tc := range map[string]struct{ ct, path string }{"raw": {"text/plain", "/v1/files?name=e.txt"}, "multipart": {ct, "/v1/files"}} {
		b := []byte(nil)
		if what == "multipart" {
			tc.ct, b = multipartBody(t, "empty.txt", nil)
		}
		if r, e := postErr(t, srv, tc.path, tok, tc.ct, b); r.status != 400 || e.Code != parley.EINVALID {
			t.Errorf("empty %s: %d %+v, want 400 invalid", what, r.status, e)
		}
	}
	if r, e := postErr(t, srv, "/v1/files", tok, "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--x--\r\n")); r.status != 400 || e.Code != parley.EINVALID {
		t.Errorf("multipart without a file part: %d %+v, want 400 invalid", r.status, e)
	}

	// Name attacks: the stored and served name is the sanitised one.
	for in, want := range map[string]string{
		"../../../etc/passwd":            "passwd",
		`..\..\boot.ini`:                 "boot.ini",
		"invoice\u202efdp.exe":           "invoicefdp.exe",
		"a\x01b\x7fc.txt":                "abc.txt",
		"..":                             "file",
		strings.Repeat("n", 600) + ".md": strings.Repeat("n", parley.MaxFileNameBytes-3) + ".md",
	} {
		a := decodeJSON[parley.Attachment](t, rawDo(t, "POST", srv.URL+"/v1/files?name="+url.QueryEscape(in), tok, "text/plain", []byte("x")).body)
		if a.Name != want {
			t.Errorf("name %q stored as %q, want %q", in, a.Name, want)
			continue
		}
		wantDownload(t, "download of "+want, rawDo(t, "GET", srv.URL+a.URL, tok, "", nil), []byte("x"), want, "text/plain; charset=utf-8")
	}

	// HTML disguised as .txt, SVG as .png, HTML as .html: all served as
	// application/octet-stream, as attachments.
	for name, data := range map[string]string{
		"readme.txt": "<!DOCTYPE html><html><script>alert(document.cookie)</script></html>",
		"cat.png":    `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`,
		"page.html":  "<html><body onload=alert(1)>",
		"data.xml":   `<?xml version="1.0"?><x/>`,
	} {
		a := uploadFile(t, srv, tok, name, []byte(data))
		if a.ContentType != "application/octet-stream" {
			t.Errorf("%s: stored as %q, want application/octet-stream", name, a.ContentType)
		}
		wantDownload(t, name, rawDo(t, "GET", srv.URL+a.URL, tok, "", nil), []byte(data), name, "application/octet-stream")
	}

	// The rate limit is the uploads' one, images and files alike.
	var r rawResp
	var e protocol.ErrorBody
	for range 40 {
		if r, e = postErr(t, srv, "/v1/files?name=r.txt", tok, "text/plain", []byte("r")); r.status != 201 {
			break
		}
	}
	if r.status != 429 || e.Code != parley.ERATELIMITED || r.header.Get("Retry-After") == "" {
		t.Errorf("over the upload rate: %d %+v, want 429 rate_limited with Retry-After", r.status, e)
	}
	if r, e := uploadErr(t, srv, tok, testPNG(t, 8, 8)); r.status != 429 {
		t.Errorf("an image upload once files used the rate: %d %+v, want 429", r.status, e)
	}
	if n := servertest.StoredAttachments(t, srv.Dir); n-before > 30 {
		t.Errorf("%d attachments stored, more than the burst of 30", n-before)
	}
	stillServes(t, srv)
}

// TestHostileFileQuota: files count against the user's upload quota with
// images; over it, too_large (quota) and nothing stored.
func TestHostileFileQuota(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Uploads.Quota = 10 << 10 }))
	tok := srv.Token(t, "mallory", "Mallory")
	chunk := bytes.Repeat([]byte("q"), 4<<10)
	uploadFile(t, srv, tok, "1.txt", chunk)
	uploadFile(t, srv, tok, "2.txt", chunk)
	n := servertest.StoredAttachments(t, srv.Dir)
	ct, body := multipartBody(t, "3.txt", chunk)
	if r, e := postErr(t, srv, "/v1/files", tok, ct, body); r.status != 413 || e.Code != parley.ETOOLARGE || !strings.Contains(e.Message, "quota") {
		t.Fatalf("over the quota: %d %+v, want 413 too_large (quota)", r.status, e)
	}
	if got := servertest.StoredAttachments(t, srv.Dir); got != n {
		t.Fatalf("%d attachments after the refused upload, want %d", got, n)
	}
}

// TestHostileFileSlots: with every receiving slot taken, a file upload
// waits DecodeWait, then gets unavailable with Retry-After.
func TestHostileFileSlots(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.Files, c.Uploads.DecodeWait = 1, 1 // 1 ns: no waiting in a test
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	release := srv.Server.HoldFileSlots()
	r, e := postErr(t, srv, "/v1/files?name=a.txt", tok, "text/plain", []byte("a"))
	release()
	if r.status != 503 || e.Code != parley.EUNAVAILABLE || r.header.Get("Retry-After") == "" {
		t.Fatalf("with no free slot: %d %+v, want 503 unavailable with Retry-After", r.status, e)
	}
	uploadFile(t, srv, tok, "a.txt", []byte("a"))
}

// TestFileSlotsBeforeMultipart: a multipart file upload with no receiving
// slot free is refused before any byte of its body is read, as a raw one
// is (docs/protocol.md, section 9): with Expect: 100-continue the first
// answer is the 503 and the connection closes, so the client never sends
// its body. The slot was taken after the multipart reader had read the
// body up to the file's part, which sent 100 Continue for it.
func TestFileSlotsBeforeMultipart(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.Files, c.Uploads.DecodeWait = 1, 1 // 1 ns: no waiting in a test
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	release := srv.Server.HoldFileSlots()
	defer release()
	conn, err := net.DialTimeout("tcp", srv.Addr(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/files HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\nExpect: 100-continue\r\n\r\n", srv.Addr(), tok)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || !resp.Close {
		t.Fatalf("a multipart upload with no free slot first got %d (close %v), want 503 and the connection closed, before its body", resp.StatusCode, resp.Close)
	}
}

// TestHostileDiskFullFiles fills a 6 MiB tmpfs holding the SQLite store
// with 512 KiB files: once the disk refuses them, uploads get unavailable
// (503, Retry-After), not internal, and the server still answers; freeing
// space lets uploads resume, and every acknowledged file still downloads.
func TestHostileDiskFullFiles(t *testing.T) {
	dir := smallDisk(t, "6m")
	srv := servertest.Start(t, servertest.WithDir(dir), servertest.WithConfig(func(c *server.Config) {
		c.Uploads.PerSecond, c.Uploads.Quota = -1, -1
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var stored []parley.Attachment
	data := bytes.Repeat([]byte("d"), 512<<10)
	for i := 0; ; i++ {
		if i > 40 {
			t.Fatalf("the disk never filled: %d files stored", len(stored))
		}
		r, e := postErr(t, srv, "/v1/files?name=f.txt", tok, "text/plain", data)
		if r.status == 201 {
			stored = append(stored, decodeJSON[parley.Attachment](t, r.body))
			continue
		}
		if r.status != 503 || e.Code != parley.EUNAVAILABLE || r.header.Get("Retry-After") == "" {
			t.Fatalf("file upload on a full disk: %d %+v, want 503 unavailable with Retry-After", r.status, e)
		}
		break
	}
	t.Logf("%d files of 512 KiB stored, then unavailable", len(stored))
	healthz(t, srv)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	stored = append(stored, uploadFile(t, srv, tok, "after.txt", []byte("space again")))
	for _, a := range stored {
		if r := rawDo(t, "GET", srv.URL+a.URL, tok, "", nil); r.status != 200 || int64(len(r.body)) != a.Size {
			t.Fatalf("acknowledged file %s: %d, %d bytes", a.ID, r.status, len(r.body))
		}
	}
}
