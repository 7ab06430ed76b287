package client_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley/client"
)

// changeLog is a listener that keeps every change it is told about.
type changeLog struct {
	client.NopListener
	mu      sync.Mutex
	changes []client.StatusChange
}

func (l *changeLog) add(ch client.StatusChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.changes = append(l.changes, ch)
}

func (l *changeLog) OnConnecting(ch client.StatusChange)   { l.add(ch) }
func (l *changeLog) OnConnected(ch client.StatusChange)    { l.add(ch) }
func (l *changeLog) OnReconnecting(ch client.StatusChange) { l.add(ch) }
func (l *changeLog) OnDisconnected(ch client.StatusChange) { l.add(ch) }

func (l *changeLog) last() (client.StatusChange, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.changes) == 0 {
		return client.StatusChange{}, 0
	}
	return l.changes[len(l.changes)-1], len(l.changes)
}

// TestStatusChangesReaderThatStopsStallsNothing: a StatusChanges channel
// whose reader never reads (its ctx alive) while the link flaps through
// far more changes than the channel holds does not hold up listeners,
// event handlers or Close, and still ends with the newest state. Before,
// the callback goroutine blocked on the full channel for good.
func TestStatusChangesReaderThatStopsStallsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice := aliceAlone(t)
		// bob goes around the proxy: only alice's link flaps.
		bob := b.direct("bob")
		ctx := context.Background()
		cv := mustGroup(t, bob, "alice")
		log := &changeLog{}
		alice.AddConnectionListener("log", log)
		got := make(chan string, 100)
		alice.AddEventHandler("msgs", func(ev client.Event) {
			if nm, ok := ev.(client.NewMessage); ok {
				got <- nm.Message.Text
			}
		})
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stalled := alice.StatusChanges(sctx) // never read until the end
		synctest.Wait()

		b.proxy.Refuse(true)
		b.proxy.CutAll()
		time.Sleep(30 * time.Second) // backoff <= 1 s: dozens of failed attempts
		synctest.Wait()
		if _, n := log.last(); n <= 2*client.StatusChangesBuffer {
			t.Fatalf("only %d changes while refused; the test needs more than the channel holds", n)
		}
		b.proxy.Heal()
		alice.Reconnect()
		synctest.Wait()
		if last, n := log.last(); last.Current != client.Connected {
			t.Fatalf("listener's last change (of %d) is %+v, want Connected", n, last)
		}
		sent(t, bob, cv.ID, "after the flapping")
		synctest.Wait()
		select {
		case text := <-got:
			if text != "after the flapping" {
				t.Fatalf("handler got %q", text)
			}
		default:
			t.Fatal("the event handler did not get bob's message")
		}

		// The stalled channel kept the newest changes, the last one the
		// current state.
		var held []client.StatusChange
		for len(stalled) > 0 {
			held = append(held, <-stalled)
		}
		if len(held) != client.StatusChangesBuffer {
			t.Fatalf("channel held %d changes, want %d", len(held), client.StatusChangesBuffer)
		}
		if last := held[len(held)-1]; last.Current != client.Connected {
			t.Fatalf("channel's last change %+v, want Connected", last)
		}

		// Close returns with the subscription still alive, delivers its
		// last change (Disconnected) and closes the channel.
		alice.Close()
		var after []client.StatusChange
		for ch := range stalled {
			after = append(after, ch)
		}
		if len(after) != 1 || after[0].Current != client.Disconnected {
			t.Fatalf("after Close the channel gave %+v, want one Disconnected", after)
		}
	})
}

// blockingListener holds the callback goroutine in its first
// OnReconnecting until release is closed.
type blockingListener struct {
	client.NopListener
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (l *blockingListener) OnReconnecting(client.StatusChange) {
	l.once.Do(func() {
		close(l.entered)
		<-l.release
	})
}

// TestStatusChangesFromNow: a StatusChanges channel gets the changes made
// after it was asked for, not those made before and still waiting for the
// callback goroutine (a slow listener held it): the channel handed a
// subscriber that came after Connect returned the Connected change itself
// (internal/indietest's TestSDKDoc saw it on a loaded machine).
func TestStatusChangesFromNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice := aliceAlone(t)
		l := &blockingListener{entered: make(chan struct{}), release: make(chan struct{})}
		alice.AddConnectionListener("slow", l)
		b.proxy.CutAll()
		<-l.entered // the callback goroutine is held from here
		alice.Reconnect()
		synctest.Wait()
		if st := alice.Status(); st.State != client.Connected {
			t.Fatalf("status %+v, want Connected", st)
		}
		// Connecting and Connected were made, and wait behind the held
		// callback.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := alice.StatusChanges(ctx)
		close(l.release)
		synctest.Wait()
		select {
		case got := <-ch:
			t.Errorf("a channel asked for while Connected got %+v, a change made before it", got)
		default:
		}
		// It gets the next change.
		b.proxy.CutAll()
		synctest.Wait()
		select {
		case got := <-ch:
			if got.Current != client.Reconnecting {
				t.Errorf("the first change after the channel was made: %+v, want Reconnecting", got)
			}
		default:
			t.Errorf("the channel got no change after a cut")
		}
	})
}

// recordingListener records the states it is told of.
type recordingListener struct {
	client.NopListener
	mu  sync.Mutex
	got []client.State
}

func (l *recordingListener) record(ch client.StatusChange) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, ch.Current)
}

func (l *recordingListener) OnConnecting(ch client.StatusChange)   { l.record(ch) }
func (l *recordingListener) OnConnected(ch client.StatusChange)    { l.record(ch) }
func (l *recordingListener) OnReconnecting(ch client.StatusChange) { l.record(ch) }
func (l *recordingListener) OnDisconnected(ch client.StatusChange) { l.record(ch) }

func (l *recordingListener) states() []client.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// TestConnectionListenerFromNow: a listener added by id gets the changes
// made after it was added, not those made before and still waiting for
// the callback goroutine (as TestStatusChangesFromNow for a channel): one
// added while Connected was handed the Connecting and Connected changes a
// slow listener held up.
func TestConnectionListenerFromNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice := aliceAlone(t)
		l := &blockingListener{entered: make(chan struct{}), release: make(chan struct{})}
		alice.AddConnectionListener("slow", l)
		b.proxy.CutAll()
		<-l.entered // the callback goroutine is held from here
		alice.Reconnect()
		synctest.Wait()
		if st := alice.Status(); st.State != client.Connected {
			t.Fatalf("status %+v, want Connected", st)
		}
		// Connecting and Connected were made, and wait behind the held
		// callback.
		late := &recordingListener{}
		alice.AddConnectionListener("late", late)
		close(l.release)
		synctest.Wait()
		if got := late.states(); len(got) != 0 {
			t.Errorf("a listener added while Connected got %v, changes made before it", got)
		}
		// It gets the next change.
		b.proxy.CutAll()
		synctest.Wait()
		if got := late.states(); len(got) == 0 || got[0] != client.Reconnecting {
			t.Errorf("the changes after the listener was added: %v, want Reconnecting first", got)
		}
	})
}
