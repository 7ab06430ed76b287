package server

import (
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
}

// Defaults of the byte budgets in Limits.
const (
	DefaultSendQueueBytes = 1 << 20
	DefaultHubQueueBytes  = 64 << 20
)

func (l Limits) withDefaults() Limits {
	def := func(r *float64, b *int, dr float64, db int) {
		if *r == 0 {
			*r = dr
		}
		if *b <= 0 {
			*b = db
		}
	}
	if l.SendQueueBytes <= 0 {
		l.SendQueueBytes = DefaultSendQueueBytes
	}
	if l.HubQueueBytes <= 0 {
		l.HubQueueBytes = DefaultHubQueueBytes
	}
	def(&l.MessagesPerSecond, &l.MessageBurst, 10, 50)
	def(&l.IPMessagesPerSecond, &l.IPMessageBurst, 50, 200)
	def(&l.TypingPerSecond, &l.TypingBurst, 2, 6)
	def(&l.PresencePerSecond, &l.PresenceBurst, 1, 5)
	def(&l.ConnectsPerSecond, &l.ConnectBurst, 10, 50)
	return l
}

// Unlimited returns Limits with every rate limit switched off (the byte
// budgets keep their defaults). Tests and load runs from one IP use it.
func Unlimited() Limits {
	return Limits{
		MessagesPerSecond: -1, IPMessagesPerSecond: -1, TypingPerSecond: -1,
		PresencePerSecond: -1, ConnectsPerSecond: -1,
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
	s.mu.Lock()
	e := s.m[key]
	if e == nil {
		e = &limiterEntry{lim: rate.NewLimiter(s.limit, s.burst)}
		s.m[key] = e
	}
	e.seen = now
	s.mu.Unlock()
	r := e.lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Hour
	}
	d := r.DelayFrom(now)
	if d == 0 {
		return 0
	}
	r.CancelAt(now)
	if s.hit != nil {
		s.hit(s.name)
	}
	return d
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

// limiters are the server's rate limits.
type limiters struct {
	messages, ipMessages, typing, presence, connects *limiterSet
}

func newLimiters(l Limits, hit func(string)) *limiters {
	return &limiters{
		messages:   newLimiterSet("messages", l.MessagesPerSecond, l.MessageBurst, hit),
		ipMessages: newLimiterSet("ip_messages", l.IPMessagesPerSecond, l.IPMessageBurst, hit),
		typing:     newLimiterSet("typing", l.TypingPerSecond, l.TypingBurst, hit),
		presence:   newLimiterSet("presence", l.PresencePerSecond, l.PresenceBurst, hit),
		connects:   newLimiterSet("connects", l.ConnectsPerSecond, l.ConnectBurst, hit),
	}
}

func (l *limiters) sweep(idle time.Duration) {
	for _, s := range []*limiterSet{l.messages, l.ipMessages, l.typing, l.presence, l.connects} {
		s.sweep(idle)
	}
}
