// Package membroker is the in-process parley.Broker: what a single node
// uses when there is no NATS. Publish hands each message to every
// subscriber in order, on one delivery goroutine per subscriber, through
// a queue bounded in bytes.
package membroker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/subscriptions"
)

var _ parley.Broker = (*Broker)(nil)

// Broker is an in-process broker. The zero value is not usable; call New.
// It is safe for concurrent use. A subscriber's queue is bounded in bytes
// (by parley.Event.ApproxSize, see NewWithLimit): the hub it feeds never
// blocks, so the queue drains as fast as it fills unless the process is
// starved, and then a message that does not fit is dropped for that
// subscriber, as the Broker contract allows (the hub reads missed durable
// events from the store; presence is repaired by the next snapshot).
type Broker struct {
	maxBytes int
	subs     subscriptions.Set[*sub]
	dropped  atomic.Int64
}

type sub struct {
	fn     func(parley.BrokerMessage)
	mu     sync.Mutex
	cond   *sync.Cond
	q      []parley.BrokerMessage
	qBytes int
	stop   bool
	done   chan struct{}
}

// DefaultMaxPendingBytes bounds each subscriber's queue of a broker made
// by New: 64 MiB.
const DefaultMaxPendingBytes = 64 << 20

// New returns an empty broker whose subscribers each queue at most
// DefaultMaxPendingBytes.
func New() *Broker { return NewWithLimit(DefaultMaxPendingBytes) }

// NewWithLimit returns an empty broker whose subscribers each queue at
// most maxBytes of messages not yet handed to them (a message larger than
// that is queued when the queue is empty). Publish drops a message for a
// subscriber whose queue it does not fit.
func NewWithLimit(maxBytes int) *Broker {
	return &Broker{maxBytes: maxBytes, subs: subscriptions.Set[*sub]{ErrClosed: ErrClosed}}
}

// Dropped returns how many messages were dropped for full queues, counted
// once per subscriber. It is no Lost count (natsbroker.Broker.Lost), on
// purpose: in one process there is one node, which skips its own
// notices, so a dropped message leaves no stale user cached, and a
// server emptying its user cache on each drop would only add store reads
// under the overload that made the drop.
func (b *Broker) Dropped() int64 { return b.dropped.Load() }

// messageSize estimates the memory a queued message holds.
func messageSize(m *parley.BrokerMessage) int {
	n := 64 + len(m.Node)
	for i := range m.Events {
		n += m.Events[i].ApproxSize()
	}
	if p := m.Presence; p != nil {
		for _, ids := range [][]string{p.Online, p.Offline} {
			for _, id := range ids {
				n += 16 + len(id)
			}
		}
	}
	for _, u := range m.Usage {
		n += 24 + len(u.Limit) + len(u.Key)
	}
	for _, u := range m.Users {
		n += 24 + len(u.ID)
	}
	return n
}

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("membroker: closed")

// Publish queues m for every subscriber whose queue has room for it. It
// never blocks on a subscriber.
func (b *Broker) Publish(ctx context.Context, m parley.BrokerMessage) error {
	n := messageSize(&m)
	return b.subs.Range(func(s *sub) {
		s.mu.Lock()
		if s.qBytes > 0 && s.qBytes+n > b.maxBytes {
			s.mu.Unlock()
			b.dropped.Add(1)
			return
		}
		s.q = append(s.q, m)
		s.qBytes += n
		s.mu.Unlock()
		s.cond.Signal()
	})
}

// Subscribe starts a delivery goroutine for fn, owned by the returned stop
// func (and by Close).
func (b *Broker) Subscribe(fn func(parley.BrokerMessage)) (func(), error) {
	return b.subs.Add(func() (*sub, error) {
		s := &sub{fn: fn, done: make(chan struct{})}
		s.cond = sync.NewCond(&s.mu)
		go s.run()
		return s, nil
	}, (*sub).close)
}

func (s *sub) close() {
	s.mu.Lock()
	s.stop = true
	s.mu.Unlock()
	s.cond.Signal()
	<-s.done
}

func (s *sub) run() {
	defer close(s.done)
	for {
		s.mu.Lock()
		for len(s.q) == 0 && !s.stop {
			s.cond.Wait()
		}
		if s.stop {
			s.mu.Unlock()
			return
		}
		// The batch leaves the queue's count now: it is what one
		// subscriber holds while fn runs, besides the queue.
		batch := s.q
		s.q, s.qBytes = nil, 0
		s.mu.Unlock()
		for _, m := range batch {
			s.fn(m)
		}
	}
}

// Close stops every subscription and waits for their goroutines.
func (b *Broker) Close() error {
	subs, _ := b.subs.Close()
	for _, s := range subs {
		s.close()
	}
	return nil
}
