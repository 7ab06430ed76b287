package server

import (
	"cmp"
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/parleychat/parley"
)

// Limits bounds what one user, IP or connection may do. A zero field takes
// its default; a negative rate switches that limit off.
type Limits struct {
	// SendQueueBytes bounds the bytes queued for one connection and not
	// yet written (default DefaultSendQueueBytes, 1 MiB), each frame
	// charged its length plus frameOverhead. Over it, typing and presence
	// frames are dropped first; a durable event or a reply that still
	// does not fit closes the connection with 4001 and the client
	// resumes. A frame larger than the budget is queued when nothing else
	// is. The request worker does not run a connection's next request
	// while more than half of it is queued, and a WebSocket reply is cut
	// to at most half of it (see replyBytes): a client that stops reading
	// holds about this much, whatever it asks for.
	SendQueueBytes int
	// HubQueueBytes bounds the durable events a node has received from
	// the broker and not yet delivered, by estimated size (default
	// DefaultHubQueueBytes, 64 MiB), once for those waiting for the
	// sequencer and once for those held behind a gap. Over it, events
	// are dropped and the sequencer reads them from the store instead:
	// nothing is lost, delivery only takes a store read.
	HubQueueBytes int
	// UserCacheBytes bounds the node's cache of users it has checked in
	// the store (default DefaultUserCacheBytes, 64 MiB), by estimated
	// size: a cached user's hello costs no store call. Past it the users
	// least in use (not connected to this node, not looked up lately)
	// are forgotten; their next hello reads them from the store.
	UserCacheBytes int

	// MessagesPerSecond and MessageBurst limit sends per user (default 10/s,
	// burst 50); IPMessagesPerSecond and IPMessageBurst per IP (default
	// 50/s, burst 200).
	MessagesPerSecond   float64
	MessageBurst        int
	IPMessagesPerSecond float64
	IPMessageBurst      int
	// TypingPerSecond and TypingBurst limit typing requests per user
	// (default 2/s, burst 6).
	TypingPerSecond float64
	TypingBurst     int
	// PresencePerSecond and PresenceBurst limit presence queries per user
	// (default 1/s, burst 5).
	PresencePerSecond float64
	PresenceBurst     int
	// ConnectsPerSecond and ConnectBurst limit new WebSocket connections
	// and logins per IP (default 10/s, burst 50).
	ConnectsPerSecond float64
	ConnectBurst      int

	// The families below are per user and shared by the WebSocket ops
	// and their HTTP routes (one service layer). Over a limit the request
	// fails with rate_limited and retry_after_ms (HTTP 429, Retry-After);
	// the connection stays up and no feature is switched off.

	// ReadsPerSecond and ReadBurst limit reads per user: history,
	// conversations, conversation, GET /v1/events, GET /v1/me and
	// GET /v1/users/{name} (default 20/s, burst 100). Presence queries
	// have their own limit (PresencePerSecond).
	ReadsPerSecond float64
	ReadBurst      int
	// ConversationWritesPerSecond and ConversationWriteBurst limit
	// create_direct, create_group, update_conversation (rename, add,
	// remove, promote, demote, leave) and set_flags (mute, archive) per
	// user (default 2/s, burst 20): each writes a durable event.
	ConversationWritesPerSecond float64
	ConversationWriteBurst      int
	// ReadMarksPerSecond and ReadMarkBurst limit read marks per user
	// (default 10/s, burst 50).
	ReadMarksPerSecond float64
	ReadMarkBurst      int
	// DeletesPerSecond and DeleteBurst limit message deletes per user
	// (default 5/s, burst 50).
	DeletesPerSecond float64
	DeleteBurst      int
	// ReactionsPerSecond and ReactionBurst limit reactions added or
	// removed per user (default 5/s, burst 30). Edits take from the
	// messages limits (MessagesPerSecond, IPMessagesPerSecond) as sends
	// do, and keep their order with them (the send gate).
	ReactionsPerSecond float64
	ReactionBurst      int
	// SearchesPerSecond and SearchBurst limit full-text searches per
	// user (default 1/s, burst 10): a search reads an index, not a page.
	// Listing one's mentions is a read (ReadsPerSecond).
	SearchesPerSecond float64
	SearchBurst       int

	// APIKeyFailuresPerSecond and APIKeyFailureBurst limit failed server
	// API authentications per IP: an unknown or revoked API key, or a
	// wrong Config.MetricsToken on /metrics (default 1/6 per second, i.e.
	// 10 a minute, burst 10). Once an IP is over it, every server API
	// call and /metrics request from it gets rate_limited (HTTP 429,
	// Retry-After) before its key is looked up, a valid key's too, until
	// the budget refills; calls that authenticate take nothing from it.
	// Per node.
	APIKeyFailuresPerSecond float64
	APIKeyFailureBurst      int

	// ConnectionsPerUser caps one user's WebSocket connections on this
	// node (default 20; negative: no cap). When a connection's hello
	// would exceed it, the user's oldest connection on the node is
	// closed with 4103 (protocol.CloseTooManyConnections), which clients
	// do not reconnect from. The cap is per node, not per cluster.
	ConnectionsPerUser int
}

// Defaults of the byte budgets in Limits.
const (
	DefaultSendQueueBytes = 1 << 20
	DefaultHubQueueBytes  = 64 << 20
)

func (l Limits) withDefaults() Limits {
	def := func(r *float64, b *int, dr float64, db int) {
		*r = cmp.Or(*r, dr)
		orDefault(b, db)
	}
	orDefault(&l.SendQueueBytes, DefaultSendQueueBytes)
	orDefault(&l.HubQueueBytes, DefaultHubQueueBytes)
	orDefault(&l.UserCacheBytes, DefaultUserCacheBytes)
	def(&l.MessagesPerSecond, &l.MessageBurst, 10, 50)
	def(&l.IPMessagesPerSecond, &l.IPMessageBurst, 50, 200)
	def(&l.TypingPerSecond, &l.TypingBurst, 2, 6)
	def(&l.PresencePerSecond, &l.PresenceBurst, 1, 5)
	def(&l.ConnectsPerSecond, &l.ConnectBurst, 10, 50)
	def(&l.ReadsPerSecond, &l.ReadBurst, 20, 100)
	def(&l.ConversationWritesPerSecond, &l.ConversationWriteBurst, 2, 20)
	def(&l.ReadMarksPerSecond, &l.ReadMarkBurst, 10, 50)
	def(&l.DeletesPerSecond, &l.DeleteBurst, 5, 50)
	def(&l.ReactionsPerSecond, &l.ReactionBurst, 5, 30)
	def(&l.SearchesPerSecond, &l.SearchBurst, 1, 10)
	def(&l.APIKeyFailuresPerSecond, &l.APIKeyFailureBurst, 10.0/60, 10)
	l.ConnectionsPerUser = cmp.Or(l.ConnectionsPerUser, DefaultConnectionsPerUser)
	return l
}

// DefaultConnectionsPerUser is the default Limits.ConnectionsPerUser.
const DefaultConnectionsPerUser = 20

// Unlimited returns Limits with every rate limit switched off (the byte
// budgets and the per-user connection cap keep their defaults: they are
// bounds, not rates). Tests and load runs from one IP use it.
func Unlimited() Limits {
	return Limits{
		MessagesPerSecond: -1, IPMessagesPerSecond: -1, TypingPerSecond: -1,
		PresencePerSecond: -1, ConnectsPerSecond: -1,
		ReadsPerSecond: -1, ConversationWritesPerSecond: -1, ReadMarksPerSecond: -1,
		DeletesPerSecond: -1, ReactionsPerSecond: -1, APIKeyFailuresPerSecond: -1,
		SearchesPerSecond: -1,
	}
}

// limiterSet is a token bucket per key (a user id or an IP). It is safe for
// concurrent use; sweep forgets keys idle for a while so memory stays
// bounded.
type limiterSet struct {
	name  string
	limit rate.Limit
	burst int
	hit   func(name string)

	mu sync.Mutex
	m  map[string]*limiterEntry
	// used counts the tokens taken per key since the last takeUsed
	// (limitshare.go), so other nodes can charge them: cluster-wide limits.
	// nil while limits are not shared (limiters.shared).
	used map[string]int
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiterSet(name string, perSecond float64, burst int, hit func(string)) *limiterSet {
	lim := rate.Limit(perSecond)
	if perSecond < 0 || math.IsInf(perSecond, 1) {
		lim = rate.Inf
	}
	return &limiterSet{name: name, limit: lim, burst: burst, hit: hit, m: make(map[string]*limiterEntry)}
}

// wait reports how long key must wait before it may act; 0 means it may act
// now, and the token is taken.
func (s *limiterSet) wait(key string) time.Duration {
	if s.limit == rate.Inf {
		return 0
	}
	now := time.Now()
	e := s.entry(key, now)
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Hour
	}
	d := r.DelayFrom(now)
	if d == 0 {
		s.countUsed(key)
		return 0
	}
	r.CancelAt(now)
	if s.hit != nil {
		s.hit(s.name)
	}
	return d
}

// entry returns key's bucket, made full when key has none, and marks it
// used at now (sweep forgets idle ones).
func (s *limiterSet) entry(key string, now time.Time) *limiterEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[key]
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(s.limit, s.burst)}
		s.m[key] = e
	}
	e.seen = now
	return e
}

// lookup returns key's limiter, nil when key has none (it never acted, or
// sweep forgot it).
func (s *limiterSet) lookup(key string) *limiterEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

// blocked reports how long key must wait before it has a token, without
// taking one (0: it has one); a key over its limit counts as a hit. For
// limits on failures: the caller checks blocked first and takes a token
// with wait only when the attempt failed.
func (s *limiterSet) blocked(key string) time.Duration {
	if s.limit == rate.Inf {
		return 0
	}
	e := s.lookup(key)
	if e == nil {
		return 0
	}
	tokens := e.lim.TokensAt(time.Now())
	if tokens >= 1 {
		return 0
	}
	if s.hit != nil {
		s.hit(s.name)
	}
	if s.limit <= 0 {
		return time.Hour
	}
	return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second))
}

// take takes a token for key, waiting for it while ctx allows: when the
// wait would outlast ctx's deadline it answers ERATELIMITED with
// RetryAfter at once, as check does.
func (s *limiterSet) take(ctx context.Context, key string) error {
	for {
		d := s.wait(key)
		if d == 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return &parley.Error{Code: parley.ERATELIMITED, Message: "too many requests; slow down", RetryAfter: d}
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// check is wait as an error: ERATELIMITED with RetryAfter.
func (s *limiterSet) check(key string) error {
	if d := s.wait(key); d > 0 {
		return &parley.Error{Code: parley.ERATELIMITED, Message: "too many requests; slow down", RetryAfter: d}
	}
	return nil
}

func (s *limiterSet) sweep(idle time.Duration) {
	cut := time.Now().Add(-idle)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.m {
		if e.seen.Before(cut) {
			delete(s.m, k)
		}
	}
}

// limiters are the server's rate limits. Each set's name is its label in
// the parley_rate_limited_total metric.
type limiters struct {
	messages, ipMessages, typing, presence, connects *limiterSet
	// Per user, one family each (see Limits).
	reads, conversationWrites, readMarks, deletes, reactions, searches *limiterSet
	// apiKeyFailures is per IP: failed server API authentications.
	apiKeyFailures *limiterSet
	// byName holds every set by name, for the usage other nodes report.
	byName map[string]*limiterSet
}

func newLimiters(l Limits, hit func(string)) *limiters {
	ls := &limiters{
		messages:           newLimiterSet("messages", l.MessagesPerSecond, l.MessageBurst, hit),
		ipMessages:         newLimiterSet("ip_messages", l.IPMessagesPerSecond, l.IPMessageBurst, hit),
		typing:             newLimiterSet("typing", l.TypingPerSecond, l.TypingBurst, hit),
		presence:           newLimiterSet("presence", l.PresencePerSecond, l.PresenceBurst, hit),
		connects:           newLimiterSet("connects", l.ConnectsPerSecond, l.ConnectBurst, hit),
		reads:              newLimiterSet("reads", l.ReadsPerSecond, l.ReadBurst, hit),
		conversationWrites: newLimiterSet("conversation_writes", l.ConversationWritesPerSecond, l.ConversationWriteBurst, hit),
		readMarks:          newLimiterSet("read_marks", l.ReadMarksPerSecond, l.ReadMarkBurst, hit),
		deletes:            newLimiterSet("deletes", l.DeletesPerSecond, l.DeleteBurst, hit),
		reactions:          newLimiterSet("reactions", l.ReactionsPerSecond, l.ReactionBurst, hit),
		searches:           newLimiterSet("searches", l.SearchesPerSecond, l.SearchBurst, hit),
		apiKeyFailures:     newLimiterSet("api_key_failures", l.APIKeyFailuresPerSecond, l.APIKeyFailureBurst, hit),
	}
	ls.byName = make(map[string]*limiterSet)
	for _, s := range ls.all() {
		ls.byName[s.name] = s
	}
	return ls
}

// all returns every set.
func (l *limiters) all() []*limiterSet {
	return []*limiterSet{l.messages, l.ipMessages, l.typing, l.presence, l.connects,
		l.reads, l.conversationWrites, l.readMarks, l.deletes, l.reactions, l.searches, l.apiKeyFailures}
}

func (l *limiters) sweep(idle time.Duration) {
	for _, s := range l.all() {
		s.sweep(idle)
	}
}
