package server

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/parleychat/parley"
)

// Cluster-wide rate limits.
//
// Every node keeps its own token buckets (limits.go) and counts the
// tokens its clients take. Every Config.LimitShareInterval (default
// 250 ms) it publishes those counts on the broker (BrokerMessage.Usage),
// and every other node takes the same number of tokens from its own
// bucket for each key: a bucket may go into debt (golang.org/x/time/rate
// reservations), which its refill pays back before it gives tokens
// again. So a user or an IP spread over k nodes gets, over a window of T
// seconds, about burst + rate*T in all, not k times that. The
// approximation, bounded: tokens taken on other nodes count here one
// share interval (plus broker latency) late, so over any window the
// cluster can give up to (k-1) bursts plus (k-1)*rate*interval more than
// one node would, and this excess is paid back (the debt) in the windows
// that follow. A node cut off from the broker limits on its own again
// until the link returns. Nothing is written to the store: limits cost no
// write and keep working while PostgreSQL is unreachable.

// DefaultLimitShareInterval is the default Config.LimitShareInterval.
const DefaultLimitShareInterval = 250 * time.Millisecond

// maxUsageReport bounds the entries of one usage report (a report is one
// broker message: about 60 bytes an entry, well under NATS's default
// 1 MiB payload). Keys beyond it in one interval are reported in the
// next; their tokens are not lost, only late.
const maxUsageReport = 4096

// maxUsedKeys bounds the keys one limit counts between two reports
// (memory: about 100 bytes a key). Tokens of keys beyond it, in an
// interval with that many active keys, are not reported: the other nodes
// do not charge them (more tolerance, never a refusal).
const maxUsedKeys = 16384

// shared makes every set count the tokens it gives, for usage. Called
// by New before the server serves (no request has counted yet).
func (l *limiters) shared() {
	for _, s := range l.all() {
		s.used = make(map[string]int)
	}
}

// countUsed counts a token given to key, when limits are shared.
func (s *limiterSet) countUsed(key string) {
	if s.used == nil {
		return
	}
	s.mu.Lock()
	if n, ok := s.used[key]; ok || len(s.used) < maxUsedKeys {
		s.used[key] = n + 1
	}
	s.mu.Unlock()
}

// takeUsed returns up to max of the counts of tokens taken since the
// last call (appending to out) and forgets them; counts left over stay
// for the next call.
func (s *limiterSet) takeUsed(out []parley.LimitUsage, max int) []parley.LimitUsage {
	if s.used == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, n := range s.used {
		if len(out) >= max {
			break
		}
		out = append(out, parley.LimitUsage{Limit: s.name, Key: k, N: n})
		delete(s.used, k)
	}
	return out
}

// maxChargeBursts bounds the debt one report may put on a bucket, in
// bursts: k nodes each giving a burst at once charge k-1 bursts; more
// only means a report from a node that counted wrongly.
const maxChargeBursts = 16

// charge takes n tokens from key's bucket for what another node gave,
// going into debt if needed (at most one burst per reservation, the most
// one may take, and maxChargeBursts in all).
func (s *limiterSet) charge(key string, n int) {
	if s.limit == rate.Inf || n <= 0 || s.burst <= 0 {
		return // switched off, or nothing to charge
	}
	n = min(n, maxChargeBursts*s.burst)
	now := time.Now()
	e := s.entry(key, now)
	for n > 0 {
		take := min(n, s.burst)
		e.lim.ReserveN(now, take)
		n -= take
	}
}

// usage returns the tokens taken on this node since the last call, over
// every limit, at most maxUsageReport entries.
func (l *limiters) usage() []parley.LimitUsage {
	var out []parley.LimitUsage
	for _, s := range l.all() {
		out = s.takeUsed(out, maxUsageReport)
	}
	return out
}

// charge applies another node's usage report.
func (l *limiters) charge(us []parley.LimitUsage) {
	for _, u := range us {
		if s := l.byName[u.Limit]; s != nil {
			s.charge(u.Key, u.N)
		}
	}
}

// shareLimits publishes this node's usage every interval until ctx ends.
// Run by New on the server's background group (s.bg), which Shutdown joins.
func (s *Server) shareLimits(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func(time.Time) {
		us := s.limits.usage()
		if len(us) == 0 {
			return
		}
		pctx, cancel := context.WithTimeout(ctx, interval)
		defer cancel()
		if err := s.broker.Publish(pctx, parley.BrokerMessage{Node: s.cfg.NodeID, Usage: us}); err != nil && ctx.Err() == nil {
			s.log.Debug("publishing rate-limit usage", "err", err)
		}
	})
}
