package client

import (
	"context"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Typing timings.
const (
	// TypingExpiry is how long someone counts as typing after their last
	// typingStarted, when no typingStopped comes.
	TypingExpiry = 5 * time.Second
	// TypingThrottle is the least time between two typing starts this
	// client sends for one conversation.
	TypingThrottle = 3 * time.Second
)

// Typist is someone typing in a conversation.
type Typist struct {
	UserID   string
	UserName string
	// Until is when they stop counting as typing unless they type more.
	Until time.Time
}

type typist struct {
	Typist
	timer *time.Timer
}

// chatState is what the client knows about conversations, typing and
// presence, kept right by events. Its lock s.mu is taken after c.mu is
// released, never while holding a view's lock.
type chatState struct {
	c *Client

	mu       sync.Mutex
	closed   bool
	online   map[string]bool
	names    map[string]string             // user id -> display name, from events (see nameLocked)
	typing   map[string]map[string]*typist // conversation -> user; no empty inner map
	typists  int                           // entries in typing, at most opts.caps.typists
	myTyping map[string]time.Time          // conversation -> last start sent
	convs    map[string]*parley.Conversation
	loaded   bool
	listing  int                // Conversations calls under way
	unread   map[string]*unread // per conversation, while loaded or listing
	evSeq    uint64             // events applied so far (orders fetches against events)
	views    map[string][]*ConversationView
	// removed holds the conversations this user was removed from or
	// left, as events told (members_removed naming them), until an event
	// adds them back. Send refuses them with ErrRemoved.
	removed map[string]bool

	// touched is, while listing, the evSeq of the last event per
	// conversation: one that moved between pages is fetched alone.
	touched map[string]uint64

	// toRefresh holds the conversations waiting to be fetched alone
	// (refreshLocked), refreshOrder the same ids in the order they
	// came; refreshers counts the refreshLoops running.
	toRefresh    map[string]bool
	refreshOrder []string
	refreshers   int

	// relisting is set while a listing relistLocked started runs;
	// relistAgain asks it for one more.
	relisting, relistAgain bool
}

func newChatState(c *Client) *chatState {
	return &chatState{
		c:        c,
		online:   make(map[string]bool),
		names:    make(map[string]string),
		typing:   make(map[string]map[string]*typist),
		myTyping: make(map[string]time.Time),
		convs:    make(map[string]*parley.Conversation),
		unread:   make(map[string]*unread),
		views:    make(map[string][]*ConversationView),
		removed:  make(map[string]bool),
	}
}

func (s *chatState) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, m := range s.typing {
		for _, t := range m {
			t.timer.Stop()
		}
	}
	s.typing, s.typists = make(map[string]map[string]*typist), 0
}

// onWelcome resets presence to the server's list.
func (s *chatState) onWelcome(w protocol.Welcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setOnlineLocked(w.Online)
	// Our own typing indicators died with the old connection.
	s.myTyping = make(map[string]time.Time)
}

// onDisconnect ends every typing indicator: the typingStopped that would
// have ended them may be lost with the connection.
func (s *chatState) onDisconnect() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for conv, m := range s.typing {
		for _, t := range m {
			t.timer.Stop()
			s.c.emit(TypingStopped{ConversationID: conv, UserID: t.UserID, UserName: t.UserName, Expired: true, At: time.Now()})
		}
	}
	s.typing, s.typists = make(map[string]map[string]*typist), 0
}

// setOnlineLocked replaces presence with ids, as far as its bound
// (MaxKnownUsers) goes. Caller holds s.mu.
func (s *chatState) setOnlineLocked(ids []string) {
	s.online = make(map[string]bool, min(len(ids), s.c.opts.caps.users))
	for _, id := range ids {
		if roomFor(s.online, id, s.c.opts.caps.users) {
			s.online[id] = true
		}
	}
}

// onResync refetches the conversation list and every open view.
func (s *chatState) onResync() {
	s.mu.Lock()
	if s.loaded {
		s.relistLocked()
	}
	var views []*ConversationView
	for _, vs := range s.views {
		views = append(views, vs...)
	}
	s.mu.Unlock()
	for _, v := range views {
		v.reset()
	}
}

// relistLocked has the conversation list fetched again in the
// background, one listing at a time: a resync during one has it fetched
// once more after it (the one under way may predate the resync), as a
// view's reset does. Each resync started a listing of its own, so a
// server sending resyncs in a row held a goroutine and a listing each.
// Caller holds s.mu.
func (s *chatState) relistLocked() {
	if s.relisting {
		s.relistAgain = true
		return
	}
	s.relisting = true
	// Each listing has its own deadline (Conversations': c.life has
	// none), not spawn's one for them all; Close ends them.
	s.c.spawn(func(context.Context) {
		for {
			_, _ = s.c.Conversations(s.c.life)
			s.mu.Lock()
			again := s.relistAgain
			s.relisting, s.relistAgain = again, false
			s.mu.Unlock()
			if !again || s.c.life.Err() != nil {
				return
			}
		}
	})
}

// apply updates the state for one event; the reader goroutine calls it
// before the app sees the event.
func (s *chatState) apply(ev Event) {
	me := s.c.User().ID
	s.mu.Lock()
	s.evSeq++
	if id := eventConversation(ev); id != "" && s.listing > 0 && roomFor(s.touched, id, s.c.opts.caps.convs) {
		if s.touched == nil {
			s.touched = make(map[string]uint64)
		}
		s.touched[id] = s.evSeq
	}
	listChanged := s.applyRequestLocked(ev, me)
	var views []*ConversationView
	s.learnFromLocked(ev)
	switch e := ev.(type) {
	case NewMessage:
		views = s.views[e.Message.ConversationID]
		s.unreadLocked(e.Message.ConversationID, func(u *unread) bool { return u.message(e.Message, me, s.evSeq) })
		if cv := s.convs[e.Message.ConversationID]; cv != nil {
			m := e.Message
			if m.Seq > cv.LastSeq {
				cv.LastSeq, cv.LastMessage, cv.LastActivityAt = m.Seq, &m, m.CreatedAt
				cv.Archived = false // a new message ends an archive (docs/protocol.md, set_flags)
			}
			listChanged = true
		} else if s.loaded {
			s.refreshLocked(e.Message.ConversationID)
		}
		// A message ends its sender's typing.
		s.endTypingLocked(e.Message.ConversationID, e.Message.SenderID, e.At)
	case MessageDeleted:
		views = s.views[e.Message.ConversationID]
		s.unreadLocked(e.Message.ConversationID, func(u *unread) bool { return u.message(e.Message, me, s.evSeq) })
		if cv := s.convs[e.Message.ConversationID]; cv != nil {
			m := e.Message
			if cv.LastMessage != nil && cv.LastMessage.ID == m.ID {
				cv.LastMessage = &m
			}
			listChanged = true
		}
	case MessageEdited:
		views = s.views[e.Message.ConversationID]
		// An edit re-resolves mentions: the unread mentions follow.
		s.unreadLocked(e.Message.ConversationID, func(u *unread) bool { return u.mention(e.Message, me) })
		listChanged = listChanged || slices.Contains(e.Message.Mentions, me)
		if cv := s.convs[e.Message.ConversationID]; cv != nil && cv.LastMessage != nil && cv.LastMessage.ID == e.Message.ID {
			// The list's last message follows its edit.
			m := e.Message
			cv.LastMessage = &m
			listChanged = true
		}
	case ReactionAdded:
		views = s.views[e.ConversationID]
	case ReactionRemoved:
		views = s.views[e.ConversationID]
	case MessageRead:
		views = s.views[e.ConversationID]
		if e.UserID == me {
			s.unreadLocked(e.ConversationID, func(u *unread) bool { return u.setRead(e.ReadSeq) })
		}
		if cv := s.convs[e.ConversationID]; cv != nil {
			for i := range cv.Members {
				if cv.Members[i].UserID == e.UserID && e.ReadSeq > cv.Members[i].ReadSeq {
					cv.Members[i].ReadSeq = e.ReadSeq
				}
			}
			listChanged = true
		}
	case ConversationUpdated:
		views = s.views[e.Conversation.ID]
		id := e.Conversation.ID
		removedMe := e.Change == parley.ChangeMembersRemoved && slices.Contains(e.UserIDs, me)
		if (e.Change == parley.ChangeMembersAdded || e.Change == parley.ChangeCreated) && slices.ContainsFunc(e.Conversation.Members, func(m parley.Member) bool { return m.UserID == me }) {
			delete(s.removed, id)
		}
		switch {
		case removedMe:
			if roomFor(s.removed, id, s.c.opts.caps.convs) {
				s.removed[id] = true
			}
			delete(s.convs, id)
			delete(s.unread, id)
		case s.convs[id] != nil:
			cv := s.convs[id]
			cv.Title, cv.Members = e.Conversation.Title, mergeMembers(cv.Members, e.Conversation.Members)
		case s.loaded:
			s.refreshLocked(id)
		}
		listChanged = s.loaded
	case FlagsChanged:
		if cv := s.convs[e.ConversationID]; cv != nil {
			cv.Muted, cv.Archived = e.Flags.Muted, e.Flags.Archived
			listChanged = true
		}
	case TypingStarted:
		if e.UserID == me {
			break
		}
		until := time.Now().Add(TypingExpiry)
		if t := s.typing[e.ConversationID][e.UserID]; t != nil {
			t.Until, t.UserName = until, e.UserName
			t.timer.Reset(TypingExpiry)
			break
		}
		if s.typists >= s.c.opts.caps.typists || len(e.ConversationID) > MaxStateIDBytes || len(e.UserID) > MaxStateIDBytes {
			break // past the bound: not shown
		}
		m := s.typing[e.ConversationID]
		if m == nil {
			m = make(map[string]*typist)
			s.typing[e.ConversationID] = m
		}
		s.typists++
		t := &typist{Typist: Typist{UserID: e.UserID, UserName: e.UserName, Until: until}}
		conv := e.ConversationID
		t.timer = time.AfterFunc(TypingExpiry, func() { s.expire(conv, t) })
		m[e.UserID] = t
	case TypingStopped:
		s.dropTypistLocked(e.ConversationID, e.UserID)
	case UserOnline:
		if roomFor(s.online, e.UserID, s.c.opts.caps.users) {
			s.online[e.UserID] = true
		}
	case UserOffline:
		delete(s.online, e.UserID)
	case UserBlocked:
		// Their typing is hidden from now on: it ends here.
		for conv := range s.typing {
			s.endTypingLocked(conv, e.UserID, e.At)
		}
	}
	if s.applyReceiptLocked(ev) {
		listChanged = true
	}
	switch e := ev.(type) {
	case MessageDelivered:
		views = s.views[e.ConversationID] // its receipts changed
	case ProfileUpdated:
		views = s.views[e.ConversationID]
	}
	s.mu.Unlock()
	if listChanged {
		s.c.emit(ConversationsChanged{})
	}
	for _, v := range views {
		v.apply(ev)
	}
	switch ev.(type) {
	case UserBlocked, UserUnblocked:
		// What the server shows this user changed (the blocked user's
		// messages, the list's last messages and unread counts): read
		// it again, as after a resync.
		s.onResync()
	}
}

// endTypingLocked ends user's typing in conversation conv, if they are
// typing there, and tells the app (TypingStopped at at). s.mu is held.
func (s *chatState) endTypingLocked(conv, user string, at time.Time) {
	if t := s.dropTypistLocked(conv, user); t != nil {
		s.c.emit(TypingStopped{ConversationID: conv, UserID: t.UserID, UserName: t.UserName, At: at})
	}
}

// dropTypistLocked ends user's typing in conv, if any, and returns it:
// its timer stopped, its conversation's map gone with its last typist
// (empty maps kept every conversation anyone ever typed in). s.mu is
// held.
func (s *chatState) dropTypistLocked(conv, user string) *typist {
	t := s.typing[conv][user]
	if t == nil {
		return nil
	}
	t.timer.Stop()
	delete(s.typing[conv], user)
	if len(s.typing[conv]) == 0 {
		delete(s.typing, conv)
	}
	s.typists--
	return t
}

// IsRemoved reports whether this user was removed from the conversation
// (or left it) while this client was running: it saw the
// conversationUpdated members_removed event that names them (live or
// replayed on resume) and no event adding them back since. Send and
// SendImage to it fail with ErrRemoved; a ConversationView of it reports
// Removed. A conversation the user left before this client started, or
// that a resync dropped, is simply absent from Conversations (and a send
// to it fails with not_found from the server).
func (c *Client) IsRemoved(conversationID string) bool {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.removed[conversationID]
}

// eventConversation is the conversation a new message or a change
// (which can move or add a conversation in the list) is about, or "".
func eventConversation(ev Event) string {
	switch e := ev.(type) {
	case NewMessage:
		return e.Message.ConversationID
	case ConversationUpdated:
		return e.Conversation.ID
	case FlagsChanged:
		// A page fetched before it would undo it: fetched again alone.
		return e.ConversationID
	case RequestAnswered:
		return e.ConversationID
	}
	return ""
}

// learnFromLocked records the names an event carries. Caller holds s.mu.
func (s *chatState) learnFromLocked(ev Event) {
	switch e := ev.(type) {
	case NewMessage:
		s.learnLocked(e.Message.SenderID, e.Message.SenderName)
	case MessageRead:
		s.learnLocked(e.UserID, e.UserName)
	case ReactionAdded:
		s.learnLocked(e.UserID, e.UserName)
	case ReactionRemoved:
		s.learnLocked(e.UserID, e.UserName)
	case ConversationUpdated:
		s.learnLocked(e.UserID, e.UserName)
		for _, m := range e.Conversation.Members {
			s.learnLocked(m.UserID, m.Name)
		}
	case TypingStarted:
		s.learnLocked(e.UserID, e.UserName)
	case TypingStopped:
		s.learnLocked(e.UserID, e.UserName)
	case UserOnline:
		s.learnLocked(e.UserID, e.UserName)
	case UserOffline:
		s.learnLocked(e.UserID, e.UserName)
	}
}

// unreadLocked updates a conversation's unread tracker with f (while the
// list is kept: loaded, or being fetched); when f reports an event the
// SDK cannot account for locally, it asks the server. Caller holds s.mu.
func (s *chatState) unreadLocked(id string, f func(*unread) bool) {
	if !s.loaded && s.listing == 0 {
		return
	}
	u := s.unread[id]
	if u == nil {
		if !roomFor(s.unread, id, s.c.opts.caps.convs) {
			return // past the bound: the next listing counts it
		}
		u = &unread{}
		s.unread[id] = u
	}
	if !f(u) {
		u.ambiguousAt = s.evSeq
		if s.convs[id] != nil {
			s.refreshLocked(id)
		}
	}
}

// takeReplyLocked merges a fetched conversation into the list and its
// unread tracker; sentAt is s.evSeq when the request was made. It
// refetches when the reply cannot be trusted for the unread count.
// Caller holds s.mu.
func (s *chatState) takeReplyLocked(cv *parley.Conversation, sentAt uint64) {
	if !roomFor(s.convs, cv.ID, s.c.opts.caps.convs) || !roomFor(s.unread, cv.ID, s.c.opts.caps.convs) {
		return // past the bound (MaxKnownConversations): not cached
	}
	u := s.unread[cv.ID]
	if u == nil {
		u = &unread{}
		s.unread[cv.ID] = u
	}
	if sentAt < u.appliedAt && s.convs[cv.ID] != nil {
		return // a newer reply is in effect already
	}
	if !u.reply(cv, sentAt) {
		u.ambiguousAt = max(u.ambiguousAt, sentAt+1)
		s.refreshLocked(cv.ID)
	}
	if old := s.convs[cv.ID]; old != nil && old.LastSeq > cv.LastSeq {
		// Events newer than the reply already moved the last message.
		cv.LastSeq, cv.LastMessage, cv.LastActivityAt = old.LastSeq, old.LastMessage, old.LastActivityAt
	}
	s.convs[cv.ID] = cv
}

// mergeMembers takes the new member list, keeping read positions we knew.
func mergeMembers(old, next []parley.Member) []parley.Member {
	out := append([]parley.Member(nil), next...)
	for i := range out {
		for _, o := range old {
			if o.UserID == out[i].UserID {
				out[i].ReadSeq = max(out[i].ReadSeq, o.ReadSeq)
				out[i].DeliveredSeq = max(out[i].DeliveredSeq, o.DeliveredSeq)
			}
		}
	}
	return out
}

// expire ends a typing indicator whose time is up (a timer goroutine).
func (s *chatState) expire(conv string, t *typist) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.typing[conv][t.UserID] != t || time.Now().Before(t.Until) {
		return
	}
	s.dropTypistLocked(conv, t.UserID)
	s.c.emit(TypingStopped{ConversationID: conv, UserID: t.UserID, UserName: t.UserName, Expired: true, At: time.Now()})
}

// refreshLocked has one conversation fetched alone in the background
// (refreshLoop) and put in the list. Caller holds s.mu.
func (s *chatState) refreshLocked(id string) {
	if !roomFor(s.toRefresh, id, s.c.opts.caps.convs) {
		return // past the bound: the next listing has it
	}
	if u := s.unread[id]; u != nil {
		if u.fetching {
			return // its reply sees ambiguousAt and fetches again
		}
		u.fetching = true
	}
	if s.toRefresh[id] {
		return // its fetch has not started: it sees this event too
	}
	if s.toRefresh == nil {
		s.toRefresh = make(map[string]bool)
	}
	s.toRefresh[id] = true
	s.refreshOrder = append(s.refreshOrder, id)
	if s.refreshers < maxRefreshers {
		s.refreshers++
		// The fetches take c.life, not spawn's ctx, whose one deadline
		// would be shared by every fetch of the loop: each call has its
		// own (DefaultRequestTimeout) and Close ends them.
		s.c.spawn(func(context.Context) { s.refreshLoop(s.c.life) })
	}
}

// maxRefreshers bounds the goroutines that fetch conversations alone
// (refreshLocked): a server sending events of many conversations the
// client does not know (a broken or hostile one, or a long replay) made
// one goroutine and one request in flight each, without bound; now the
// conversations wait their turn in s.toRefresh, each once.
const maxRefreshers = 4

// refreshLoop fetches the conversations waiting in s.toRefresh, oldest
// first, until none waits. One of at most maxRefreshers, each run by
// spawn (owned by the Client).
func (s *chatState) refreshLoop(ctx context.Context) {
	for {
		s.mu.Lock()
		if len(s.refreshOrder) == 0 || ctx.Err() != nil {
			s.refreshers--
			s.mu.Unlock()
			return
		}
		id := s.refreshOrder[0]
		s.refreshOrder[0] = ""
		s.refreshOrder = s.refreshOrder[1:]
		if len(s.refreshOrder) == 0 {
			s.refreshOrder = nil // the backing array goes
		}
		delete(s.toRefresh, id)
		sentAt := s.evSeq
		s.mu.Unlock()
		s.refresh(ctx, id, sentAt)
	}
}

// refresh fetches conversation id alone and merges it, as a request made
// at evSeq sentAt.
func (s *chatState) refresh(ctx context.Context, id string, sentAt uint64) {
	var cv parley.Conversation
	err := s.c.call(ctx, protocol.OpConversation, protocol.ConversationRef{ConversationID: id}, &cv, true)
	s.mu.Lock()
	if u := s.unread[id]; u != nil {
		u.fetching = false
	}
	switch {
	case err == nil:
		s.takeReplyLocked(&cv, sentAt)
	case parley.ErrorCode(err) == parley.ENOTFOUND:
		delete(s.convs, id)
		delete(s.unread, id)
	}
	s.mu.Unlock()
	if err == nil || parley.ErrorCode(err) == parley.ENOTFOUND {
		s.c.emit(ConversationsChanged{})
	}
}

// Typing returns who is typing in a conversation (not this user), ordered
// by user id.
func (c *Client) Typing(conversationID string) []Typist {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Typist
	for _, t := range s.typing[conversationID] {
		out = append(out, t.Typist)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

// Online returns the contacts (see docs/protocol.md section 6: users who
// both took part in a conversation with this user) online now, sorted by
// id. It is the server's list at the last welcome, kept up to date by
// UserOnline and UserOffline. The server sends ids only; Name is what the
// client knows of the user's display name (from conversation members and
// the names events carry), empty when it knows none: a fetched
// conversation list (Conversations) covers every contact.
func (c *Client) Online() []parley.User {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usersLocked(s.online)
}

// usersLocked lists the users in ids, with names, sorted by id. Caller
// holds s.mu.
func (s *chatState) usersLocked(ids map[string]bool) []parley.User {
	out := make([]parley.User, 0, len(ids))
	for id := range ids {
		out = append(out, parley.User{ID: id, Name: s.nameLocked(id)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// nameLocked returns what the client knows of a user's display name: the
// last name an event carried, else a cached conversation's member list.
// Caller holds s.mu.
func (s *chatState) nameLocked(id string) string {
	if n := s.names[id]; n != "" {
		return n
	}
	for _, cv := range s.convs {
		for _, m := range cv.Members {
			if m.UserID == id && m.Name != "" {
				return m.Name
			}
		}
	}
	return ""
}

// learnLocked records a name an event carried. Caller holds s.mu.
func (s *chatState) learnLocked(id, name string) {
	if id != "" && name != "" && len(name) <= maxStateNameBytes && roomFor(s.names, id, s.c.opts.caps.users) {
		s.names[id] = name
	}
}

// named fills in the name of a presence event (the server sends only the
// id) from what the client knows.
func (s *chatState) named(ev Event) Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e := ev.(type) {
	case UserOnline:
		if e.UserName == "" {
			e.UserName = s.nameLocked(e.UserID)
		}
		return e
	case UserOffline:
		if e.UserName == "" {
			e.UserName = s.nameLocked(e.UserID)
		}
		return e
	}
	return ev
}

// presenceRepeat reports whether ev is a UserOnline of a user the state
// holds online, or a UserOffline of one it does not: the server may say
// "online" twice (docs/protocol.md: a state, not a count), and the app
// hears only changes. Only the connection's reader calls it, before
// apply, so the answer holds until apply.
func (s *chatState) presenceRepeat(ev Event) bool {
	var id string
	var on bool
	switch e := ev.(type) {
	case UserOnline:
		id, on = e.UserID, true
	case UserOffline:
		id = e.UserID
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online[id] == on
}

// IsOnline reports whether a contact is online.
func (c *Client) IsOnline(userID string) bool {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.online[userID]
}

// SetTyping tells the conversation's other members this user is typing
// (true) or stopped (false). Call it on every keystroke: starts are sent
// at most once per TypingThrottle per conversation while typing, a stop
// only after a start, and Send sends the stop itself. Call it in the order
// the user acted: a start made on another goroutine that runs after the
// Send of its line reaches the others after the message, and shows this user
// typing under it until TypingExpiry. Typing is ephemeral:
// while not connected, or while the server throttles the "typing" feature,
// it is dropped and SetTyping returns nil. After Close it returns
// ErrClosed.
func (c *Client) SetTyping(ctx context.Context, conversationID string, typing bool) error {
	// After Close it fails as every call does, rather than look dropped
	// for being offline.
	if c.life.Err() != nil {
		return ErrClosed
	}
	s := c.state
	now := time.Now()
	s.mu.Lock()
	last, was := s.myTyping[conversationID]
	switch {
	case typing && was && now.Sub(last) < TypingThrottle:
		s.mu.Unlock()
		return nil
	case !typing && !was:
		s.mu.Unlock()
		return nil
	case typing:
		s.myTyping[conversationID] = now
	default:
		delete(s.myTyping, conversationID)
	}
	s.mu.Unlock()
	st := c.Status()
	if _, throttled := st.Throttled["typing"]; throttled || !st.Connected() {
		return nil
	}
	_, err := c.roundTrip(ctx, protocol.OpTyping, protocol.Typing{ConversationID: conversationID, Typing: typing})
	if err == errConnLost {
		return nil
	}
	return err
}

// typingSent stops our typing indicator after a Send, in the background
// (Send must not block on the network).
func (s *chatState) typingSent(conv string) {
	s.mu.Lock()
	_, was := s.myTyping[conv]
	s.mu.Unlock()
	if was {
		s.c.spawn(func(ctx context.Context) { _ = s.c.SetTyping(ctx, conv, false) })
	}
}

// spawn runs f on a goroutine the Client owns (Close cancels ctx and waits).
func (c *Client) spawn(f func(ctx context.Context)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(c.life, c.opts.requestTimeout)
		defer cancel()
		f(ctx)
	}()
}
