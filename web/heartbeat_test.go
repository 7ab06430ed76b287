package web_test

import (
	"testing"
	"time"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestSDKThrottledTabStaysConnected: a hidden Chrome tab's timers run
// about once a minute after 5 minutes, so parley.js's ping timer goes
// quiet for far longer than the heartbeat timeout. Here the timer is
// stopped outright, and the page still stays connected for 4 timeouts
// without a reconnect: the server pings the quiet connection with a
// WebSocket ping and Chromium's network stack answers it
// (docs/protocol.md section 4). Then a request is still answered on the
// same connection.
func TestSDKThrottledTabStaysConnected(t *testing.T) {
	browser := newBrowser(t)
	const timeout = 3 * time.Second
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = time.Second, timeout
	}))
	token, user := srv.Register(t, "alice", "alice-password-1")
	tab := newTab(t, browser, srv.URL)
	sdkClient(t, tab, srv, token, user)
	eval[bool](t, tab, `(() => {
		const c = window.sdk;
		window.welcomes = 1; // sdkClient waited for the first
		window.states = [];
		c.on('welcome', () => window.welcomes++);
		c.on('state', s => window.states.push(s.state));
		// As intensive throttling would, for longer than the test: no
		// ticks, so no pings from the page and no check of its own.
		clearInterval(c.timers.ping);
		return true;
	})()`)
	time.Sleep(4 * timeout)
	if got := eval[string](t, tab, `[window.sdk.state, 'welcomes ' + window.welcomes, 'reconnects ' + window.sdk.stats.reconnects, 'states ' + window.states.join(' ')].join(', ')`); got != "connected, welcomes 1, reconnects 0, states " {
		t.Fatalf("after %v without the page's pings: %s, want connected, welcomes 1, reconnects 0, states (none)", 4*timeout, got)
	}
	if got := eval[string](t, tab, `window.sdk.request('conversations', {}).then(() => 'answered', e => 'failed: ' + e)`); got != "answered" {
		t.Fatalf("a request after the quiet spell: %s", got)
	}
	if got := eval[string](t, tab, `[window.sdk.state, 'welcomes ' + window.welcomes].join(', ')`); got != "connected, welcomes 1" {
		t.Fatalf("after the request: %s, want connected on the first connection", got)
	}
}

// TestSDKLateTickJudgesFromItsPing: in a throttled tab every tick is
// late. A late tick pings and does not judge the link; the tick after it
// must count silence from that ping, not from the last frame heard before
// the throttling, or a healthy link whose pong is more than a tick away
// is closed ("no answer from the server"). A late tick's ping left
// unanswered for the whole timeout still means a dead link. The page's
// clock (Date.now) and the ping timer's callback are driven by hand, in
// one task, so no answer can arrive in between.
func TestSDKLateTickJudgesFromItsPing(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	token, user := srv.Register(t, "alice", "alice-password-1")
	tab := newTab(t, browser, srv.URL)
	// Keep each interval's callback, to run the ping timer's by hand.
	eval[bool](t, tab, `(() => {
		const set = window.setInterval;
		window.intervals = new Map();
		window.setInterval = (fn, ms, ...args) => { const id = set(fn, ms, ...args); window.intervals.set(id, fn); return id; };
		return true;
	})()`)
	sdkClient(t, tab, srv, token, user)
	got := eval[string](t, tab, `(() => {
		const c = window.sdk, tick = window.intervals.get(c.timers.ping);
		const real = Date.now;
		let skew = 0;
		Date.now = () => real() + skew;
		const pings = c.stats.pings;
		skew += 60000; tick(); // a minute late: pings, does not judge
		skew += 1000; tick();  // on time, before the pong can be read
		return [c.state, 'pings ' + (c.stats.pings - pings)].join(', ');
	})()`)
	if want := "connected, pings 1"; got != want {
		t.Fatalf("a minute-late tick, then the next one before its pong: %s, want %s", got, want)
	}
	waitJS(t, tab, "the late ping answered", `Date.now() - window.sdk.lastHeard < 5000`, `window.sdk.status()`)
	got = eval[string](t, tab, `(() => {
		const c = window.sdk, tick = window.intervals.get(c.timers.ping);
		const real = Date.now;
		let skew = 0;
		Date.now = () => real() + skew;
		skew += 60000; tick(); // late: pings
		// Ticks on time for 10 s: that ping unanswered for more than the
		// 9 s timeout.
		for (let i = 0; i < 10 && c.state === 'connected'; i++) { skew += 1000; tick(); }
		return c.state;
	})()`)
	if got != "reconnecting" {
		t.Fatalf("a late tick's ping unanswered for the timeout: state %s, want reconnecting", got)
	}
}
