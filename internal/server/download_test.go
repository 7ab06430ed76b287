package server_test

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
)

// TestAttachmentRanges: attachments are served with HTTP's range and
// validator semantics, over real HTTP: a Range gets 206 with exactly its
// bytes and a Content-Range, an unsatisfiable one 416 with the size, a
// matching If-None-Match 304, If-Range with another tag the whole body,
// HEAD the headers alone; the ETag names the attachment and its variant;
// every answer keeps the security headers. Before, Range and
// If-None-Match were ignored: every GET was 200 with the whole body.
func TestAttachmentRanges(t *testing.T) {
	srv := servertest.Start(t)
	alice := srv.Token(t, "alice", "Alice")
	data := make([]byte, 1000)
	for i := range data {
		data[i] = byte(i * 7 >> 2)
	}
	a := uploadFile(t, srv, alice, "r.bin", data)
	u := srv.URL + a.URL
	get := func(method, url string, header ...string) servertest.Response {
		t.Helper()
		return servertest.Do(t, method, url, alice, nil, header...)
	}
	// inert: the headers every answer carrying the attachment keeps.
	inert := func(what string, r servertest.Response) {
		t.Helper()
		h := r.Header
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "default-src 'none'; sandbox" ||
			!strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || !strings.HasPrefix(h.Get("Cache-Control"), "private") {
			t.Errorf("%s: headers %v, want nosniff, the sandbox, Content-Disposition attachment and Cache-Control private", what, h)
		}
	}

	full := get("GET", u)
	etag := full.Header.Get("ETag")
	if full.Status != 200 || !bytes.Equal(full.Body, data) || full.Header.Get("Accept-Ranges") != "bytes" ||
		!strings.HasPrefix(etag, `"`) || !strings.Contains(etag, a.ID) {
		t.Errorf("GET: %d, %d bytes, Accept-Ranges %q, ETag %q; want 200, the file, bytes and a strong tag naming %s",
			full.Status, len(full.Body), full.Header.Get("Accept-Ranges"), etag, a.ID)
	}
	inert("GET", full)

	for _, tt := range []struct {
		rng, contentRange string
		want              []byte
	}{
		{"bytes=10-19", "bytes 10-19/1000", data[10:20]},
		{"bytes=990-", "bytes 990-999/1000", data[990:]},
		{"bytes=-5", "bytes 995-999/1000", data[995:]},
		{"bytes=900-5000", "bytes 900-999/1000", data[900:]}, // an end past the size stops at the last byte
	} {
		r := get("GET", u, "Range", tt.rng)
		if r.Status != 206 || !bytes.Equal(r.Body, tt.want) || r.Header.Get("Content-Range") != tt.contentRange ||
			r.Header.Get("Content-Length") != strconv.Itoa(len(tt.want)) {
			t.Errorf("Range %s: %d, %d bytes (Content-Range %q, Content-Length %q); want 206, its %d bytes, %s",
				tt.rng, r.Status, len(r.Body), r.Header.Get("Content-Range"), r.Header.Get("Content-Length"), len(tt.want), tt.contentRange)
		}
		inert("Range "+tt.rng, r)
	}

	// A range past the end cannot be satisfied: 416 with the size.
	if r := get("GET", u, "Range", "bytes=1000-"); r.Status != 416 || r.Header.Get("Content-Range") != "bytes */1000" {
		t.Errorf("Range past the end: %d (Content-Range %q), want 416 with bytes */1000", r.Status, r.Header.Get("Content-Range"))
	} else if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("416: headers %v, want nosniff and the sandbox", r.Header)
	}

	// The client's copy is current: 304, no body.
	if r := get("GET", u, "If-None-Match", etag); r.Status != 304 || len(r.Body) != 0 || r.Header.Get("ETag") != etag {
		t.Errorf("If-None-Match %s: %d, %d bytes, ETag %q; want 304, none, the same tag", etag, r.Status, len(r.Body), r.Header.Get("ETag"))
	}
	if r := get("GET", u, "If-None-Match", `"another"`); r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Errorf("If-None-Match of another tag: %d, %d bytes; want 200 and the file", r.Status, len(r.Body))
	}
	// If-Range: the range only while the tag still matches.
	if r := get("GET", u, "Range", "bytes=0-3", "If-Range", etag); r.Status != 206 || !bytes.Equal(r.Body, data[:4]) {
		t.Errorf("If-Range with its tag: %d, %d bytes; want 206, its 4 bytes", r.Status, len(r.Body))
	}
	if r := get("GET", u, "Range", "bytes=0-3", "If-Range", `"another"`); r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Errorf("If-Range with another tag: %d, %d bytes; want 200 and the file", r.Status, len(r.Body))
	}

	// HEAD: the GET's headers, no body.
	if r := get("HEAD", u); r.Status != 200 || len(r.Body) != 0 || r.Header.Get("Content-Length") != "1000" || r.Header.Get("ETag") != etag {
		t.Errorf("HEAD: %d, %d bytes, Content-Length %q, ETag %q; want 200, none, 1000, %s",
			r.Status, len(r.Body), r.Header.Get("Content-Length"), r.Header.Get("ETag"), etag)
	}

	// A few ranges: multipart/byteranges, each part its bytes.
	r := get("GET", u, "Range", "bytes=0-1,500-503")
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Status != 206 || mt != "multipart/byteranges" {
		t.Errorf("two ranges: %d %q, want 206 multipart/byteranges", r.Status, r.Header.Get("Content-Type"))
	} else {
		mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
		for _, want := range [][]byte{data[0:2], data[500:504]} {
			p, err := mr.NextPart()
			if err != nil {
				t.Fatalf("two ranges: %v", err)
			}
			if got, _ := io.ReadAll(p); !bytes.Equal(got, want) {
				t.Errorf("two ranges: a part %q, want %q", got, want)
			}
		}
	}
	inert("two ranges", r)
	// MaxRanges ranges are served; more are refused 416 with the size,
	// well formed or not, after the conditions that come first: a failed
	// If-Range sends the whole file, a matching If-None-Match 304. Before,
	// more than MaxRanges were ignored (200), malformed ones too, where
	// fewer malformed ones got 416.
	if r := get("GET", u, "Range", "bytes="+strings.Repeat("0-0,", server.MaxRanges-1)+"1-1"); r.Status != 206 {
		t.Errorf("%d ranges: %d, want 206", server.MaxRanges, r.Status)
	}
	many := "bytes=" + strings.Repeat("0-0,", server.MaxRanges) + "1-1"
	for _, rng := range []string{many, "bytes=" + strings.Repeat("x-y,", server.MaxRanges) + "z"} {
		if r := get("GET", u, "Range", rng); r.Status != 416 || r.Header.Get("Content-Range") != "bytes */1000" {
			t.Errorf("Range %s: %d (Content-Range %q), want 416 with bytes */1000", rng, r.Status, r.Header.Get("Content-Range"))
		}
	}
	if r := get("GET", u, "Range", many, "If-Range", `"another"`); r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Errorf("%d ranges, If-Range with another tag: %d, %d bytes; want 200 and the file", server.MaxRanges+1, r.Status, len(r.Body))
	}
	if r := get("GET", u, "Range", many, "If-None-Match", etag); r.Status != 304 {
		t.Errorf("%d ranges, If-None-Match with its tag: %d, want 304", server.MaxRanges+1, r.Status)
	}

	// A signed link takes ranges too (a browser resuming a download).
	lr := httpDo(t, srv, "POST", a.URL+"/link", alice, "")
	link := decodeJSON[server.AttachmentLink](t, lr.body)
	if r := servertest.Do(t, "GET", srv.URL+link.URL, "", nil, "Range", "bytes=100-101"); r.Status != 206 || !bytes.Equal(r.Body, data[100:102]) {
		t.Errorf("signed link with a Range: %d, %d bytes; want 206, its 2 bytes", r.Status, len(r.Body))
	}

	// An image's thumbnail is another representation: another tag.
	ct, body := multipartBody(t, "p.png", testPNG(t, 800, 400))
	up := rawDo(t, "POST", srv.URL+"/v1/uploads", alice, ct, body)
	img := decodeJSON[parley.Attachment](t, up.body)
	imgTag := get("GET", srv.URL+img.URL).Header.Get("ETag")
	thumb := get("GET", srv.URL+img.ThumbURL)
	thumbTag := thumb.Header.Get("ETag")
	if thumb.Status != 200 || imgTag == "" || thumbTag == "" || thumbTag == imgTag {
		t.Errorf("image ETag %q, thumbnail %d ETag %q; want two different tags", imgTag, thumb.Status, thumbTag)
	}
	if r := get("GET", srv.URL+img.ThumbURL, "If-None-Match", imgTag); r.Status != 200 || !bytes.Equal(r.Body, thumb.Body) {
		t.Errorf("thumbnail with the image's tag: %d, want 200 and the thumbnail", r.Status)
	}
	if r := get("GET", srv.URL+img.ThumbURL, "If-None-Match", thumbTag); r.Status != 304 {
		t.Errorf("thumbnail with its tag: %d, want 304", r.Status)
	}
}

// TestRevalidationReadsNothing: answers that carry no attachment bytes
// (a HEAD, a 304 to If-None-Match, a 412 to If-Match) load none from the
// store, while a GET and a Range each load the attachment once. Before,
// each of them loaded the whole attachment before ServeContent decided.
func TestRevalidationReadsNothing(t *testing.T) {
	var reads atomic.Int64
	srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		return readCountingStore{Store: db, reads: &reads}, err
	}))
	alice := srv.Token(t, "alice", "Alice")
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 13 >> 3)
	}
	a := uploadFile(t, srv, alice, "v.bin", data)
	u := srv.URL + a.URL
	full := servertest.Do(t, "GET", u, alice, nil)
	if full.Status != 200 || !bytes.Equal(full.Body, data) {
		t.Fatalf("GET: %d, %d bytes; want 200 and the file", full.Status, len(full.Body))
	}
	etag := full.Header.Get("ETag")
	before := reads.Load()
	for _, tt := range []struct {
		what, method string
		header       []string
		status       int
	}{
		{"HEAD", "HEAD", nil, 200},
		{"If-None-Match", "GET", []string{"If-None-Match", etag}, 304},
		{"If-Match of another tag", "GET", []string{"If-Match", `"other"`}, 412},
	} {
		r := servertest.Do(t, tt.method, u, alice, nil, tt.header...)
		if r.Status != tt.status || len(r.Body) != 0 {
			t.Errorf("%s: %d, %d bytes; want %d and no body", tt.what, r.Status, len(r.Body), tt.status)
		}
		if tt.method == "HEAD" && r.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
			t.Errorf("HEAD: Content-Length %q, want %d", r.Header.Get("Content-Length"), len(data))
		}
	}
	if n := reads.Load() - before; n != 0 {
		t.Errorf("a HEAD, a 304 and a 412 loaded the attachment %d times, want 0", n)
	}
	r := servertest.Do(t, "GET", u, alice, nil, "Range", "bytes=100000-100009")
	if r.Status != 206 || !bytes.Equal(r.Body, data[100000:100010]) {
		t.Errorf("Range: %d, %d bytes; want 206 and its 10 bytes", r.Status, len(r.Body))
	}
	if n := reads.Load() - before; n != 1 {
		t.Errorf("a Range loaded the attachment %d times, want 1", n)
	}
}

// TestAttachmentRangeMalformed: a Range of bytes that cannot be parsed
// gets 416 with the size in Content-Range, as docs/protocol.md and the
// OpenAPI document say of every 416 (Go's ServeContent sets it only for
// a range past the end), and a Range of another unit than bytes is
// ignored (200, the whole attachment), as RFC 9110 section 14.2 requires
// of a unit the server does not know; the unit's name is
// case-insensitive (Bytes=). Before, both were 416 without the size.
func TestAttachmentRangeMalformed(t *testing.T) {
	srv := servertest.Start(t)
	alice := srv.Token(t, "alice", "Alice")
	data := bytes.Repeat([]byte("0123456789"), 100)
	a := uploadFile(t, srv, alice, "m.bin", data)
	u := srv.URL + a.URL
	for _, rng := range []string{"bytes=abc", "bytes=20-10", "bytes=-"} {
		r := servertest.Do(t, "GET", u, alice, nil, "Range", rng)
		if r.Status != 416 || r.Header.Get("Content-Range") != "bytes */1000" {
			t.Errorf("Range %s: %d (Content-Range %q), want 416 with bytes */1000", rng, r.Status, r.Header.Get("Content-Range"))
		}
	}
	for _, rng := range []string{"items=0-1", "pages=1"} {
		r := servertest.Do(t, "GET", u, alice, nil, "Range", rng)
		if r.Status != 200 || !bytes.Equal(r.Body, data) {
			t.Errorf("Range %s: %d, %d bytes; want 200 and the whole attachment (a unit not known is ignored)", rng, r.Status, len(r.Body))
		}
	}
	if r := servertest.Do(t, "GET", u, alice, nil, "Range", "Bytes=10-19"); r.Status != 206 || !bytes.Equal(r.Body, data[10:20]) {
		t.Errorf("Range Bytes=10-19: %d, %q; want 206 and bytes 10 to 19", r.Status, r.Body)
	}
}

// TestAttachmentErrorHeaders: an error answer to a download (412 to
// If-Match, 416) carries none of the headers
// set for the attachment's bytes: no Cache-Control (an "immutable" error
// would be kept for good), no ETag, no Content-Disposition; a 304 keeps
// Cache-Control and the ETag, as RFC 9110 15.4.5 wants. Before, a 412 or
// a 416 kept "Cache-Control: private, max-age=86400, immutable". (An
// attachment has no Last-Modified: ServeContent ignores
// If-Unmodified-Since, which never makes a 412.)
func TestAttachmentErrorHeaders(t *testing.T) {
	srv := servertest.Start(t)
	alice := srv.Token(t, "alice", "Alice")
	a := uploadFile(t, srv, alice, "e.bin", bytes.Repeat([]byte("x"), 100))
	u := srv.URL + a.URL
	etag := servertest.Do(t, "GET", u, alice, nil).Header.Get("ETag")
	for _, tt := range []struct {
		what   string
		header []string
		status int
	}{
		{"If-Match of another tag", []string{"If-Match", `"other"`}, 412},
		{"a range past the end", []string{"Range", "bytes=500-"}, 416},
		{"a malformed range", []string{"Range", "bytes=x"}, 416},
	} {
		r := servertest.Do(t, "GET", u, alice, nil, tt.header...)
		h := r.Header
		if r.Status != tt.status || h.Get("Cache-Control") != "" || h.Get("ETag") != "" || h.Get("Content-Disposition") != "" {
			t.Errorf("%s: %d, Cache-Control %q, ETag %q, Content-Disposition %q; want %d without them",
				tt.what, r.Status, h.Get("Cache-Control"), h.Get("ETag"), h.Get("Content-Disposition"), tt.status)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tt.what)
		}
	}
	r := servertest.Do(t, "GET", u, alice, nil, "If-None-Match", etag)
	if r.Status != 304 || r.Header.Get("ETag") != etag || !strings.HasPrefix(r.Header.Get("Cache-Control"), "private") {
		t.Errorf("304: %d, ETag %q, Cache-Control %q; want the tag and Cache-Control private", r.Status, r.Header.Get("ETag"), r.Header.Get("Cache-Control"))
	}
}
