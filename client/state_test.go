package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/faultproxy"
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
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
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
		if got := rec.states(); !slices.Equal(got, want) {
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
		if got := rec.states(); !slices.Equal(got, want) {
			t.Fatalf("states %v, want %v", got, want)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		want = append(want, client.Disconnected)
		if got := rec.states(); !slices.Equal(got, want) {
			t.Fatalf("states %v, want %v", got, want)
		}
		if _, err := c.Send(context.Background(), "x", "hi"); !errors.Is(err, client.ErrClosed) {
			t.Fatalf("Send after Close: %v", err)
		}
	})
}

// TestBackoffScheduleAndMaxAttempts: with the server unreachable, retries
// wait within the doubling ceilings 1, 2, 4, 8 s; after MaxAttempts=5 the
// client is Disconnected with an error that says so, and Send is refused.
// Reconnect then starts over at once, from the first step.
func TestBackoffScheduleAndMaxAttempts(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		b.proxy.Refuse(true)
		c := b.client(client.WithToken(b.token("alice")), client.WithMaxAttempts(5))
		rec := &changes{}
		c.AddConnectionListener("rec", rec)
		err := c.Connect(ctx)
		var gave *client.GaveUpError
		if !errors.As(err, &gave) || gave.Attempts != 5 {
			t.Fatalf("Connect: %v, want GaveUpError after 5 attempts", err)
		}
		synctest.Wait() // the callbacks of the last change
		var waits []time.Duration
		var attempts []int
		for _, ch := range rec.list() {
			switch ch.Current {
			case client.Reconnecting:
				waits = append(waits, ch.NextRetryAt.Sub(ch.At))
			case client.Connecting:
				attempts = append(attempts, ch.Attempt)
			}
		}
		if want := []int{1, 2, 3, 4, 5}; len(attempts) != 5 || attempts[0] != 1 || attempts[4] != 5 {
			t.Fatalf("attempts %v, want %v", attempts, want)
		}
		ceil := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
		if len(waits) != len(ceil) {
			t.Fatalf("waits %v, want %d of them", waits, len(ceil))
		}
		for i, w := range waits {
			if w < 0 || w > ceil[i] {
				t.Errorf("wait %d is %v, want within [0, %v]", i+1, w, ceil[i])
			}
		}
		st := c.Status()
		if st.State != client.Disconnected || !errors.As(st.Err, &gave) {
			t.Fatalf("status %+v", st)
		}
		if _, err := c.Send(ctx, "x", "hi"); parley.ErrorCode(err) != parley.EUNAVAILABLE || !errors.Is(err, client.ErrDisconnected) {
			t.Fatalf("Send after giving up: %v, want ErrDisconnected with code unavailable", err)
		}

		// Reconnect: at once, attempt 1 again, and it works now.
		b.proxy.Heal()
		n := len(rec.list())
		c.Reconnect()
		synctest.Wait()
		after := rec.list()[n:]
		if len(after) != 2 || after[0].Current != client.Connecting || after[0].Attempt != 1 || after[1].Current != client.Connected {
			t.Fatalf("after Reconnect: %+v", after)
		}
		c.Close()
	})
}

// TestBackoffCapAndReconnectResets: the ceiling doubles up to the cap and
// stays there; Reconnect while waiting cuts the wait and resets the
// schedule to its first step.
func TestBackoffCapAndReconnectResets(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		c := b.client(client.WithToken(b.token("alice")), client.WithBackoff(time.Second, 5*time.Second))
		rec := &changes{}
		c.AddConnectionListener("rec", rec)
		if err := c.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		b.proxy.Refuse(true)
		b.proxy.CutAll()
		// Let 6 attempts fail: ceilings 1, 2, 4, 5, 5, 5 s.
		for range 6 {
			synctest.Wait()
			st := c.Status()
			time.Sleep(time.Until(st.NextRetryAt) + time.Millisecond)
		}
		synctest.Wait()
		var waits []time.Duration
		for _, ch := range rec.list() {
			if ch.Current == client.Reconnecting {
				waits = append(waits, ch.NextRetryAt.Sub(ch.At))
			}
		}
		ceil := []time.Duration{1, 2, 4, 5, 5, 5, 5}
		if len(waits) != len(ceil) {
			t.Fatalf("waits %v", waits)
		}
		for i, w := range waits {
			if w < 0 || w > ceil[i]*time.Second {
				t.Errorf("wait %d is %v, want within [0, %vs]", i+1, w, ceil[i])
			}
		}
		st := c.Status()
		if st.State != client.Reconnecting || st.Attempt != 7 || st.Err == nil {
			t.Fatalf("status %+v", st)
		}
		// Retry now: the attempt happens at once and fails; the next wait
		// is back to the first step's ceiling.
		start := time.Now()
		c.Reconnect()
		synctest.Wait()
		st = c.Status()
		if st.State != client.Reconnecting || time.Since(start) != 0 {
			t.Fatalf("after Reconnect: %+v (fake time passed %v)", st, time.Since(start))
		}
		if d := time.Until(st.NextRetryAt); d > time.Second {
			t.Fatalf("after Reconnect the next wait is %v, want <= 1s", d)
		}
		b.proxy.Heal()
		c.Reconnect()
		synctest.Wait()
		if got := c.Status().State; got != client.Connected {
			t.Fatalf("after heal: %v", got)
		}
		c.Close()
	})
}

// TestTerminalUnauthorized: a rejected token is retried once at once with
// a fresh one from the TokenSource; a second rejection stops the client
// with the close code in the error, and no more attempts are made.
func TestTerminalUnauthorized(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		good := b.token("alice")
		var mu sync.Mutex
		calls := 0
		tokens := []string{"bad", "bad"}
		src := func(context.Context) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls <= len(tokens) {
				return tokens[calls-1], nil
			}
			return good, nil
		}
		c := b.client(client.WithTokenSource(src))
		err := c.Connect(context.Background())
		var ce *client.CloseError
		if !errors.As(err, &ce) || ce.Code != 4100 || !ce.Terminal() {
			t.Fatalf("Connect: %v, want a terminal 4100", err)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		mu.Lock()
		if calls != 2 {
			t.Errorf("token source called %d times, want 2 (one refresh, then stop)", calls)
		}
		mu.Unlock()
		if st := c.Status(); st.State != client.Disconnected {
			t.Fatalf("status %+v", st)
		}
		// One bad token followed by a good one connects.
		c.Reconnect()
		synctest.Wait()
		if st := c.Status(); st.State != client.Connected {
			t.Fatalf("after Reconnect with a good token: %+v", st)
		}
		c.Close()

		mu.Lock()
		calls, tokens = 0, []string{"bad"}
		mu.Unlock()
		c2 := b.client(client.WithTokenSource(src))
		if err := c2.Connect(context.Background()); err != nil {
			t.Fatalf("a refreshed token should connect: %v", err)
		}
		c2.Close()
	})
}

// TestHalfOpen: a blackholed link (no close, no data) is noticed exactly
// at the heartbeat timeout after the last frame, and the client recovers
// when the network heals; a message sent meanwhile is delivered once.
func TestHalfOpen(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		c := b.connected(client.WithToken(b.token("alice")), client.WithBackoff(100*time.Millisecond, time.Second))
		cv := mustGroup(t, c)
		rec := &changes{}
		c.AddConnectionListener("rec", rec)
		synctest.Wait()
		start := time.Now()
		b.proxy.Blackhole(faultproxy.Both)
		m, err := c.Send(ctx, cv.ID, "through the storm")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for c.Status().State == client.Connected {
			time.Sleep(10 * time.Millisecond)
			synctest.Wait()
		}
		lost := time.Since(start)
		if lost > 9*time.Second+10*time.Millisecond {
			t.Fatalf("dead link noticed after %v, want within the 9 s heartbeat timeout", lost)
		}
		st := rec.list()[0]
		if st.Current != client.Reconnecting || !errors.Is(st.Err, client.ErrHeartbeatTimeout) {
			t.Fatalf("first change %+v, want Reconnecting with ErrHeartbeatTimeout", st)
		}
		b.proxy.Heal()
		got, err := m.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		page, err := c.History(ctx, cv.ID, parley.MessageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 1 || page.Messages[0].ID != got.ID {
			t.Fatalf("history %+v, want the one message", page.Messages)
		}
		c.Close()
	})
}

// TestReconnectDuringAttempt: Reconnect while connected, or while an
// attempt is under way (the proxy takes the connection and holds it,
// forwarding nothing), opens no second connection and leaves nothing
// behind: when that connection or attempt fails, the client waits out
// its backoff (an hour here) instead of retrying at once. Reconnect in
// that wait retries at once, one attempt.
func TestReconnectDuringAttempt(t *testing.T) {
	for _, during := range []string{"connected", "connecting"} {
		t.Run(during, func(t *testing.T) {
			bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
				c := b.connected(client.WithToken(b.token("alice")), client.WithBackoff(time.Hour, time.Hour))
				check := func(what string, state client.State, attempts int) {
					t.Helper()
					synctest.Wait()
					st := c.Status()
					accepted, _ := b.proxy.Stats()
					if st.State != state || accepted != attempts {
						t.Fatalf("%s: state %v (attempt %d), %d connections, want %v and %d", what, st.State, st.Attempt, accepted, state, attempts)
					}
				}
				// Every later attempt is held: accepted, never answered.
				b.proxy.Blackhole(faultproxy.Both)
				if during == "connected" {
					c.Reconnect()
					c.Reconnect()
					check("Reconnect while connected", client.Connected, 1)
					b.proxy.CutAll()
					check("the connection cut after that", client.Reconnecting, 1)
					c.Reconnect()
					check("Reconnect in the backoff wait", client.Connecting, 2)
				} else {
					b.proxy.CutAll()
					check("the connection cut", client.Reconnecting, 1)
					c.Reconnect()
					check("Reconnect in the backoff wait", client.Connecting, 2)
					c.Reconnect()
					c.Reconnect()
					check("Reconnect during the held attempt", client.Connecting, 2)
				}
				b.proxy.CutAll()
				check("the held attempt failed", client.Reconnecting, 2)
				if d := time.Until(c.Status().NextRetryAt); d <= 0 {
					t.Fatalf("the next attempt is due in %v, want a backoff wait", d)
				}
				c.Close()
			})
		})
	}
}

// TestEnumNames: states and send statuses print as docs/sdk.md names them,
// and an unknown value prints its number.
func TestEnumNames(t *testing.T) {
	for _, c := range []struct {
		got  fmt.Stringer
		want string
	}{
		{client.Disconnected, "disconnected"},
		{client.FeatureThrottled, "featureThrottled"},
		{client.State(9), "State(9)"},
		{client.Sending, "sending"},
		{client.Failed, "failed"},
		{client.SendStatus(-1), "SendStatus(-1)"},
	} {
		if c.got.String() != c.want {
			t.Errorf("%#v prints %q, want %q", c.got, c.got.String(), c.want)
		}
	}
}
