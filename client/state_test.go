package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// changes records status changes as listener callbacks see them.
type changes struct {
	client.NopListener
	mu  sync.Mutex
	got []client.StatusChange
	err []error
}

func (c *changes) add(ch client.StatusChange) {
	c.mu.Lock()
	c.got = append(c.got, ch)
	c.mu.Unlock()
}
func (c *changes) OnConnecting(ch client.StatusChange)       { c.add(ch) }
func (c *changes) OnConnected(ch client.StatusChange)        { c.add(ch) }
func (c *changes) OnReconnecting(ch client.StatusChange)     { c.add(ch) }
func (c *changes) OnDisconnected(ch client.StatusChange)     { c.add(ch) }
func (c *changes) OnFeatureThrottled(ch client.StatusChange) { c.add(ch) }
func (c *changes) OnConnectionError(err error) {
	c.mu.Lock()
	c.err = append(c.err, err)
	c.mu.Unlock()
}

func (c *changes) list() []client.StatusChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]client.StatusChange(nil), c.got...)
}

func (c *changes) states() []client.State {
	var out []client.State
	for _, ch := range c.list() {
		out = append(out, ch.Current)
	}
	return out
}

func TestStateMachineConnectLoseReconnect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
		c := b.client(client.WithToken(b.token("alice")))
		rec := &changes{}
		c.AddConnectionListener("rec", rec)
		if got := c.Status().State; got != client.Disconnected {
			t.Fatalf("before Connect: %v", got)
		}
		if _, err := c.Send(context.Background(), "x", "hi"); parley.ErrorCode(err) != parley.EUNAVAILABLE {
			t.Fatalf("Send before Connect: %v, want unavailable", err)
		}
		if err := c.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want := []client.State{client.Connecting, client.Connected}
		if got := rec.states(); !equalStates(got, want) {
			t.Fatalf("states %v, want %v", got, want)
		}

		// A cut: Reconnecting with the first backoff step, then back.
		b.proxy.CutAll()
		synctest.Wait()
		st := c.Status()
		if st.State != client.Reconnecting || st.Attempt != 1 {
			t.Fatalf("after a cut: %+v", st)
		}
		if d := time.Until(st.NextRetryAt); d < 0 || d > client.DefaultBackoffBase {
			t.Fatalf("first retry in %v, want within [0, %v]", d, client.DefaultBackoffBase)
		}
		time.Sleep(time.Until(st.NextRetryAt) + time.Millisecond)
		synctest.Wait()
		if got := c.Status().State; got != client.Connected {
			t.Fatalf("after the retry: %v", got)
		}
		want = append(want, client.Reconnecting, client.Connecting, client.Connected)
		if got := rec.states(); !equalStates(got, want) {
			t.Fatalf("states %v, want %v", got, want)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(want, client.Disconnected)
		if got := rec.states(); !equalStates(got, want) {
			t.Fatalf("states %v, want %v", got, want)
		}
		if _, err := c.Send(context.Background(), "x", "hi"); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Send after Close: %v", err)
		}
	})
}

func equalStates(a, b []client.State) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
