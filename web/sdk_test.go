package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
	"github.com/parleychat/parley/web"
)

// TestSDKTables checks, in the real browser, that parley.js uses the same
// close-code table as protocol.ShouldReconnect and the backoff schedule of
// the Go SDK (1 s doubling, capped at 30 s, full jitter).
func TestSDKTables(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, newBrowser(t), srv.URL)

	codes := []int{1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011, 1012,
		4000, 4001, 4002, 4003, 4004, 4099, 4100, 4101, 4102, 4150, 4199, 4200}
	list := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(codes)), ","), "[]")
	got := eval[[]bool](t, tab, `import('/parley.js').then(m => [`+list+`].map(c => m.shouldReconnect(c)))`)
	if len(got) != len(codes) {
		t.Fatalf("got %d answers for %d codes", len(got), len(codes))
	}
	for i, code := range codes {
		if want := protocol.ShouldReconnect(code); got[i] != want {
			t.Errorf("shouldReconnect(%d) = %v in parley.js, protocol.ShouldReconnect = %v", code, got[i], want)
		}
	}

	// With the random source at its top, the delay is the ceiling.
	ceilings := eval[[]int](t, tab, `import('/parley.js').then(m => [1,2,3,4,5,6,7,8,40].map(a => m.backoffDelay(a, () => 0.9999999)))`)
	want := []int{999, 1999, 3999, 7999, 15999, 29999, 29999, 29999, 29999}
	if fmt.Sprint(ceilings) != fmt.Sprint(want) {
		t.Errorf("backoff ceilings = %v, want %v", ceilings, want)
	}
	floors := eval[[]int](t, tab, `import('/parley.js').then(m => [1,5,9].map(a => m.backoffDelay(a, () => 0)))`)
	if fmt.Sprint(floors) != "[0 0 0]" {
		t.Errorf("full jitter floor = %v, want [0 0 0]", floors)
	}
}

// TestSDKPositionNeverRewinds checks, in the real browser, that parley.js
// keeps its position when a welcome or a resync names a lower head (a
// node that has not caught up; older servers answer so) and keeps
// dropping the events at or below it, and that only a resync saying the
// log was lost (cause log_lost) moves it back to the server's head.
func TestSDKPositionNeverRewinds(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, newBrowser(t), srv.URL)
	got := eval[[]int64](t, tab, `import('/parley.js').then(m => {
		const mem = new Map();
		const storage = { getItem: k => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, String(v)), removeItem: k => mem.delete(k) };
		const c = new m.Client({ token: 't', user: { id: 'bob', name: 'Bob' }, baseURL: 'http://127.0.0.1:1', storage });
		const seen = [];
		c.on('event', ev => seen.push(ev.pos));
		const ev = pos => ({ type: 'event', data: { pos, type: 'messageRead', conversation_id: 'c', user_id: 'alice', read_seq: 1, at: new Date().toISOString() } });
		c.handleFrame(ev(11));
		c.welcome({ head: 3, heartbeat_interval_ms: 4000, heartbeat_timeout_ms: 9000, online: [] });
		c.teardown(1000, 'test');
		const afterWelcome = c.position;
		c.handleFrame({ type: 'resync', data: { head: 5, reason: 'resume_from is ahead of this server' } });
		const afterLag = c.position;
		for (const p of [4, 6, 11, 12]) c.handleFrame(ev(p));
		const afterEvents = c.position;
		c.handleFrame({ type: 'resync', data: { head: 20, cause: 'resume_limit', from: 12, reason: 'limit' } });
		const afterLimit = c.position;
		c.handleFrame({ type: 'resync', data: { head: 2, cause: 'log_lost', from: 20, reason: 'lost' } });
		const afterLost = c.position;
		c.handleFrame(ev(3));
		return [afterWelcome, afterLag, afterEvents, afterLimit, afterLost, c.position, Number(mem.get(c.posKey)), ...seen];
	})`)
	want := []int64{11, 11, 12, 20, 2, 3, 3, 11, 12, 3}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("positions and delivered events = %v, want %v\n(after welcome head 3, after resync head 5, after events 4 6 11 12, after resume_limit head 20, after log_lost head 2, after event 3, stored; then the events delivered)", got, want)
	}
}

// TestSDKCursorPerShard checks, in the real browser, that parley.js keeps
// a position per shard (protocol 2): it sends its cursor in hello, drops
// an event at or below its own shard's entry only, never moves an entry
// back on a welcome, resumed or resync with lower heads, and moves back
// only the shards a log_lost resync lists; the cursor persists.
func TestSDKCursorPerShard(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, newBrowser(t), srv.URL)
	got := eval[string](t, tab, `import('/parley.js').then(m => {
		const mem = new Map();
		const storage = { getItem: k => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, String(v)), removeItem: k => mem.delete(k) };
		const c = new m.Client({ token: 't', user: { id: 'bob', name: 'Bob' }, baseURL: 'http://127.0.0.1:1', storage });
		const seen = [];
		c.on('event', ev => seen.push((ev.shard || 0) + '/' + ev.pos));
		const ev = (shard, pos) => ({ type: 'event', data: { pos, shard, type: 'messageRead', conversation_id: 'c' + shard, user_id: 'alice', read_seq: 1, at: new Date().toISOString() } });
		const out = [];
		const snap = what => out.push(what + ' ' + JSON.stringify(c.cursor));
		c.welcome({ head: 10, cursor: { 0: 10, 3: 20 }, shards: 4, heartbeat_interval_ms: 4000, heartbeat_timeout_ms: 9000, online: [] });
		c.teardown(1000, 'test');
		snap('welcome');
		for (const [s, p] of [[3, 21], [0, 11], [3, 21], [0, 5]]) c.handleFrame(ev(s, p));
		snap('events');
		c.welcome({ head: 2, cursor: { 0: 2, 3: 1 }, shards: 4, heartbeat_interval_ms: 4000, heartbeat_timeout_ms: 9000, online: [] });
		c.teardown(1000, 'test');
		c.handleFrame({ type: 'resumed', data: { from: 11, to: 11, count: 0, cursor: { 0: 2, 3: 30 }, shards: 4 } });
		snap('resumed');
		c.handleFrame({ type: 'resync', data: { head: 40, from: 30, shard: 3, cause: 'resume_limit', reason: 'limit', cursor: { 0: 1, 3: 40, 2: 7 }, shards: 4 } });
		snap('limit');
		c.handleFrame({ type: 'resync', data: { head: 4, from: 40, shard: 3, cause: 'log_lost', reason: 'lost', lost: [3], cursor: { 0: 11, 2: 7, 3: 4 }, shards: 4 } });
		snap('lost');
		c.handleFrame(ev(3, 5));
		c.handleFrame(ev(2, 7));
		snap('after');
		const again = new m.Client({ token: 't', user: { id: 'bob', name: 'Bob' }, baseURL: 'http://127.0.0.1:1', storage });
		out.push('stored ' + JSON.stringify(again.cursor) + ' position ' + again.position);
		out.push('seen ' + seen.join(','));
		return out.join('; ');
	})`)
	want := `welcome {"0":10,"3":20}; events {"0":11,"3":21}; resumed {"0":11,"3":30}; limit {"0":11,"2":7,"3":40}; lost {"0":11,"2":7,"3":4}; after {"0":11,"2":7,"3":5}; stored {"0":11,"2":7,"3":5} position 11; seen 3/21,0/11,3/5`
	if got != want {
		t.Errorf("cursor steps:\n got %s\nwant %s", got, want)
	}
}

// sdkClient starts, in tab (a page of srv), a parley.js Client of the
// user whose token is given, on a storage of its own, as window.sdk, and
// waits for its welcome. window.sdkWaits lists, for each wait before a
// reconnect (reconnecting with a retryAt; an attempt under way has none),
// the wait it announced (retryAt less now, in ms).
func sdkClient(t *testing.T, tab context.Context, srv *servertest.Server, token string, user parley.User) {
	t.Helper()
	u, _ := json.Marshal(map[string]string{"id": user.ID, "name": user.Name})
	eval[bool](t, tab, `import('/parley.js').then(m => new Promise(resolve => {
		const mem = new Map();
		const storage = { getItem: k => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, String(v)), removeItem: k => mem.delete(k), key: () => null, length: 0 };
		const c = new m.Client({ token: `+jsString(token)+`, user: `+string(u)+`, baseURL: location.origin, storage });
		window.sdk = c;
		window.sdkWaits = [];
		c.on('state', s => s.state === 'reconnecting' && s.retryAt > 0 && window.sdkWaits.push(s.retryAt - Date.now()));
		c.on('welcome', () => resolve(true));
		c.connect();
	}))`)
}

// TestSDKGoawayWait checks, in the real browser against a real server
// shutting down, that parley.js honours the goaway's reconnect_after_ms
// as protocol.md section 10 asks: the tab becoming visible does not cut
// the wait short (an explicit reconnectNow still does), and, as in the
// Go SDK, the backoff starts again from its first step after a goaway
// (the server restarts, it is not failing).
func TestSDKGoawayWait(t *testing.T) {
	browser := newBrowser(t)

	t.Run("visible", func(t *testing.T) {
		// A goaway delay far beyond the test's waits.
		srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 10 * time.Minute }))
		token, user := srv.Register(t, "alice", "alice-password-1")
		tab := newTab(t, browser, srv.URL)
		sdkClient(t, tab, srv, token, user)
		srv.Stop(t)
		waitJS(t, tab, "reconnecting after the goaway", `window.sdk.state === 'reconnecting'`, `window.sdk.status()`)
		got := eval[string](t, tab, `(() => {
			const c = window.sdk, at = c.retryAt;
			document.dispatchEvent(new Event('visibilitychange'));
			return [c.state, c.retryAt === at ? 'same wait' : 'new wait ' + (c.retryAt - Date.now()), c.retryAt - Date.now() >= 10 * 60000 - 60000 ? 'minutes' : 'soon'].join(', ');
		})()`)
		if want := "reconnecting, same wait, minutes"; got != want {
			t.Errorf("after the goaway, the tab made visible: %s, want %s", got, want)
		}
		if got := eval[string](t, tab, `(window.sdk.reconnectNow(), window.sdk.state)`); got != "connecting" {
			t.Errorf("reconnectNow during the goaway's wait: state %s, want connecting", got)
		}
	})

	t.Run("backoff", func(t *testing.T) {
		// A short goaway delay (0.1 to 0.2 s); the server stays down, so
		// the attempt after it fails and the client backs off.
		srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 100 * time.Millisecond }))
		token, user := srv.Register(t, "alice", "alice-password-1")
		tab := newTab(t, browser, srv.URL)
		sdkClient(t, tab, srv, token, user)
		// With the random source at its top, each backoff wait is its
		// step's ceiling: 1 s for the first step, 2 s for the second.
		eval[bool](t, tab, `(Math.random = () => 0.9999999, true)`)
		srv.Stop(t)
		waitJS(t, tab, "the goaway's wait and a backoff after it", `window.sdkWaits.length >= 2`, `[window.sdk.status(), window.sdkWaits]`)
		waits := eval[[]float64](t, tab, `window.sdkWaits`)
		if waits[0] < 100 || waits[0] > 200 {
			t.Errorf("the first wait is %v ms, want the goaway's reconnect_after_ms (100 to 200)", waits[0])
		}
		if ceiling := math.Ceil(waits[1] / 1000); ceiling != 1 {
			t.Errorf("the backoff after the goaway waits %v ms (a ceiling of %v s), want the first step's (1 s): waits %v", waits[1], ceiling, waits)
		}
	})
}

// heldAttempt is one WebSocket connection to the server of
// TestSDKOneAttemptAtATime, held at each step until the test lets it on.
type heldAttempt struct {
	upgrade chan struct{}                 // closed by the test: answer the upgrade
	hello   chan struct{}                 // closed by the server: the hello was read
	end     chan func(ws *websocket.Conn) // what to do last, then close
}

// TestSDKOneAttemptAtATime checks, in the real browser, that parley.js
// makes one connection attempt at a time: reconnectNow (the "Retry now"
// button), the browser's online event and the tab becoming visible do not
// open a second WebSocket while an attempt is under way, whether it was
// the first (connecting) or one after a lost link (reconnecting), with
// the upgrade held or with the socket open and no welcome yet. In a
// backoff or a goaway's wait, reconnectNow starts exactly one attempt.
// The server takes each connection and holds it as the test says; the
// page counts the WebSockets it creates.
func TestSDKOneAttemptAtATime(t *testing.T) {
	attempts := make(chan *heldAttempt, 16)
	done := make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/", web.Handler())
	mux.HandleFunc("/v1/ws", func(w http.ResponseWriter, r *http.Request) {
		a := &heldAttempt{upgrade: make(chan struct{}), hello: make(chan struct{}), end: make(chan func(*websocket.Conn), 1)}
		attempts <- a
		select {
		case <-a.upgrade:
		case <-r.Context().Done():
			return
		case <-done:
			return
		}
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() { // owned by this handler: cancel ends it
			select {
			case <-done:
				cancel()
			case <-ctx.Done():
			}
		}()
		if _, _, err := ws.Read(ctx); err != nil {
			return
		}
		close(a.hello)
		// Read on, so the browser's close is seen, until the test says.
		go func() { // owned by this handler: the deferred CloseNow ends it
			for {
				if _, _, err := ws.Read(ctx); err != nil {
					cancel()
					return
				}
			}
		}()
		select {
		case f := <-a.end:
			f(ws)
		case <-ctx.Done():
		}
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	t.Cleanup(func() { close(done) }) // runs first: handlers return, then hs.Close
	tab := newTab(t, newBrowser(t), hs.URL)

	next := func(what string) *heldAttempt {
		t.Helper()
		select {
		case a := <-attempts:
			return a
		case <-time.After(waitTimeout): // a liveness bound, not a timing assertion
			t.Fatalf("waiting for the server to get %s: nothing", what)
			return nil
		}
	}
	helloRead := func(a *heldAttempt) {
		t.Helper()
		close(a.upgrade)
		select {
		case <-a.hello:
		case <-time.After(waitTimeout):
			t.Fatal("the attempt's hello never came")
		}
	}
	closeWith := func(a *heldAttempt, goaway bool, code websocket.StatusCode) {
		a.end <- func(ws *websocket.Conn) {
			if goaway {
				b, _ := json.Marshal(protocol.Frame{Type: protocol.TypeGoAway, Data: json.RawMessage(`{"reason":"test","reconnect_after_ms":600000}`)})
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
					t.Errorf("writing goaway: %v", err)
				}
			}
			ws.Close(code, "test")
		}
	}
	// poke asks for a connection every way the page can and reports the
	// state and how many WebSockets the page has made.
	const poke = `(() => {
		const c = window.sdk;
		c.reconnectNow();
		document.dispatchEvent(new Event('visibilitychange'));
		window.dispatchEvent(new Event('online'));
		c.reconnectNow();
		return c.state + ' ' + window.wsOpened;
	})()`
	const describe = `[window.sdk.status(), window.sdk.ws?.readyState, window.wsOpened]`

	// Count the page's WebSockets; every backoff wait is 0 ms, so a
	// lost attempt is followed by the next at once (state reconnecting).
	eval[bool](t, tab, `import('/parley.js').then(m => {
		const Native = window.WebSocket;
		window.wsOpened = 0;
		window.WebSocket = class extends Native {
			constructor(...args) {
				super(...args);
				window.wsOpened++;
			}
		};
		Object.defineProperty(document, 'visibilityState', { get: () => 'visible', configurable: true });
		Math.random = () => 0;
		const mem = new Map();
		const storage = { getItem: k => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, String(v)), removeItem: k => mem.delete(k), key: () => null, length: 0 };
		window.sdk = new m.Client({ token: 't', user: { id: 'alice', name: 'Alice' }, baseURL: location.origin, storage });
		window.sdk.connect();
		return true;
	})`)

	// stillOne pokes the page while attempt a's upgrade is held, then
	// again once its hello was read (no welcome): neither starts
	// another attempt, so the state and count stay want.
	stillOne := func(a *heldAttempt, which, want string) {
		t.Helper()
		if got := eval[string](t, tab, poke); got != want {
			t.Errorf("asked to connect while %s's upgrade is held: %s, want %s", which, got, want)
		}
		helloRead(a)
		waitJS(t, tab, which+"'s socket open", `window.sdk.ws?.readyState === 1`, describe)
		if got := eval[string](t, tab, poke); got != want {
			t.Errorf("asked to connect while %s waits for its welcome: %s, want %s", which, got, want)
		}
	}

	a1 := next("the first attempt")
	stillOne(a1, "the first attempt", "connecting 1")

	closeWith(a1, false, protocol.CloseReconnect)
	a2 := next("the attempt after the first failed")
	waitJS(t, tab, "the second attempt under way", `window.sdk.state === 'reconnecting' && window.sdk.ws && window.wsOpened === 2`, describe)
	stillOne(a2, "a reconnect attempt", "reconnecting 2")

	// A goaway's wait (10 minutes): the tab becoming visible leaves it;
	// reconnectNow ends it with one attempt.
	closeWith(a2, true, protocol.CloseShutdown)
	waitJS(t, tab, "the goaway's wait", `window.sdk.state === 'reconnecting' && !window.sdk.ws && window.sdk.retryAt - Date.now() > 60000`, describe)
	if got, want := eval[string](t, tab, poke), "connecting 3"; got != want {
		t.Errorf("asked to connect in a goaway's wait: %s, want %s (one attempt)", got, want)
	}
	a3 := next("the attempt that cut the goaway's wait")
	helloRead(a3)

	// A backoff wait (0 ms, so it is caught as it starts, from the
	// state listener): reconnectNow starts one attempt, and the wait's
	// own timer none.
	eval[bool](t, tab, `(() => {
		const c = window.sdk;
		const id = c.on('state', s => {
			if (s.state !== 'reconnecting' || !(s.retryAt > 0) || c.ws) return;
			c.off(id);
			window.inWait = eval(`+jsString(poke)+`);
		});
		return true;
	})()`)
	closeWith(a3, false, protocol.CloseReconnect)
	waitJS(t, tab, "the backoff wait", `window.inWait !== undefined`, describe)
	if got, want := eval[string](t, tab, `window.inWait`), "connecting 4"; got != want {
		t.Errorf("asked to connect in a backoff wait: %s, want %s (one attempt)", got, want)
	}
	helloRead(next("the attempt that cut the backoff wait"))
	waitJS(t, tab, "the fourth socket open", `window.sdk.ws?.readyState === 1`, describe)
	if got, want := eval[string](t, tab, `window.sdk.state + ' ' + window.wsOpened`), "connecting 4"; got != want {
		t.Errorf("after the backoff wait was cut: %s, want %s", got, want)
	}
	select {
	case <-attempts:
		t.Errorf("the server got a fifth attempt, want four")
	default:
	}
}

// TestSDKSavedCursorOfLostLog checks, in the real browser, how parley.js
// tabs that share one saved cursor (here two Clients on one storage that
// sends no storage events, so each learns only when it saves) settle it
// across a lost log: the tab that got the resync with cause log_lost
// saves its lower entry with one more reset; a sibling that has not seen
// it, saving an event of the lost log, does not write its own entry of
// that shard but takes the saved one and tells its app (resync, tab:
// true), while its other shards still move only forward; two tabs that
// each get the same loss count it once and merge forward; a reload reads
// the cursor with its resets.
func TestSDKSavedCursorOfLostLog(t *testing.T) {
	srv := httptest.NewServer(web.Handler())
	t.Cleanup(srv.Close)
	tab := newTab(t, newBrowser(t), srv.URL)
	got := eval[string](t, tab, `import('/parley.js').then(m => {
		const mem = new Map();
		const storage = { getItem: k => mem.get(k) ?? null, setItem: (k, v) => mem.set(k, String(v)), removeItem: k => mem.delete(k) };
		const client = () => new m.Client({ token: 't', user: { id: 'bob', name: 'Bob' }, baseURL: 'http://127.0.0.1:1', storage });
		const ev = (shard, pos) => ({ type: 'event', data: { pos, shard, type: 'messageRead', conversation_id: 'c' + shard, user_id: 'alice', read_seq: 1, at: new Date().toISOString() } });
		const lost = (head, from, more = {}) => ({ type: 'resync', data: { head, from, cause: 'log_lost', lost: [0], cursor: { 0: head, 2: 30, ...more }, shards: 3, reason: 'lost' } });
		const out = [];
		const told = [];
		const snap = what => out.push(what + ' ' + mem.get('parley.bob.cursor'));
		const a = client(), b = client();
		// What b's app is told: the sibling's loss once (tab: true), and
		// below its own resync from the server.
		b.on('resync', r => told.push([r.cause, r.tab, r.lost, r.from, r.head].join('/')));
		for (const c of [a, b]) for (const [s, p] of [[0, 20], [2, 30]]) c.handleFrame(ev(s, p));
		snap('both');
		a.handleFrame(lost(4, 20));
		snap('a lost');
		b.handleFrame(ev(0, 21)); // late, of the lost log
		snap('b late');
		out.push('b ' + JSON.stringify(b.cursor) + ' told ' + told.join(' '));
		b.handleFrame(ev(2, 31));
		b.handleFrame(ev(0, 5));
		snap('b on');
		a.handleFrame(ev(0, 5));
		a.handleFrame(ev(0, 6));
		snap('a on');
		const reload = client();
		out.push('reload ' + JSON.stringify([reload.cursor, reload.resets]));
		// The same loss of shard 0 again, got by both: a first, then b
		// with a later head; then a, behind, saves.
		a.resetsAtHello = { ...a.resets };
		b.resetsAtHello = { ...b.resets };
		a.handleFrame(lost(2, 6));
		b.handleFrame(lost(3, 6, { 2: 31 }));
		a.handleFrame(ev(0, 3));
		snap('both lost');
		out.push('a ' + JSON.stringify([a.cursor, a.resets]) + ' b ' + JSON.stringify([b.cursor, b.resets]) + ' told ' + told.length);
		return out.join('; ');
	})`)
	want := `both {"0":20,"2":30}; a lost {"cursor":{"0":4,"2":30},"resets":{"0":1}}; b late {"cursor":{"0":4,"2":30},"resets":{"0":1}}; b {"0":4,"2":30} told log_lost/true/0/21/4; b on {"cursor":{"0":5,"2":31},"resets":{"0":1}}; a on {"cursor":{"0":6,"2":31},"resets":{"0":1}}; reload [{"0":6,"2":31},{"0":1}]; both lost {"cursor":{"0":3,"2":31},"resets":{"0":2}}; a [{"0":3,"2":30},{"0":2}] b [{"0":3,"2":31},{"0":2}] told 2`
	if got != want {
		t.Errorf("saved cursor steps:\n got %s\nwant %s", got, want)
	}
}
