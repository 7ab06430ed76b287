package server

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
)

type recorder struct {
	mu  sync.Mutex
	got []transition
}

func (r *recorder) notify(u string, on bool) {
	r.mu.Lock()
	r.got = append(r.got, transition{u, on})
	r.mu.Unlock()
}

func (r *recorder) take() []transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	g := r.got
	r.got = nil
	return g
}

// startPresence runs a presence tracker for node n1 until the test ends;
// the recorder hears its transitions.
func startPresence(t *testing.T, grace, deadAfter time.Duration, publish func(parley.NodePresence)) (*presence, *recorder) {
	rec := &recorder{}
	p := newPresence("n1", grace, deadAfter, publish, rec.notify)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.run(ctx)
	return p, rec
}

// after lets d pass on the bubble's clock, waits for the bubble to settle
// and takes the transitions heard.
func (r *recorder) after(d time.Duration) []transition {
	time.Sleep(d)
	synctest.Wait()
	return r.take()
}

// TestPresenceGrace runs the presence tracker on synctest's fake clock.
func TestPresenceGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, rec := startPresence(t, 5*time.Second, presenceDeadAfter, func(parley.NodePresence) {})

		p.connect("bob")
		if g := rec.after(100 * time.Millisecond); len(g) != 1 || g[0] != (transition{"bob", true}) {
			t.Fatalf("after connect: %v", g)
		}
		// A quick reconnect within grace: no flap.
		p.disconnect("bob")
		time.Sleep(3 * time.Second)
		p.connect("bob")
		if g := rec.after(10 * time.Second); len(g) != 0 {
			t.Fatalf("reconnect within grace: %v", g)
		}
		// Gone for good: offline once, after the grace, not before.
		p.disconnect("bob")
		if g := rec.after(4900 * time.Millisecond); len(g) != 0 || !p.isOnline("bob") {
			t.Fatalf("before grace ended: %v", g)
		}
		if g := rec.after(200 * time.Millisecond); len(g) != 1 || g[0] != (transition{"bob", false}) || p.isOnline("bob") {
			t.Fatalf("after grace: %v", g)
		}
	})
}

// TestPresenceRemoteNode: a user on another node is online while that node
// reports them, and offline (after grace) once the node stops reporting.
func TestPresenceRemoteNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, rec := startPresence(t, 5*time.Second, presenceDeadAfter, func(parley.NodePresence) {})
		p.remoteReport("n2", parley.NodePresence{Online: []string{"carol"}})
		if g := rec.after(100 * time.Millisecond); len(g) != 1 || !g[0].online {
			t.Fatalf("remote connect: %v", g)
		}
		// n2 dies silently: dead after 3 missed snapshots, then grace.
		if g := rec.after(presenceDeadAfter + 4*time.Second); len(g) != 0 {
			t.Fatalf("offline before grace: %v", g)
		}
		if g := rec.after(2 * time.Second); len(g) != 1 || g[0].online {
			t.Fatalf("dead node: %v", g)
		}
	})
}

// TestPresenceNodeTimeout: the node timeout is configurable: with 1 s a
// silent node is dead after 1 s (not the default 6 s), and the node's
// own snapshot goes out every third of it, so peers with the same
// timeout do not take it for dead between two snapshots.
func TestPresenceNodeTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		snaps := 0
		publish := func(np parley.NodePresence) {
			mu.Lock()
			if np.Snapshot {
				snaps++
			}
			mu.Unlock()
		}
		p, rec := startPresence(t, time.Second, time.Second, publish)
		p.remoteReport("n2", parley.NodePresence{Online: []string{"carol"}})
		if g := rec.after(100 * time.Millisecond); len(g) != 1 || !g[0].online {
			t.Fatalf("remote connect: %v", g)
		}
		// Dead after 1 s of silence, offline after the 1 s grace: well
		// before the default timeout alone (6 s) would have passed.
		if g := rec.after(2*time.Second + 200*time.Millisecond); len(g) != 1 || g[0].online {
			t.Fatalf("after 1 s timeout and 1 s grace: %v", g)
		}
		mu.Lock()
		n := snaps
		mu.Unlock()
		if n < 6 { // 2.3 s at one per 333 ms
			t.Fatalf("%d snapshots in 2.3 s, want one every third of the 1 s timeout", n)
		}
	})
}

// TestPresenceBlinkIsAnnouncedBothWays: a user who connects and leaves
// before the next tick was already visible (welcome.online and new
// contacts may have been told), so contacts hear online and then, after
// the grace, offline: never an online without its offline.
func TestPresenceBlinkIsAnnouncedBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, rec := startPresence(t, time.Second, presenceDeadAfter, func(parley.NodePresence) {})

		p.connect("bob")
		if !p.isOnline("bob") {
			t.Fatal("bob is not online right after connecting")
		}
		p.disconnect("bob") // before any tick
		time.Sleep(3 * time.Second)
		synctest.Wait()
		want := []transition{{"bob", true}, {"bob", false}}
		if g := rec.take(); len(g) != 2 || g[0] != want[0] || g[1] != want[1] {
			t.Fatalf("transitions %v, want %v", g, want)
		}
		if p.isOnline("bob") {
			t.Fatal("bob still online after the grace")
		}
	})
}
