package server

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// maxBodyBytes bounds a JSON request body, like a WebSocket frame.
const maxBodyBytes = parley.MaxFrameBytes

// routeMux is a ServeMux that remembers its patterns, so a test can hold
// the OpenAPI document (openapi.json) to the routes actually served.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

//go:embed openapi.json
var openapiJSON []byte

// handleOpenAPI serves the OpenAPI 3.1 description of this API
// (openapi.json, checked against the routes by TestOpenAPI*).
func handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(openapiJSON)
}

func (s *Server) routes() *routeMux {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	mux.HandleFunc("GET /v1/openapi.json", handleOpenAPI)
	mux.HandleFunc("GET "+protocol.Path, s.serveWS)
	mux.HandleFunc("POST /v1/auth/register", s.handleRegister)
	mux.HandleFunc("POST /v1/auth/login", s.handleLogin)
	mux.HandleFunc("GET /v1/me", s.authed(s.handleMe))
	mux.HandleFunc("GET /v1/users/{name}", s.authed(s.handleUser))
	mux.HandleFunc("GET /v1/conversations", s.authed(s.handleConversations))
	mux.HandleFunc("POST /v1/conversations/direct", s.authed(s.handleCreateDirect))
	mux.HandleFunc("POST /v1/conversations/group", s.authed(s.handleCreateGroup))
	mux.HandleFunc("GET /v1/conversations/{id}", s.authed(s.handleConversation))
	mux.HandleFunc("PATCH /v1/conversations/{id}", s.authed(s.handleUpdateConversation))
	mux.HandleFunc("PATCH /v1/conversations/{id}/flags", s.authed(s.handleSetFlags))
	mux.HandleFunc("GET /v1/conversations/{id}/messages", s.authed(s.handleHistory))
	mux.HandleFunc("POST /v1/conversations/{id}/messages", s.authed(s.handleSend))
	mux.HandleFunc("DELETE /v1/conversations/{id}/messages/{mid}", s.authed(s.handleDelete))
	mux.HandleFunc("PATCH /v1/conversations/{id}/messages/{mid}", s.authed(s.handleEdit))
	mux.HandleFunc("PUT /v1/conversations/{id}/messages/{mid}/reactions/{emoji}", s.authed(s.handleReact(false)))
	mux.HandleFunc("DELETE /v1/conversations/{id}/messages/{mid}/reactions/{emoji}", s.authed(s.handleReact(true)))
	mux.HandleFunc("POST /v1/conversations/{id}/read", s.authed(s.handleRead))
	mux.HandleFunc("POST /v1/conversations/{id}/typing", s.authed(s.handleTyping))
	mux.HandleFunc("GET /v1/events", s.authed(s.handleEvents))
	mux.HandleFunc("GET /v1/presence", s.authed(s.handlePresence))
	mux.HandleFunc("GET /v1/search", s.authed(s.handleSearch))
	mux.HandleFunc("GET /v1/mentions", s.authed(s.handleMentions))
	s.uploadRoutes(mux)
	s.receiptRoutes(mux)
	s.serverAPIRoutes(mux)
	s.consentRoutes(mux)
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, parley.ErrNotFound)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	s.metricsRoute(mux)
	if s.cfg.Static != nil {
		mux.Handle("/", s.cfg.Static)
	}
	return mux
}

// clientIP is the peer's IP. X-Forwarded-For is ignored on purpose: it is
// the client's to forge unless a trusted proxy sets it.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

type authedHandler func(w http.ResponseWriter, r *http.Request, u parley.User)

// authed checks the bearer token before h runs.
func (s *Server) authed(h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok, _ := bearer(r)
		u, err := s.svc.authenticate(r.Context(), tok)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
			s.writeError(w, err)
			return
		}
		h(w, r, u)
	}
}

// decodeBody reads a JSON object body into v: ETOOLARGE over the limit,
// EBADJSON for bytes that are not UTF-8 JSON, EINVALID for wrong types.
// An empty body is {}, as a request frame's missing data is, so a route
// whose fields are all optional (a token's ttl_seconds) takes none.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return parley.Errorf(parley.ETOOLARGE, "body is larger than %d bytes", maxBodyBytes)
	} else if err != nil {
		return parley.Errorf(parley.EINVALID, "reading body: %v", err)
	}
	return decodeJSON(b, v)
}

// serveBody serves a route whose request is a JSON body of type T: it
// decodes the body, lets fill (when set) add what the path names, runs op
// (a service method) and replies with status, or with the error.
func serveBody[T, R any](s *Server, w http.ResponseWriter, r *http.Request, u parley.User, status int,
	op func(context.Context, parley.User, T) (R, error), fill func(*T)) {
	var d T
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, err)
		return
	}
	if fill != nil {
		fill(&d)
	}
	v, err := op(r.Context(), u, d)
	s.reply(w, status, v, err)
}

func decodeJSON(b []byte, v any) error {
	if !utf8.Valid(b) {
		return parley.Errorf(parley.EBADJSON, "body is not valid UTF-8")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		b = []byte("{}")
	}
	if b[0] != '{' || !json.Valid(b) {
		return parley.Errorf(parley.EBADJSON, "body must be a JSON object")
	}
	return protocol.DecodeData(b, v)
}

// reply writes v, or err as an error response.
func (s *Server) reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		s.writeError(w, err)
		return
	}
	writeJSON(w, status, v)
}

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	s.serveCredentials(w, r, http.StatusCreated, s.svc.register)
}

func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	s.serveCredentials(w, r, http.StatusOK, s.svc.login)
}

// serveCredentials decodes a username and password and answers with what
// op (register or login, charged to the client's IP) returns.
func (s *Server) serveCredentials(w http.ResponseWriter, r *http.Request, status int,
	op func(ctx context.Context, ip string, c credentials) (authResult, error)) {
	var c credentials
	if err := decodeBody(w, r, &c); err != nil {
		s.writeError(w, err)
		return
	}
	res, err := op(r.Context(), clientIP(r), c)
	s.reply(w, status, res, err)
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request, u parley.User) {
	full, err := s.svc.me(r.Context(), u)
	s.reply(w, http.StatusOK, full, err)
}

func (s *Server) handleUser(w http.ResponseWriter, r *http.Request, u parley.User) {
	v, err := s.svc.userByName(r.Context(), u, r.PathValue("name"))
	s.reply(w, http.StatusOK, v, err)
}

func (s *Server) handleConversations(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveQuery(s, w, r, u, conversationsQuery, s.svc.conversations)
}

// conversationsQuery reads a conversations page's query: ?cursor=&limit=.
func conversationsQuery(q *query) protocol.Conversations {
	return protocol.Conversations{Cursor: q.str("cursor"), Limit: q.limit(MaxConversationsPage)}
}

func (s *Server) handleCreateDirect(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveBody(s, w, r, u, http.StatusOK, s.svc.createDirect, nil)
}

func (s *Server) handleCreateGroup(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveBody(s, w, r, u, http.StatusCreated, s.svc.createGroup, nil)
}

func (s *Server) handleConversation(w http.ResponseWriter, r *http.Request, u parley.User) {
	v, err := s.svc.conversation(r.Context(), u, r.PathValue("id"))
	s.reply(w, http.StatusOK, v, err)
}

func (s *Server) handleUpdateConversation(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveBody(s, w, r, u, http.StatusOK, s.svc.updateConversation, func(d *protocol.UpdateConversation) { d.ConversationID = r.PathValue("id") })
}

func (s *Server) handleSetFlags(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveBody(s, w, r, u, http.StatusOK, s.svc.setFlags, func(d *protocol.SetFlags) { d.ConversationID = r.PathValue("id") })
}

// query reads a request's query parameters for a handler. The first one
// that does not parse is kept in err and the reads after it give zero
// values, so a handler reads them all and then checks err once.
type query struct {
	v   url.Values
	err error
}

func readQuery(r *http.Request) *query { return &query{v: r.URL.Query()} }

// serveQuery answers a GET route whose request is its query string, as
// runOp and capped do for an op: read makes the request (a bad parameter
// is 400 invalid, op not called), op runs it with the HTTP reply cap.
func serveQuery[T, R any](s *Server, w http.ResponseWriter, r *http.Request, u parley.User,
	read func(q *query) T, op func(context.Context, parley.User, T, int) (R, error)) {
	q := readQuery(r)
	d := read(q)
	if q.err != nil {
		s.writeError(w, q.err)
		return
	}
	v, err := op(r.Context(), u, d, s.httpReplyBytes())
	s.reply(w, http.StatusOK, v, err)
}

// str returns a text parameter as given ("" when absent).
func (q *query) str(name string) string { return q.v.Get(name) }

// int reads an integer parameter; absent is 0.
func (q *query) int(name string) int64 {
	v := q.v.Get(name)
	if v == "" || q.err != nil {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		q.err = parley.Errorf(parley.EINVALID, "%s must be an integer", name)
		return 0
	}
	return n
}

// limit reads the limit parameter (absent is 0); one above max reads as
// max+1, which the service refuses with its usual message, so a huge
// value neither overflows int nor gets a message of its own.
func (q *query) limit(max int) int {
	return int(min(q.int("limit"), int64(max)+1))
}

// cursor reads an integer parameter that may be absent or empty (nil),
// which is not the same as 0.
func (q *query) cursor(name string) *int64 {
	if q.v.Get(name) == "" {
		return nil
	}
	n := q.int(name)
	return &n
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request, u parley.User) {
	// A cursor given as 0 is not one left out (after=0 is "from the
	// start"): read them as pointers, as the WebSocket op does.
	serveQuery(s, w, r, u, func(q *query) protocol.History {
		return protocol.History{ConversationID: r.PathValue("id"),
			Before: q.cursor("before"), After: q.cursor("after"), Limit: q.limit(parley.MaxPageLimit)}
	}, s.svc.history)
}

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request, u parley.User) {
	start := time.Now()
	defer func() { s.metrics.obs.sendAckHTTP.Observe(sinceSeconds(start)) }()
	var d protocol.Send
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, err)
		return
	}
	d.ConversationID = r.PathValue("id")
	m, created, err := s.svc.send(r.Context(), u, clientIP(r), d)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	s.reply(w, status, m, err)
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request, u parley.User) {
	v, err := s.svc.deleteMessage(r.Context(), u, protocol.Delete{
		ConversationID: r.PathValue("id"), MessageID: r.PathValue("mid")})
	s.reply(w, http.StatusOK, v, err)
}

func (s *Server) handleEdit(w http.ResponseWriter, r *http.Request, u parley.User) {
	var d protocol.Edit
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, err)
		return
	}
	d.ConversationID, d.MessageID, d.MessageClientID = r.PathValue("id"), r.PathValue("mid"), ""
	v, err := s.svc.edit(r.Context(), u, clientIP(r), d)
	s.reply(w, http.StatusOK, v, err)
}

// handleReact adds (PUT) or removes (DELETE) the caller's reaction named
// by the path's last segment, the emoji percent-encoded.
func (s *Server) handleReact(remove bool) func(http.ResponseWriter, *http.Request, parley.User) {
	return func(w http.ResponseWriter, r *http.Request, u parley.User) {
		v, err := s.svc.react(r.Context(), u, protocol.React{ConversationID: r.PathValue("id"),
			MessageID: r.PathValue("mid"), Emoji: r.PathValue("emoji"), Remove: remove})
		s.reply(w, http.StatusOK, v, err)
	}
}

func (s *Server) handleRead(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveBody(s, w, r, u, http.StatusOK, s.svc.read, func(d *protocol.Read) { d.ConversationID = r.PathValue("id") })
}

func (s *Server) handleTyping(w http.ResponseWriter, r *http.Request, u parley.User) {
	var d protocol.Typing
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, err)
		return
	}
	d.ConversationID = r.PathValue("id")
	err := s.svc.typing(r.Context(), u, d)
	s.reply(w, http.StatusOK, struct{}{}, err)
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, u parley.User) {
	q := readQuery(r)
	after, limit, shard := q.int("after"), q.limit(MaxEventsPage), q.int("shard")
	if q.err != nil {
		s.writeError(w, q.err)
		return
	}
	if shard < 0 || shard >= parley.MaxShards {
		s.writeError(w, parley.Errorf(parley.EINVALID, "shard %d is out of range", shard))
		return
	}
	v, err := s.svc.events(r.Context(), u, int(shard), after, limit, s.httpReplyBytes())
	s.reply(w, http.StatusOK, v, err)
}

func (s *Server) handlePresence(w http.ResponseWriter, r *http.Request, u parley.User) {
	v, err := s.svc.presence(r.Context(), u)
	s.reply(w, http.StatusOK, v, err)
}

// writeHealther is a store that knows whether its writes fail for a
// reason of its own (disk full, I/O error): both stores are.
type writeHealther interface {
	// WriteErr is the last such failure while it lasts, nil when writes
	// work; it has code parley.EUNAVAILABLE and a RetryAfter.
	WriteErr() error
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		s.writeError(w, parley.Errorf(parley.EUNAVAILABLE, "shutting down"))
		return
	}
	if err := s.ready.storeErr(r.Context(), s.store); err != nil {
		s.log.Warn("readyz: store", "err", err)
		s.writeError(w, parley.Errorf(parley.EUNAVAILABLE, "store unavailable"))
		return
	}
	// A store that answers reads may still be unable to write (a full
	// disk): not ready until a write commits again (see batchq.WriteHealth).
	if ws, ok := s.store.(writeHealther); ok {
		if err := ws.WriteErr(); err != nil {
			s.writeError(w, err)
			return
		}
	}
	// A node cut off from the broker serves what it can (writes, ordered
	// by the store, reach its own connections by the hub's store poll)
	// but not at the cluster's speed: not ready, so new clients go to a
	// node that has the broker.
	if lb, ok := s.broker.(linkHealther); ok {
		if err := lb.LinkErr(); err != nil {
			s.log.Warn("readyz: broker", "err", err)
			s.writeError(w, parley.Errorf(parley.EUNAVAILABLE, "broker unreachable"))
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// readyTTL is how long /readyz's answer of the store is reused.
const readyTTL = time.Second

// readyCheck is /readyz's read of the store, made at most once every
// readyTTL whatever the number of requests: /readyz needs no token, and
// each request was a store read, so anyone could load the store (and
// hold PostgreSQL's connections) at the rate they could send requests.
// Requests that come while a read is under way wait for it (at most its
// 2 s). Safe for concurrent use; the zero value is ready to use.
type readyCheck struct {
	mu  sync.Mutex // held for a read: the requests that come meanwhile wait for it
	at  time.Time  // when err was read; zero: never
	err error
}

// storeErr is the store's answer to a read of its head (nil when it
// answered), read at most once every readyTTL. The read does not end
// with the request that made it: its answer is every request's.
func (c *readyCheck) storeErr(ctx context.Context, st parley.Store) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < readyTTL {
		return c.err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	_, c.err = st.Head(ctx)
	c.at = time.Now()
	return c.err
}

// linkHealther is a broker that knows whether this node is connected to
// the others (natsbroker is; the in-process broker always is).
type linkHealther interface {
	// LinkErr is nil while the link is up.
	LinkErr() error
}

// accept upgrades r to a WebSocket on the configured transport
// (Config.Transport), refusing a foreign Origin with 403.
func (s *Server) accept(w http.ResponseWriter, r *http.Request) (transport, error) {
	if s.cfg.Transport == TransportCoder {
		return acceptCoder(w, r, s.cfg.AllowedOrigins)
	}
	return upgradeWS(w, r, s.cfg.AllowedOrigins, s.poller)
}

// serveWS upgrades to a WebSocket and runs the connection on a goroutine
// of its own (tracked by connWG for Shutdown).
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	if s.closing.Load() {
		s.writeError(w, &parley.Error{Code: parley.EUNAVAILABLE, Message: "shutting down", RetryAfter: s.reconnectDelay()})
		return
	}
	ip := clientIP(r)
	if err := s.limits.connects.check(ip); err != nil {
		s.writeError(w, err)
		return
	}
	var pre *parley.User
	if tok, ok := bearer(r); ok {
		u, err := s.svc.authenticate(r.Context(), tok)
		if err != nil {
			s.writeError(w, err)
			return
		}
		pre = &u
	}
	// The HTTP timeouts (ReadTimeout, WriteTimeout) end at the upgrade:
	// net/http's Hijack clears the socket's deadlines (net/http
	// server.go, conn.hijackLocked), and the heartbeat bounds the
	// WebSocket instead (HeartbeatTimeout, 4002).
	// TestHostileWebSocketOutlivesHTTPTimeouts holds this.
	t, err := s.accept(w, r)
	if err != nil {
		s.log.Debug("websocket upgrade refused", "ip", ip, "err", err)
		return // the upgrade wrote the response (403 for a foreign Origin)
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		t.Close(protocol.CloseShutdown, "server shutting down")
		t.CloseNow()
		return
	}
	s.connWG.Add(1)
	s.mu.Unlock()
	// The connection is served on a goroutine of its own and net/http's
	// returns now: until its handler returns, net/http keeps the
	// connection's request, response and bufio reader and writer (about
	// 12 KiB, unused after the hijack) and this goroutine's stack, grown
	// by the request's parsing and routing, for as long as the hello and
	// the replay take (in a connect storm, the wait for the store).
	go newConn(s, t, ip).serve(s.connCtx, pre) // serve releases the count
}
