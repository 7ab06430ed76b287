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
	// SendQueue is how many frames may wait for a slow connection
	// (default 256). Typing and presence frames are dropped first when it
	// is full; a durable event that does not fit closes the connection
	// with 4001 and the client resumes.
	SendQueue int

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

func (l Limits) withDefaults() Limits {
	def := func(r *float64, b *int, dr float64, db int) {
		if *r == 0 {
			*r = dr
		}
		if *b <= 0 {
			*b = db
		}
	}
	if l.SendQueue <= 0 {
		l.SendQueue = 256
	}
	def(&l.MessagesPerSecond, &l.MessageBurst, 10, 50)
	def(&l.IPMessagesPerSecond, &l.IPMessageBurst, 50, 200)
	def(&l.TypingPerSecond, &l.TypingBurst, 2, 6)
	def(&l.PresencePerSecond, &l.PresenceBurst, 1, 5)
	def(&l.ConnectsPerSecond, &l.ConnectBurst, 10, 50)
	return l
}

// Unlimited returns Limits with every rate limit switched off (the send
// queue keeps its default). Tests and load runs from one IP use it.
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
