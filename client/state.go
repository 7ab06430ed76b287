package client

import (
	"fmt"
	"sync"
	"time"
)

// State is where the connection is. See docs/sdk.md for the diagram.
type State int

const (
	// Disconnected: no connection and none being attempted. The state
	// before Connect, after Close, after a terminal close code and after
	// MaxAttempts failed attempts. Send is refused in this state.
	Disconnected State = iota
	// Connecting: a dial and handshake are under way (the first one, or a
	// retry; Status.Attempt says which).
	Connecting
	// Connected: the server welcomed us; events flow and sends go out.
	Connected
	// Reconnecting: the connection was lost (or an attempt failed) and the
	// client waits for Status.NextRetryAt before the next attempt. Sends
	// wait in the outbox.
	Reconnecting
	// FeatureThrottled: connected, but the server switched some features
	// off for a while (Status.Throttled says which and until when).
	FeatureThrottled
)

func (s State) String() string {
	return enumString(int(s), "State", "disconnected", "connecting", "connected", "reconnecting", "featureThrottled")
}

// enumString names v by its place in names, or as typ(v) when it has none.
func enumString(v int, typ string, names ...string) string {
	if v >= 0 && v < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

// Status is a snapshot of the connection.
type Status struct {
	State State
	// Attempt is the number of the connection attempt under way
	// (Connecting) or coming next (Reconnecting), counted from 1 since the
	// last time the client was connected. 0 when connected.
	Attempt int
	// NextRetryAt is when the next attempt starts (Reconnecting only).
	NextRetryAt time.Time
	// Err is why the client is not connected: the last error while
	// Reconnecting or Connecting, the reason for giving up when
	// Disconnected (nil after Close). It survives into Connecting so a UI
	// can show the last failure while retrying.
	Err error
	// Throttled maps each throttled feature ("typing", "presence",
	// "messages") to when it is lifted (FeatureThrottled only).
	Throttled map[string]time.Time
	// SessionID names the current connection (from the welcome frame).
	SessionID string
}

// Connected reports whether the status is connected: State Connected or
// FeatureThrottled (connected, some features switched off for a while).
func (s Status) Connected() bool { return s.State == Connected || s.State == FeatureThrottled }

// StatusChange is one transition, as delivered to listeners and to
// StatusChanges.
type StatusChange struct {
	Previous, Current State
	Attempt           int
	NextRetryAt       time.Time
	Err               error
	Throttled         map[string]time.Time
	// At is when the change happened (the client's clock).
	At time.Time
}

// ConnectionListener is told about connection changes. Register one with
// Client.AddConnectionListener. Every method is called on the client's one
// callback goroutine, outside the client's locks, in the order the changes
// happened, never two at once (see Client for what a slow listener does).
// Embed NopListener to implement only some methods.
type ConnectionListener interface {
	OnConnecting(StatusChange)
	OnConnected(StatusChange)
	OnReconnecting(StatusChange)
	OnDisconnected(StatusChange)
	OnFeatureThrottled(StatusChange)
	// OnConnectionError reports an error while maintaining the
	// connection: a failed attempt, a lost link, an error frame the server
	// sent without a request, a listener that panicked.
	OnConnectionError(error)
}

// NopListener implements ConnectionListener with methods that do nothing;
// embed it to override only what you need.
type NopListener struct{}

func (NopListener) OnConnecting(StatusChange)       {}
func (NopListener) OnConnected(StatusChange)        {}
func (NopListener) OnReconnecting(StatusChange)     {}
func (NopListener) OnDisconnected(StatusChange)     {}
func (NopListener) OnFeatureThrottled(StatusChange) {}
func (NopListener) OnConnectionError(error)         {}

// ListenerPanicError reports a listener that panicked; it reaches the other
// listeners' OnConnectionError and the logger.
type ListenerPanicError struct {
	ListenerID string
	Value      any
}

func (e *ListenerPanicError) Error() string {
	return fmt.Sprintf("client: listener %q panicked: %v", e.ListenerID, e.Value)
}

// callbackQueue runs callbacks one at a time, in the order they were
// pushed, on one goroutine, so no callback ever runs under a client lock
// and a callback may call back into the client. The queue is unbounded: a
// slow callback delays later callbacks but never the connection. Its
// goroutine is owned by the Client: close ends it after it has run
// everything pushed before, and Client.Close waits for it.
type callbackQueue struct {
	mu     sync.Mutex
	items  []func()
	wake   chan struct{}
	closed bool
	done   chan struct{}
}

func newCallbackQueue() *callbackQueue {
	q := &callbackQueue{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.run()
	return q
}

// push adds f; it never blocks. After close, f is dropped.
func (q *callbackQueue) push(f func()) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// close stops the queue once everything already pushed has run, and waits.
func (q *callbackQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.done
}

func (q *callbackQueue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		closed := q.closed
		q.mu.Unlock()
		for i, f := range items {
			f()
			items[i] = nil
		}
		if len(items) > 0 {
			continue
		}
		if closed {
			return
		}
		<-q.wake
	}
}

// len reports how many callbacks wait (for tests and metrics).
func (q *callbackQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
