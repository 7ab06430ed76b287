package server_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

func testPNG(t testing.TB, w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 200, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombPNG is a small valid PNG whose header claims w x h.
func bombPNG(t testing.TB, w, h uint32) []byte {
	b := testPNG(t, 4, 4)
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

type rawResp struct {
	status int
	header http.Header
	body   []byte
}

func rawDo(t testing.TB, method, u, token, contentType string, body []byte) rawResp {
	t.Helper()
	r := servertest.Do(t, method, u, token, body, "Content-Type", contentType) // "": none
	return rawResp{r.Status, r.Header, r.Body}
}

func multipartBody(t testing.TB, filename string, data []byte) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

func TestUploadsRefuseBadInput(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads = server.UploadLimits{Limits: media.Limits{MaxBytes: 64 << 10}}
	}))
	tok := srv.Token(t, "alice", "Alice")
	full := testPNG(t, 64, 64)
	textCT, textBody := multipartBody(t, "holiday.png", []byte("just some text, not an image\n"))
	travCT, travBody := multipartBody(t, "../../../../etc/cron.d/evil.png", []byte("* * * * * root rm -rf /\n"))
	big := bytes.Repeat([]byte{0}, 65<<10)
	copy(big, full)

	tests := []struct {
		name        string
		ct          string
		body        []byte
		status      int
		code        string
		token       string
		noAuthCheck bool
	}{
		{"text named .png", textCT, textBody, 415, parley.EUNSUPPORTED, tok, false},
		{"path traversal name with text", travCT, travBody, 415, parley.EUNSUPPORTED, tok, false},
		{"truncated png", "image/png", full[:len(full)/2], 400, parley.EINVALID, tok, false},
		{"header claims 20000x20000", "image/png", bombPNG(t, 20000, 20000), 413, parley.ETOOLARGE, tok, false},
		{"oversized body", "image/png", big, 413, parley.ETOOLARGE, tok, false},
		{"empty body", "image/png", nil, 400, parley.EINVALID, tok, false},
		{"multipart without file part", "multipart/form-data; boundary=x", []byte("--x--\r\n"), 400, parley.EINVALID, tok, false},
		{"no token", "image/png", full, 401, parley.EUNAUTHORIZED, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawDo(t, "POST", srv.URL+"/v1/uploads", tt.token, tt.ct, tt.body)
			var e struct{ Error protocol.ErrorBody }
			json.Unmarshal(r.body, &e)
			if r.status != tt.status || e.Error.Code != tt.code {
				t.Fatalf("status %d code %q (%s), want %d %q", r.status, e.Error.Code, r.body, tt.status, tt.code)
			}
		})
	}
	if n := servertest.StoredAttachments(t, srv.Dir); n != 0 {
		t.Fatalf("%d attachments stored after only bad uploads, want 0", n)
	}
}

func TestUploadAndServe(t *testing.T) {
	srv := servertest.Start(t)
	alice := srv.Token(t, "alice", "Alice")
	bob := srv.Token(t, "bob", "Bob")
	eve := srv.Token(t, "eve", "Eve")

	// A valid image under a hostile file name is stored under a new id.
	ct, body := multipartBody(t, "../../../../tmp/evil.png", testPNG(t, 800, 400))
	r := rawDo(t, "POST", srv.URL+"/v1/uploads", alice, ct, body)
	if r.status != 201 {
		t.Fatalf("upload: %d %s", r.status, r.body)
	}
	a := decodeJSON[parley.Attachment](t, r.body)
	if a.ContentType != "image/png" || a.Width != 800 || a.Height != 400 || a.URL != "/v1/attachments/"+a.ID || strings.Contains(a.ID, "/") {
		t.Fatalf("attachment = %+v", a)
	}

	// Before any message holds it, only the uploader may fetch it.
	if r := rawDo(t, "GET", srv.URL+a.URL, alice, "", nil); r.status != 200 {
		t.Fatalf("uploader GET: %d", r.status)
	}
	if r := rawDo(t, "GET", srv.URL+a.URL, bob, "", nil); r.status != 404 {
		t.Fatalf("bob GET before the message: %d, want 404", r.status)
	}

	conv := decodeJSON[parley.Conversation](t, httpDo(t, srv, "POST", "/v1/conversations/direct", alice, `{"user_id":"bob"}`).body)
	// Bob cannot send alice's attachment as his own.
	if r := httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/messages", bob,
		`{"client_id":"b1","type":"image","attachment_id":"`+a.ID+`"}`); r.status < 400 {
		t.Fatalf("bob sending alice's attachment: %d, want an error", r.status)
	}
	sent := httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/messages", alice,
		`{"client_id":"a1","type":"image","text":"look","attachment_id":"`+a.ID+`"}`)
	if sent.status != 201 {
		t.Fatalf("send image: %d %s", sent.status, sent.body)
	}
	m := decodeJSON[parley.Message](t, sent.body)
	if m.Type != parley.Image || m.Attachment == nil || m.Attachment.URL != a.URL || m.Attachment.ThumbURL != a.URL+"/thumb" {
		t.Fatalf("image message = %+v", m)
	}

	for _, tc := range []struct {
		path, wantCT string
		maxSide      int
	}{{a.URL, "image/png", 800}, {a.ThumbURL, "image/png", media.DefaultThumbSize}} {
		r := rawDo(t, "GET", srv.URL+tc.path, bob, "", nil)
		if r.status != 200 {
			t.Fatalf("member GET %s: %d", tc.path, r.status)
		}
		h := r.header
		if h.Get("Content-Type") != tc.wantCT || h.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(h.Get("Cache-Control"), "private") || !strings.Contains(h.Get("Content-Security-Policy"), "sandbox") {
			t.Fatalf("GET %s headers = %v", tc.path, h)
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(r.body))
		if err != nil || max(cfg.Width, cfg.Height) != tc.maxSide {
			t.Fatalf("GET %s: %v, %dx%d, want longest side %d", tc.path, err, cfg.Width, cfg.Height, tc.maxSide)
		}
	}

	// A non-member, a missing token and an unknown id all get nothing.
	for name, tc := range map[string]struct {
		path, tok string
		status    int
	}{
		"non-member":       {a.URL, eve, 404},
		"non-member thumb": {a.ThumbURL, eve, 404},
		"no token":         {a.URL, "", 401},
		"unknown id":       {"/v1/attachments/nope", alice, 404},
	} {
		if r := rawDo(t, "GET", srv.URL+tc.path, tc.tok, "", nil); r.status != tc.status {
			t.Errorf("%s: GET %s = %d, want %d", name, tc.path, r.status, tc.status)
		}
	}

	// Signed links: for members only; they work without a token, for the
	// variant they name, and not once tampered with.
	if r := httpDo(t, srv, "POST", a.URL+"/link", eve, ""); r.status != 404 {
		t.Fatalf("non-member link: %d, want 404", r.status)
	}
	lr := httpDo(t, srv, "POST", a.URL+"/link", bob, "")
	if lr.status != 200 {
		t.Fatalf("link: %d %s", lr.status, lr.body)
	}
	link := decodeJSON[server.AttachmentLink](t, lr.body)
	if r := rawDo(t, "GET", srv.URL+link.ThumbURL, "", "", nil); r.status != 200 {
		t.Fatalf("signed thumb link: %d", r.status)
	}
	u, _ := url.Parse(link.URL)
	q := u.Query()
	q.Set("u", "eve") // a link made for bob does not work as eve's
	if r := rawDo(t, "GET", srv.URL+u.Path+"?"+q.Encode(), "", "", nil); r.status != 401 {
		t.Fatalf("tampered link: %d, want 401", r.status)
	}
	thumbAsFull := strings.Replace(link.ThumbURL, "/thumb?", "?", 1)
	if r := rawDo(t, "GET", srv.URL+thumbAsFull, "", "", nil); r.status != 401 {
		t.Fatalf("thumb signature used for the full image: %d, want 401", r.status)
	}

	// Deleting the message takes the image from the other member.
	httpDo(t, srv, "DELETE", "/v1/conversations/"+conv.ID+"/messages/"+m.ID, alice, "")
	if r := rawDo(t, "GET", srv.URL+a.URL, bob, "", nil); r.status != 404 {
		t.Fatalf("bob GET after delete: %d, want 404", r.status)
	}
}
