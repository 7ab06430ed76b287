package indietest

// Section 11: Images and Files; section 9: Uploads.

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"
)

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{200, 10, 10, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts raw bytes to path and decodes the Attachment.
func (e *env) upload(t *testing.T, u *cl, path string, body []byte) (attachment, httpResp) {
	t.Helper()
	r := e.http(t, "POST", path, u.token, body)
	var a attachment
	json.Unmarshal(r.body, &a)
	return a, r
}

var _ = check("files", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "fi"), e.newUser(t, "fi")
	out := e.newUser(t, "fi")
	g := a.group("files", b)

	pdf := []byte("%PDF-1.4\n1 0 obj\n<<>>\nendobj\n")
	f, r := e.upload(t, a, "/v1/files?name="+url.QueryEscape("../../reports/Q3 report.pdf"), pdf)
	if r.status != 201 || f.ID == "" || f.Name == nil || *f.Name != "Q3 report.pdf" || f.ContentType != "application/pdf" ||
		f.Size != int64(len(pdf)) || f.Width != 0 || f.Height != 0 || f.URL == "" || f.ThumbURL != nil {
		t.Fatalf("POST /v1/files: %d %s", r.status, r.body)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(r.body, &raw)
	for _, k := range []string{"width", "height"} {
		if string(raw[k]) != "0" {
			t.Errorf("file attachment %s = %s, want 0", k, raw[k])
		}
	}
	// Names and types.
	for _, tc := range []struct {
		name, body, wantName, wantType string
	}{
		{"invoice\u202Efdp.exe", "MZ\x90\x00binary", "invoicefdp.exe", "application/octet-stream"},
		{"page.html", "<html><script>alert(1)</script></html>", "page.html", "application/octet-stream"},
		{"pic.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>", "pic.svg", "application/octet-stream"},
		{"notes.txt", "just some text", "notes.txt", "text/plain; charset=utf-8"},
		{"  spaced.  ", "x", "spaced", "text/plain; charset=utf-8"},
		{"..", "x", "file", "text/plain; charset=utf-8"},
		{`C:\Users\x\evil.txt`, "x", "evil.txt", "text/plain; charset=utf-8"},
	} {
		got, r := e.upload(t, a, "/v1/files?name="+url.QueryEscape(tc.name), []byte(tc.body))
		if r.status != 201 || got.Name == nil || *got.Name != tc.wantName || got.ContentType != tc.wantType {
			t.Errorf("file %q: %d %s, want name %q type %q", tc.name, r.status, r.body, tc.wantName, tc.wantType)
		}
	}
	long := strings.Repeat("n", 300) + ".pdf"
	if got, _ := e.upload(t, a, "/v1/files?name="+long, []byte("x")); got.Name == nil || len(*got.Name) != 255 || !strings.HasSuffix(*got.Name, ".pdf") {
		t.Errorf("a name of 304 bytes: %v", got.Name)
	}
	if _, r := e.upload(t, a, "/v1/files?name=empty.txt", []byte{}); r.status != 400 || r.errCode() != "invalid" {
		t.Errorf("an empty file: %d %s", r.status, r.body)
	}
	// Multipart, the name from the part's filename.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "from-part.txt")
	fw.Write([]byte("multipart body"))
	mw.Close()
	r = e.http(t, "POST", "/v1/files", a.token, mp.Bytes(), "Content-Type", mw.FormDataContentType())
	if r.status != 201 || !strings.Contains(string(r.body), `"name":"from-part.txt"`) {
		t.Errorf("multipart file: %d %s", r.status, r.body)
	}

	// Send it as a file; as an image it is invalid.
	a.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "type": "image", "attachment_id": f.ID}, "invalid")
	b.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "type": "file", "attachment_id": f.ID}, "invalid")
	var m wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "type": "file", "attachment_id": f.ID}, &m)
	if m.Type != "file" || m.Attachment == nil || m.Attachment.Name == nil || *m.Attachment.Name != "Q3 report.pdf" || m.Text != nil && *m.Text != "" {
		t.Errorf("file message %s", mustJSON(m))
	}
	if ne := b.expect("newMessage", func(x ev) bool { return x.Message != nil && x.Message.ID == m.ID }); ne.Message.Attachment == nil || ne.Message.Attachment.Size != int64(len(pdf)) {
		t.Errorf("newMessage of a file: %s", mustJSON(ne.raw))
	}
	if c := b.conversation(g); c.LastMessage == nil || c.LastMessage.Attachment == nil || c.LastMessage.Attachment.Name == nil {
		t.Errorf("last_message of a file: %s", mustJSON(c.LastMessage))
	}

	// Downloads: members, with the headers of the table; others 404.
	dl := e.http(t, "GET", "/v1/attachments/"+f.ID, b.token, nil)
	for h, v := range map[string]string{
		"Content-Type":            "application/pdf",
		"Content-Disposition":     `attachment; filename="Q3 report.pdf"`,
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; sandbox",
		"Cache-Control":           "private, max-age=86400, immutable",
	} {
		if dl.header.Get(h) != v {
			t.Errorf("download %s: %q, want %q", h, dl.header.Get(h), v)
		}
	}
	if dl.status != 200 || !bytes.Equal(dl.body, pdf) {
		t.Errorf("download: %d, %d bytes", dl.status, len(dl.body))
	}
	if r := e.http(t, "GET", "/v1/attachments/"+f.ID, out.token, nil); r.status != 404 || r.errCode() != "not_found" {
		t.Errorf("a non-member's download: %d", r.status)
	}
	if r := e.http(t, "GET", "/v1/attachments/"+f.ID+"/thumb", b.token, nil); r.status != 404 {
		t.Errorf("thumb of a file: %d", r.status)
	}
	uni, _ := e.upload(t, a, "/v1/files?name="+url.QueryEscape("résumé.txt"), []byte("cv"))
	dl = e.http(t, "GET", "/v1/attachments/"+uni.ID, a.token, nil)
	if cd := dl.header.Get("Content-Disposition"); cd != "attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt" {
		t.Errorf("Content-Disposition of a UTF-8 name: %q", cd)
	}
	// A signed link works without a token, with its own Cache-Control.
	r = e.http(t, "POST", "/v1/attachments/"+f.ID+"/link", b.token, nil)
	var link struct {
		URL       string  `json:"url"`
		ThumbURL  *string `json:"thumb_url"`
		ExpiresAt string  `json:"expires_at"`
	}
	json.Unmarshal(r.body, &link)
	if r.status != 200 || link.URL == "" || link.ThumbURL != nil || link.ExpiresAt == "" {
		t.Errorf("link of a file: %d %s", r.status, r.body)
	} else {
		path := link.URL
		if i := strings.Index(path, "/v1/"); i >= 0 {
			path = path[i:]
		}
		sl := e.http(t, "GET", path, "", nil)
		if sl.status != 200 || sl.header.Get("Cache-Control") != "private, max-age=300" {
			t.Errorf("signed link: %d %q", sl.status, sl.header.Get("Cache-Control"))
		}
	}
	// Deleting the message withdraws it.
	a.ok("delete", map[string]any{"conversation_id": g, "message_id": m.ID}, nil)
	if r := e.http(t, "GET", "/v1/attachments/"+f.ID, b.token, nil); r.status != 404 {
		t.Errorf("download after the delete: %d", r.status)
	}
})

var _ = check("images", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "im"), e.newUser(t, "im")
	g := a.group("images", b)
	img, r := e.upload(t, a, "/v1/uploads", pngBytes(t, 640, 480))
	if r.status != 201 || img.Width != 640 || img.Height != 480 || img.ContentType != "image/png" || img.ThumbURL == nil || img.Name != nil {
		t.Fatalf("POST /v1/uploads: %d %s", r.status, r.body)
	}
	// Multipart, the image in the part named file.
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("file", "ignored-name.png")
	fw.Write(pngBytes(t, 20, 10))
	mw.Close()
	r = e.http(t, "POST", "/v1/uploads", a.token, mp.Bytes(), "Content-Type", mw.FormDataContentType())
	var mimg attachment
	json.Unmarshal(r.body, &mimg)
	if r.status != 201 || mimg.Width != 20 || mimg.Height != 10 || mimg.Name != nil {
		t.Errorf("multipart image: %d %s", r.status, r.body)
	}
	if _, r := e.upload(t, a, "/v1/uploads", []byte("not an image at all")); r.status != 415 || r.errCode() != "unsupported" {
		t.Errorf("a text as an image: %d %s", r.status, r.body)
	}
	if _, r := e.upload(t, a, "/v1/uploads", pngBytes(t, 64, 64)[:60]); r.status != 400 || r.errCode() != "invalid" {
		t.Errorf("a truncated PNG: %d %s", r.status, r.body)
	}
	a.fails("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "type": "file", "attachment_id": img.ID}, "invalid")
	var m wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "type": "image", "attachment_id": img.ID}, &m)
	if m.Type != "image" || m.Attachment == nil || m.Attachment.ThumbURL == nil {
		t.Errorf("image message %s", mustJSON(m))
	}
	// An image's caption may be edited to empty; its quote then has no
	// text (absent, as a message's empty text is).
	var ed wmsg
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": e.unique("e-"), "text": "a caption"}, &ed)
	a.ok("edit", map[string]any{"conversation_id": g, "message_id": m.ID, "client_id": e.unique("e-"), "text": ""}, &ed)
	if ed.Text != nil || ed.EditedAt == nil {
		t.Errorf("caption edited to empty: %s", mustJSON(ed))
	}
	var rep wmsg
	b.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "nice", "reply_to": m.ID}, &rep)
	if q := rep.ReplyTo; q == nil || q.Type == nil || *q.Type != "image" || q.Text != nil || q.Deleted != nil {
		t.Errorf("quote of an image without caption: %s", mustJSON(rep.ReplyTo))
	}
	th := e.http(t, "GET", "/v1/attachments/"+img.ID+"/thumb", b.token, nil)
	if th.status != 200 || th.header.Get("Content-Type") != "image/png" {
		t.Errorf("thumb: %d %q", th.status, th.header.Get("Content-Type"))
	}
	full := e.http(t, "GET", "/v1/attachments/"+img.ID, b.token, nil)
	if full.status != 200 || full.header.Get("Content-Type") != "image/png" || full.header.Get("Content-Security-Policy") != "default-src 'none'; sandbox" {
		t.Errorf("image: %d %v", full.status, full.header)
	}
	// An avatar is served to those who share a conversation with its owner.
	av, _ := e.upload(t, a, "/v1/uploads", pngBytes(t, 32, 32))
	a.ok("set_profile", map[string]any{"avatar_id": av.ID}, nil)
	if r := e.http(t, "GET", "/v1/attachments/"+av.ID, b.token, nil); r.status != 200 {
		t.Errorf("avatar to a member: %d", r.status)
	}
	if r := e.http(t, "GET", "/v1/attachments/"+av.ID, e.newUser(t, "im").token, nil); r.status != 404 {
		t.Errorf("avatar to a stranger: %d", r.status)
	}
})
