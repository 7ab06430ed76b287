package server

import (
	"sync"
	"time"
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

func (t *typingTracker) start(user, conv string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.active[user]
	if m == nil {
		m = make(map[string]time.Time)
		t.active[user] = m
	}
	m[conv] = time.Now()
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
