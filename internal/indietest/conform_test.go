package indietest

// Conformance checks of docs/protocol.md, one promise at a time, from a
// client written from the document alone: raw JSON over
// github.com/coder/websocket and net/http, nothing of the server's code.
// Each check names the section whose promise it holds the server to.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// confSecret is the server's token secret (`parley serve --secret`), so
// that the test mints tokens as an integrator does (section 1).
const confSecret = "conformance-secret-0123456789abcdef-0123456789"

// TestConformance starts one `parley serve` (a log of one shard, rate
// limits off) and checks the document's promises feature by feature.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parley binary")
	}
	bin, dir := buildParley(t), t.TempDir()
	hooks := newHookSink(t)
	srv := startServer(t, bin, dir, 0, "--secret="+confSecret,
		"--webhook=url="+hooks.url+",events=*,secret="+hookSecret, "--webhook-allow-private", "--reactions-per-second=-1",
		"--searches-per-second=-1", "--read-marks-per-second=-1", "--deletes-per-second=-1",
		"--typing-per-second=-1", "--presence-per-second=-1", "--uploads-per-second=-1")
	e := &env{addr: srv.Addr(), bin: bin, dir: dir, hooks: hooks}
	// Each check makes its own users and conversations, so they run at
	// once.
	t.Run("checks", func(t *testing.T) {
		for _, c := range conformance {
			t.Run(c.name, func(t *testing.T) { t.Parallel(); c.fn(t, e) })
		}
	})
}

// conformance lists the checks; each file of the package adds its own.
var conformance []struct {
	name string
	fn   func(*testing.T, *env)
}

func check(name string, fn func(*testing.T, *env)) bool {
	conformance = append(conformance, struct {
		name string
		fn   func(*testing.T, *env)
	}{name, fn})
	return true
}

// env is the server under test.
type env struct {
	addr     string
	bin, dir string       // the parley binary and the server's data dir
	hooks    *hookSink    // the server's webhook endpoint (section 13)
	n        atomic.Int64 // for unique names
}

func (e *env) unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, e.n.Add(1))
}

// mint makes a token as section 1 describes it: HS256 over
// {sub, name, iat, exp} with the server's secret.
func mint(id, name string) string {
	return mintWith(id, name, time.Now(), time.Now().Add(time.Hour))
}

func mintWith(id, name string, iat, exp time.Time) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": id, "name": name, "iat": iat.Unix(), "exp": exp.Unix()})
	body := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(confSecret))
	mac.Write([]byte(body))
	return body + "." + enc.EncodeToString(mac.Sum(nil))
}

// cl is one user with one WebSocket connection, driven by one test
// goroutine: do sends a request and reads until its answer, keeping the
// other frames (events, pongs) for expect.
type cl struct {
	t           *testing.T
	e           *env
	id, name    string
	token       string
	c           *wsConn
	welcome     json.RawMessage
	n           int
	buf         []frame
	frames      chan frame // from the connection's reader goroutine; closed when it ends
	stop        func()
	resumedSeen bool
	closeErr    error  // why the reader ended; read after frames is closed
	own         string // u's group of its own, for barrier
	muted       bool   // its muted flag, toggled by each barrier
}

// newUser mints a token for a new user (its id and name are the same
// unique string) and connects it: the hello creates the user.
func (e *env) newUser(t *testing.T, prefix string) *cl {
	t.Helper()
	name := e.unique(prefix)
	return e.connectAs(t, name, name, mint(name, name), nil)
}

// connectAs dials and says hello (protocol 1) with extra hello fields.
func (e *env) connectAs(t *testing.T, id, name, token string, extra map[string]any) *cl {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := dialWS(ctx, e.addr)
	if err != nil {
		t.Fatal(err)
	}
	data := map[string]any{"token": token}
	for k, v := range extra {
		data[k] = v
	}
	if err := c.write(ctx, request{Op: "hello", Data: data}); err != nil {
		t.Fatal(err)
	}
	f, err := c.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if f.Type != "welcome" {
		t.Fatalf("hello as %s: %s %s %v, want welcome", id, f.Type, f.Data, f.Error)
	}
	u := &cl{t: t, e: e, id: id, name: name, token: token, c: c, welcome: f.Data, frames: make(chan frame, 1024)}
	// A read whose context ends closes a coder/websocket connection, so
	// one goroutine reads with no deadline and the checks wait on its
	// channel. The heartbeat (section 4): a ping every 3 s keeps the
	// connection up however long a check waits.
	pctx, pcancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(u.frames)
		for {
			f, err := c.read(pctx)
			if err != nil {
				u.closeErr = err
				return
			}
			select {
			case u.frames <- f:
			case <-pctx.Done():
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		tk := time.NewTicker(3 * time.Second)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-pctx.Done():
				return
			case <-tk.C:
				c.write(pctx, request{Op: "ping", ID: "hb" + strconv.Itoa(i)})
			}
		}
	}()
	u.stop = func() { pcancel(); wg.Wait(); c.close() }
	t.Cleanup(u.stop)
	return u
}

// reconnect opens a new connection of the same user with extra hello
// fields; the old one stays open.
func (u *cl) reconnect(t *testing.T, extra map[string]any) *cl {
	t.Helper()
	return u.e.connectAs(t, u.id, u.name, u.token, extra)
}

// recv returns the next frame within d; ok is false on a timeout or a
// closed connection.
func (u *cl) recv(d time.Duration) (frame, bool) {
	select {
	case f, ok := <-u.frames:
		if ok && f.Type == "event" {
			var e ev
			json.Unmarshal(f.Data, &e)
			json.Unmarshal(f.Data, &e.raw)
			u.checkEvent(e)
		}
		return f, ok
	case <-time.After(d):
		return frame{}, false
	}
}

// req sends one request and returns its answer: the reply's data, or the
// error.
func (u *cl) req(op string, data any) (json.RawMessage, *wireError) {
	u.t.Helper()
	u.n++
	id := "q" + strconv.Itoa(u.n)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := u.c.write(ctx, request{Op: op, ID: id, Data: data}); err != nil {
		u.t.Fatalf("%s: write %s: %v", u.id, op, err)
	}
	for {
		f, ok := u.recv(15 * time.Second)
		if !ok {
			u.t.Fatalf("%s: %s: no answer (%v)", u.id, op, u.closeErr)
		}
		if f.ID == id && (f.Type == "reply" || f.Type == "error") {
			if f.Type == "error" {
				if f.Error == nil {
					u.t.Fatalf("%s: %s: error frame without error", u.id, op)
				}
				return nil, f.Error
			}
			return f.Data, nil
		}
		u.keep(f)
	}
}

func (u *cl) keep(f frame) {
	if f.Type == "pong" {
		return
	}
	if f.Type == "resumed" {
		u.resumedSeen = true
	}
	u.buf = append(u.buf, f)
}

// ok runs a request that must succeed and decodes its reply into out.
func (u *cl) ok(op string, data any, out any) json.RawMessage {
	u.t.Helper()
	b, werr := u.req(op, data)
	if werr != nil {
		u.t.Fatalf("%s: %s %v: %v", u.id, op, jsonString(data), werr)
	}
	if out != nil {
		// A fresh value: Unmarshal keeps the fields a reply leaves out.
		reflect.ValueOf(out).Elem().SetZero()
		if err := json.Unmarshal(b, out); err != nil {
			u.t.Fatalf("%s: %s reply %s: %v", u.id, op, b, err)
		}
	}
	return b
}

// fails runs a request that must fail with code; it returns the error.
func (u *cl) fails(op string, data any, code string) *wireError {
	u.t.Helper()
	b, werr := u.req(op, data)
	if werr == nil {
		u.t.Errorf("%s: %s %s: reply %s, want error %s", u.id, op, jsonString(data), b, code)
		return &wireError{}
	}
	if werr.Code != code {
		u.t.Errorf("%s: %s %s: error %v, want %s", u.id, op, jsonString(data), werr, code)
	}
	return werr
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// ev is an event frame's data (section 6) with its raw form.
type ev struct {
	Pos            int64           `json:"pos"`
	Type           string          `json:"type"`
	ConversationID string          `json:"conversation_id"`
	UserID         string          `json:"user_id"`
	UserName       string          `json:"user_name"`
	UserIDs        []string        `json:"user_ids"`
	Message        *wmsg           `json:"message"`
	MessageID      string          `json:"message_id"`
	Seq            int64           `json:"seq"`
	Emoji          string          `json:"emoji"`
	Count          *int            `json:"count"`
	ReadSeq        int64           `json:"read_seq"`
	DeliveredSeq   int64           `json:"delivered_seq"`
	Change         string          `json:"change"`
	Conversation   *conv           `json:"conversation"`
	Flags          map[string]bool `json:"flags"`
	Profile        map[string]any  `json:"profile"`
	Consent        string          `json:"consent"`
	raw            map[string]json.RawMessage
}

// expect returns the next kept or incoming event of type typ for which
// match (nil: any) holds, failing after 5 s; events passed over stay
// kept.
func (u *cl) expect(typ string, match func(ev) bool) ev {
	u.t.Helper()
	return u.expectWithin(typ, match, 5*time.Second)
}

// expectWithin is expect with a guard of d.
func (u *cl) expectWithin(typ string, match func(ev) bool, d time.Duration) ev {
	u.t.Helper()
	if e, ok := u.next(typ, match, d); ok {
		return e
	}
	u.t.Fatalf("%s: no %s event within %v (kept: %s)", u.id, typ, d, u.keptTypes())
	return ev{}
}

// none checks that no event of type typ matching match came. For a
// durable event it needs no wait: the log has one shard, so durable
// events reach a connection in position order, and u's own event made
// after the request that would have caused typ (barrier) comes after any
// such event. An ephemeral one (typing, presence) has no order with
// anything: for it none waits d.
func (u *cl) none(typ string, match func(ev) bool, d time.Duration) {
	u.t.Helper()
	switch typ {
	case "typingStarted", "typingStopped", "userOnline", "userOffline", "throttled":
	default:
		u.barrier()
		d = 0
	}
	if e, ok := u.next(typ, match, d); ok {
		u.t.Errorf("%s: unexpected %s event: %s", u.id, typ, mustJSON(e.raw))
	}
}

// barrier makes a durable event of u's own (flagsChanged on a group of u
// alone) and waits for it: every durable event for u with a lower
// position has arrived by then (section 3: in position order).
func (u *cl) barrier() {
	u.t.Helper()
	if u.own == "" {
		var c conv
		u.ok("create_group", map[string]any{"title": "barrier"}, &c)
		u.own = c.ID
		u.expect("conversationUpdated", func(e ev) bool { return e.ConversationID == c.ID })
	}
	u.muted = !u.muted
	u.ok("set_flags", map[string]any{"conversation_id": u.own, "muted": u.muted}, nil)
	u.expect("flagsChanged", func(e ev) bool { return e.ConversationID == u.own && e.Flags["muted"] == u.muted })
}

func (u *cl) keptTypes() string {
	var s []string
	for _, f := range u.buf {
		if f.Type == "event" {
			var e ev
			json.Unmarshal(f.Data, &e)
			s = append(s, e.Type)
		} else {
			s = append(s, f.Type)
		}
	}
	return strings.Join(s, ",")
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func (u *cl) next(typ string, match func(ev) bool, d time.Duration) (ev, bool) {
	u.t.Helper()
	var got ev
	_, ok := u.find(func(f frame) bool {
		if f.Type != "event" {
			return false
		}
		var e ev
		if err := json.Unmarshal(f.Data, &e); err != nil {
			u.t.Fatalf("event %s: %v", f.Data, err)
		}
		json.Unmarshal(f.Data, &e.raw)
		if e.Type != typ || (match != nil && !match(e)) {
			return false
		}
		got = e
		return true
	}, d)
	return got, ok
}

// find returns the first kept frame for which take holds (no longer
// kept), else the first such incoming one within d, keeping the others.
func (u *cl) find(take func(frame) bool, d time.Duration) (frame, bool) {
	for i, f := range u.buf {
		if take(f) {
			u.buf = append(u.buf[:i:i], u.buf[i+1:]...)
			return f, true
		}
	}
	deadline := time.Now().Add(d)
	for {
		f, ok := u.recv(time.Until(deadline))
		if !ok {
			return frame{}, false
		}
		if take(f) {
			return f, true
		}
		u.keep(f)
	}
}

// checkEvent holds every event a check reads to section 6's common
// fields: at; user_name beside user_id (but on presence); pos on the
// durable ones.
func (u *cl) checkEvent(e ev) {
	u.t.Helper()
	if _, ok := e.raw["at"]; !ok {
		u.t.Errorf("%s event without at: %s", e.Type, mustJSON(e.raw))
	}
	presence := e.Type == "userOnline" || e.Type == "userOffline"
	if e.UserID != "" && !presence && e.UserName == "" {
		u.t.Errorf("%s event with user_id and no user_name: %s", e.Type, mustJSON(e.raw))
	}
	ephemeral := presence || e.Type == "typingStarted" || e.Type == "typingStopped"
	if ephemeral != (e.Pos == 0) {
		u.t.Errorf("%s event at pos %d", e.Type, e.Pos)
	}
}

// frameOf waits for the next kept or incoming frame of type typ.
func (u *cl) frameOf(typ string, d time.Duration) (frame, bool) {
	return u.find(func(f frame) bool { return f.Type == typ }, d)
}

// drain forgets the kept frames and those arriving within d.
func (u *cl) drain(d time.Duration) {
	u.buf = nil
	u.next("-none-", nil, d)
	u.buf = nil
}

// Wire objects (section 5, Objects). Optional fields are pointers so a
// check can tell absent from zero; raw keeps the JSON for presence checks.

type wmsg struct {
	ID             string      `json:"id"`
	ConversationID string      `json:"conversation_id"`
	Seq            int64       `json:"seq"`
	SenderID       string      `json:"sender_id"`
	SenderName     string      `json:"sender_name"`
	ClientID       string      `json:"client_id"`
	Type           string      `json:"type"`
	Text           *string     `json:"text"`
	Attachment     *attachment `json:"attachment"`
	CreatedAt      string      `json:"created_at"`
	Deleted        bool        `json:"deleted"`
	DeletedAt      *string     `json:"deleted_at"`
	EditedAt       *string     `json:"edited_at"`
	ReplyTo        *quote      `json:"reply_to"`
	Reactions      []reaction  `json:"reactions"`
	Mentions       []string    `json:"mentions"`
}

func (m *wmsg) text() string {
	if m == nil || m.Text == nil {
		return ""
	}
	return *m.Text
}

type quote struct {
	MessageID  string  `json:"message_id"`
	Seq        int64   `json:"seq"`
	SenderID   *string `json:"sender_id"`
	SenderName *string `json:"sender_name"`
	Type       *string `json:"type"`
	Text       *string `json:"text"`
	Deleted    *bool   `json:"deleted"`
	Hidden     *bool   `json:"hidden"`
}

type reaction struct {
	Emoji string `json:"emoji"`
	Count int    `json:"count"`
	Me    *bool  `json:"me"`
}

type attachment struct {
	ID          string  `json:"id"`
	ContentType string  `json:"content_type"`
	Size        int64   `json:"size"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	Name        *string `json:"name"`
	URL         string  `json:"url"`
	ThumbURL    *string `json:"thumb_url"`
}

type member struct {
	UserID       string  `json:"user_id"`
	Name         string  `json:"name"`
	ReadSeq      int64   `json:"read_seq"`
	DeliveredSeq int64   `json:"delivered_seq"`
	Role         string  `json:"role"`
	DisplayName  *string `json:"display_name"`
	AvatarID     *string `json:"avatar_id"`
}

type conv struct {
	ID             string   `json:"id"`
	Kind           string   `json:"kind"`
	Title          string   `json:"title"`
	CreatedBy      string   `json:"created_by"`
	LastSeq        int64    `json:"last_seq"`
	LastActivityAt string   `json:"last_activity_at"`
	Members        []member `json:"members"`
	LastMessage    *wmsg    `json:"last_message"`
	UnreadCount    int      `json:"unread_count"`
	UnreadMentions int      `json:"unread_mentions"`
	ReadSeq        int64    `json:"read_seq"`
	Muted          bool     `json:"muted"`
	Archived       bool     `json:"archived"`
	Request        *string  `json:"request"`
}

func (c conv) member(id string) *member {
	for i := range c.Members {
		if c.Members[i].UserID == id {
			return &c.Members[i]
		}
	}
	return nil
}

type historyPage struct {
	Messages []wmsg `json:"messages"`
	HasMore  bool   `json:"has_more"`
	Next     *int64 `json:"next"`
}

// group makes a group of u and others and drains the creation's events
// from everyone.
func (u *cl) group(title string, others ...*cl) string {
	u.t.Helper()
	var ids []string
	for _, o := range others {
		ids = append(ids, o.id)
	}
	var c conv
	u.ok("create_group", map[string]any{"title": title, "member_ids": ids}, &c)
	for _, x := range append([]*cl{u}, others...) {
		x.expect("conversationUpdated", func(e ev) bool { return e.ConversationID == c.ID && e.Change == "created" })
	}
	return c.ID
}

// direct opens u's direct conversation with o.
func (u *cl) direct(o *cl) string {
	u.t.Helper()
	var c conv
	u.ok("create_direct", map[string]any{"user_id": o.id}, &c)
	return c.ID
}

// send sends text and returns the stored message.
func (u *cl) send(conversation, text string) wmsg {
	u.t.Helper()
	var m wmsg
	u.ok("send", map[string]any{"conversation_id": conversation, "client_id": u.e.unique("c-"), "text": text}, &m)
	return m
}

// history reads a page of the conversation.
func (u *cl) history(conversation string, extra map[string]any) historyPage {
	u.t.Helper()
	data := map[string]any{"conversation_id": conversation}
	for k, v := range extra {
		data[k] = v
	}
	var p historyPage
	u.ok("history", data, &p)
	return p
}

// conversation reads the conversation as u sees it.
func (u *cl) conversation(id string) conv {
	u.t.Helper()
	var c conv
	u.ok("conversation", map[string]any{"conversation_id": id}, &c)
	return c
}

// httpResp is an HTTP answer.
type httpResp struct {
	status int
	header http.Header
	body   []byte
}

func (r httpResp) errCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.body, &e)
	return e.Error.Code
}

// http sends a request to the server; body is JSON unless it is []byte.
func (e *env) http(t *testing.T, method, path, token string, body any, header ...string) httpResp {
	t.Helper()
	r, err := e.tryHTTP(method, path, token, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// tryHTTP is http returning the transport's error.
func (e *env) tryHTTP(method, path, token string, body any, header ...string) (httpResp, error) {
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
		ct = "application/octet-stream"
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, "http://"+e.addr+path, rd)
	if err != nil {
		return httpResp{}, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return httpResp{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return httpResp{status: resp.StatusCode, header: resp.Header, body: b}, nil
}
