package web_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestSDKDocJS checks the section "JavaScript SDK (parley.js)" of
// docs/sdk.md, a contract, the way an independent client would: this
// test and web/testdata/sdkdoc.js were written from that section (and
// docs/protocol.md where it points) alone, without reading parley.js,
// and use only the names it gives. (Its first version found what the
// section left out or said unclearly; parley.js was read only then, and
// the steps for what the section now says of those, "The Client at a
// glance", were written from that text.) It runs parley.js in Chromium against
// a real server behind a fault proxy, so cuts, a silent link and a
// refused reconnect are real. Each step reports what it saw as one line;
// a step that differs from the doc is an error, the later steps still run.
func TestSDKDocJS(t *testing.T) {
	browser := newBrowser(t)
	const hbTimeout = 3 * time.Second
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.HeartbeatInterval, c.HeartbeatTimeout = time.Second, hbTimeout
		c.ReconnectAfter = 200 * time.Millisecond
	}))
	proxy, proxyURL, err := faultproxy.ListenURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	const alicePW = "alice-password-1"
	_, alice := srv.Register(t, "alice", alicePW)
	bobToken, bob := srv.Register(t, "bob", "bob-password-1")
	carolToken, _ := srv.Register(t, "carol", "carol-password-1")
	var conv struct {
		ID string `json:"id"`
	}
	bobConv := servertest.Call(t, "POST", srv.URL+"/v1/conversations/direct", bobToken, []byte(`{"username":"alice"}`), 200)
	if err := json.Unmarshal(bobConv, &conv); err != nil {
		t.Fatal(err)
	}
	harness, err := os.ReadFile("testdata/sdkdoc.js")
	if err != nil {
		t.Fatal(err)
	}
	tab := newTab(t, browser, proxyURL)
	eval[bool](t, tab, string(harness)+`; window.sdkdoc.then(() => true)`)
	bobJSON, _ := json.Marshal(map[string]string{"id": bob.ID, "name": bob.Name})
	vars := strings.NewReplacer("CONV", jsString(conv.ID), "ALICE_ID", jsString(alice.ID), "BOB_ID", jsString(bob.ID),
		"BOB_TOKEN", jsString(bobToken), "BOB_USER", string(bobJSON), "ALICE_PW", jsString(alicePW), "CAROL_TOKEN", jsString(carolToken))
	step := func(name, js, want string) {
		t.Helper()
		got := eval[string](t, tab, `(async () => { const { m, memStorage, until, sleep, watch } = await window.sdkdoc; `+
			vars.Replace(js)+` })().then(String, (e) => 'threw: ' + e + (e && e.code ? ' code ' + e.code : ''))`)
		if got != want {
			t.Errorf("%s:\n got: %s\nwant: %s", name, got, want)
		}
	}

	step("login, ParleyError", `
		const s = await m.login(location.origin, 'alice', ALICE_PW);
		window.session = s;
		let bad = 'resolved';
		try { await m.login(location.origin, 'alice', 'wrong-password-9'); } catch (e) { bad = (e instanceof m.ParleyError) + ' ' + e.code; }
		return [typeof s.token, s.user.name, s.user.id === ALICE_ID, bad].join(', ');`,
		"string, alice, true, true unauthorized")

	step("connect: state listener, limits, cursor", `
		const c = new m.Client({ token: session.token, user: session.user, baseURL: location.origin, storage: localStorage });
		window.A = c; window.wa = watch(c);
		c.connect();
		await until(() => wa.last() === 'connected');
		const b = new m.Client({ token: BOB_TOKEN, user: BOB_USER, baseURL: location.origin, storage: (window.bobStore = memStorage()) });
		window.B = b; window.wb = watch(b);
		b.connect();
		await until(() => wb.last() === 'connected');
		return [wa.states.join(' '), wb.last(), c.limits.maxFrameBytes, typeof c.cursor, typeof c.position].join(', ');`,
		"connecting connected, connected, 65536, object, number")

	step("connect() while connected changes nothing", `
		const n = wa.states.length;
		A.connect();
		await sleep(300);
		return [wa.states.length - n, wa.last()].join(', ');`,
		"0, connected")

	step("send: queued at once, sent, received once in order", `
		const one = A.send(CONV, 'one');
		const two = A.send(CONV, 'two');
		const queued = A.itemsFor(CONV).length;
		await until(() => wa.sent.length >= 2 && wb.texts().length >= 2);
		const s = wa.sent;
		return [typeof one.client_id, queued, s[0].item.client_id === one.client_id, s[1].item.client_id === two.client_id,
			s[0].message.seq < s[1].message.seq, wb.texts().join(' '), A.itemsFor(CONV).length].join(', ');`,
		"string, 2, true, true, true, one two, 0")

	step("a message too big for one frame fails alone", `
		const big = A.send(CONV, 'x'.repeat(70000));
		const after = A.send(CONV, 'after big');
		await until(() => wb.texts().includes('after big') && A.itemsFor(CONV).some((i) => i.error_code));
		const failed = A.itemsFor(CONV).find((i) => i.client_id === big.client_id) || {};
		const r = [failed.status, failed.error_code, wa.last(), wb.texts().includes('after big'), typeof A.retry, typeof A.discard];
		A.discard(failed.client_id);
		r.push(A.itemsFor(CONV).length);
		return r.join(', ');`,
		"failed, too_large, connected, true, function, function, 0")

	step("edits, replies, reactions", `
		const msg = wa.sent[0].message;
		const e1 = A.edit(CONV, msg.id, 'one fixed');
		await until(() => wa.edited.length >= 1 && wb.events.some((e) => e.type === 'messageEdited'));
		const blank = A.edit(CONV, msg.id, '   ');
		await until(() => A.editsFor(CONV).some((i) => i.error_code));
		const bf = A.editsFor(CONV).find((i) => i.client_id === blank.client_id) || {};
		const bs = [bf.status, bf.error_code];
		A.discard(bf.client_id);
		A.send(CONV, 'a reply', { replyTo: msg.id });
		await until(() => wb.texts().includes('a reply'));
		const rep = wb.events.find((e) => e.type === 'newMessage' && e.message.text === 'a reply').message.reply_to || {};
		const r1 = await A.react(CONV, msg.id, '👍');
		const r2 = await A.react(CONV, msg.id, '👍');
		await A.unreact(CONV, msg.id, '👍');
		const r3 = await B.react(CONV, msg.id, '🎉');
		return [e1.type, e1.message_id === msg.id, wa.edited[0].message.text, bs.join(' '), rep.message_id === msg.id,
			JSON.stringify(r1.reactions) === JSON.stringify(r2.reactions), JSON.stringify(r2.reactions), JSON.stringify(r3.reactions), m.MAX_REACTION_KINDS].join(', ');`,
		`edit, true, one fixed, failed invalid, true, true, [{"emoji":"👍","count":1,"me":true}], [{"emoji":"🎉","count":1,"me":true}], 20`)

	step("close() is final; an outbox made offline is sent by the next client on the same storage", `
		A.close();
		await sleep(200);
		const st = wa.last();
		let reacted = 'resolved';
		try { await A.react(CONV, wa.sent[0].message.id, '👍'); } catch (e) { reacted = e.code; }
		const q = A.send(CONV, 'queued');
		const qe = A.editQueued(q, 'queued fixed');
		const r = [st, reacted, qe.type, qe.message_client_id === q.client_id, A.itemsFor(CONV).length, A.editsFor(CONV).length];
		await sleep(500);
		r.push(wa.last());
		const c = new m.Client({ token: session.token, user: session.user, baseURL: location.origin, storage: localStorage });
		window.A = c; window.wa = watch(c);
		c.connect();
		await until(() => wb.texts().includes('queued') && wb.events.some((e) => e.type === 'messageEdited' && e.message.text === 'queued fixed'));
		r.push(wb.texts().filter((x) => x === 'queued').length, wa.events.filter((e) => e.type === 'newMessage').length);
		return r.join(', ');`,
		// The second client resumes from the stored cursor: of alice's
		// events it gets only what came after (her own 'queued' and its edit).
		"disconnected, disconnected, edit, true, 1, 1, disconnected, 1, 1")

	step("a second edit while the first waits replaces its text; an edit of another's message is forbidden", `
		const msg = wb.events.find((e) => e.type === 'newMessage' && e.message.text === 'two').message;
		A.close();
		A.edit(CONV, msg.id, 'two v1');
		const e2 = A.edit(CONV, msg.id, 'two v2');
		const waiting = A.editsFor(CONV).map((i) => i.text).join(' ');
		const before = wb.events.length;
		A.connect();
		await until(() => wb.events.slice(before).some((e) => e.type === 'messageEdited' && e.message.id === msg.id));
		await sleep(300);
		const seen = wb.events.slice(before).filter((e) => e.type === 'messageEdited' && e.message.id === msg.id).map((e) => e.message.text);
		B.send(CONV, 'bob here');
		await until(() => wb.sent.some((x) => x.message.text === 'bob here'));
		const theirs = wb.sent.find((x) => x.message.text === 'bob here').message;
		const f = A.edit(CONV, theirs.id, 'not mine');
		await until(() => A.editsFor(CONV).some((i) => i.client_id === f.client_id && i.status === 'failed'));
		const forbidden = A.editsFor(CONV).find((i) => i.client_id === f.client_id)?.error_code;
		A.discard(f);
		return [waiting, e2.type, seen.join(' '), forbidden].join(', ');`,
		"two v2, edit, two v2, forbidden")

	step("the stored cursor: keys, position", `
		const id = A.user.id;
		const cur = JSON.parse(localStorage.getItem('parley.' + id + '.cursor'));
		const pos = JSON.parse(localStorage.getItem('parley.' + id + '.pos'));
		const c0 = A.cursor[0] ?? A.cursor['0'];
		return [typeof cur, cur[0] ?? cur['0'], pos, c0, A.position].map((v) => typeof v === 'number' ? (v === c0 ? 'P' : v) : v).join(', ');`,
		"object, P, P, P, P")

	step("resume: a new client on the same storage gets only what it missed", `
		B.close();
		A.send(CONV, 'away 1'); A.send(CONV, 'away 2');
		await until(() => wa.sent.filter((x) => x.message.text.startsWith('away')).length === 2);
		const b = new m.Client({ token: BOB_TOKEN, user: BOB_USER, baseURL: location.origin, storage: bobStore });
		window.B = b; window.wb = watch(b);
		b.connect();
		await until(() => wb.texts().length >= 2);
		await sleep(500);
		return wb.texts().join(' ');`,
		"away 1 away 2")

	// A cut link: both reconnect and nothing is lost or doubled.
	eval[bool](t, tab, `(window.mark = [wa.states.length, wb.texts().length], true)`)
	proxy.CutAll()
	step("a cut link reconnects; sends while reconnecting are queued", `
		A.send(CONV, 'during cut');
		await until(() => wa.states.slice(mark[0]).includes('reconnecting') && wa.last() === 'connected' && wb.texts().includes('during cut'));
		await sleep(300);
		return [wa.states.slice(mark[0]).join(' '), wb.texts().slice(mark[1]).join(' ')].join(', ');`,
		"reconnecting reconnecting connected, during cut")

	// A silent link: the heartbeat closes it heartbeat_timeout_ms (3 s)
	// after the last frame heard, which was at most a ping interval (1 s)
	// before the link went silent, and is judged on a tick (every second):
	// 1.5 to 5.5 s from now, with slack for a loaded machine.
	eval[bool](t, tab, `(window.mark = [wa.states.length, Date.now()], true)`)
	proxy.Blackhole(faultproxy.Both)
	step("heartbeat timeout", `
		await until(() => wa.states.slice(mark[0]).includes('reconnecting'), 10000);
		const took = Date.now() - mark[1];
		return [wa.states.slice(mark[0])[0], took >= 1500 && took <= 5500 ? 'after the timeout' : 'after ' + took + ' ms'].join(', ');`,
		"reconnecting, after the timeout")
	proxy.Heal()
	proxy.CutAll()
	step("back after the silent link", `
		await until(() => wa.last() === 'connected' && wb.last() === 'connected', 20000);
		return [wa.last(), wb.last()].join(', ');`, "connected, connected")

	// Refused reconnects: backoff, reconnectNow, close() while waiting.
	proxy.Refuse(true)
	proxy.CutAll()
	step("reconnectNow during a backoff starts one attempt; close() while waiting stays closed", `
		await until(() => wa.last() === 'reconnecting');
		const at = A.status().retryAt, n = wa.states.length;
		A.connect(); // waiting to reconnect: changes nothing but the token
		const same = [A.status().retryAt === at, wa.states.length === n].join(' ');
		A.reconnectNow();
		const now = same + ' ' + wa.last();
		await until(() => wa.last() === 'reconnecting');
		A.close();
		await sleep(2500);
		return [now, wa.last()].join(', ');`,
		"true true connecting, disconnected")
	proxy.Refuse(false)
	step("connect() after close() connects again", `
		const n = wa.states.length;
		A.connect();
		await until(() => wa.last() === 'connected' && wb.last() === 'connected', 40000);
		return [wa.states.slice(n)[0], wa.last(), wb.last()].join(', ');`,
		"connecting, connected, connected")

	// A goaway: the server stops and comes back on the same address.
	eval[bool](t, tab, `(window.mark = [wa.states.length], true)`)
	srv.Stop(t)
	step("goaway: reconnecting", `
		await until(() => wa.states.slice(mark[0]).includes('reconnecting'));
		A.send(CONV, 'after restart');
		return wa.states.slice(mark[0])[0];`, "reconnecting")
	srv.Start(t)
	step("goaway: back, the queued send delivered once", `
		A.reconnectNow(); B.reconnectNow();
		await until(() => wb.texts().includes('after restart'), 40000);
		await sleep(300);
		return [wa.last(), wb.texts().filter((x) => x === 'after restart').length].join(', ');`, "connected, 1")

	step("terminal close: online does not reconnect; connect({ token }) does, with the new token", `
		const c = new m.Client({ token: 'not-a-token', user: session.user, baseURL: location.origin, storage: memStorage() });
		const w = watch(c);
		c.connect();
		await until(() => w.last() === 'disconnected');
		const n = w.states.length;
		window.dispatchEvent(new Event('online'));
		await sleep(1500);
		const r = [w.last(), w.states.length - n];
		c.connect({ token: session.token });
		await until(() => w.last() === 'connected');
		r.push(w.last());
		c.close();
		return r.join(', ');`,
		"disconnected, 0, connected")

	step("a full storage costs the saved position, never the connection or an event", `
		const full = memStorage();
		full.setItem = () => { throw new DOMException('full', 'QuotaExceededError'); };
		const c = new m.Client({ token: BOB_TOKEN, user: BOB_USER, baseURL: location.origin, storage: full });
		const w = watch(c);
		c.connect();
		await until(() => w.last() === 'connected');
		A.send(CONV, 'to full storage');
		await until(() => w.texts().includes('to full storage'));
		await sleep(300);
		const r = [w.last(), w.texts().join(' ')];
		c.close();
		return r.join(', ');`,
		"connected, to full storage")

	step("typing: stopTyping, typersIn, typing events", `
		return ['stopTyping', 'typersIn'].map((k) => k + ':' + typeof A[k]).join(' ');`,
		"stopTyping:function typersIn:function")

	step("a tab whose resets count is below the stored one takes the stored entry (resync, tab: true)", `
		const key = 'parley.' + A.user.id + '.cursor';
		const n = wa.states.length, r0 = wa.resyncs.length;
		const stored = JSON.stringify({ cursor: { 0: 1 }, resets: { 0: 1 } });
		localStorage.setItem(key, stored);
		window.dispatchEvent(new StorageEvent('storage', { key, oldValue: null, newValue: stored, storageArea: localStorage }));
		await until(() => wa.resyncs.length > r0 && wa.states.length > n && wa.last() === 'connected');
		const x = wa.resyncs[r0] || {};
		return [x.cause, x.tab, A.resets[0] ?? A.resets['0'], wa.states.slice(n).includes('reconnecting'), wa.last()].join(', ');`,
		"log_lost, true, 1, true, connected")

	step("the stored cursor: resets saved with it; a tab never lowers the stored entry", `
		const key = 'parley.' + ALICE_ID + '.cursor';
		const saved = JSON.parse(localStorage.getItem(key));
		const shape = [typeof saved.cursor, saved.resets && saved.resets[0]].join(' ');
		const own = A.cursor[0];
		const high = own + 1000;
		localStorage.setItem(key, JSON.stringify({ cursor: { 0: high }, resets: { 0: 1 } }));
		const before = wa.events.length;
		B.send(CONV, 'to a tab behind');
		await until(() => wa.events.slice(before).some((e) => e.type === 'newMessage' && e.message.text === 'to a tab behind'));
		await sleep(200);
		const after = JSON.parse(localStorage.getItem(key));
		const r = [shape, after.cursor[0] === high ? 'kept' : after.cursor[0], A.cursor[0] > own && A.cursor[0] < high ? 'own' : A.cursor[0]];
		// Leave the stored entry as this tab's own again for the steps after.
		localStorage.setItem(key, JSON.stringify({ cursor: { ...A.cursor }, resets: { ...A.resets } }));
		return r.join(', ');`,
		"object 1, kept, own")

	step("heartbeats: a ping every heartbeat_interval_ms; a tab made visible pings at once", `
		const t = Date.now();
		await until(() => wsSent.some((f) => f.op === 'ping' && f.t >= t));
		const sock = wsSent.filter((f) => f.op === 'ping').pop()?.ws; // one client's connection
		const t0 = Date.now();
		await sleep(3500);
		const pings = wsSent.filter((f) => f.ws === sock && f.op === 'ping' && f.t >= t0).map((f) => f.t);
		const gaps = pings.slice(1).map((t, i) => t - pings[i]);
		const n = wsSent.length;
		document.dispatchEvent(new Event('visibilitychange'));
		const atOnce = wsSent.slice(n).filter((f) => f.ws === sock && f.op === 'ping').length;
		return [document.visibilityState, pings.length >= 2 && pings.length <= 5 ? 'about every second' : pings.length + ' pings',
			gaps.every((g) => g >= 500 && g <= 2000) ? 'gaps ok' : 'gaps ' + gaps.join(' '), atOnce].join(', ');`,
		"visible, about every second, gaps ok, 1")

	step("noteDelivered reaches the sender as messageDelivered", `
		// A new message: bob's own messages moved his positions past older ones.
		A.send(CONV, 'deliver me');
		await until(() => wb.texts().includes('deliver me'));
		const last = wb.events.filter((e) => e.type === 'newMessage' && e.message.text === 'deliver me').pop().message;
		B.noteDelivered(CONV, last.seq);
		const ok = await until(() => wa.events.some((e) => e.type === 'messageDelivered' && e.delivered_seq === last.seq), 10000);
		return [ok, m.DELIVERED_EVERY_MS].join(', ');`,
		"true, 1000")

	step("a proxy's bare answers map to the codes their statuses mean", `
		const real = window.fetch;
		const out = [];
		for (const [status, ra] of [[429, '3'], [413, null], [502, null], [404, null], [418, null]]) {
			window.fetch = async () => new Response('<html>proxy</html>', { status, headers: ra ? { 'Retry-After': ra, 'Content-Type': 'text/html' } : { 'Content-Type': 'text/html' } });
			try { await A.search('one'); out.push(status + ':resolved'); } catch (e) { out.push(status + ':' + e.code + (e.retryAfterMs ? '/' + e.retryAfterMs : '')); }
		}
		window.fetch = real;
		return out.join(' ');`,
		"429:rate_limited/3000 413:too_large 502:unavailable 404:not_found 418:invalid")

	step("search, mentions, privacy, blocks, requests", `
		const page = await A.search('one', { conversationId: CONV });
		let blank = 'resolved';
		try { await A.search('  '); } catch (e) { blank = e.code; }
		const men = await A.mentions({});
		const p = await A.privacy();
		const p2 = await A.setPrivacy('contacts');
		await A.setPrivacy('everyone');
		const carol = await fetch('/v1/conversations/direct', { method: 'POST', headers: { Authorization: 'Bearer ' + CAROL_TOKEN, 'Content-Type': 'application/json' }, body: JSON.stringify({ username: 'alice' }) }).then((r) => r.json());
		const list = await fetch('/v1/conversations/' + carol.id, { headers: { Authorization: 'Bearer ' + session.token } }).then((r) => r.json());
		const acc = await A.acceptRequest(carol.id);
		const bl = await A.block(BOB_ID);
		const ub = await A.unblock(BOB_ID);
		return [page.results.length > 0, Array.isArray(page.results[0].highlight) && typeof page.results[0].highlight[0].text, page.results[0].message.conversation_id === CONV, typeof page.has_more, blank,
			Array.isArray(men.results), p.consent, Array.isArray(p.blocked), p2.consent, list.request, acc.request === undefined,
			bl.user_id === BOB_ID, bl.blocked, ub.blocked].join(', ');`,
		"true, string, true, boolean, invalid, true, everyone, true, contacts, pending, true, true, true, false")

	step("uploadImage, setProfile, sendImage", `
		const cv = new OffscreenCanvas(64, 48);
		const g = cv.getContext('2d'); g.fillStyle = '#c33'; g.fillRect(0, 0, 64, 48);
		const blob = await cv.convertToBlob({ type: 'image/png' });
		const att = await A.uploadImage(blob);
		const me = await A.setProfile({ display_name: 'Alice A', avatar_id: att.id });
		const file = new File([blob], 'red.png', { type: 'image/png' });
		const before = wb.events.length;
		const it = A.sendImage(CONV, file, 'a red square');
		await until(() => wb.events.slice(before).some((e) => e.type === 'newMessage' && e.message.type === 'image'), 20000);
		const got = wb.events.slice(before).find((e) => e.type === 'newMessage' && e.message.type === 'image').message;
		return [typeof att.id, me.display_name, typeof it.client_id, got.text, typeof got.attachment].join(', ');`,
		"string, Alice A, string, a red square, object")

	step("status(), on() and off()", `
		let calls = 0;
		const id = A.on('state', () => calls++);
		A.off(id);
		const st = A.status();
		B.reconnectNow(); // connected: nothing happens
		return [typeof id, st.state, st.state === A.state, typeof st.attempt, st.retryAt, typeof st.reason, typeof st.throttled, m.State.Reconnecting, m.State.FeatureThrottled, calls].join(', ');`,
		"number, connected, true, number, 0, string, object, reconnecting, featureThrottled, 0")

	step("register, request, api", `
		const s = await m.register(location.origin, 'dave', 'dave-password-1');
		const convs = await A.request('conversations', {});
		const me = await A.api('GET', '/v1/me');
		const c = new m.Client({ token: s.token, user: s.user, baseURL: location.origin, storage: memStorage() });
		let off = 'resolved';
		try { await c.request('conversations', {}); } catch (e) { off = e.code; }
		return [typeof s.token, s.user.name, Array.isArray(convs.conversations), me.name, off].join(', ');`,
		"string, dave, true, alice, disconnected")

	step("outbox statuses; a failed item is retried by client_id, then discarded", `
		const it = A.send('no-such-conversation', 'lost');
		await until(() => A.itemsFor('no-such-conversation')[0]?.status === 'failed');
		const f = A.itemsFor('no-such-conversation')[0];
		const seen = wa.outbox.map((l) => l.find((x) => x.startsWith(it.client_id + ':'))).filter(Boolean);
		const n = wa.outbox.length;
		A.retry(it.client_id);
		await until(() => wa.outbox.length > n && A.itemsFor('no-such-conversation')[0]?.status === 'failed');
		const again = wa.outbox.slice(n).map((l) => l.find((x) => x.startsWith(it.client_id + ':'))).filter(Boolean);
		A.discard(it.client_id);
		return [[...new Set(seen.map((x) => x.split(':')[1]))].join('>'), f.error_code, typeof f.error, [...new Set(again.map((x) => x.split(':')[1]))].join('>'), A.itemsFor('no-such-conversation').length].join(', ');`,
		"pending>sending>failed, not_found, string, pending>sending>failed, 0")

	step("retry and discard take the item too, as editQueued does", `
		const it = A.send('no-such-conversation', 'lost again');
		await until(() => A.itemsFor('no-such-conversation')[0]?.status === 'failed');
		const n = wa.outbox.length;
		A.retry(it);
		const retried = await until(() => wa.outbox.slice(n).some((l) => l.includes(it.client_id + ':sending')), 5000);
		await until(() => A.itemsFor('no-such-conversation')[0]?.status === 'failed');
		A.discard(it);
		return [retried, A.itemsFor('no-such-conversation').length].join(', ');`,
		"true, 0")

	step("typing: typersIn, typing calls, expiry after TYPING_EXPIRY_MS, stopTyping", `
		const n = wb.typing.length;
		A.typing(CONV);
		await until(() => B.typersIn(CONV).length === 1);
		const t0 = Date.now();
		const who = B.typersIn(CONV)[0];
		await until(() => B.typersIn(CONV).length === 0, 10000);
		const lasted = Date.now() - t0;
		const calls = wb.typing.length - n;
		await sleep(Math.max(0, m.TYPING_THROTTLE_MS - lasted) + 100);
		A.typing(CONV);
		await until(() => B.typersIn(CONV).length === 1);
		const t1 = Date.now();
		A.stopTyping(CONV);
		await until(() => B.typersIn(CONV).length === 0, 10000);
		const stopped = Date.now() - t1;
		return [who.userId === ALICE_ID, who.name, m.TYPING_EXPIRY_MS, lasted >= m.TYPING_EXPIRY_MS - 500 && lasted <= m.TYPING_EXPIRY_MS + 1500 ? 'expired' : 'after ' + lasted, calls >= 2, stopped < 2000 ? 'stopped' : 'after ' + stopped, m.TYPING_THROTTLE_MS].join(', ');`,
		"true, alice, 5000, expired, true, stopped, 3000")

	step("presence: isOnline, presence calls", `
		// Contacts only once both wrote in their direct conversation
		// (docs/protocol.md section 6): bob answers.
		B.send(CONV, 'hi alice');
		await until(() => wb.sent.some((x) => x.message.text === 'hi alice'));
		await B.refreshPresence();
		await until(() => B.isOnline(ALICE_ID), 5000);
		const on = B.isOnline(ALICE_ID);
		const n = wb.presence.length;
		A.close();
		await until(() => wb.presence.slice(n).some((p) => p.userId === ALICE_ID && p.online === false), 10000);
		const off = B.isOnline(ALICE_ID);
		A.connect();
		await until(() => B.isOnline(ALICE_ID) && wa.last() === 'connected', 10000);
		await B.refreshPresence();
		return [on, off, B.isOnline(ALICE_ID), typeof B.refreshPresence].join(', ');`,
		"true, false, true, function")

	step("files: sendFile, fetchBlob, attachmentLink", `
		const before = wb.events.length;
		const it = A.sendFile(CONV, new File(['hello file'], 'hello.txt', { type: 'text/plain' }), 'a file');
		await until(() => wb.events.slice(before).some((e) => e.type === 'newMessage' && e.message.type === 'file'), 20000);
		const msg = wb.events.slice(before).find((e) => e.type === 'newMessage' && e.message.type === 'file').message;
		const blob = await B.fetchBlob(msg.attachment.url);
		const link = await B.attachmentLink(msg.attachment.id);
		const plain = await fetch(link.url).then((r) => r.text());
		return [it.type, msg.text, msg.attachment.name, await blob.text(), plain, typeof link.expires_at].join(', ');`,
		"file, a file, hello.txt, hello file, hello file, string")

	step("a userBlocked ends the blocked user's typing at once", `
		await sleep(m.TYPING_THROTTLE_MS + 100);
		A.typing(CONV);
		await until(() => B.typersIn(CONV).length === 1);
		const n = wb.typing.length;
		const t0 = Date.now();
		await B.block(ALICE_ID);
		await until(() => B.typersIn(CONV).length === 0, 4000);
		const took = Date.now() - t0;
		await B.unblock(ALICE_ID);
		return [B.typersIn(CONV).length, took < 2000 ? 'at once' : 'after ' + took, wb.typing.length > n].join(', ');`,
		"0, at once, true")

	step("an upload behind a busy proxy is retried, not failed", `
		const real = window.fetch;
		let refused = 0;
		window.fetch = async (u, o) => {
			if (String(u).includes('/v1/uploads') && refused === 0) { refused++; return new Response('', { status: 503, headers: { 'Retry-After': '1' } }); }
			return real(u, o);
		};
		const cv = new OffscreenCanvas(32, 32);
		cv.getContext('2d').fillRect(0, 0, 32, 32);
		const file = new File([await cv.convertToBlob({ type: 'image/png' })], 'black.png', { type: 'image/png' });
		A.sendImage(CONV, file, 'after a busy proxy');
		const ok = await until(() => wb.texts().includes('after a busy proxy'), 20000);
		window.fetch = real;
		return [refused, ok].join(', ');`,
		"1, true")

	step("events once each, in order", `
		const seqs = wb.events.filter((e) => e.type === 'newMessage').map((e) => e.message.seq);
		const sorted = [...seqs].sort((a, b) => a - b);
		return [new Set(seqs).size === seqs.length, JSON.stringify(seqs) === JSON.stringify(sorted)].join(', ');`,
		"true, true")

	eval[bool](t, tab, `(A.close(), B.close(), true)`)
}
