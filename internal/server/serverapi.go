package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/protocol"
)

// The server API (/v1/server/...): what an integrator's backend calls with
// an API key (`parley apikey create`), never a user's token. Each route
// needs one scope; a key without it gets forbidden (403), an unknown or
// revoked key unauthorized (401). The calls are not rate-limited per user
// (the backend acts for many users); the key is the trust boundary. Failed
// authentications are limited per IP (Limits.APIKeyFailuresPerSecond): a
// client guessing keys gets rate_limited (429) before any lookup.

// MaxTokenTTL is the longest token the server API mints.
const MaxTokenTTL = 30 * 24 * time.Hour

func (s *Server) serverAPIRoutes(mux *routeMux) {
	mux.HandleFunc("POST /v1/server/users", s.apiKey(auth.ScopeUsers, s.handleAPIUpsertUser))
	mux.HandleFunc("PATCH /v1/server/users/{id}", s.apiKey(auth.ScopeUsers, s.handleAPIUpsertUser))
	mux.HandleFunc("GET /v1/server/users/{id}/export", s.apiKey(auth.ScopeUsers, s.handleAPIExport))
	mux.HandleFunc("GET /v1/server/users/{id}/conversations", s.apiKey(auth.ScopeUsers, s.handleAPIConversations))
	mux.HandleFunc("DELETE /v1/server/users/{id}", s.apiKey(auth.ScopeUsers, s.handleAPIErase))
	mux.HandleFunc("POST /v1/server/users/{id}/tokens", s.apiKey(auth.ScopeTokens, s.handleAPIMintToken))
	mux.HandleFunc("POST /v1/server/users/{id}/ban", s.apiKey(auth.ScopeModeration, s.handleAPIBan))
	mux.HandleFunc("POST /v1/server/conversations", s.apiKey(auth.ScopeConversations, s.handleAPICreateConversation))
	mux.HandleFunc("POST /v1/server/conversations/{id}/members", s.apiKey(auth.ScopeConversations, s.handleAPIAddMembers))
	mux.HandleFunc("POST /v1/server/conversations/{id}/messages", s.apiKey(auth.ScopeMessages, s.handleAPISend))
	mux.HandleFunc("DELETE /v1/server/conversations/{id}/messages/{mid}", s.apiKey(auth.ScopeModeration, s.handleAPIModerate))
}

// apiKey authenticates a server API call: a key with scope.
func (s *Server) apiKey(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ks, ok := s.store.(parley.APIKeyStore)
		if !ok {
			s.writeError(w, parley.Errorf(parley.EUNSUPPORTED, "this store has no API keys"))
			return
		}
		// An IP over its budget of failures is refused before its key is
		// looked up: a guesser learns nothing more and costs no store read.
		ip := clientIP(r)
		if d := s.limits.apiKeyFailures.blocked(ip); d > 0 {
			s.writeError(w, &parley.Error{Code: parley.ERATELIMITED, Message: "too many failed API key attempts from this address; slow down", RetryAfter: d})
			return
		}
		key, _ := bearer(r)
		if !strings.HasPrefix(key, auth.APIKeyPrefix) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley-server-api"`)
			s.writeError(w, parley.Errorf(parley.EUNAUTHORIZED, "the server API needs an API key (Authorization: Bearer pk_...)"))
			return
		}
		k, err := ks.APIKeyByHash(r.Context(), auth.HashAPIKey(key))
		switch {
		case parley.ErrorCode(err) == parley.ENOTFOUND:
			err = parley.Errorf(parley.EUNAUTHORIZED, "unknown API key")
			s.limits.apiKeyFailures.wait(ip)
		case err == nil && k.RevokedAt != nil:
			err = parley.Errorf(parley.EUNAUTHORIZED, "this API key was revoked")
			s.limits.apiKeyFailures.wait(ip)
		case err == nil && !slices.Contains(k.Scopes, scope):
			err = parley.Errorf(parley.EFORBIDDEN, "this API key lacks the %q scope", scope)
		}
		if err != nil {
			s.writeError(w, err)
			return
		}
		h(w, r)
	}
}

// apiUser is the body of POST /v1/server/users and PATCH
// /v1/server/users/{id}.
type apiUser struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// handleAPIUpsertUser creates a user with the given id and display name,
// or renames it (PATCH: the user must exist). A rename is announced to
// the other nodes (service.announceUser), which may hold the old name
// cached; the store logs it too (parley.UserChangeLog), should the
// notice be lost.
func (s *Server) handleAPIUpsertUser(w http.ResponseWriter, r *http.Request) {
	var d apiUser
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, err)
		return
	}
	patch := false
	if id := r.PathValue("id"); id != "" {
		d.ID, patch = id, true
	}
	if err := required("id", d.ID); err != nil {
		s.writeError(w, err)
		return
	}
	old, err := s.store.User(r.Context(), d.ID)
	if err != nil && (patch || parley.ErrorCode(err) != parley.ENOTFOUND) {
		s.writeError(w, err)
		return
	}
	gen := s.svc.ensured.generation(d.ID)
	u, err := s.store.EnsureUser(r.Context(), d.ID, d.Name)
	if err == nil {
		s.svc.ensured.store(u, gen)
		if old.ID != "" && old.Name != u.Name {
			s.svc.announceUser(r.Context(), parley.UserChange{ID: u.ID})
		}
	}
	s.reply(w, http.StatusOK, u, err)
}

// handleAPIMintToken mints a token for an existing, unbanned user.
func (s *Server) handleAPIMintToken(w http.ResponseWriter, r *http.Request) {
	var d struct {
		TTLSeconds int64 `json:"ttl_seconds"`
	}
	if err := decodeBody(w, r, &d); err != nil {
		s.writeError(w, err)
		return
	}
	ttl := s.cfg.TokenTTL
	if d.TTLSeconds != 0 {
		if d.TTLSeconds < 0 || d.TTLSeconds > int64(MaxTokenTTL/time.Second) {
			s.writeError(w, parley.Errorf(parley.EINVALID, "ttl_seconds must be between 1 and %d", int64(MaxTokenTTL/time.Second)))
			return
		}
		ttl = time.Duration(d.TTLSeconds) * time.Second
	}
	gen := s.svc.ensured.generation(r.PathValue("id"))
	u, err := s.store.User(r.Context(), r.PathValue("id"))
	if err == nil && s.svc.bans.has(u.ID) {
		err = parley.Errorf(parley.EFORBIDDEN, "this user is banned")
	}
	if err != nil {
		s.writeError(w, err)
		return
	}
	res, err := s.svc.issue(u, gen)
	if err == nil && ttl != s.cfg.TokenTTL {
		var exp time.Time
		res.Token, exp, err = auth.Mint(s.cfg.Secret, u.ID, u.Name, ttl)
		res.ExpiresAt = exp.UTC()
	}
	s.reply(w, http.StatusCreated, res, err)
}

// handleAPIBan bans a user: their tokens stop working (present and
// future ones: the ban is on the user) and their live connections close
// with 4102 on this node at once and on the others when the ban's notice
// reaches them (within Config.UserSyncInterval should it be lost).
func (s *Server) handleAPIBan(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.store.(parley.APIKeyStore).BanUser(r.Context(), id); err != nil {
		s.writeError(w, err)
		return
	}
	s.svc.bans.add(id)
	s.svc.announceUser(r.Context(), parley.UserChange{ID: id, Banned: true})
	n := s.hub.closeUser(id, protocol.CloseAuthRevoked, "access revoked")
	writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "banned": true, "connections_closed": n})
}

// apiConversation is the body of POST /v1/server/conversations.
type apiConversation struct {
	Kind      parley.ConversationKind `json:"kind"`
	CreatedBy string                  `json:"created_by"`
	Title     string                  `json:"title"`
	MemberIDs []string                `json:"member_ids"`
}

func (s *Server) handleAPICreateConversation(w http.ResponseWriter, r *http.Request) {
	var d apiConversation
	if !s.decodeActor(w, r, &d, "created_by", &d.CreatedBy) {
		return
	}
	var (
		c   parley.Conversation
		evs []parley.Event
		err error
	)
	switch d.Kind {
	case parley.Direct:
		if len(d.MemberIDs) != 1 {
			err = parley.Errorf(parley.EINVALID, "a direct conversation takes one member_ids entry: the other user")
			break
		}
		c, evs, err = s.store.CreateDirect(r.Context(), d.CreatedBy, d.MemberIDs[0])
	case parley.Group:
		c, evs, err = s.store.CreateGroup(r.Context(), d.CreatedBy, d.Title, d.MemberIDs)
	default:
		err = parley.Errorf(parley.EINVALID, "kind must be direct or group")
	}
	s.replyStored(w, r, http.StatusCreated, c, evs, err)
}

// handleAPIAddMembers adds members to a group as a member of it ("as"):
// the store's rules are a member's.
func (s *Server) handleAPIAddMembers(w http.ResponseWriter, r *http.Request) {
	var d struct {
		As      string   `json:"as"`
		UserIDs []string `json:"user_ids"`
	}
	if !s.decodeActor(w, r, &d, "as", &d.As) {
		return
	}
	c, evs, err := s.store.UpdateConversation(r.Context(), d.As, r.PathValue("id"), parley.ConversationChange{Add: d.UserIDs})
	s.replyStored(w, r, http.StatusOK, c, evs, err)
}

// handleAPISend sends a message as a user (a person or a bot: a user the
// backend created); a banned sender is forbidden.
func (s *Server) handleAPISend(w http.ResponseWriter, r *http.Request) {
	var d struct {
		As       string `json:"as"`
		ClientID string `json:"client_id"`
		Text     string `json:"text"`
	}
	if !s.decodeActor(w, r, &d, "as", &d.As) {
		return
	}
	if s.svc.bans.has(d.As) {
		s.writeError(w, parley.Errorf(parley.EFORBIDDEN, "this user is banned"))
		return
	}
	nm := parley.NewMessage{ConversationID: r.PathValue("id"), SenderID: d.As, ClientID: d.ClientID, Type: parley.Text, Text: d.Text}
	if err := nm.Validate(); err != nil {
		s.writeError(w, err)
		return
	}
	m, evs, err := s.store.SendMessage(r.Context(), nm)
	if err != nil {
		s.writeError(w, err)
		return
	}
	m, created := s.svc.sent(r.Context(), m, evs)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, m)
}

// handleAPIModerate deletes any message.
func (s *Server) handleAPIModerate(w http.ResponseWriter, r *http.Request) {
	m, evs, err := s.store.(parley.APIKeyStore).ModerateMessage(r.Context(), r.PathValue("id"), r.PathValue("mid"))
	if err == nil {
		m = *messageURLs(&m)
	}
	s.replyStored(w, r, http.StatusOK, m, evs, err)
}

// replyStored ends a handler that wrote to the store directly (not
// through service): the events of a write that succeeded are published,
// then v (or err) is the reply.
func (s *Server) replyStored(w http.ResponseWriter, r *http.Request, status int, v any, evs []parley.Event, err error) {
	if err == nil {
		s.svc.publishStored(r.Context(), evs)
	}
	s.reply(w, status, v, err)
}

// exportPage is how many messages a page of an export holds, and how
// many an erase call deletes at most.
const exportPage = 500

// eraseScan bounds the messages an erase call reads (handleAPIErase).
const eraseScan = 4 * exportPage

// userExport is a page of GET /v1/server/users/{id}/export.
type userExport struct {
	User parley.User `json:"user"`
	// Conversations are the user's current ones, as they see them, newest
	// activity first: on the first page only, and only the first page of
	// them (at most half the reply's bytes); ConversationsNext, set when
	// more follow, is the cursor of GET .../conversations for the rest.
	Conversations     []parley.Conversation `json:"conversations,omitempty"`
	ConversationsNext string                `json:"conversations_next,omitempty"`
	// Messages the user sent (tombstones included), by client_id.
	Messages []parley.Message `json:"messages"`
	// Next is the after= of the next page; empty on the last.
	Next string `json:"next,omitempty"`
}

// handleAPIExport returns a user's data, a page at a time.
func (s *Server) handleAPIExport(w http.ResponseWriter, r *http.Request) {
	ctx, id, after := r.Context(), r.PathValue("id"), r.URL.Query().Get("after")
	var out userExport
	var err error
	if out.User, err = s.store.User(ctx, id); err != nil {
		s.writeError(w, err)
		return
	}
	if after == "" {
		cl, err := s.svc.conversationsOf(ctx, out.User, protocol.Conversations{}, s.httpReplyBytes()/2)
		if err != nil {
			s.writeError(w, err)
			return
		}
		out.Conversations, out.ConversationsNext = cl.Conversations, cl.Next
	}
	if out.Messages, err = s.store.(parley.APIKeyStore).MessagesBySender(ctx, id, after, exportPage); err != nil {
		s.writeError(w, err)
		return
	}
	if out.Messages == nil {
		// A user who sent nothing has an empty list, not null (the
		// documented shape is an array).
		out.Messages = []parley.Message{}
	}
	// The page is cut at the reply's byte budget too, measured as JSON
	// (a message's text of 4000 '<' is 24 KB of it); the conversations
	// count against it first.
	full := len(out.Messages) == exportPage
	budget := s.httpReplyBytes()
	for i := range out.Conversations {
		budget -= jsonSize(&out.Conversations[i]) + 1
	}
	for i := range out.Messages {
		out.Messages[i] = *messageURLs(&out.Messages[i])
	}
	if n := fitting(out.Messages, max(budget, 0), false); n < len(out.Messages) {
		out.Messages, full = out.Messages[:n], true
	}
	if full {
		out.Next = out.Messages[len(out.Messages)-1].ClientID
	}
	writeJSON(w, http.StatusOK, out)
}

// handleAPIConversations returns a page of a user's conversations as they
// see them: the rest of an export's, after its conversations_next.
func (s *Server) handleAPIConversations(w http.ResponseWriter, r *http.Request) {
	u, err := s.store.User(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, err)
		return
	}
	serveQuery(s, w, r, u, conversationsQuery, s.svc.conversationsOf)
}

// eraseConvPages bounds the pages of the user's conversation list (each
// of at most convChunk conversations) an erase call reads once their
// messages are done (handleAPIErase).
const eraseConvPages = 4

// handleAPIErase deletes a user's data: it bans the user (tokens refused,
// connections closed with 4102), deletes (tombstones) up to exportPage of
// their messages per call and, once none is left, removes them from
// their groups and replaces their name. The account's id stays, so
// others' history keeps its shape. Call it until it answers done: true.
//
// A call reads at most eraseScan of the user's messages, going on from
// where the last call stopped (the store's EraseProgress), so each call
// costs the same however many of them are tombstones already. A pass
// that reaches the last message walks the user's conversation list,
// eraseConvPages pages a call at most, going on from where the last call
// stopped (EraseProgress again, see eraseWalk), and leaves at most
// exportPage groups a call. It is done once a walk from the top of the
// list to its end found no group left: a walk that left some is followed
// by another, since a group with new activity moves above the walk's
// place. The next call (should the user have sent more, through the
// server API) starts a pass afresh.
func (s *Server) handleAPIErase(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), r.PathValue("id")
	ks := s.store.(parley.APIKeyStore)
	if err := ks.BanUser(ctx, id); err != nil {
		s.writeError(w, err)
		return
	}
	s.svc.bans.add(id)
	s.svc.announceUser(ctx, parley.UserChange{ID: id, Banned: true})
	s.hub.closeUser(id, protocol.CloseAuthRevoked, "account deleted")
	after, walk, err := ks.EraseProgress(ctx, id)
	if err != nil {
		s.writeError(w, err)
		return
	}
	deleted, left, read, done := 0, 0, 0, false
	for !done && deleted < exportPage && read < eraseScan {
		page, err := ks.MessagesBySender(ctx, id, after, exportPage)
		if err != nil {
			s.writeError(w, err)
			return
		}
		i := 0
		for ; i < len(page) && deleted < exportPage; i++ {
			m := page[i]
			if !m.Deleted {
				_, evs, err := ks.ModerateMessage(ctx, m.ConversationID, m.ID)
				if err != nil {
					s.writeError(w, err)
					return
				}
				s.svc.publishStored(ctx, evs)
				deleted++
			}
			after = m.ClientID
		}
		read += i
		done = i == len(page) && len(page) < exportPage
	}
	if done {
		// The progress stays at the end of their messages meanwhile, so
		// the next call reads none and goes on walking.
		if walk, done, err = s.eraseGroups(ctx, id, walk, &left); err != nil {
			s.writeError(w, err)
			return
		}
	}
	if done {
		after, walk = "", ""
	}
	if err := ks.SetEraseProgress(ctx, id, after, walk); err != nil {
		s.writeError(w, err)
		return
	}
	if done {
		sum := sha256.Sum256([]byte(id))
		if _, err := s.store.EnsureUser(ctx, id, "deleted "+hex.EncodeToString(sum[:6])); err != nil {
			s.writeError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"user_id": id, "messages_deleted": deleted, "conversations_left": left, "done": done})
}

// eraseWalk is where an erase's walk of a user's conversation list has
// got to, kept between calls as EraseProgress's conversations: "" when
// no walk is under way (the next starts at the top), else "+" while the
// walk has left no group, "-" once it has, then the list's cursor
// (convCursor) of the last conversation it went through.
type eraseWalk struct {
	leftAny bool
	cursor  string // "": the top
}

func parseEraseWalk(s string) eraseWalk {
	if s == "" {
		return eraseWalk{}
	}
	return eraseWalk{leftAny: s[0] == '-', cursor: s[1:]}
}

func (w eraseWalk) String() string {
	if w.leftAny {
		return "-" + w.cursor
	}
	return "+" + w.cursor
}

// eraseGroups goes on with the walk saved as saved through user id's
// conversations, reading at most eraseConvPages pages and leaving their
// groups while *left is below exportPage. It returns the walk to save,
// and done once a whole walk, from the top to the end, found no group.
// Leaving a group takes it out of the list but moves no other
// conversation, so the cursor holds; a page read from a saved cursor
// that no longer parses starts the walk again.
func (s *Server) eraseGroups(ctx context.Context, id, saved string, left *int) (string, bool, error) {
	u := parley.User{ID: id}
	walk := parseEraseWalk(saved)
	for range eraseConvPages {
		cl, err := s.svc.conversationsOf(ctx, u, protocol.Conversations{Cursor: walk.cursor}, MaxReplyBytes)
		if parley.ErrorCode(err) == parley.EINVALID && walk.cursor != "" {
			walk = eraseWalk{} // not a cursor this server makes: from the top
			continue
		}
		if err != nil {
			return "", false, err
		}
		for i := range cl.Conversations {
			c := &cl.Conversations[i]
			if c.Kind == parley.Group {
				if *left == exportPage {
					return walk.String(), false, nil
				}
				_, evs, err := s.store.UpdateConversation(ctx, id, c.ID, parley.ConversationChange{Remove: []string{id}})
				if err != nil {
					return "", false, err
				}
				s.svc.publishStored(ctx, evs)
				*left++
				walk.leftAny = true
			}
			walk.cursor = cursorOf(c).String()
		}
		if cl.HasMore {
			continue
		}
		if !walk.leftAny {
			return "", true, nil
		}
		walk = eraseWalk{} // again from the top: none may be left
	}
	return walk.String(), false, nil
}

// banList is the node's copy of the banned users. Safe for concurrent use.
type banList struct {
	mu  sync.RWMutex
	ids map[string]struct{}
}

func (b *banList) has(id string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.ids[id]
	return ok
}

// add records id and reports whether it is new.
func (b *banList) add(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.ids[id]; ok {
		return false
	}
	if b.ids == nil {
		b.ids = make(map[string]struct{})
	}
	b.ids[id] = struct{}{}
	return true
}

// usersChanged takes another node's notices of changed users
// (parley.BrokerMessage.Users): their cached entries go, so their next
// hello reads the store, and a banned user is refused from now on and
// their connections here are closed (at once, not at the next syncUsers).
// It runs on the broker's delivery goroutine and does not block.
func (s *Server) usersChanged(us []parley.UserChange) {
	for _, u := range us {
		s.userChanged(u)
	}
}

// userChanged applies one changed user here, from a notice or the
// store's log: their cached entry goes, and a ban closes their
// connections.
func (s *Server) userChanged(u parley.UserChange) {
	if u.Banned {
		s.banHere(u.ID)
	}
	s.svc.ensured.forget(u.ID)
}

// banHere records id as banned on this node and, if that is news, closes
// their connections here with 4102.
func (s *Server) banHere(id string) {
	if s.svc.bans.add(id) {
		s.hub.closeUser(id, protocol.CloseAuthRevoked, "access revoked")
	}
}

// userSyncPage is how many changed users a read of the store's log of
// them (parley.UserChangeLog) takes at most; syncUsers reads pages until
// it is caught up.
const userSyncPage = 500

// banListTicks is how many Config.UserSyncInterval ticks pass between
// reads of the store's whole list of bans when the store logs user
// changes (syncUsers): a minute with the default interval.
const banListTicks = 12

// userSync is where a node's reads of the store's changed users have got
// to. Used by syncUsers' goroutine alone, once startUserSync returned.
type userSync struct {
	ks  parley.APIKeyStore
	log parley.UserChangeLog // nil: the store keeps none
	// mark is the number of the last change applied, once marked (the
	// store's mark was read).
	mark   int64
	marked bool
}

// startUserSync takes the store's mark of user changes, then its bans,
// before the node serves: its cache of users is empty, so the changes
// before the mark concern it not (no history is replayed), and the bans,
// read after the mark, miss none made before it. A read that failed is
// tried again by syncUsers.
func (s *Server) startUserSync(ctx context.Context, us *userSync) {
	s.readUserMark(ctx, us)
	s.readBans(ctx, us.ks)
}

// syncUsers reads the store's changed users every Config.UserSyncInterval
// until ctx ends: the backstop of other nodes' notices
// (Server.usersChanged), which are lost when a node dies between a
// change's commit and its notice, or when NATS drops them. Each read
// goes on after the last number it applied, a page (userSyncPage) at a
// time until caught up; the users it finds are forgotten and the banned
// ones' connections here closed, as a notice does (both again is
// harmless: a store read at the user's next hello). The whole list of
// bans is read too, as before the log (nodes of earlier releases log no
// change, and their bans must still reach this one), but with a log only
// every banListTicks intervals: it grows with every account ever banned,
// and the log already brings this release's bans. Owned by the Server
// (bg).
func (s *Server) syncUsers(ctx context.Context, us *userSync) {
	t := time.NewTicker(s.cfg.UserSyncInterval)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.userSyncTick(ctx, us, tick)
	}
}

// userSyncTick is syncUsers' read number tick (from 1).
func (s *Server) userSyncTick(ctx context.Context, us *userSync, tick int) {
	switch {
	case us.log == nil:
	case !us.marked:
		// The node has served without a mark (the store failed at its
		// start): what it cached meanwhile may have changed before the
		// mark it reads now, and so may its bans, which are read again
		// after the mark, as at the start (startUserSync): a ban made
		// between the start's read of them and this mark, whose notice
		// was lost, is in neither the log after the mark nor that read,
		// and waited for the next whole read, banListTicks intervals
		// away.
		if s.readUserMark(ctx, us) {
			s.svc.ensured.clear()
			s.readBans(ctx, us.ks)
			return
		}
	default:
		if err := s.readUserChanges(ctx, us); err != nil && ctx.Err() == nil {
			s.log.Warn("reading changed users", "err", err)
		}
	}
	if us.log == nil || tick%banListTicks == 0 {
		s.readBans(ctx, us.ks)
	}
}

// readUserMark reads the store's mark of user changes into us, unless
// the store keeps no log, and reports whether it did.
func (s *Server) readUserMark(ctx context.Context, us *userSync) bool {
	if us.log == nil {
		return false
	}
	m, err := us.log.UserChangeMark(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reading the mark of changed users", "err", err)
		}
		return false
	}
	us.mark, us.marked = m, true
	return true
}

// readBans reads the store's bans and closes this node's connections of
// users banned since by another node (only new ones: a connection that
// joins after a ban is refused by its token check, or closed by serve's
// check once it is in the hub).
func (s *Server) readBans(ctx context.Context, ks parley.APIKeyStore) {
	ids, err := ks.BannedUsers(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("reading bans", "err", err)
	}
	for _, id := range ids {
		s.banHere(id)
	}
}

// readUserChanges applies the store's user changes after us.mark, a page
// at a time, until a page is not full.
func (s *Server) readUserChanges(ctx context.Context, us *userSync) error {
	for {
		cs, err := us.log.UserChangesAfter(ctx, us.mark, userSyncPage)
		if err != nil {
			return err
		}
		for _, c := range cs {
			s.userChanged(c.UserChange)
			us.mark = c.Seq
		}
		if len(cs) < userSyncPage {
			return nil
		}
	}
}

// closeUser closes every connection of user on this node with code and
// returns how many it closed.
func (h *hub) closeUser(user string, code int, reason string) int {
	h.mu.Lock()
	var cs []*conn
	for c := h.users[user]; c != nil; c = c.hubNext {
		cs = append(cs, c)
	}
	h.mu.Unlock()
	for _, c := range cs {
		c.closeWith(code, reason, false)
	}
	return len(cs)
}

// decodeActor decodes r's body into v and checks that the field named
// name, the user the server API acts as (read from *actor once decoded),
// is set. On failure it writes the error and returns false.
func (s *Server) decodeActor(w http.ResponseWriter, r *http.Request, v any, name string, actor *string) bool {
	err := decodeBody(w, r, v)
	if err == nil {
		err = required(name, *actor)
	}
	if err != nil {
		s.writeError(w, err)
		return false
	}
	return true
}
