package server

import (
	"context"
	"sync"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// TypingExpiry is how long a typing indicator lasts after the last
// typingStarted; receivers expire it themselves (docs/protocol.md). The
// server uses it to decide which indicators are still on when a typist's
// last connection closes.
const TypingExpiry = 5 * time.Second

// typingTracker remembers where each local user is typing, so the server
// can send typingStopped itself when the typist disappears. It is safe for
// concurrent use.
type typingTracker struct {
	mu     sync.Mutex
	active map[string]map[string]time.Time // user -> conversation -> last start
}

func newTypingTracker() *typingTracker {
	return &typingTracker{active: make(map[string]map[string]time.Time)}
}

// start records user typing in conv now. It forgets the user's
// indicators that have expired, so a user holds at most the few a
// typing rate allows within TypingExpiry, however many conversations
// they start typing in over a connection's life.
func (t *typingTracker) start(user, conv string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	m := t.active[user]
	if m == nil {
		m = make(map[string]time.Time)
		t.active[user] = m
	}
	for c, at := range m {
		if now.Sub(at) >= TypingExpiry {
			delete(m, c)
		}
	}
	m[conv] = now
}

// stop forgets user typing in conv and reports whether the indicator was
// still on.
func (t *typingTracker) stop(user, conv string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	at, ok := t.active[user][conv]
	if !ok {
		return false
	}
	delete(t.active[user], conv)
	if len(t.active[user]) == 0 {
		delete(t.active, user)
	}
	return time.Since(at) < TypingExpiry
}

// gone forgets user and returns the conversations where their indicator
// is still on.
func (t *typingTracker) gone(user string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var convs []string
	for conv, at := range t.active[user] {
		if time.Since(at) < TypingExpiry {
			convs = append(convs, conv)
		}
	}
	delete(t.active, user)
	return convs
}

// typing checks membership and fans a typing event out to the other
// members through the broker; it is never stored.
func (s *service) typing(ctx context.Context, u parley.User, d protocol.Typing) error {
	if err := required("conversation_id", d.ConversationID); err != nil {
		return err
	}
	typ := parley.EventTypingStopped
	if d.Typing {
		typ = parley.EventTypingStarted
		if err := s.limits.typing.check(u.ID); err != nil {
			return err
		}
	} else if !s.typers.stop(u.ID, d.ConversationID) {
		// Not typing there (on this node): nothing to tell, and nothing
		// to ask the store. A stop takes no token (a client may always
		// stop), so only a start, which does, may cost a store read: a
		// flood of stops costs none, whatever conversation it names.
		return nil
	}
	members, err := s.peers(ctx, u, d.ConversationID)
	if err != nil {
		return err
	}
	if d.Typing {
		s.typers.start(u.ID, d.ConversationID)
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
