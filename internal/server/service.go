package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/protocol"
)

func asError(err error, target **parley.Error) bool { return errors.As(err, target) }

// service is the one layer behind both the WebSocket ops and the HTTP
// handlers: it validates input, applies rate limits, calls the store and
// publishes the events a write returns, after the store committed them.
// It is safe for concurrent use.
type service struct {
	store   parley.Store
	broker  parley.Broker
	node    string
	log     *slog.Logger
	metrics *metrics
	limits  *limiters
	hasher  *auth.Hasher
	// accounts and logins: see accounts.go.
	accounts AccountLimits
	logins   *loginThrottle
	secret   []byte
	ttl      time.Duration
	pres     *presence
	typers   *typingTracker
	// contacts is the node's contacts cache (the hub's): presence queries
	// and welcome.online read it.
	contacts *contactsCache

	// ensured remembers the users whose token name is in the store, so a
	// connection does not cost a write.
	ensured userCache
	// bans are the banned users (server API): their tokens are refused.
	bans banList
}

// userCache maps user ids to users; safe for concurrent use, the zero
// value is empty. A map under a RWMutex, not a sync.Map: it holds an
// entry per user who ever connected, and a sync.Map entry (trie nodes and
// the boxed User) cost about twice as much memory as a map slot.
type userCache struct {
	mu sync.RWMutex
	m  map[string]parley.User
}

func (c *userCache) load(id string) (parley.User, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	u, ok := c.m[id]
	return u, ok
}

// store records u; with keep, an entry already there stays.
func (c *userCache) store(u parley.User, keep bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]parley.User)
	}
	if _, ok := c.m[u.ID]; ok && keep {
		return
	}
	c.m[u.ID] = u
}

// warmUsers reads the users ids at once, when the store can
// (parley.BulkReader), and remembers them as ensured: their next hello
// needs no user read (a node does it at start, see hub.warm). A user
// stored meanwhile by a hello is newer and stays.
func (s *service) warmUsers(ctx context.Context, ids []string) error {
	bulk, ok := s.store.(parley.BulkReader)
	if !ok || len(ids) == 0 {
		return nil
	}
	users, err := bulk.UsersOf(ctx, ids)
	if err != nil {
		return err
	}
	for _, u := range users {
		s.ensured.store(u, true)
	}
	return nil
}

// authenticate verifies a token and returns its user, creating the user on
// first sight (tokens minted by integrators).
func (s *service) authenticate(ctx context.Context, token string) (parley.User, error) {
	cl, err := auth.Verify(s.secret, token, time.Now())
	if err != nil {
		s.metrics.obs.authFailures["token"].Inc()
		s.log.Debug("auth: token refused", "err", parley.ErrorMessage(err))
		return parley.User{}, err
	}
	if s.bans.has(cl.UserID) {
		return parley.User{}, parley.Errorf(parley.EUNAUTHORIZED, "this user's access was revoked")
	}
	alt := altName(cl.Name, cl.UserID)
	if u, ok := s.ensured.load(cl.UserID); ok && (u.Name == cl.Name || u.Name == alt) {
		return u, nil
	}
	u, err := s.store.EnsureUser(ctx, cl.UserID, cl.Name)
	if parley.ErrorCode(err) == parley.ECONFLICT {
		// The token identifies its user by id (sub); its name is only
		// what others see. Another user holds that name (or a look-alike),
		// and names are unique: show this user as "Name (id)" rather than
		// refuse a valid token.
		u, err = s.store.EnsureUser(ctx, cl.UserID, alt)
	}
	if err != nil {
		return parley.User{}, err
	}
	s.ensured.store(u, false)
	return u, nil
}

// altName is the name an integrator's user gets when its token's name is
// taken by another user: "name (id)", the name cut to fit
// parley.MaxUsernameRunes, or the id alone (cut) when the id is too long
// to leave room for the name.
func altName(name, id string) string {
	suffix := []rune(" (" + id + ")")
	if len(suffix) > parley.MaxUsernameRunes-4 {
		r := []rune(id)
		return string(r[:min(len(r), parley.MaxUsernameRunes)])
	}
	r := []rune(name)
	return string(r[:min(len(r), parley.MaxUsernameRunes-len(suffix))]) + string(suffix)
}

// authResult is the body of register and login responses.
type authResult struct {
	Token     string      `json:"token"`
	User      parley.User `json:"user"`
	ExpiresAt time.Time   `json:"expires_at"`
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *service) issue(u parley.User) (authResult, error) {
	tok, exp, err := auth.Mint(s.secret, u.ID, u.Name, s.ttl)
	if err != nil {
		return authResult{}, err
	}
	s.ensured.store(u, false)
	return authResult{Token: tok, User: u, ExpiresAt: exp.UTC()}, nil
}

// publish hands committed events to the broker. A failed publish loses
// nothing: every node's hub polls the store and fills the gap.
func (s *service) publish(ctx context.Context, evs []parley.Event) {
	if len(evs) == 0 {
		return
	}
	err := s.broker.Publish(context.WithoutCancel(ctx), parley.BrokerMessage{Node: s.node, Events: evs})
	if err != nil {
		s.log.Warn("publishing events", "count", len(evs), "first", evs[0].Pos, "err", err)
	}
}

func required(name, v string) error {
	if v == "" {
		return parley.Errorf(parley.EINVALID, "%s is required", name)
	}
	return nil
}

func (s *service) send(ctx context.Context, u parley.User, ip string, d protocol.Send) (parley.Message, bool, error) {
	nm, err := s.checkSend(u, ip, d)
	if err != nil {
		return parley.Message{}, false, err
	}
	s.metrics.obs.storeSendRun.Observe(1)
	start := time.Now()
	m, evs, err := s.store.SendMessage(ctx, nm)
	s.metrics.obs.storeSendWait.Observe(sinceSeconds(start))
	if err != nil {
		return parley.Message{}, false, err
	}
	m, created := s.sent(ctx, m, evs)
	return m, created, nil
}

// checkSend makes the store's NewMessage of a send, validates it and takes
// it from the sender's rate limits: the part of a send before the store.
func (s *service) checkSend(u parley.User, ip string, d protocol.Send) (parley.NewMessage, error) {
	nm := parley.NewMessage{
		ConversationID: d.ConversationID, SenderID: u.ID, ClientID: d.ClientID,
		Type: d.Type, Text: d.Text, AttachmentID: d.AttachmentID, ReplyTo: d.ReplyTo,
	}
	if nm.Type == "" {
		nm.Type = parley.Text
	}
	// The store checks again; checking first keeps bad input from using
	// up the sender's rate limit.
	if err := nm.Validate(); err != nil {
		return nm, err
	}
	if err := s.limits.messages.check(u.ID); err != nil {
		return nm, err
	}
	if err := s.limits.ipMessages.check(ip); err != nil {
		return nm, err
	}
	return nm, nil
}

// sent finishes a stored send: it publishes the events and stops the
// sender's typing, and returns the message as the client sees it and
// whether it was new (not a resend).
func (s *service) sent(ctx context.Context, m parley.Message, evs []parley.Event) (parley.Message, bool) {
	created := len(evs) > 0
	if created {
		s.metrics.messages.Inc()
	}
	s.publish(ctx, evs)
	s.typers.stop(m.SenderID, m.ConversationID)
	return *messageURLs(&m), created
}

// sendMany stores sends checked by checkSend, in order: in one call to a
// store that takes runs (parley.MultiSender, so they can share a batch),
// else one after the other. done is called for each send, in order, as
// soon as it is stored (its events published) or failed.
func (s *service) sendMany(ctx context.Context, nms []parley.NewMessage, done func(i int, m parley.Message, err error)) {
	s.metrics.obs.storeSendRun.Observe(float64(len(nms)))
	start := time.Now()
	finish := func(i int, m parley.Message, evs []parley.Event, err error) {
		s.metrics.obs.storeSendWait.Observe(sinceSeconds(start))
		if err == nil {
			m, _ = s.sent(ctx, m, evs)
		}
		done(i, m, err)
	}
	if ms, ok := s.store.(parley.MultiSender); ok && len(nms) > 1 {
		ms.SendMessages(ctx, nms, finish)
		return
	}
	for i, nm := range nms {
		m, evs, err := s.store.SendMessage(ctx, nm)
		finish(i, m, evs, err)
	}
}

// historyQuery checks a history request's cursors and limit and turns
// them into the store's query. A cursor given as 0 differs from one not
// given: after 0 is "from the start" (FromStart), and before 0 is refused,
// as no message has a seq below 1 (a client following has_more never
// sends it).
func historyQuery(d protocol.History) (parley.MessageQuery, error) {
	q := parley.MessageQuery{Limit: d.Limit}
	switch {
	case d.Before != nil && d.After != nil:
		return q, parley.Errorf(parley.EINVALID, "give before or after, not both")
	case d.Before != nil && *d.Before < 1:
		return q, parley.Errorf(parley.EINVALID, "before must be at least 1 (no message has a seq below 1)")
	case d.After != nil && *d.After < 0:
		return q, parley.Errorf(parley.EINVALID, "after must not be negative")
	case d.Limit < 0 || d.Limit > parley.MaxPageLimit:
		return q, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", parley.MaxPageLimit)
	case d.Before != nil:
		q.Before = *d.Before
	case d.After != nil:
		q.After, q.FromStart = *d.After, *d.After == 0
	}
	return q, nil
}

// MaxReplyBytes bounds the JSON of the list in one history, conversations
// or events reply (256 KiB): a page whose items would take more holds
// fewer, at least one, with has_more set, and the client pages on with
// its cursor.
// On the WebSocket the bound is at most half the send queue's budget
// (conn.replyBytes).
const MaxReplyBytes = 256 << 10

// jsonSize is the length of v's JSON encoding, as encodeData writes it.
func jsonSize(v any) int {
	e := encoderPool.Get().(*pooledEncoder)
	defer e.put()
	if err := e.enc.Encode(v); err != nil {
		panic(err) // replies hold plain data; this cannot fail
	}
	return e.buf.Len() - 1 // Encode ends with a newline
}

// fitting returns how many of items fit together in maxBytes of JSON,
// counted from the front, or from the back with fromBack; at least one
// when there is one, so a page always moves its cursor on.
func fitting[T any](items []T, maxBytes int, fromBack bool) int {
	total := 0
	for k := range items {
		i := k
		if fromBack {
			i = len(items) - 1 - k
		}
		total += jsonSize(&items[i]) + 1 // and its comma
		if total > maxBytes && k > 0 {
			return k
		}
	}
	return len(items)
}

// history returns a page of messages, at most maxBytes of them in JSON
// (see MaxReplyBytes). A page cut short keeps the messages next to the
// cursor the query started from (the newest for a newest or before page,
// the oldest for an after page) and says has_more, so a client following
// the cursors gets every message once.
func (s *service) history(ctx context.Context, u parley.User, d protocol.History, maxBytes int) (parley.MessagePage, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return parley.MessagePage{}, err
	}
	if err := required("conversation_id", d.ConversationID); err != nil {
		return parley.MessagePage{}, err
	}
	q, err := historyQuery(d)
	if err != nil {
		return parley.MessagePage{}, err
	}
	p, err := s.store.Messages(ctx, u.ID, d.ConversationID, q)
	if err != nil {
		return parley.MessagePage{}, err
	}
	if p.Messages == nil {
		p.Messages = []parley.Message{}
	}
	for i := range p.Messages {
		p.Messages[i] = *messageURLs(&p.Messages[i])
	}
	fromBack := d.After == nil // the page ends at the cursor: keep its end
	if n := fitting(p.Messages, maxBytes, fromBack); n < len(p.Messages) {
		if fromBack {
			p.Messages = p.Messages[len(p.Messages)-n:]
		} else {
			p.Messages = p.Messages[:n]
		}
		p.HasMore = true
	}
	return p, nil
}

func (s *service) deleteMessage(ctx context.Context, u parley.User, d protocol.Delete) (parley.Message, error) {
	if err := s.limits.deletes.check(u.ID); err != nil {
		return parley.Message{}, err
	}
	if err := required("conversation_id", d.ConversationID); err != nil {
		return parley.Message{}, err
	}
	if err := required("message_id", d.MessageID); err != nil {
		return parley.Message{}, err
	}
	m, evs, err := s.store.DeleteMessage(ctx, u.ID, d.ConversationID, d.MessageID)
	if err != nil {
		return parley.Message{}, err
	}
	s.publish(ctx, evs)
	return m, nil
}

// edit changes the text of u's message. It takes from the messages
// limits, as a send does: an edit is a write every member receives.
func (s *service) edit(ctx context.Context, u parley.User, ip string, d protocol.Edit) (parley.Message, error) {
	ed := parley.MessageEdit{UserID: u.ID, ConversationID: d.ConversationID, MessageID: d.MessageID,
		MessageClientID: d.MessageClientID, ClientID: d.ClientID, Text: d.Text}
	// Checked first so bad input does not use up the limits (the store
	// checks again).
	if err := ed.Validate(); err != nil {
		return parley.Message{}, err
	}
	if err := s.limits.messages.check(u.ID); err != nil {
		return parley.Message{}, err
	}
	if err := s.limits.ipMessages.check(ip); err != nil {
		return parley.Message{}, err
	}
	m, evs, err := s.store.EditMessage(ctx, ed)
	if err != nil {
		return parley.Message{}, err
	}
	s.publish(ctx, evs)
	return *messageURLs(&m), nil
}

// react adds or removes u's reaction on a message.
func (s *service) react(ctx context.Context, u parley.User, d protocol.React) (protocol.ReactResult, error) {
	if err := required("conversation_id", d.ConversationID); err != nil {
		return protocol.ReactResult{}, err
	}
	if err := required("message_id", d.MessageID); err != nil {
		return protocol.ReactResult{}, err
	}
	if err := parley.ValidateEmoji(d.Emoji); err != nil {
		return protocol.ReactResult{}, err
	}
	if err := s.limits.reactions.check(u.ID); err != nil {
		return protocol.ReactResult{}, err
	}
	rs, evs, err := s.store.React(ctx, u.ID, d.ConversationID, d.MessageID, d.Emoji, !d.Remove)
	if err != nil {
		return protocol.ReactResult{}, err
	}
	s.publish(ctx, evs)
	return protocol.ReactResult{MessageID: d.MessageID, Reactions: nonNil(rs)}, nil
}

func (s *service) read(ctx context.Context, u parley.User, d protocol.Read) (protocol.ReadResult, error) {
	if err := s.limits.readMarks.check(u.ID); err != nil {
		return protocol.ReadResult{}, err
	}
	if err := required("conversation_id", d.ConversationID); err != nil {
		return protocol.ReadResult{}, err
	}
	if d.Seq < 0 {
		return protocol.ReadResult{}, parley.Errorf(parley.EINVALID, "seq must not be negative")
	}
	evs, err := s.store.MarkRead(ctx, u.ID, d.ConversationID, d.Seq)
	if err != nil {
		return protocol.ReadResult{}, err
	}
	s.publish(ctx, evs)
	for _, ev := range evs {
		if ev.Type == parley.EventMessageRead {
			return protocol.ReadResult{ConversationID: d.ConversationID, ReadSeq: ev.ReadSeq}, nil
		}
	}
	c, err := s.store.Conversation(ctx, u.ID, d.ConversationID)
	if err != nil {
		return protocol.ReadResult{}, err
	}
	return protocol.ReadResult{ConversationID: d.ConversationID, ReadSeq: c.ReadSeq}, nil
}

// typing checks membership and fans a typing event out to the other
// members through the broker; it is never stored.
func (s *service) typing(ctx context.Context, u parley.User, d protocol.Typing) error {
	if err := required("conversation_id", d.ConversationID); err != nil {
		return err
	}
	if d.Typing {
		if err := s.limits.typing.check(u.ID); err != nil {
			return err
		}
	}
	members, err := s.peers(ctx, u, d.ConversationID)
	if err != nil {
		return err
	}
	typ := parley.EventTypingStopped
	if d.Typing {
		typ = parley.EventTypingStarted
		s.typers.start(u.ID, d.ConversationID)
	} else if !s.typers.stop(u.ID, d.ConversationID) {
		return nil // not typing there: nothing to tell
	}
	s.publishTyping(ctx, u, d.ConversationID, typ, members)
	return nil
}

func (s *service) publishTyping(ctx context.Context, u parley.User, convID string, typ parley.EventType, members []string) {
	audience := make([]string, 0, len(members))
	for _, id := range members {
		if id != u.ID {
			audience = append(audience, id)
		}
	}
	s.publish(ctx, []parley.Event{{
		Type: typ, ConversationID: convID, UserID: u.ID, UserName: u.Name,
		At: parley.Now(), Audience: audience,
	}})
}

// typingGone sends typingStopped for every conversation u was typing in
// when u's last connection on this node closed.
func (s *service) typingGone(u parley.User) {
	convs := s.typers.gone(u.ID)
	if len(convs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range convs {
		members, err := s.peers(ctx, u, id)
		if err != nil {
			continue // left the conversation meanwhile
		}
		s.publishTyping(ctx, u, id, parley.EventTypingStopped, members)
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func conversationURLs(c parley.Conversation) parley.Conversation {
	c.LastMessage = messageURLs(c.LastMessage)
	c.Members = nonNil(c.Members)
	return c
}

// MaxConversationsPage is the largest limit a conversations request may
// ask for.
const MaxConversationsPage = 1000

// conversations returns a page of the user's conversations, newest
// activity first (ties by id, descending), at most maxBytes of them in
// JSON (see MaxReplyBytes) and at most d.Limit; has_more and next say to
// ask again with next as the cursor, which returns the conversations that
// come after the page's last one in that order. The store has no paged
// query: each page is cut from the user's whole list, which keeps the
// server's memory per request that of the list, not the reply's bytes.
func (s *service) conversations(ctx context.Context, u parley.User, d protocol.Conversations, maxBytes int) (protocol.ConversationList, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return protocol.ConversationList{}, err
	}
	if d.Limit < 0 || d.Limit > MaxConversationsPage {
		return protocol.ConversationList{}, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", MaxConversationsPage)
	}
	var after convCursor
	if d.Cursor != "" {
		var err error
		if after, err = parseConvCursor(d.Cursor); err != nil {
			return protocol.ConversationList{}, err
		}
	}
	cs, err := s.store.Conversations(ctx, u.ID)
	if err != nil {
		return protocol.ConversationList{}, err
	}
	return pageConversations(cs, after, d.Limit, maxBytes), nil
}

// convCursor is a place in the conversation list: the last activity and
// id of the conversation a page ended with. Its text form is
// "<unix nanoseconds>:<id>", opaque to clients.
type convCursor struct {
	at time.Time
	id string
}

func cursorOf(c *parley.Conversation) convCursor {
	return convCursor{at: c.LastActivityAt, id: c.ID}
}

func (c convCursor) String() string {
	return strconv.FormatInt(c.at.UnixNano(), 10) + ":" + c.id
}

func parseConvCursor(s string) (convCursor, error) {
	ns, id, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return convCursor{}, parley.Errorf(parley.EINVALID, "cursor is not one this server gave")
	}
	return convCursor{at: time.Unix(0, n), id: id}, nil
}

// before says a comes before b in the list: newer activity, or the same
// activity and the greater id.
func (a convCursor) before(b convCursor) bool {
	if !a.at.Equal(b.at) {
		return a.at.After(b.at)
	}
	return a.id > b.id
}

// pageConversations cuts the page after `after` (the zero cursor: from
// the start) out of the user's whole list cs: at most limit (0: no count
// limit) and maxBytes of JSON, at least one when any remain.
func pageConversations(cs []parley.Conversation, after convCursor, limit, maxBytes int) protocol.ConversationList {
	// The stores sort the same way; sorting again makes the cursor exact
	// whatever the store does with equal times.
	slices.SortFunc(cs, func(a, b parley.Conversation) int {
		switch ca, cb := cursorOf(&a), cursorOf(&b); {
		case ca.before(cb):
			return -1
		case cb.before(ca):
			return 1
		}
		return 0
	})
	if after.id != "" {
		cs = cs[sort.Search(len(cs), func(i int) bool { return after.before(cursorOf(&cs[i])) }):]
	}
	var p protocol.ConversationList
	if limit > 0 && len(cs) > limit {
		cs, p.HasMore = cs[:limit], true
	}
	for i := range cs {
		cs[i] = conversationURLs(cs[i])
	}
	if n := fitting(cs, maxBytes, false); n < len(cs) {
		cs, p.HasMore = cs[:n], true
	}
	if p.HasMore {
		p.Next = cursorOf(&cs[len(cs)-1]).String()
	}
	p.Conversations = nonNil(cs)
	return p
}

func (s *service) conversation(ctx context.Context, u parley.User, id string) (parley.Conversation, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return parley.Conversation{}, err
	}
	if err := required("conversation_id", id); err != nil {
		return parley.Conversation{}, err
	}
	c, err := s.store.Conversation(ctx, u.ID, id)
	return conversationURLs(c), err
}

func (s *service) createDirect(ctx context.Context, u parley.User, d protocol.CreateDirect) (parley.Conversation, error) {
	if err := s.limits.conversationWrites.check(u.ID); err != nil {
		return parley.Conversation{}, err
	}
	other := d.UserID
	switch {
	case d.UserID != "" && d.Username != "":
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "give user_id or username, not both")
	case d.UserID == "" && d.Username == "":
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "user_id or username is required")
	case d.Username != "":
		o, err := s.store.UserByName(ctx, d.Username)
		if err != nil {
			return parley.Conversation{}, err
		}
		other = o.ID
	}
	if other == u.ID {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "a direct conversation needs another user")
	}
	c, evs, err := s.store.CreateDirect(ctx, u.ID, other)
	if err != nil {
		return parley.Conversation{}, err
	}
	s.publish(ctx, evs)
	return s.viewed(ctx, u, c)
}

// viewed returns c as u sees it (unread count, read position): what a
// write returns is the shared view.
func (s *service) viewed(ctx context.Context, u parley.User, c parley.Conversation) (parley.Conversation, error) {
	v, err := s.store.Conversation(ctx, u.ID, c.ID)
	if err != nil {
		return conversationURLs(c), nil // u left it (removed themselves)
	}
	return conversationURLs(v), nil
}

func checkTitle(t string) error {
	if !utf8.ValidString(t) {
		return parley.Errorf(parley.EINVALID, "title is not valid UTF-8")
	}
	if utf8.RuneCountInString(t) > parley.MaxTitleRunes {
		return parley.Errorf(parley.EINVALID, "title is longer than %d characters", parley.MaxTitleRunes)
	}
	return nil
}

func (s *service) createGroup(ctx context.Context, u parley.User, d protocol.CreateGroup) (parley.Conversation, error) {
	if err := s.limits.conversationWrites.check(u.ID); err != nil {
		return parley.Conversation{}, err
	}
	if strings.TrimSpace(d.Title) == "" {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "title is required")
	}
	if err := checkTitle(d.Title); err != nil {
		return parley.Conversation{}, err
	}
	if len(d.MemberIDs) >= parley.MaxGroupMembers {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "a group has at most %d members", parley.MaxGroupMembers)
	}
	c, evs, err := s.store.CreateGroup(ctx, u.ID, d.Title, d.MemberIDs)
	if err != nil {
		return parley.Conversation{}, err
	}
	s.publish(ctx, evs)
	return s.viewed(ctx, u, c)
}

func (s *service) updateConversation(ctx context.Context, u parley.User, d protocol.UpdateConversation) (parley.Conversation, error) {
	if err := s.limits.conversationWrites.check(u.ID); err != nil {
		return parley.Conversation{}, err
	}
	if err := required("conversation_id", d.ConversationID); err != nil {
		return parley.Conversation{}, err
	}
	if d.Title != nil {
		if strings.TrimSpace(*d.Title) == "" {
			return parley.Conversation{}, parley.Errorf(parley.EINVALID, "title must not be empty")
		}
		if err := checkTitle(*d.Title); err != nil {
			return parley.Conversation{}, err
		}
	}
	if d.Title == nil && len(d.Add) == 0 && len(d.Remove) == 0 && len(d.Promote) == 0 && len(d.Demote) == 0 {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "nothing to change: give title, add, remove, promote or demote")
	}
	for _, l := range []struct {
		name string
		ids  []string
	}{{"add", d.Add}, {"remove", d.Remove}, {"promote", d.Promote}, {"demote", d.Demote}} {
		if len(l.ids) > parley.MaxGroupMembers {
			return parley.Conversation{}, parley.Errorf(parley.EINVALID, "%s names more than %d users", l.name, parley.MaxGroupMembers)
		}
	}
	c, evs, err := s.store.UpdateConversation(ctx, u.ID, d.ConversationID, parley.ConversationChange{
		Title: d.Title, Add: d.Add, Remove: d.Remove, Promote: d.Promote, Demote: d.Demote,
	})
	if err != nil {
		return parley.Conversation{}, err
	}
	s.publish(ctx, evs)
	return s.viewed(ctx, u, c)
}

// setFlags changes u's own flags of a conversation (set_flags, PATCH
// /v1/conversations/{id}/flags); the event goes to u's connections only.
func (s *service) setFlags(ctx context.Context, u parley.User, d protocol.SetFlags) (parley.Conversation, error) {
	if err := s.limits.conversationWrites.check(u.ID); err != nil {
		return parley.Conversation{}, err
	}
	if err := required("conversation_id", d.ConversationID); err != nil {
		return parley.Conversation{}, err
	}
	if d.Muted == nil && d.Archived == nil {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "nothing to change: give muted or archived")
	}
	c, evs, err := s.store.SetFlags(ctx, u.ID, d.ConversationID, d.Muted, d.Archived)
	if err != nil {
		return parley.Conversation{}, err
	}
	s.publish(ctx, evs)
	return conversationURLs(c), nil
}

// me returns u as stored (GET /v1/me).
func (s *service) me(ctx context.Context, u parley.User) (parley.User, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return parley.User{}, err
	}
	return s.store.User(ctx, u.ID)
}

// userByName looks a user up by name for u (GET /v1/users/{name}).
func (s *service) userByName(ctx context.Context, u parley.User, name string) (parley.User, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return parley.User{}, err
	}
	return s.store.UserByName(ctx, name)
}

// onlineContacts lists u's contacts who are online now (the presence
// query and welcome.online), from the contacts cache: a reconnect storm
// reads each user's contacts once, not once per connect and once per
// presence transition.
func (s *service) onlineContacts(ctx context.Context, userID string) ([]string, error) {
	ids, err := s.contacts.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	online := []string{}
	for _, id := range ids {
		if s.pres.isOnline(id) {
			online = append(online, id)
		}
	}
	return online, nil
}

func (s *service) presence(ctx context.Context, u parley.User) (protocol.PresenceList, error) {
	if err := s.limits.presence.check(u.ID); err != nil {
		return protocol.PresenceList{}, err
	}
	online, err := s.onlineContacts(ctx, u.ID)
	return protocol.PresenceList{Online: online}, err
}

// eventsPage is the reply to GET /v1/events: resume over HTTP.
type eventsPage struct {
	Events  []parley.Event `json:"events"`
	Head    int64          `json:"head"`
	HasMore bool           `json:"has_more"`
	// Resync is set when after is beyond the server's log (a wiped
	// server): the client must refetch its state.
	Resync bool `json:"resync"`
}

// MaxEventsPage is the most events GET /v1/events returns at once.
const MaxEventsPage = 1000

// events returns the user's events after `after`, at most limit and at
// most maxBytes of them in JSON (see MaxReplyBytes); has_more says to ask
// again from the last one's pos.
func (s *service) events(ctx context.Context, u parley.User, after int64, limit, maxBytes int) (eventsPage, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return eventsPage{}, err
	}
	if after < 0 {
		return eventsPage{}, parley.Errorf(parley.EINVALID, "after must not be negative")
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > MaxEventsPage {
		return eventsPage{}, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", MaxEventsPage)
	}
	head, err := s.store.Head(ctx)
	if err != nil {
		return eventsPage{}, err
	}
	if after > head {
		return eventsPage{Events: []parley.Event{}, Head: head, Resync: true}, nil
	}
	evs, err := s.store.EventsFor(ctx, u.ID, after, limit+1)
	if err != nil {
		return eventsPage{}, err
	}
	p := eventsPage{Head: head}
	if len(evs) > limit {
		evs, p.HasMore = evs[:limit], true
	}
	for i := range evs {
		evs[i] = withURLs(evs[i])
	}
	if n := fitting(evs, maxBytes, false); n < len(evs) {
		evs, p.HasMore = evs[:n], true
	}
	p.Events = nonNil(evs)
	return p, nil
}
