// Package membroker is the in-process parley.Broker: what a single node
// uses when there is no NATS. Publish hands each message to every
// subscriber in order, on one delivery goroutine per subscriber.
package membroker

import (
	"context"
	"errors"
	"sync"

	"github.com/parleychat/parley"
)

var _ parley.Broker = (*Broker)(nil)

// Broker is an in-process broker. The zero value is not usable; call New.
// It is safe for concurrent use. A subscriber's queue is unbounded: the
// hub it feeds never blocks, so the queue drains as fast as it fills.
type Broker struct {
	mu     sync.Mutex
	subs   map[*sub]struct{}
	closed bool
}

type sub struct {
	fn   func(parley.BrokerMessage)
	mu   sync.Mutex
	cond *sync.Cond
	q    []parley.BrokerMessage
	stop bool
	done chan struct{}
}

// New returns an empty broker.
func New() *Broker { return &Broker{subs: make(map[*sub]struct{})} }

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("membroker: closed")

// Publish queues m for every subscriber. It never blocks on a subscriber.
func (b *Broker) Publish(ctx context.Context, m parley.BrokerMessage) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	for s := range b.subs {
		s.mu.Lock()
		s.q = append(s.q, m)
		s.mu.Unlock()
		s.cond.Signal()
	}
	return nil
}

// Subscribe starts a delivery goroutine for fn, owned by the returned stop
// func (and by Close).
func (b *Broker) Subscribe(fn func(parley.BrokerMessage)) (func(), error) {
	s := &sub{fn: fn, done: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	go s.run()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, s)
			b.mu.Unlock()
			s.close()
		})
	}, nil
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
		batch := s.q
		s.q = nil
		s.mu.Unlock()
		for _, m := range batch {
			s.fn(m)
		}
	}
}

// Close stops every subscription and waits for their goroutines.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := b.subs
	b.subs = nil
	b.mu.Unlock()
	for s := range subs {
		s.close()
	}
	return nil
}
