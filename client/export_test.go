package client

import "time"

// WithRequestTimeout sets the deadline of calls made without one
// (DefaultRequestTimeout), for tests that cannot wait 30 s for it.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) { o.requestTimeout = d }
}

// WithMaxConversationListBytes lowers MaxConversationListBytes, for
// tests that would rather not send 64 MiB.
func WithMaxConversationListBytes(n int) Option {
	return func(o *options) { o.listBytes = n }
}

// WithMaxDownloadBytes lowers the bound of Download (MaxFileBytes),
// for tests that would rather not receive 64 MiB.
func WithMaxDownloadBytes(n int64) Option {
	return func(o *options) { o.fileBytes = n }
}

// PendingRequests is how many requests wait for a reply.
func (c *Client) PendingRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// SetAuthTimeout sets the bound of Register and Login under a ctx with
// no deadline (DefaultRequestTimeout) until the test ends.
func SetAuthTimeout(t interface{ Cleanup(func()) }, d time.Duration) {
	old := authTimeout
	authTimeout = d
	t.Cleanup(func() { authTimeout = old })
}

// WithStateCaps lowers MaxKnownConversations, MaxKnownUsers and
// MaxTypists, for tests that would rather not send tens of thousands of
// ids.
func WithStateCaps(convs, users, typists int) Option {
	return func(o *options) { o.caps = stateCaps{convs: convs, users: users, typists: typists} }
}

// StateSizes reports how many entries each map of the state holds, by
// name.
func (c *Client) StateSizes() map[string]int {
	s := c.state
	s.mu.Lock()
	typing := 0
	for _, m := range s.typing {
		typing += len(m)
	}
	sizes := map[string]int{"online": len(s.online), "names": len(s.names), "unread": len(s.unread), "convs": len(s.convs),
		"removed": len(s.removed), "typing": typing, "typingConversations": len(s.typing), "touched": len(s.touched), "toRefresh": len(s.toRefresh)}
	s.mu.Unlock()
	c.acks.mu.Lock()
	sizes["delivered"] = len(c.acks.pending)
	c.acks.mu.Unlock()
	return sizes
}
