package indietest

// A protocol-2 client written from docs/protocol.md alone: raw JSON frames
// over github.com/coder/websocket, nothing of the server's, the SDKs' or
// the protocol package's code. It keeps a cursor per shard, resends
// unacknowledged sends with their client ids, and records what it saw so
// the chaos test can judge the server against the document.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// request is a client frame (docs/protocol.md section 2).
type request struct {
	Op   string `json:"op"`
	ID   string `json:"id,omitempty"`
	Data any    `json:"data,omitempty"`
}

// frame is a server frame (section 2).
type frame struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Data  json.RawMessage `json:"data"`
	Error *wireError      `json:"error"`
}

type wireError struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMS int64  `json:"retry_after_ms"`
}

func (e *wireError) Error() string { return e.Code + ": " + e.Message }

// cursorJSON is the wire form of a cursor: shard number as a decimal
// string -> last position seen (section 3, "Protocol 2").
type cursorJSON map[string]int64

type welcomeData struct {
	User struct {
		ID string `json:"id"`
	} `json:"user"`
	Head                int64      `json:"head"`
	HeartbeatIntervalMS int64      `json:"heartbeat_interval_ms"`
	HeartbeatTimeoutMS  int64      `json:"heartbeat_timeout_ms"`
	Cursor              cursorJSON `json:"cursor"`
	Shards              int        `json:"shards"`
}

type resumedData struct {
	From   int64      `json:"from"`
	To     int64      `json:"to"`
	Count  int        `json:"count"`
	Cursor cursorJSON `json:"cursor"`
	Shards int        `json:"shards"`
}

type resyncData struct {
	Shard  int        `json:"shard"`
	Head   int64      `json:"head"`
	From   int64      `json:"from"`
	Cause  string     `json:"cause"`
	Lost   []int      `json:"lost"`
	Cursor cursorJSON `json:"cursor"`
	Shards int        `json:"shards"`
	Reason string     `json:"reason"`
}

type message struct {
	ID             string `json:"id"`
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
	SenderID       string `json:"sender_id"`
	ClientID       string `json:"client_id"`
	Text           string `json:"text"`
}

// event is the part of an Event (section 6) this client reads. Shard is a
// pointer so that an explicit `"shard": 0` (the doc says it is left out)
// can be told from an absent one.
type event struct {
	Pos            int64    `json:"pos"`
	Shard          *int     `json:"shard"`
	Type           string   `json:"type"`
	ConversationID string   `json:"conversation_id"`
	Message        *message `json:"message"`
}

// shard is the event's shard: 0 when "shard" is left out.
func (e event) shard() int {
	if e.Shard == nil {
		return 0
	}
	return *e.Shard
}

// parseCursor turns the wire cursor into shard -> position, checking the
// keys are decimal shard numbers below shards.
func parseCursor(c cursorJSON, shards int) (map[int]int64, error) {
	out := make(map[int]int64, len(c))
	for k, v := range c {
		s, err := strconv.Atoi(k)
		if err != nil || s < 0 || (shards > 0 && s >= shards) || strconv.Itoa(s) != k {
			return nil, fmt.Errorf("cursor key %q is not a shard of %d", k, shards)
		}
		if v <= 0 {
			return nil, fmt.Errorf("cursor entry %q=%d: the doc says entries at 0 are left out", k, v)
		}
		out[s] = v
	}
	return out, nil
}

// wireCursor is the sparse wire form of a cursor (shards at 0 left out).
func wireCursor(c map[int]int64) cursorJSON {
	out := cursorJSON{}
	for s, p := range c {
		if p > 0 {
			out[strconv.Itoa(s)] = p
		}
	}
	return out
}

// wsConn is one WebSocket connection with its raw TCP connection, so a
// test can cut it abruptly (RST, no close frame).
type wsConn struct {
	ws      *websocket.Conn
	raw     net.Conn
	tr      *http.Transport
	pending []frame // frames of a batched message not yet returned
	batches int     // messages that held more than one frame
}

// dialWS opens ws://addr/v1/ws. The transport is the connection's own
// and is closed with it, so no idle HTTP connection outlives the test.
func dialWS(ctx context.Context, addr string) (*wsConn, error) {
	c := &wsConn{}
	var mu sync.Mutex
	c.tr = &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err == nil {
				mu.Lock()
				c.raw = conn
				mu.Unlock()
			}
			return conn, err
		},
		DisableKeepAlives: true,
	}
	ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", &websocket.DialOptions{HTTPClient: &http.Client{Transport: c.tr}})
	if err != nil {
		c.tr.CloseIdleConnections()
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	c.ws = ws
	return c, nil
}

func (c *wsConn) write(ctx context.Context, r request) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

// read returns the next frame. A message of a connection that asked for
// batching may hold several frames separated by "\n" (section 2); one
// goroutine at a time reads.
func (c *wsConn) read(ctx context.Context) (frame, error) {
	if len(c.pending) == 0 {
		typ, b, err := c.ws.Read(ctx)
		if err != nil {
			return frame{}, err
		}
		if typ != websocket.MessageText {
			return frame{}, fmt.Errorf("server sent a %v message; section 2 says text", typ)
		}
		parts := bytes.Split(b, []byte("\n"))
		if len(parts) > 1 {
			c.batches++
		}
		for _, p := range parts {
			var f frame
			if err := json.Unmarshal(p, &f); err != nil {
				return frame{}, fmt.Errorf("frame %q: %w", p, err)
			}
			c.pending = append(c.pending, f)
		}
	}
	f := c.pending[0]
	c.pending = c.pending[1:]
	return f, nil
}

// cut drops the TCP connection with a reset: no close frame, as a lost
// network or a killed phone app would.
func (c *wsConn) cut() {
	if tc, ok := c.raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.raw.Close()
}

func (c *wsConn) close() {
	c.ws.CloseNow()
	c.tr.CloseIdleConnections()
}

// hello sends a hello with the given data and reads the answer: the
// welcome, or the error frame and the close status that follows it.
func hello(ctx context.Context, c *wsConn, data map[string]any) (welcomeData, error) {
	if err := c.write(ctx, request{Op: "hello", Data: data}); err != nil {
		return welcomeData{}, err
	}
	f, err := c.read(ctx)
	if err != nil {
		return welcomeData{}, err
	}
	switch f.Type {
	case "welcome":
		var w welcomeData
		if err := json.Unmarshal(f.Data, &w); err != nil {
			return w, err
		}
		return w, nil
	case "error":
		if f.Error == nil {
			return welcomeData{}, errors.New("error frame without error")
		}
		return welcomeData{}, &helloRefused{err: f.Error, status: closeStatus(ctx, c)}
	}
	return welcomeData{}, fmt.Errorf("first frame after hello is %q, want welcome", f.Type)
}

// helloRefused is a hello answered with an error frame and a close.
type helloRefused struct {
	err    *wireError
	status websocket.StatusCode
}

func (h *helloRefused) Error() string {
	return fmt.Sprintf("hello refused: %v, close %d", h.err, h.status)
}

// closeStatus reads on until the connection closes and returns its close
// code (-1 if it ended without one).
func closeStatus(ctx context.Context, c *wsConn) websocket.StatusCode {
	for {
		if _, err := c.read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

// planned is one send of a user's plan; msg is set once it is
// acknowledged (the reply to a send, section 5).
type planned struct {
	conv, clientID, text string
	sent                 bool // written on some connection
	msg                  *message
}

// stats are a user's counts, read by the test after the user stopped.
type stats struct {
	sessions, dialFails, helloFails, resumes, replayed int
	sends, resends                                     int
	stale, dups, reordered, gaps                       int // stale: a durable event at or below the cursor
	headsBelowCursor                                   int // welcome/resumed heads under the client's entry (allowed, never applied)
	resyncs                                            int
	cutsInHandshake                                    int // cuts before resumed: in hello, welcome or the replay
	cutsInReplay                                       int // armed cuts made in the middle of a replay
	batches                                            int // messages that held several frames
	sendErrors                                         map[string]int
}

// user is one chatting user of the chaos test: it connects, resumes with
// its cursor, sends its plan and records what it received.
//
// run is its only goroutine (and the ones run starts and joins); the
// fields are guarded by mu, and cut may be called from any goroutine.
type user struct {
	name, id, token string
	shards          int
	batch           bool   // ask for batching in hello (section 2)
	onAck           func() // a send was acknowledged for the first time
	onProgress      func() // an event was processed

	mu        sync.Mutex
	conn      *wsConn       // the connection of the session running, for cut
	live      bool          // the session's replay is over (resumed came)
	armed     int           // > 0: cut the next replay after this many events (armReplayCut)
	cursor    map[int]int64 // nil until the first welcome: the first hello sends {}
	plan      []planned
	recv      map[string][]message // conversation -> newMessages processed, in order
	seen      map[string]bool      // message ids processed
	posOf     map[string][2]int64  // message id -> {shard, pos} of its newMessage
	convShard map[string]int
	st        stats
	problems  []string
}

const sendWindow = 8 // sends in flight per connection

func (u *user) problemf(format string, args ...any) { // mu held
	if len(u.problems) < 40 {
		u.problems = append(u.problems, u.name+": "+fmt.Sprintf(format, args...))
	}
}

// cut resets the user's connection, if it has one now; it says whether
// there was one.
func (u *user) cut() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn == nil {
		return false
	}
	u.conn.cut()
	u.conn = nil // counted once; the session ends on its own
	if !u.live {
		u.st.cutsInHandshake++
	}
	return true
}

// armReplayCut makes the user cut its next connection in the middle of
// its replay, after n replayed events, so that resumes are interrupted
// too (a cut from outside rarely lands in a replay: they are short).
func (u *user) armReplayCut(n int) {
	u.mu.Lock()
	u.armed = n
	u.mu.Unlock()
}

// run connects, and reconnects after every failure, until ctx ends.
func (u *user) run(ctx context.Context, addr func() string) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		if u.session(ctx, addr()) {
			attempt = 0
		}
		// Backoff: short, so the test is quick; reconnect at once after
		// a session that got going.
		d := time.Duration(10*(1+min(attempt, 20))) * time.Millisecond
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
}

// sessionState is one connection's own state, guarded by user.mu.
type sessionState struct {
	next, inflight int
	sent           map[int]int64 // the cursor sent in hello
	heads          map[int]int64 // the welcome's cursor
	resumed        bool
	replayed       int
	lastShard0     int64         // pos of the last replayed event of shard 0
	wake           chan struct{} // a reply freed a window slot
}

// session runs one connection until it fails; it says whether the hello
// was answered with a welcome.
func (u *user) session(ctx context.Context, addr string) bool {
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	c, err := dialWS(dctx, addr)
	u.mu.Lock()
	if err != nil {
		u.st.dialFails++
		u.mu.Unlock()
		return false
	}
	defer c.close()
	u.conn = c
	u.live = false
	u.st.sessions++
	ss := &sessionState{sent: map[int]int64{}, wake: make(chan struct{}, 1)}
	cur := cursorJSON{} // first connection: replay from the start of every shard
	if u.cursor != nil {
		cur = wireCursor(u.cursor)
	}
	for s, p := range u.cursor {
		ss.sent[s] = p
	}
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.conn = nil
		u.mu.Unlock()
	}()

	w, err := hello(dctx, c, map[string]any{"token": u.token, "protocol": 2, "cursor": cur, "batch": u.batch})
	if err != nil {
		u.mu.Lock()
		u.st.helloFails++
		var ref *helloRefused
		if errors.As(err, &ref) && ctx.Err() == nil {
			u.problemf("hello refused: %v", err)
		}
		u.mu.Unlock()
		return false
	}
	if !u.welcome(w, ss) {
		return true
	}

	sctx, scancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); u.sender(sctx, c, ss) }()
	go func() { defer wg.Done(); pinger(sctx, c, time.Duration(w.HeartbeatIntervalMS)*time.Millisecond) }()
	u.reader(sctx, c, ss, time.Duration(w.HeartbeatTimeoutMS)*time.Millisecond)
	scancel()
	c.ws.CloseNow() // unblocks a write in progress
	wg.Wait()
	u.mu.Lock()
	u.st.batches += c.batches
	u.mu.Unlock()
	return true
}

// welcome checks the welcome against section 3 and records its heads.
func (u *user) welcome(w welcomeData, ss *sessionState) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if w.Shards != u.shards {
		u.problemf("welcome.shards = %d, want %d", w.Shards, u.shards)
	}
	heads, err := parseCursor(w.Cursor, w.Shards)
	if err != nil {
		u.problemf("welcome: %v", err)
		return false
	}
	if w.Head != heads[0] {
		u.problemf("welcome.head = %d, want shard 0's head %d", w.Head, heads[0])
	}
	if u.cursor == nil {
		u.cursor = map[int]int64{}
	}
	for s, p := range u.cursor {
		if heads[s] < p {
			u.st.headsBelowCursor++
		}
	}
	ss.heads = heads
	if u.id == "" {
		u.id = w.User.ID
	}
	if w.HeartbeatIntervalMS <= 0 || w.HeartbeatTimeoutMS <= 0 {
		u.problemf("welcome heartbeat %d/%d ms", w.HeartbeatIntervalMS, w.HeartbeatTimeoutMS)
		return false
	}
	return true
}

// sender writes the plan's unacknowledged sends in order, at most
// sendWindow in flight, until all are written or ctx ends.
func (u *user) sender(ctx context.Context, c *wsConn, ss *sessionState) {
	for {
		u.mu.Lock()
		for ss.next < len(u.plan) && u.plan[ss.next].msg != nil {
			ss.next++
		}
		if ss.next >= len(u.plan) {
			u.mu.Unlock()
			return
		}
		if ss.inflight >= sendWindow {
			u.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-ss.wake:
			}
			continue
		}
		i := ss.next
		p := &u.plan[i]
		ss.next++
		ss.inflight++
		u.st.sends++
		if p.sent {
			u.st.resends++ // same client_id as before: section 5, send is idempotent
		}
		p.sent = true
		req := request{Op: "send", ID: "s" + strconv.Itoa(i), Data: map[string]any{
			"conversation_id": p.conv, "client_id": p.clientID, "text": p.text}}
		u.mu.Unlock()
		if err := c.write(ctx, req); err != nil {
			c.ws.CloseNow()
			return
		}
	}
}

// pinger sends the application heartbeat (section 4).
func pinger(ctx context.Context, c *wsConn, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.write(ctx, request{Op: "ping", ID: "p" + strconv.Itoa(n)}); err != nil {
				return
			}
		}
	}
}

// reader handles frames until the connection fails, a send fails, or a
// frame breaks the contract badly enough that going on means nothing.
func (u *user) reader(ctx context.Context, c *wsConn, ss *sessionState, silence time.Duration) {
	for {
		rctx, cancel := context.WithTimeout(ctx, silence) // a silent link is dead (section 4)
		f, err := c.read(rctx)
		cancel()
		if err != nil {
			return
		}
		if !u.handle(f, ss) {
			return
		}
	}
}

func (u *user) handle(f frame, ss *sessionState) bool {
	switch f.Type {
	case "pong", "throttled", "unthrottled", "goaway":
		return true
	case "reply":
		return u.reply(f, ss)
	case "error":
		u.mu.Lock()
		defer u.mu.Unlock()
		if f.Error == nil || len(f.ID) < 2 || f.ID[0] != 's' {
			u.problemf("error frame %q %+v", f.ID, f.Error)
			return false
		}
		if u.st.sendErrors == nil {
			u.st.sendErrors = map[string]int{}
		}
		u.st.sendErrors[f.Error.Code]++
		switch f.Error.Code {
		case "unavailable", "rate_limited", "internal": // errors a client retries (section 9)
		default:
			u.problemf("send %s: %v", f.ID, f.Error)
		}
		return false // reconnect and resend from the first unacknowledged one
	case "event":
		return u.event(f, ss)
	case "resumed":
		var r resumedData
		if err := json.Unmarshal(f.Data, &r); err != nil {
			u.mu.Lock()
			u.problemf("resumed %s: %v", f.Data, err)
			u.mu.Unlock()
			return false
		}
		return u.resumed(r, ss)
	case "resync":
		u.mu.Lock()
		defer u.mu.Unlock()
		u.st.resyncs++
		u.problemf("unexpected resync %s", f.Data)
		return false
	}
	u.mu.Lock()
	u.problemf("unknown frame type %q", f.Type)
	u.mu.Unlock()
	return true
}

func (u *user) reply(f frame, ss *sessionState) bool {
	var m message
	err := json.Unmarshal(f.Data, &m)
	i, aerr := strconv.Atoi(f.ID[min(1, len(f.ID)):])
	u.mu.Lock()
	if err != nil || aerr != nil || len(f.ID) < 2 || f.ID[0] != 's' || i >= len(u.plan) {
		u.problemf("reply %q %s", f.ID, f.Data)
		u.mu.Unlock()
		return false
	}
	p := &u.plan[i]
	if m.ClientID != p.clientID || m.ConversationID != p.conv || m.Seq < 1 {
		u.problemf("reply to %s is %+v, want client_id %s in %s", f.ID, m, p.clientID, p.conv)
	}
	first := p.msg == nil
	if first {
		p.msg = &m
	} else if p.msg.ID != m.ID || p.msg.Seq != m.Seq {
		u.problemf("client_id %s acknowledged twice as %s#%d and %s#%d", p.clientID, p.msg.ID, p.msg.Seq, m.ID, m.Seq)
	}
	ss.inflight--
	u.mu.Unlock()
	select {
	case ss.wake <- struct{}{}:
	default:
	}
	if first {
		u.onAck()
	}
	return true
}

// event applies a durable event by the client's rule of section 3: drop
// it when its pos is at or below cursor[shard], else move the entry up.
func (u *user) event(f frame, ss *sessionState) bool {
	var e event
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(f.Data, &e); err != nil || json.Unmarshal(f.Data, &raw) != nil {
		u.mu.Lock()
		u.problemf("event %s: %v", f.Data, err)
		u.mu.Unlock()
		return false
	}
	if e.Pos == 0 {
		return true // typing, presence: not durable
	}
	defer u.onProgress()
	u.mu.Lock()
	defer u.mu.Unlock()
	s := 0
	if e.Shard != nil {
		s = *e.Shard
		if s == 0 {
			u.problemf("event carries \"shard\": 0; the doc says it is left out when 0")
		}
	}
	if s < 0 || s >= u.shards {
		u.problemf("event in shard %d of %d", s, u.shards)
		return false
	}
	if !ss.resumed {
		ss.replayed++
		if s == 0 {
			ss.lastShard0 = e.Pos
		}
		if u.armed > 0 && ss.replayed == u.armed && u.conn != nil {
			u.armed = 0
			u.conn.cut()
			u.conn = nil
			u.st.cutsInReplay++
		}
		if e.Pos > ss.heads[s] {
			u.problemf("replayed event %d:%d beyond the welcome's head %d", s, e.Pos, ss.heads[s])
		}
	} else if e.Pos <= ss.heads[s] {
		u.problemf("live event %d:%d at or below the welcome's head %d", s, e.Pos, ss.heads[s])
	}
	if e.Pos <= u.cursor[s] {
		u.st.stale++
		if u.st.stale <= 5 {
			u.problemf("server sent event %d:%d (%s) at or below the cursor %d", s, e.Pos, e.Type, u.cursor[s])
		}
		return true
	}
	u.cursor[s] = e.Pos
	if e.ConversationID != "" {
		if old, ok := u.convShard[e.ConversationID]; ok && old != s {
			u.problemf("conversation %s in shards %d and %d", e.ConversationID, old, s)
		}
		u.convShard[e.ConversationID] = s
	}
	if e.Type != "newMessage" {
		return true
	}
	m := e.Message
	if m == nil || m.ConversationID != e.ConversationID {
		u.problemf("newMessage without its message: %s", f.Data)
		return false
	}
	if u.seen[m.ID] {
		u.st.dups++
		return true
	}
	u.seen[m.ID] = true
	u.posOf[m.ID] = [2]int64{int64(s), e.Pos}
	list := u.recv[m.ConversationID]
	var last int64
	if len(list) > 0 {
		last = list[len(list)-1].Seq
	}
	switch {
	case m.Seq <= last:
		u.st.reordered++
	case m.Seq > last+1:
		u.st.gaps++
	}
	u.recv[m.ConversationID] = append(list, *m)
	return true
}

// resumed ends a replay: check its figures and move each cursor entry up
// to the frame's, never back.
func (u *user) resumed(r resumedData, ss *sessionState) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ss.resumed {
		u.problemf("a second resumed on one connection")
	}
	ss.resumed = true
	u.live = true
	u.st.resumes++
	u.st.replayed += ss.replayed
	h, err := parseCursor(r.Cursor, r.Shards)
	if err != nil || r.Shards != u.shards {
		u.problemf("resumed %+v: %v", r, err)
		return false
	}
	if r.From != ss.sent[0] {
		u.problemf("resumed.from = %d, want shard 0's entry of the hello's cursor %d", r.From, ss.sent[0])
	}
	if want := max(ss.lastShard0, ss.sent[0]); r.To != want {
		u.problemf("resumed.to = %d, want the last replayed pos of shard 0 or from: %d", r.To, want)
	}
	if r.Count != ss.replayed {
		u.problemf("resumed.count = %d, but %d durable events were replayed", r.Count, ss.replayed)
	}
	for s, p := range h {
		if p != ss.heads[s] {
			u.problemf("resumed.cursor[%d] = %d, welcome's %d", s, p, ss.heads[s])
		}
		if p > u.cursor[s] {
			u.cursor[s] = p
		} else if p < u.cursor[s] {
			u.st.headsBelowCursor++
		}
	}
	return true
}
