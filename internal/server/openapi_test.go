package server_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// The OpenAPI document (internal/server/openapi.json, served at
// /v1/openapi.json) is checked with kin-openapi: the document itself is
// valid OpenAPI 3.1, it describes exactly the routes the server's mux
// serves, and real requests and answers of every operation, run against
// a real server, validate against it.

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(server.OpenAPIJSON())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIRoutes: every route the mux serves is documented, and
// nothing is documented that the mux does not serve (catch-alls without
// a method, "/v1/" answering not_found and "/" the web client, are not
// API operations).
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	srv := servertest.Start(t)
	var routed, documented []string
	for _, p := range srv.Server.RoutePatterns() {
		if method, path, ok := strings.Cut(p, " "); ok {
			routed = append(routed, method+" "+path)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(routed)
	slices.Sort(documented)
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("routed but not in openapi.json: %s", r)
		}
	}
	for _, d := range documented {
		// A GET route serves HEAD too (net/http's mux): documented
		// where a HEAD is of use (attachments).
		head, ok := strings.CutPrefix(d, "HEAD ")
		if !slices.Contains(routed, d) && !(ok && slices.Contains(routed, "GET "+head)) {
			t.Errorf("in openapi.json but not routed: %s", d)
		}
	}
	if len(routed) < 20 {
		t.Fatalf("only %d routes found: %v", len(routed), routed)
	}

	// The served document is the embedded one.
	resp := httpDo(t, srv, "GET", "/v1/openapi.json", "", "")
	if resp.status != 200 || !bytes.Equal(resp.body, server.OpenAPIJSON()) || !strings.HasPrefix(resp.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /v1/openapi.json: %d %s", resp.status, resp.header.Get("Content-Type"))
	}
}

// validatingTransport validates every request it carries and the answer
// to it against the document, and records the operations whose answers
// validated.
type validatingTransport struct {
	t      *testing.T
	router routers.Router
	mu     sync.Mutex
	seen   map[string][]int // operation id -> statuses validated
}

var registerImageDecoders sync.Once

func newValidatingTransport(t *testing.T, doc *openapi3.T) *validatingTransport {
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	registerImageDecoders.Do(func() {
		for _, ct := range []string{"image/png", "image/jpeg", "image/gif", "image/webp"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
	})
	return &validatingTransport{t: t, router: router, seen: map[string][]int{}}
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		v.t.Errorf("%s %s: no documented route: %v", req.Method, req.URL.Path, err)
		return http.DefaultTransport.RoundTrip(req)
	}
	opts := &openapi3filter.Options{
		IncludeResponseStatus: true,
		// The server decides whether a token is good; the document says
		// only where it goes. A bearer scheme needs an Authorization
		// header with the Bearer scheme.
		AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
			h := in.RequestValidationInput.Request.Header.Get("Authorization")
			if !strings.HasPrefix(h, "Bearer ") {
				return fmt.Errorf("no bearer token for %s", in.SecuritySchemeName)
			}
			return nil
		},
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
		v.t.Errorf("%s %s: the request does not match openapi.json: %v", req.Method, req.URL.Path, err)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	rin := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The body is the upgraded connection: not the validator's.
		rin.Body = io.NopCloser(bytes.NewReader(nil))
	} else {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		rin.SetBodyBytes(b)
	}
	if err := openapi3filter.ValidateResponse(ctx, rin); err != nil {
		v.t.Errorf("%s %s: the %d answer does not match openapi.json: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	} else {
		v.mu.Lock()
		v.seen[route.Operation.OperationID] = append(v.seen[route.Operation.OperationID], resp.StatusCode)
		v.mu.Unlock()
	}
	return resp, nil
}

// TestOpenAPIExamples runs every documented operation against a real
// server through a transport that validates each request and answer
// against the document (kin-openapi's openapi3filter), success and error
// answers alike, and fails for any operation left unexercised.
func TestOpenAPIExamples(t *testing.T) {
	doc := loadOpenAPI(t)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.MetricsToken = "metrics-token"
		c.Limits = server.Unlimited()
	}))
	// The document's server is "/" (the API is where it is served from):
	// here that is the test server.
	doc.Servers = openapi3.Servers{{URL: srv.URL}}
	vt := newValidatingTransport(t, doc)
	hc := &http.Client{Transport: vt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	alice := srv.Token(t, "alice", "Alice")
	bob := srv.Token(t, "bob", "Bob")

	type answer struct {
		status int
		body   []byte
		header http.Header
	}
	do := func(method, path, token, ctype string, body []byte, header ...string) answer {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body == nil {
			req.Body, req.ContentLength = nil, 0
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{resp.StatusCode, b, resp.Header}
	}
	jsonDo := func(method, path, token, body string, want int) []byte {
		t.Helper()
		var b []byte
		ctype := ""
		if body != "" {
			b, ctype = []byte(body), "application/json"
		}
		a := do(method, path, token, ctype, b)
		if a.status != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, a.status, a.body, want)
		}
		return a.body
	}

	jsonDo("GET", "/v1/openapi.json", "", "", 200)
	jsonDo("GET", "/healthz", "", "", 200)
	jsonDo("GET", "/readyz", "", "", 200)
	if a := do("GET", "/metrics", "metrics-token", "", nil); a.status != 200 || !bytes.Contains(a.body, []byte("parley_connections")) {
		t.Fatalf("GET /metrics: %d", a.status)
	}
	jsonDo("GET", "/metrics", "wrong", "", 401)

	jsonDo("POST", "/v1/auth/register", "", `{"username":"carol","password":"correct horse battery"}`, 201)
	jsonDo("POST", "/v1/auth/register", "", `{"username":"Carol","password":"correct horse battery"}`, 409)
	jsonDo("POST", "/v1/auth/login", "", `{"username":"carol","password":"correct horse battery"}`, 200)
	jsonDo("POST", "/v1/auth/login", "", `{"username":"carol","password":"wrong horse battery"}`, 401)
	jsonDo("GET", "/v1/me", alice, "", 200)
	jsonDo("GET", "/v1/me", "forged", "", 401)
	jsonDo("GET", "/v1/users/carol", alice, "", 200)
	jsonDo("GET", "/v1/users/nobody", alice, "", 404)

	direct := decodeJSON[parley.Conversation](t, jsonDo("POST", "/v1/conversations/direct", alice, `{"user_id":"bob"}`, 200))
	group := decodeJSON[parley.Conversation](t, jsonDo("POST", "/v1/conversations/group", alice, `{"title":"team","member_ids":["bob"]}`, 201))
	jsonDo("GET", "/v1/conversations/"+group.ID, alice, "", 200)
	jsonDo("GET", "/v1/conversations/nope", alice, "", 404)
	jsonDo("PATCH", "/v1/conversations/"+group.ID, alice, `{"title":"the team"}`, 200)
	// Roles and flags, before the events page below so that it carries
	// members_promoted/members_demoted and flagsChanged.
	jsonDo("PATCH", "/v1/conversations/"+group.ID, alice, `{"promote":["bob"]}`, 200)
	jsonDo("PATCH", "/v1/conversations/"+group.ID, bob, `{"demote":["bob"]}`, 200)
	jsonDo("PATCH", "/v1/conversations/"+group.ID, bob, `{"title":"mine now"}`, 403)
	jsonDo("PATCH", "/v1/conversations/"+group.ID+"/flags", alice, `{"muted":true}`, 200)
	jsonDo("PATCH", "/v1/conversations/"+group.ID+"/flags", alice, `{"archived":true,"muted":false}`, 200)
	jsonDo("PATCH", "/v1/conversations/nope/flags", alice, `{"muted":true}`, 404)
	// Consent, blocks and requests, before the events page too.
	dave := srv.Token(t, "dave", "Dave")
	jsonDo("PUT", "/v1/me/blocked/dave", bob, "", 200)
	jsonDo("PUT", "/v1/me/blocked/nobody", bob, "", 404)
	jsonDo("GET", "/v1/me/privacy", bob, "", 200)
	jsonDo("DELETE", "/v1/me/blocked/dave", bob, "", 200)
	jsonDo("PATCH", "/v1/me/privacy", bob, `{"consent":"contacts"}`, 200)
	jsonDo("PATCH", "/v1/me/privacy", bob, `{"consent":"friends"}`, 400)
	jsonDo("POST", "/v1/conversations/group", dave, `{"title":"d","member_ids":["bob"]}`, 403)
	jsonDo("POST", "/v1/conversations/direct", dave, `{"user_id":"bob"}`, 403)
	jsonDo("PATCH", "/v1/me/privacy", bob, `{"consent":"everyone"}`, 200)
	request := decodeJSON[parley.Conversation](t, jsonDo("POST", "/v1/conversations/direct", dave, `{"user_id":"bob"}`, 200))
	jsonDo("POST", "/v1/conversations/"+request.ID+"/decline", bob, "", 200)
	jsonDo("POST", "/v1/conversations/"+request.ID+"/accept", dave, "", 400)
	jsonDo("POST", "/v1/conversations/"+request.ID+"/accept", alice, "", 404)
	jsonDo("POST", "/v1/conversations/"+request.ID+"/accept", bob, "", 200)
	jsonDo("POST", "/v1/conversations/nope/decline", bob, "", 404)

	cid := uuid.NewString()
	m := decodeJSON[parley.Message](t, jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", alice, `{"client_id":"`+cid+`","text":"hi"}`, 201))
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", alice, `{"client_id":"`+cid+`","text":"hi"}`, 200)
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", alice, `{"client_id":"`+uuid.NewString()+`","text":""}`, 400)

	// Replies, edits and reactions, before the history and events pages
	// below so that those carry reply_to, edited_at, reactions and the
	// new event types.
	msgs := "/v1/conversations/" + direct.ID + "/messages/"
	parent := decodeJSON[parley.Message](t, jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", alice, `{"client_id":"`+uuid.NewString()+`","text":"parent"}`, 201))
	reply := decodeJSON[parley.Message](t, jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", bob, `{"client_id":"`+uuid.NewString()+`","text":"a reply","reply_to":"`+parent.ID+`"}`, 201))
	if reply.ReplyTo == nil || reply.ReplyTo.MessageID != parent.ID {
		t.Fatalf("reply's reply_to = %+v, want a quote of %s", reply.ReplyTo, parent.ID)
	}
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", bob, `{"client_id":"`+uuid.NewString()+`","text":"x","reply_to":"nope"}`, 400)
	edited := decodeJSON[parley.Message](t, jsonDo("PATCH", msgs+parent.ID, alice, `{"client_id":"`+uuid.NewString()+`","text":"parent, edited"}`, 200))
	if edited.EditedAt == nil || edited.Text != "parent, edited" {
		t.Fatalf("edit answered %+v", edited)
	}
	jsonDo("PATCH", msgs+parent.ID, bob, `{"client_id":"`+uuid.NewString()+`","text":"not mine"}`, 403)
	jsonDo("PATCH", msgs+"nope", alice, `{"client_id":"`+uuid.NewString()+`","text":"no such message"}`, 404)
	const thumbsUp, heart = "%F0%9F%91%8D", "%E2%9D%A4"
	rr := decodeJSON[protocol.ReactResult](t, jsonDo("PUT", msgs+parent.ID+"/reactions/"+thumbsUp, bob, "", 200))
	if len(rr.Reactions) != 1 || rr.Reactions[0].Emoji != "👍" || rr.Reactions[0].Count != 1 || !rr.Reactions[0].Me {
		t.Fatalf("PUT reaction answered %+v", rr)
	}
	jsonDo("PUT", msgs+parent.ID+"/reactions/"+heart, alice, "", 200)
	jsonDo("DELETE", msgs+parent.ID+"/reactions/"+heart, alice, "", 200)
	jsonDo("DELETE", msgs+parent.ID+"/reactions/"+heart, alice, "", 200) // not held: changes nothing
	jsonDo("PUT", msgs+parent.ID+"/reactions/a", alice, "", 400)
	jsonDo("DELETE", msgs+"nope/reactions/"+thumbsUp, alice, "", 404)
	page := decodeJSON[parley.MessagePage](t, jsonDo("GET", "/v1/conversations/"+direct.ID+"/messages?limit=10", alice, "", 200))
	var sawReactions, sawQuote bool
	for _, pm := range page.Messages {
		sawReactions = sawReactions || (pm.ID == parent.ID && len(pm.Reactions) == 1 && pm.EditedAt != nil)
		sawQuote = sawQuote || (pm.ID == reply.ID && pm.ReplyTo != nil && pm.ReplyTo.Text == "parent, edited")
	}
	if !sawReactions || !sawQuote {
		t.Fatalf("history page lacks the reaction or the edited quote: %+v", page.Messages)
	}
	jsonDo("GET", "/v1/conversations/"+direct.ID+"/messages?after=0", alice, "", 200)
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/read", alice, `{"seq":1}`, 200)
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/typing", alice, `{"typing":true}`, 200)
	// Receipts and profiles, before the events page so that it carries
	// messageDelivered and profileUpdated.
	jsonDo("POST", "/v1/delivered", bob, `{"conversations":[{"conversation_id":"`+direct.ID+`","seq":2}]}`, 200)
	jsonDo("POST", "/v1/delivered", bob, `{"conversations":[]}`, 400)
	jsonDo("PATCH", "/v1/me", alice, `{"display_name":"Alice A."}`, 200)
	jsonDo("PATCH", "/v1/me", alice, `{"display_name":"evil\u202e"}`, 400)
	jsonDo("GET", "/v1/conversations?limit=1", alice, "", 200)
	jsonDo("GET", "/v1/events?after=0&limit=10", alice, "", 200)
	jsonDo("GET", "/v1/presence", alice, "", 200)
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", alice, `{"client_id":"`+uuid.NewString()+`","text":"a wombat for @bob"}`, 201)
	found := decodeJSON[parley.SearchPage](t, jsonDo("GET", "/v1/search?q=wombat&limit=5&conversation_id="+direct.ID, bob, "", 200))
	if len(found.Results) != 1 || len(found.Results[0].Highlight) == 0 {
		t.Fatalf("search: %+v", found)
	}
	jsonDo("GET", "/v1/search?q=", bob, "", 400)
	mentioned := decodeJSON[parley.SearchPage](t, jsonDo("GET", "/v1/mentions?limit=5", bob, "", 200))
	if len(mentioned.Results) != 1 || len(mentioned.Results[0].Message.Mentions) != 1 {
		t.Fatalf("mentions: %+v", mentioned)
	}

	var img bytes.Buffer
	pic := image.NewRGBA(image.Rect(0, 0, 8, 8))
	pic.Set(1, 1, color.RGBA{255, 0, 0, 255})
	if err := png.Encode(&img, pic); err != nil {
		t.Fatal(err)
	}
	a := do("POST", "/v1/uploads", alice, "image/png", img.Bytes())
	if a.status != 201 {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	att := decodeJSON[parley.Attachment](t, a.body)
	if a := do("POST", "/v1/uploads", alice, "application/octet-stream", []byte("not an image")); a.status != 415 {
		t.Fatalf("upload of text: %d %s", a.status, a.body)
	}
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", alice, `{"client_id":"`+uuid.NewString()+`","type":"image","attachment_id":"`+att.ID+`"}`, 201)
	if a := do("GET", "/v1/attachments/"+att.ID, alice, "", nil); a.status != 200 {
		t.Fatalf("attachment: %d", a.status)
	}
	link := decodeJSON[struct {
		ThumbURL string `json:"thumb_url"`
	}](t, jsonDo("POST", "/v1/attachments/"+att.ID+"/link", alice, "", 200))
	if a := do("GET", strings.TrimPrefix(link.ThumbURL, srv.URL), "", "", nil); a.status != 200 {
		t.Fatalf("thumb by signed link %s: %d", link.ThumbURL, a.status)
	}
	jsonDo("GET", "/v1/attachments/"+att.ID+"/thumb", alice, "", 200)
	// Ranges, validators and HEAD (RFC 9110), on both variants.
	for _, u := range []string{"/v1/attachments/" + att.ID, "/v1/attachments/" + att.ID + "/thumb"} {
		full := do("HEAD", u, alice, "", nil)
		if full.status != 200 || len(full.body) != 0 {
			t.Fatalf("HEAD %s: %d, %d bytes", u, full.status, len(full.body))
		}
		if a := do("GET", u, alice, "", nil, "Range", "bytes=0-3"); a.status != 206 || len(a.body) != 4 {
			t.Fatalf("GET %s with a Range: %d, %d bytes", u, a.status, len(a.body))
		}
		if a := do("GET", u, alice, "", nil, "Range", "bytes=100000-"); a.status != 416 {
			t.Fatalf("GET %s with a Range past the end: %d", u, a.status)
		}
		tag := full.header.Get("ETag")
		if a := do("GET", u, alice, "", nil, "If-None-Match", tag); a.status != 304 {
			t.Fatalf("GET %s with If-None-Match %s: %d", u, tag, a.status)
		}
		if a := do("GET", u, alice, "", nil, "If-Match", `"another"`); a.status != 412 {
			t.Fatalf("GET %s with If-Match of another tag: %d", u, a.status)
		}
		if a := do("HEAD", u, alice, "", nil, "Range", "bytes=0-3"); a.status != 206 {
			t.Fatalf("HEAD %s with a Range: %d", u, a.status)
		}
	}
	// A file: raw and multipart, sent, downloaded, linked; HTML is served inert.
	fa := do("POST", "/v1/files?name=notes.txt", alice, "text/plain", []byte("plain words"))
	if fa.status != 201 {
		t.Fatalf("file upload: %d %s", fa.status, fa.body)
	}
	f := decodeJSON[parley.Attachment](t, fa.body)
	jsonDo("POST", "/v1/conversations/"+direct.ID+"/messages", alice, `{"client_id":"`+uuid.NewString()+`","type":"file","attachment_id":"`+f.ID+`"}`, 201)
	if a := do("GET", "/v1/attachments/"+f.ID, bob, "", nil); a.status != 200 {
		t.Fatalf("file download: %d", a.status)
	}
	jsonDo("POST", "/v1/attachments/"+f.ID+"/link", bob, "", 200)
	jsonDo("GET", "/v1/attachments/"+f.ID+"/thumb", bob, "", 404)
	mpType, mpBody := multipartBody(t, "page.html", []byte("<html><script>alert(1)</script>"))
	if a := do("POST", "/v1/files", alice, mpType, mpBody); a.status != 201 {
		t.Fatalf("multipart file upload: %d %s", a.status, a.body)
	} else if h := decodeJSON[parley.Attachment](t, a.body); do("GET", "/v1/attachments/"+h.ID, alice, "", nil).status != 200 {
		t.Fatal("download of the HTML file")
	}
	jsonDo("PATCH", "/v1/me", alice, `{"avatar_id":"`+att.ID+`"}`, 200)
	jsonDo("DELETE", "/v1/conversations/"+direct.ID+"/messages/"+m.ID, alice, "", 200)

	// The server API, with an API key of every scope; errors: a user's
	// token (401), a key without the route's scope (403), and the
	// routes' own.
	_, key := newAPIKey(t, srv, auth.Scopes...)
	_, tokensOnly := newAPIKey(t, srv, auth.ScopeTokens)
	jsonDo("POST", "/v1/server/users", key, `{"id":"dave","name":"Dave"}`, 200)
	jsonDo("POST", "/v1/server/users", key, `{"id":"erin","name":"Erin"}`, 200)
	jsonDo("POST", "/v1/server/users", alice, `{"id":"dave","name":"Dave"}`, 401)
	jsonDo("POST", "/v1/server/users", tokensOnly, `{"id":"dave","name":"Dave"}`, 403)
	jsonDo("PATCH", "/v1/server/users/dave", key, `{"name":"Dave D"}`, 200)
	jsonDo("PATCH", "/v1/server/users/nobody", key, `{"name":"Nobody"}`, 404)
	jsonDo("POST", "/v1/server/users/dave/tokens", key, `{"ttl_seconds":60}`, 201)
	jsonDo("POST", "/v1/server/users/dave/tokens", key, `{}`, 201)
	jsonDo("POST", "/v1/server/users/dave/tokens", key, "", 201) // no body: {} (docs/protocol.md section 11)
	jsonDo("POST", "/v1/server/users/nobody/tokens", key, `{}`, 404)
	sg := decodeJSON[parley.Conversation](t, jsonDo("POST", "/v1/server/conversations", key, `{"kind":"group","created_by":"alice","title":"ops","member_ids":["bob"]}`, 201))
	jsonDo("POST", "/v1/server/conversations", key, `{"kind":"direct","created_by":"dave","member_ids":["alice"]}`, 201)
	jsonDo("POST", "/v1/server/conversations", key, `{"kind":"direct","created_by":"dave","member_ids":["alice","bob"]}`, 400)
	jsonDo("POST", "/v1/server/conversations/"+sg.ID+"/members", key, `{"as":"alice","user_ids":["dave"]}`, 200)
	jsonDo("POST", "/v1/server/conversations/"+sg.ID+"/members", key, `{"as":"carol","user_ids":["erin"]}`, 404)
	scid := uuid.NewString()
	sm := decodeJSON[parley.Message](t, jsonDo("POST", "/v1/server/conversations/"+sg.ID+"/messages", key, `{"as":"dave","client_id":"`+scid+`","text":"hello"}`, 201))
	jsonDo("POST", "/v1/server/conversations/"+sg.ID+"/messages", key, `{"as":"dave","client_id":"`+scid+`","text":"hello"}`, 200)
	jsonDo("POST", "/v1/server/conversations/"+sg.ID+"/messages", key, `{"as":"dave","client_id":"`+uuid.NewString()+`","text":"again"}`, 201)
	jsonDo("POST", "/v1/server/conversations/"+sg.ID+"/messages", key, `{"as":"carol","client_id":"`+uuid.NewString()+`","text":"not a member"}`, 404)
	jsonDo("DELETE", "/v1/server/conversations/"+sg.ID+"/messages/"+sm.ID, key, "", 200)
	jsonDo("DELETE", "/v1/server/conversations/"+sg.ID+"/messages/nope", key, "", 404)
	ex := decodeJSON[struct {
		Messages []parley.Message `json:"messages"`
	}](t, jsonDo("GET", "/v1/server/users/dave/export", key, "", 200))
	if len(ex.Messages) != 2 {
		t.Fatalf("dave's export holds %d messages, want 2", len(ex.Messages))
	}
	jsonDo("GET", "/v1/server/users/dave/export?after="+scid, key, "", 200)
	jsonDo("GET", "/v1/server/users/erin/export", key, "", 200) // sent nothing: messages is []
	jsonDo("GET", "/v1/server/users/nobody/export", key, "", 404)
	jsonDo("GET", "/v1/server/users/dave/conversations?limit=1", key, "", 200)
	jsonDo("GET", "/v1/server/users/nobody/conversations", key, "", 404)
	jsonDo("POST", "/v1/server/users/erin/ban", key, "", 200)
	jsonDo("POST", "/v1/server/users/erin/ban", key, "", 200) // idempotent
	jsonDo("POST", "/v1/server/users/erin/tokens", key, `{}`, 403)
	jsonDo("POST", "/v1/server/users/erin/ban", tokensOnly, "", 403)
	jsonDo("DELETE", "/v1/server/users/dave", key, "", 200)
	jsonDo("DELETE", "/v1/server/users/nobody", key, "", 404)

	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, srv.WSURL(), &websocket.DialOptions{HTTPClient: hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + alice}}})
	if err != nil {
		t.Fatal(err)
	}
	ws.CloseNow()

	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			vt.mu.Lock()
			got := vt.seen[op.OperationID]
			vt.mu.Unlock()
			if len(got) == 0 {
				t.Errorf("%s %s (%s): no answer validated", method, path, op.OperationID)
			}
		}
	}
}
