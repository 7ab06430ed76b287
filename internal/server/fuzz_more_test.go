package server_test

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media/mediatest"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// requestable reports whether raw can go into a request line as a query
// as it is; other bytes are the HTTP layer's business, not the handler's.
func requestable(raw string) bool {
	for _, c := range []byte(raw) {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// getQuery sends GET path?raw and returns the response; the error body,
// if any, must be JSON with a code.
func getQuery(t *testing.T, srv *servertest.Server, path, raw, token string) rawResp {
	t.Helper()
	r := rawDo(t, "GET", srv.URL+path+"?"+raw, token, "", nil)
	if r.status >= 500 {
		t.Fatalf("GET %s?%s: %d %s", path, raw, r.status, r.body)
	}
	if r.status >= 400 {
		var e struct{ Error struct{ Code string } }
		if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" {
			t.Fatalf("GET %s?%s: %d with body %q, want a JSON error", path, raw, r.status, r.body)
		}
	}
	return r
}

// pageAnswer checks r, the answer to GET ?raw: 400 invalid when the query
// is not valid, else 200. It reports whether r is a page to check.
func pageAnswer(t *testing.T, raw string, r rawResp, valid bool) bool {
	t.Helper()
	if !valid {
		if r.status != 400 || !strings.Contains(string(r.body), `"invalid"`) {
			t.Fatalf("GET ?%s: %d %s, want 400 invalid", raw, r.status, r.body)
		}
		return false
	}
	if r.status != 200 {
		t.Fatalf("GET ?%s: %d %s, want 200", raw, r.status, r.body)
	}
	return true
}

// directWithMessages starts a server where alice (tok) has a direct
// conversation with bob holding n messages of hers, made over HTTP.
func directWithMessages(f *testing.F, n int) (srv *servertest.Server, tok, conv string) {
	srv = servertest.Start(f)
	tok = srv.Token(f, "alice", "Alice")
	srv.Token(f, "bob", "Bob")
	conv = decodeJSON[parley.Conversation](f, httpDo(f, srv, "POST", "/v1/conversations/direct", tok, `{"user_id":"bob"}`).body).ID
	for i := range n {
		if r := httpDo(f, srv, "POST", "/v1/conversations/"+conv+"/messages", tok, `{"client_id":"c`+strconv.Itoa(i)+`","text":"m"}`); r.status != 201 {
			f.Fatalf("send: %d %s", r.status, r.body)
		}
	}
	return srv, tok, conv
}

// intParam reads a query parameter as the server must: absent or empty
// is 0, anything but a decimal int64 is an error.
func intParam(q url.Values, name string) (int64, bool) {
	v := q.Get(name)
	if v == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// FuzzHistoryQuery sends arbitrary query strings to GET
// /v1/conversations/{id}/messages, over a conversation of 12 messages.
//
// Properties: never a 5xx; bad before/after/limit is 400 invalid, as the
// documented rules say; a page holds at most limit messages (default
// parley.DefaultPageLimit), in strictly increasing seq, all before
// "before" and after "after".
func FuzzHistoryQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=10", "limit=abc", "before=5", "after=3&limit=2", "before=5&after=3", "limit=-1", "limit=0",
		"limit=" + strconv.Itoa(parley.MaxPageLimit), "limit=" + strconv.Itoa(parley.MaxPageLimit+1), "limit=99999999999999999999",
		"before=-1", "after=9223372036854775807", "before=1", "limit=1&limit=x", "limit=%31%30", "limit=+5", "limit=5;x=1",
		"before=0x10", "after=1e3", "limit=%zz", "after=", "before=12&limit=3",
		"before=0", "after=0", "before=0&after=3", "before=5&after=0", "before=&after=2",
	} {
		f.Add(s)
	}
	srv, tok, conv := directWithMessages(f, 12)
	path := "/v1/conversations/" + conv + "/messages"
	f.Fuzz(func(t *testing.T, raw string) {
		if !requestable(raw) {
			return
		}
		r := getQuery(t, srv, path, raw, tok)
		q, _ := url.ParseQuery(raw)
		before, ok1 := intParam(q, "before")
		after, ok2 := intParam(q, "after")
		limit, ok3 := intParam(q, "limit")
		// A cursor given as 0 is not one left out: after=0 is "from the
		// start", before=0 is invalid (no seq is below 1), and giving both
		// is invalid whatever their values.
		givenBefore, givenAfter := q.Get("before") != "", q.Get("after") != ""
		valid := ok1 && ok2 && ok3 && !(givenBefore && givenAfter) && (!givenBefore || before >= 1) && after >= 0 &&
			limit >= 0 && limit <= parley.MaxPageLimit
		if !pageAnswer(t, raw, r, valid) {
			return
		}
		if limit == 0 {
			limit = parley.DefaultPageLimit
		}
		page := decodeJSON[parley.MessagePage](t, r.body)
		if int64(len(page.Messages)) > limit {
			t.Fatalf("GET ?%s: %d messages, limit %d", raw, len(page.Messages), limit)
		}
		for i, m := range page.Messages {
			if i > 0 && m.Seq <= page.Messages[i-1].Seq {
				t.Fatalf("GET ?%s: seqs out of order: %s", raw, r.body)
			}
			if (before > 0 && m.Seq >= before) || m.Seq <= after || m.ConversationID != conv {
				t.Fatalf("GET ?%s: message %d outside the query: %s", raw, m.Seq, r.body)
			}
		}
	})
}

// FuzzEventsQuery sends arbitrary query strings to GET /v1/events (resume
// over HTTP).
//
// Properties: never a 5xx; bad after/limit is 400 invalid; a page holds
// at most limit events (default 100), in strictly increasing position,
// all after "after", none beyond head; after beyond head is a resync.
func FuzzEventsQuery(f *testing.F) {
	for _, s := range []string{
		"", "after=0", "after=3&limit=2", "after=-1", "limit=0", "limit=1000", "limit=1001", "limit=-5", "after=abc",
		"after=999999", "after=9223372036854775807", "limit=18446744073709551616", "after=1&after=2", "after=%32",
	} {
		f.Add(s)
	}
	srv, tok, _ := directWithMessages(f, 8)
	f.Fuzz(func(t *testing.T, raw string) {
		if !requestable(raw) {
			return
		}
		r := getQuery(t, srv, "/v1/events", raw, tok)
		q, _ := url.ParseQuery(raw)
		after, ok1 := intParam(q, "after")
		limit, ok2 := intParam(q, "limit")
		if !pageAnswer(t, raw, r, ok1 && ok2 && after >= 0 && limit >= 0 && limit <= server.MaxEventsPage) {
			return
		}
		if limit == 0 {
			limit = 100
		}
		page := decodeJSON[struct {
			Events []parley.Event
			Head   int64
			Resync bool
		}](t, r.body)
		if page.Resync != (after > page.Head) {
			t.Fatalf("GET ?%s: resync %v with head %d", raw, page.Resync, page.Head)
		}
		if int64(len(page.Events)) > limit {
			t.Fatalf("GET ?%s: %d events, limit %d", raw, len(page.Events), limit)
		}
		prev := after
		for _, ev := range page.Events {
			if ev.Pos <= prev || ev.Pos > page.Head {
				t.Fatalf("GET ?%s: position %d after %d (head %d): %s", raw, ev.Pos, prev, page.Head, r.body)
			}
			prev = ev.Pos
		}
	})
}

// FuzzUpload posts arbitrary bodies and content types (raw and
// multipart) to POST /v1/uploads.
//
// Properties: never a 5xx; a refusal is a JSON error with code invalid,
// too_large or unsupported; an accepted upload is an image with a size.
func FuzzUpload(f *testing.F) {
	png := testPNG(f, 8, 8)
	mpCT, mpBody := multipartBody(f, "a.png", png)
	boundary := strings.TrimPrefix(mpCT, "multipart/form-data; boundary=")
	for _, s := range []struct {
		ct   string
		body []byte
	}{
		{"image/png", png}, {"", png}, {mpCT, mpBody}, {"image/png", png[:len(png)/2]}, {"text/plain", []byte("hello")},
		{"multipart/form-data; boundary=x", []byte("--x--\r\n")}, {"multipart/form-data", mpBody},
		{"multipart/form-data; boundary=" + boundary, mpBody[:len(mpBody)/2]},
		{"multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nGIF89a\r\n--x--\r\n")},
		{"multipart/form-data; boundary=\"", nil}, {"image/png", nil},
		// Hostile images: a 16-bit bomb over the decode budget, a GIF of
		// many frames, a GIF padded with comments.
		{"image/png", mediatest.PNG16(1100, 1100)}, {"image/gif", mediatest.GIF(300, 1000, 1000, 0)},
		{"image/gif", mediatest.GIF(1, 1, 1, 30000)},
	} {
		f.Add(s.ct, s.body)
	}
	srv := servertest.Start(f, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.MaxBytes = 64 << 10
		c.Uploads.DecodeBudget = 8 << 20
		c.Uploads.Quota = -1 // the fuzzer may store more than a user's quota
	}))
	tok := srv.Token(f, "alice", "Alice")
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		if strings.ContainsFunc(ct, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }) {
			return // not a header value net/http sends
		}
		r := rawDo(t, "POST", srv.URL+"/v1/uploads", tok, ct, body)
		if r.status >= 500 {
			t.Fatalf("upload (%q, %q): %d %s", ct, body, r.status, r.body)
		}
		if r.status == 201 {
			a := decodeJSON[parley.Attachment](t, r.body)
			if !strings.HasPrefix(a.ContentType, "image/") || a.Width <= 0 || a.Height <= 0 || a.Size <= 0 {
				t.Fatalf("upload (%q, %q) accepted as %s", ct, body, r.body)
			}
			return
		}
		var e struct{ Error struct{ Code string } }
		if err := json.Unmarshal(r.body, &e); err != nil {
			t.Fatalf("upload (%q, %q): %d %q is not JSON", ct, body, r.status, r.body)
		}
		switch e.Error.Code {
		case parley.EINVALID, parley.ETOOLARGE, parley.EUNSUPPORTED:
		default:
			t.Fatalf("upload (%q, %q): %d %s", ct, body, r.status, r.body)
		}
	})
}

// FuzzAttachmentLink sends arbitrary query strings to an attachment's URL
// without a token, where only a signed link (u, exp, sig) may let the
// request through.
//
// Properties: never a 5xx; a 200 only for the link the server signed
// (same u, exp and sig: the fuzzer cannot forge the HMAC, so any other
// query that gets through is a hole).
func FuzzAttachmentLink(f *testing.F) {
	srv := servertest.Start(f)
	tok := srv.Token(f, "alice", "Alice")
	up := rawDo(f, "POST", srv.URL+"/v1/uploads", tok, "image/png", testPNG(f, 8, 8))
	if up.status != 201 {
		f.Fatalf("upload: %d %s", up.status, up.body)
	}
	id := decodeJSON[parley.Attachment](f, up.body).ID
	link := decodeJSON[server.AttachmentLink](f, httpDo(f, srv, "POST", "/v1/attachments/"+id+"/link", tok, "").body)
	full, err := url.Parse(link.URL)
	if err != nil {
		f.Fatal(err)
	}
	thumb, _ := url.Parse(link.ThumbURL)
	signed := full.Query()
	good := full.RawQuery
	for _, s := range []string{
		good, thumb.RawQuery, good + "&u=bob", "u=bob&" + good, strings.Replace(good, "sig=", "sig=x", 1),
		strings.Replace(good, "exp=", "exp=9", 1), "u=alice&exp=99999999999&sig=", "", "u=&exp=&sig=", "exp=-1", "sig=%ZZ",
	} {
		f.Add(s)
	}
	path := "/v1/attachments/" + id
	f.Fuzz(func(t *testing.T, raw string) {
		if !requestable(raw) {
			return
		}
		r := getQuery(t, srv, path, raw, "")
		if r.status != 200 {
			return
		}
		q, _ := url.ParseQuery(raw)
		for _, k := range []string{"u", "exp", "sig"} {
			if q.Get(k) != signed.Get(k) {
				t.Fatalf("GET %s?%s without a token: 200, but %s is %q, not the signed %q", path, raw, k, q.Get(k), signed.Get(k))
			}
		}
	})
}
