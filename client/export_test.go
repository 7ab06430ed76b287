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
