package client

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

// errorListener records the errors OnConnectionError reports.
type errorListener struct {
	NopListener
	mu  sync.Mutex
	got []error
}

func (l *errorListener) OnConnectionError(err error) {
	l.mu.Lock()
	l.got = append(l.got, err)
	l.mu.Unlock()
}

// TestConnectionErrorListenerFromNow: a connection listener gets the
// error reports made outside a status change (pushError: a bad frame, an
// error frame with no request) after it was added, not one made before
// and still waiting behind a slow callback, as for status changes
// (TestConnectionListenerFromNow). It got every report delivered after
// it was added.
func TestConnectionErrorListenerFromNow(t *testing.T) {
	c, err := New("http://127.0.0.1:1", WithToken("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release := make(chan struct{})
	c.q.push(func() { <-release }) // a slow callback holds the goroutine
	before, after := errors.New("before"), errors.New("after")
	c.pushError(before)
	l := &errorListener{}
	c.AddConnectionListener("late", l)
	c.pushError(after)
	done := make(chan struct{})
	c.q.push(func() { close(done) }) // the queue runs in order
	close(release)
	<-done
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Equal(l.got, []error{after}) {
		t.Fatalf("the listener got %v, want only the report made after it was added", l.got)
	}
}
