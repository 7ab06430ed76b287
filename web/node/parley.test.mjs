// parley.js under Node (node:test), against the real server TestNodeSDK
// (web/node_test.go) starts and names in PARLEY_URL. The same module the
// browser loads, with the WebSocket of the `ws` package (env.mjs).
import { MemoryStorage } from './env.mjs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import * as parley from '../static/parley.js';

const { Client, State, register, login, ParleyError } = parley;
const baseURL = process.env.PARLEY_URL;
const waitMs = 30000; // a bound on a broken run, not a timing assertion

/** next resolves with the first detail of `type` that match accepts. */
function next(client, type, match = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(id);
      reject(new Error(`no ${type} within ${waitMs} ms (state ${client.state}, reason ${client.reason})`));
    }, waitMs);
    const id = client.on(type, (d) => {
      if (!match(d)) return;
      clearTimeout(timer);
      client.off(id);
      resolve(d);
    });
  });
}

// live: the options of a test that needs the server TestNodeSDK starts.
const live = { skip: !baseURL && 'PARLEY_URL is not set (TestNodeSDK sets it)' };
const password = 'correct horse battery';

/**
 * registerAll registers a user per prefix, with a random suffix shared by
 * them (so runs never collide), and returns their sessions and the
 * suffix. One at a time: the server bounds the password hashes it runs
 * at once ("too many logins at once" on a loaded machine).
 */
async function registerAll(...prefixes) {
  const suffix = Math.random().toString(36).slice(2, 8);
  const sessions = [];
  for (const p of prefixes) sessions.push(await register(baseURL, `${p}${suffix}`, password));
  return { sessions, suffix };
}

/** clientOf is a Client of a session, on storage (its own by default). */
function clientOf(session, storage = new MemoryStorage()) {
  return new Client({ token: session.token, user: session.user, baseURL, storage });
}

async function connected(client) {
  const welcome = next(client, 'welcome');
  client.connect();
  return welcome;
}

test('parley.d.ts declares exactly what parley.js exports', async () => {
  const dts = await readFile(new URL('../static/parley.d.ts', import.meta.url), 'utf8');
  const declared = [...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(parley).sort());
});

test('unreadLabel: the count, or 99+ where the server stops counting', async () => {
  const { MAX_UNREAD_COUNT, unreadLabel } = parley;
  assert.equal(MAX_UNREAD_COUNT, 99);
  assert.equal(unreadLabel(0), '0');
  assert.equal(unreadLabel(MAX_UNREAD_COUNT - 1), '98');
  assert.equal(unreadLabel(MAX_UNREAD_COUNT), '99+');
  assert.equal(unreadLabel(250), '99+');
});

test('the server counts unread messages up to MAX_UNREAD_COUNT', live, async () => {
  const { sessions } = await registerAll('ua', 'ub');
  const [a, b] = sessions;
  const call = async (s, method, path, body) => {
    const res = await fetch(`${baseURL}${path}`, {
      method,
      headers: { Authorization: `Bearer ${s.token}`, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
    return res.json();
  };
  const cv = await call(a, 'POST', '/v1/conversations/group', { title: 'many', member_ids: [b.user.id] });
  for (let i = 0; i <= parley.MAX_UNREAD_COUNT; i++) {
    await call(a, 'POST', `/v1/conversations/${cv.id}/messages`, { client_id: `many-${i}`, text: `m ${i}` });
  }
  const seen = await call(b, 'GET', `/v1/conversations/${cv.id}`);
  assert.equal(seen.last_seq, parley.MAX_UNREAD_COUNT + 1);
  assert.equal(seen.unread_count, parley.MAX_UNREAD_COUNT);
  assert.equal(parley.unreadLabel(seen.unread_count), '99+');
});

test('package.json points at the module and its declarations', async () => {
  const pkg = JSON.parse(await readFile(new URL('../static/package.json', import.meta.url), 'utf8'));
  assert.equal(pkg.exports['.'].default, './parley.js');
  assert.equal(pkg.exports['.'].types, './parley.d.ts');
  assert.deepEqual(pkg.files.sort(), ['parley.d.ts', 'parley.js']);
  assert.equal(pkg.type, 'module');
});

test('chat under Node: register, connect, send, receive, resume, offline outbox', live, async () => {
  const { sessions: [a, b], suffix } = await registerAll('nodea', 'nodeb');
  await assert.rejects(login(baseURL, `nodea${suffix}`, 'wrong horse battery'), (err) => err instanceof ParleyError && err.code === 'unauthorized');
  const again = await login(baseURL, `nodea${suffix}`, password);
  assert.equal(again.user.id, a.user.id);

  const aStore = new MemoryStorage();
  const bStore = new MemoryStorage();
  const alice = clientOf(a, aStore);
  let bob = clientOf(b, bStore);
  try {
    await connected(alice);
    await connected(bob);
    assert.equal(alice.state, State.Connected);

    const conv = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
    const got = next(bob, 'event', (ev) => ev.type === 'newMessage' && ev.message.text === 'hello from node');
    const sent = next(alice, 'sent');
    const item = alice.send(conv.id, 'hello from node');
    assert.equal(item.status, 'pending');
    const { message } = await sent;
    assert.equal(message.seq, 1);
    assert.equal(message.client_id, item.client_id);
    assert.equal((await got).message.id, message.id);
    assert.equal(alice.outbox.length, 0);

    // Bob goes away; a message arrives meanwhile; his next client (same
    // storage, so the same position) resumes and gets it.
    bob.close();
    assert.equal(bob.state, State.Disconnected);
    const sent2 = next(alice, 'sent');
    alice.send(conv.id, 'while you were away');
    await sent2;
    bob = clientOf(b, bStore);
    const missed = next(bob, 'event', (ev) => ev.type === 'newMessage' && ev.message.text === 'while you were away');
    const resumed = next(bob, 'resumed');
    const w = await connected(bob);
    assert.equal(w.resumed, true);
    assert.ok((await resumed).count >= 1);
    assert.equal((await missed).message.seq, 2);

    // Alice writes offline: the item waits in her storage, and a new
    // client on that storage (a restarted app) sends it.
    alice.close();
    const queued = alice.send(conv.id, 'written offline');
    assert.equal(alice.outbox.length, 1);
    assert.ok([...Array(aStore.length).keys()].some((i) => aStore.key(i).endsWith(queued.client_id)));
    const alice2 = clientOf(a, aStore);
    try {
      assert.equal(alice2.outbox.length, 1);
      const sent3 = next(alice2, 'sent');
      const arrived = next(bob, 'event', (ev) => ev.type === 'newMessage' && ev.message.text === 'written offline');
      await connected(alice2);
      assert.equal((await sent3).message.client_id, queued.client_id);
      assert.equal((await arrived).message.seq, 3);
      assert.equal(alice2.outbox.length, 0);
    } finally {
      alice2.close();
    }
  } finally {
    alice.close();
    bob.close();
  }
});

test('edits queue in the outbox in order with sends; replies and reactions', live, async () => {
  const { sessions: [a, b] } = await registerAll('nodec', 'noded');
  const aStore = new MemoryStorage();
  const alice = clientOf(a, aStore);
  const bob = clientOf(b);
  try {
    await connected(alice);
    await connected(bob);
    const conv = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
    const sent = next(alice, 'sent');
    alice.send(conv.id, 'helo');
    const first = (await sent).message;

    // Offline: an edit of the stored message, a new send, and an edit of
    // that send before the server has it; a second edit of the first
    // message replaces the first edit's text. A new client on the same
    // storage (a reload) sends them in the order made.
    alice.close();
    const e1 = alice.edit(conv.id, first.id, 'hello?');
    const e1b = alice.edit(conv.id, first.id, 'hello');
    assert.equal(e1b.client_id, e1.client_id, 'a waiting edit of the same message is replaced');
    const second = alice.send(conv.id, 'how are yuo', { replyTo: first.id });
    const e2 = alice.editQueued(second, 'how are you');
    assert.deepEqual(alice.itemsFor(conv.id).map((i) => i.client_id), [second.client_id], 'itemsFor lists messages, not edits');
    assert.deepEqual(alice.editsFor(conv.id).map((i) => i.client_id), [e1.client_id, e2.client_id]);
    const alice2 = clientOf(a, aStore);
    try {
      assert.equal(alice2.outbox.length, 3);
      const seen = [];
      const done = new Promise((resolve) => {
        bob.on('event', (ev) => {
          // (The first message's own newMessage may reach bob late.)
          if (ev.type === 'newMessage' && ev.message.id === first.id) return;
          if (ev.type === 'newMessage' || ev.type === 'messageEdited') seen.push(`${ev.type}:${ev.message.text}`);
          if (seen.length === 3) resolve();
        });
      });
      const edited = next(alice2, 'edited', ({ item }) => item.client_id === e2.client_id);
      await connected(alice2);
      const { message } = await edited;
      assert.equal(message.text, 'how are you');
      assert.ok(message.edited_at);
      assert.equal(message.reply_to.message_id, first.id);
      await done;
      // The replay of an edit carries the text as it is now (protocol), so
      // the reply's newMessage may already show its edited text.
      assert.deepEqual(seen.slice(0, 1), ['messageEdited:hello']);
      assert.match(seen[1], /^newMessage:how are (yuo|you)$/);
      assert.equal(seen[2], 'messageEdited:how are you');
      assert.equal(alice2.outbox.length, 0);

      // A refused edit fails alone and stays for the user to see.
      const failed = next(alice2, 'outbox', (items) => items.some((i) => i.status === 'failed'));
      alice2.edit(conv.id, first.id, '   ');
      const [bad] = (await failed).filter((i) => i.status === 'failed');
      assert.equal(bad.error_code, 'invalid');
      alice2.discard(bad.client_id);

      // Reactions: the answer is the message's reactions as the caller sees
      // them; bob gets reactionAdded with the count after the change.
      const added = next(bob, 'event', (ev) => ev.type === 'reactionAdded');
      const rs = await alice2.react(conv.id, first.id, '👍');
      assert.deepEqual(rs.reactions, [{ emoji: '👍', count: 1, me: true }]);
      const ev = await added;
      assert.equal(ev.message_id, first.id);
      assert.equal(ev.count, 1);
      assert.equal(ev.user_id, a.user.id);
      const again = await alice2.react(conv.id, first.id, '👍');
      assert.deepEqual(again.reactions, [{ emoji: '👍', count: 1, me: true }], 'adding twice is one reaction');
      const removed = next(bob, 'event', (e) => e.type === 'reactionRemoved');
      const none = await alice2.unreact(conv.id, first.id, '👍');
      assert.deepEqual(none.reactions ?? [], []);
      assert.equal((await removed).count ?? 0, 0);
      await assert.rejects(alice2.react(conv.id, first.id, 'a'), (err) => err instanceof ParleyError && err.code === 'invalid');
      alice2.close();
      await assert.rejects(alice2.react(conv.id, first.id, '👍'), (err) => err.code === 'disconnected');
    } finally {
      alice2.close();
    }
  } finally {
    alice.close();
    bob.close();
  }
});

test('search, mentions, privacy, blocks and requests through the Client', live, async () => {
  const { sessions: [a, b, c] } = await registerAll('srcha', 'srchb', 'srchc');
  const [alice, bob, carol] = [a, b, c].map((s) => clientOf(s));
  const send = (conv, text) => alice.api('POST', `/v1/conversations/${conv.id}/messages`, { client_id: parley.newClientId(), text });

  // Search: all conversations or one, a page at a time.
  const ab = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
  const other = await alice.api('POST', '/v1/conversations/group', { title: 'Other', member_ids: [b.user.id] });
  await send(ab, `zebra one @${b.user.name}`);
  await send(ab, 'zebra two');
  await send(other, 'zebra three');
  const all = await bob.search('zebra');
  assert.deepEqual(all.results.map((r) => r.message.text), ['zebra three', 'zebra two', `zebra one @${b.user.name}`]);
  assert.ok(all.results[0].highlight.some((p) => p.match && p.text === 'zebra'));
  const first = await bob.search('zebra', { conversationId: ab.id, limit: 1 });
  assert.equal(first.results.length, 1);
  assert.equal(first.results[0].message.text, 'zebra two');
  assert.ok(first.has_more && first.next);
  const second = await bob.search('zebra', { conversationId: ab.id, limit: 1, cursor: first.next });
  assert.equal(second.results[0].message.text, `zebra one @${b.user.name}`);
  await assert.rejects(bob.search(''), (err) => err instanceof ParleyError && err.code === 'invalid');

  // Mentions: bob's, not alice's.
  const mine = await bob.mentions({ limit: 5 });
  assert.deepEqual(mine.results.map((r) => r.message.text), [`zebra one @${b.user.name}`]);
  assert.equal((await alice.mentions()).results.length, 0);

  // Requests: a stranger's direct conversation to carol (everyone, the default).
  assert.deepEqual(await carol.privacy(), { consent: 'everyone', blocked: [] });
  const ac = await alice.api('POST', '/v1/conversations/direct', { username: c.user.name });
  assert.equal((await carol.api('GET', `/v1/conversations/${ac.id}`)).request, 'pending');
  assert.equal((await carol.declineRequest(ac.id)).request, 'declined');
  const accepted = await carol.acceptRequest(ac.id);
  assert.equal(accepted.id, ac.id);
  assert.equal(accepted.request, undefined);

  // Privacy and blocks: contacts only, a stranger cannot start one.
  assert.equal((await carol.setPrivacy('contacts')).consent, 'contacts');
  await assert.rejects(bob.api('POST', '/v1/conversations/direct', { username: c.user.name }), (err) => err instanceof ParleyError && err.code === 'forbidden');
  assert.deepEqual(await carol.block(b.user.id), { user_id: b.user.id, blocked: true });
  assert.deepEqual((await carol.privacy()).blocked, [{ user_id: b.user.id, name: b.user.name }]);
  assert.deepEqual(await carol.unblock(b.user.id), { user_id: b.user.id, blocked: false });
});

test('noteDelivered reports over the connection, coalesced, and over HTTP while closed', live, async () => {
  const { sessions: [a, b] } = await registerAll('dlva', 'dlvb');
  const alice = clientOf(a);
  const bob = clientOf(b);
  try {
    await connected(alice);
    await connected(bob);
    const send = (conv, text) => alice.api('POST', `/v1/conversations/${conv.id}/messages`, { client_id: parley.newClientId(), text });
    // The group first: it makes them contacts, so the direct
    // conversation is no request (whose delivered marks stay hidden).
    const team = await alice.api('POST', '/v1/conversations/group', { title: 'Team', member_ids: [b.user.id] });
    const ab = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
    await send(ab, 'one');
    await send(ab, 'two');
    await send(team, 'three');
    const delivered = (conv, seq) => next(alice, 'event', (ev) => ev.type === 'messageDelivered' && ev.conversation_id === conv.id && ev.user_id === b.user.id && ev.delivered_seq === seq);

    // Three notes at once: the first is reported at once, the other two
    // together in one op at the end of the second.
    const ops = [];
    const sendFrame = bob.sendFrame.bind(bob);
    bob.sendFrame = (f) => {
      if (f.op === 'delivered') ops.push(f.data.conversations);
      return sendFrame(f);
    };
    const abDone = delivered(ab, 2);
    const teamDone = delivered(team, 1);
    bob.noteDelivered(ab.id, 1);
    bob.noteDelivered(ab.id, 2);
    bob.noteDelivered(team.id, 1);
    bob.noteDelivered(ab.id, 1); // below a noted position: nothing
    await Promise.all([abDone, teamDone]);
    assert.deepEqual(ops, [
      [{ conversation_id: ab.id, seq: 1 }],
      [{ conversation_id: ab.id, seq: 2 }, { conversation_id: team.id, seq: 1 }],
    ]);

    // Closed: POST /v1/delivered instead, no frame.
    bob.close();
    await send(ab, 'four');
    const closedDone = delivered(ab, 3);
    bob.noteDelivered(ab.id, 3);
    await closedDone;
    assert.equal(ops.length, 2, 'no op while closed');
  } finally {
    alice.close();
    bob.close();
  }
});

/** afterRetry resolves once the reconnect timer armed for client.retryAt has fired (timers fire in the order they fall due). */
function afterRetry(client) {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, client.retryAt - Date.now()) + 50));
}

test('close() while waiting to reconnect stays closed: the pending retry does not open a socket', live, async () => {
  const { sessions: [a] } = await registerAll('nclose');
  const alice = clientOf(a);
  try {
    await connected(alice);
    const reconnecting = next(alice, 'state', (s) => s.state === State.Reconnecting);
    alice.ws.terminate(); // the link drops (1006): the client backs off
    await reconnecting;
    assert.ok(alice.retryAt > 0);
    const waited = afterRetry(alice);
    alice.close(); // the app asks to stop (logout) during the backoff
    await waited;
    assert.equal(alice.ws, null, 'a socket was opened after close()');
    assert.equal(alice.state, State.Disconnected);
  } finally {
    alice.close();
  }
});

test('a terminal close stays terminal when the browser says the network is back', live, async () => {
  const { sessions: [a] } = await registerAll('nterm');
  const alice = clientOf({ ...a, token: `${a.token}x` }); // a refused token: 4100
  try {
    const refused = next(alice, 'unauthorized');
    alice.connect();
    assert.equal((await refused).code, 4100);
    assert.equal(alice.state, State.Disconnected);
    window.dispatchEvent(new Event('online'));
    assert.equal(alice.state, State.Disconnected, 'the online event reconnected after a terminal close');
    assert.equal(alice.ws, null);
    // The app asking (the "Retry now" button) still connects, and is refused again.
    const again = next(alice, 'unauthorized');
    alice.reconnectNow();
    assert.equal(alice.state, State.Connecting);
    assert.equal((await again).code, 4100);
    assert.equal(alice.state, State.Disconnected);
  } finally {
    alice.close();
  }
});

test('typing:false still goes out while typing is throttled (it takes nothing from the limit)', live, async () => {
  // TestNodeSDK's server allows one typing start per user.
  const { sessions: [a, b] } = await registerAll('ntypa', 'ntypb');
  const alice = clientOf(a);
  const bob = clientOf(b);
  try {
    await connected(alice);
    await connected(bob);
    const direct = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
    const group = await alice.api('POST', '/v1/conversations/group', { title: 'typing', member_ids: [b.user.id] });
    const started = next(bob, 'event', (ev) => ev.type === 'typingStarted' && ev.conversation_id === direct.id);
    alice.typing(direct.id);
    await started;
    assert.deepEqual(bob.typersIn(direct.id).map((t) => t.userId), [a.user.id]);
    // A start in another conversation is over the limit: the server
    // throttles typing, and the page shows it.
    const throttled = next(alice, 'state', (s) => s.state === State.FeatureThrottled);
    alice.typing(group.id);
    assert.ok('typing' in (await throttled).throttled);
    // Alice stops typing in the first: Bob hears it now, not when his
    // copy expires.
    const stopped = next(bob, 'event', (ev) => ev.type === 'typingStopped' && ev.conversation_id === direct.id && ev.user_id === a.user.id);
    alice.stopTyping(direct.id);
    await stopped;
    assert.deepEqual(bob.typersIn(direct.id), []);
  } finally {
    alice.close();
    bob.close();
  }
});

test('close() before the socket is open does not throw under Node (the ws package)', live, async () => {
  const { sessions: [a] } = await registerAll('nearly');
  const alice = clientOf(a);
  alice.connect();
  alice.close(); // the socket is still connecting: teardown closes it
  assert.equal(alice.state, State.Disconnected);
  // A full connection afterwards: the aborted socket's error, if thrown,
  // comes meanwhile and fails this test.
  const again = clientOf(a);
  try {
    await connected(again);
  } finally {
    again.close();
  }
});

test('a send made as the send before it fails still goes out', live, async () => {
  const { sessions: [a, b] } = await registerAll('nflush', 'nflushb');
  const alice = clientOf(a);
  try {
    await connected(alice);
    const conv = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
    // A blank text is refused (invalid): the item fails. The app sends
    // the next one as soon as it hears of it, while the outbox's pass
    // that sent the first is still ending.
    const failed = next(alice, 'outbox', (items) => items.some((i) => i.status === 'failed'));
    alice.send(conv.id, ' ');
    await failed;
    const sent = next(alice, 'sent');
    const item = alice.send(conv.id, 'the next one');
    assert.equal((await sent).message.client_id, item.client_id);
  } finally {
    alice.close();
  }
});

test('a message too big for one frame fails alone; the connection stays up', live, async () => {
  const { sessions: [a, b] } = await registerAll('nbig', 'nbigb');
  const alice = clientOf(a);
  try {
    await connected(alice);
    const conv = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
    // Over max_frame_bytes (64 KiB): sent as is, the server closes with
    // 1009, which is terminal, and the item would go out again on every
    // connection the app makes.
    let timer;
    const first = new Promise((resolve) => {
      alice.on('outbox', (items) => items.some((i) => i.status === 'failed') && resolve('failed'));
      alice.on('state', (s) => s.state === State.Disconnected && resolve(`disconnected: ${s.reason}`));
      timer = setTimeout(() => resolve('neither'), waitMs);
    });
    const big = alice.send(conv.id, 'x'.repeat(70000));
    const got = await first;
    clearTimeout(timer);
    assert.equal(got, 'failed');
    assert.equal(alice.outbox.find((i) => i.client_id === big.client_id).error_code, 'too_large');
    const sent = next(alice, 'sent');
    alice.send(conv.id, 'a small one');
    assert.equal((await sent).message.text, 'a small one');
    assert.equal(alice.state, State.Connected);
  } finally {
    alice.close();
  }
});

/**
 * holdingProxy forwards TCP to the server at baseURL until hold(): from
 * then on its links forward nothing and close nothing (a dead NAT, a
 * sleeping laptop's link); links made after hold() work.
 */
async function holdingProxy() {
  const target = new URL(baseURL);
  const links = [];
  const server = net.createServer((c) => {
    const up = net.connect(Number(target.port), target.hostname);
    const link = { c, up, held: false };
    links.push(link);
    c.on('data', (d) => link.held || up.write(d));
    up.on('data', (d) => link.held || c.write(d));
    c.on('close', () => link.held || up.destroy());
    up.on('close', () => link.held || c.destroy());
    c.on('error', () => {});
    up.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    hold: () => links.forEach((l) => (l.held = true)),
    close: () => {
      server.close();
      for (const l of links) l.c.destroy(), l.up.destroy();
    },
  };
}

test('a link that goes silent is noticed by the heartbeat, and the client resumes', live, async () => {
  const { sessions: [a] } = await registerAll('nheart');
  const proxy = await holdingProxy();
  const alice = new Client({ token: a.token, user: a.user, baseURL: proxy.url, storage: new MemoryStorage() });
  try {
    await connected(alice);
    // Nothing reaches either side any more, and no close either: only
    // the application-level heartbeat can tell.
    const lost = next(alice, 'state', (s) => s.state === State.Reconnecting);
    proxy.hold();
    assert.equal((await lost).reason, 'no answer from the server');
    const back = await next(alice, 'welcome');
    assert.equal(back.resumed, true);
  } finally {
    alice.close();
    proxy.close();
  }
});

/** FullStorage is a storage with no room left: every write throws, as a full localStorage does. */
class FullStorage extends MemoryStorage {
  setItem() {
    throw new Error('QuotaExceededError: the quota has been exceeded');
  }
}

test('a full storage costs the saved position, never the connection or an event', live, async () => {
  const { sessions: [a, b] } = await registerAll('nfull', 'nfullb');
  const alice = clientOf(a, new FullStorage());
  const bob = clientOf(b);
  try {
    await connected(alice);
    assert.equal(alice.state, State.Connected);
    await connected(bob);
    const conv = await bob.api('POST', '/v1/conversations/direct', { username: a.user.name });
    const texts = ['one', 'two', 'three'];
    const seen = [];
    const all = next(alice, 'event', (ev) => ev.type === 'newMessage' && seen.push(ev.message.text) === texts.length);
    for (const text of texts) await bob.api('POST', `/v1/conversations/${conv.id}/messages`, { client_id: parley.newClientId(), text });
    await all;
    assert.deepEqual(seen, texts);
    assert.ok(alice.position > 0);
  } finally {
    alice.close();
    bob.close();
  }
});

// A reverse proxy or load balancer in front of the server answers some
// requests itself, with its own page or no body at all: the error must
// still carry the code its status means (docs/protocol.md), so a bare 429
// or 502 is retried (after Retry-After) rather than failing an upload for
// good as `invalid` or `internal`. The proxy here is a stand-in: a few
// canned answers, nothing of Parley's.
test('a proxy\'s bare answers map to the codes their statuses mean', async () => {
  const http = await import('node:http');
  const answers = [
    { status: 429, headers: { 'Retry-After': '3' }, body: '', code: 'rate_limited', retryAfterMs: 3000 },
    { status: 502, headers: { 'Content-Type': 'text/html' }, body: '<html><body>Bad Gateway</body></html>', code: 'unavailable', retryAfterMs: 0 },
    { status: 413, headers: { 'Content-Type': 'text/html' }, body: '<html>413 Request Entity Too Large</html>', code: 'too_large', retryAfterMs: 0 },
    { status: 503, headers: { 'Retry-After': '2' }, body: '', code: 'unavailable', retryAfterMs: 2000 },
  ];
  let i = 0;
  const proxy = http.createServer((req, res) => {
    const a = answers[i++];
    res.writeHead(a.status, a.headers);
    res.end(a.body);
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  try {
    const url = `http://127.0.0.1:${proxy.address().port}`;
    for (const a of answers) {
      await assert.rejects(register(url, 'someone', password), (err) => {
        assert.ok(err instanceof ParleyError, `HTTP ${a.status}: ${err}`);
        assert.equal(err.code, a.code, `HTTP ${a.status}`);
        assert.equal(err.retryAfterMs, a.retryAfterMs, `HTTP ${a.status}`);
        return true;
      });
    }
  } finally {
    proxy.close();
  }
});

/** CursorLog is a MemoryStorage that remembers every cursor written to it, in order. */
class CursorLog extends MemoryStorage {
  writes = [];
  setItem(k, v) {
    if (k.endsWith('.cursor')) this.writes.push(JSON.parse(v));
    super.setItem(k, v);
  }
}

test('tabs of one user never lower the position they share in storage', live, async () => {
  const { sessions: [a, b] } = await registerAll('ntaba', 'ntabb');
  const shared = new CursorLog(); // bob's two tabs: one localStorage
  const alice = clientOf(a);
  const tab1 = clientOf(b, shared);
  const tab2 = clientOf(b, shared);
  try {
    await connected(tab1);
    await connected(tab2);
    const conv = await alice.api('POST', '/v1/conversations/direct', { username: b.user.name });
    const say = (text) => alice.api('POST', `/v1/conversations/${conv.id}/messages`, { client_id: parley.newClientId(), text });
    const seen = (tab, text) => next(tab, 'event', (ev) => ev.type === 'newMessage' && ev.message.text === text);
    const both = [seen(tab1, 'one'), seen(tab2, 'one')];
    await say('one');
    await Promise.all(both);

    // Tab 2 falls behind (its link is down) while tab 1 shows three more
    // messages and saves their positions.
    tab2.close();
    const last = seen(tab1, 'four');
    for (const text of ['two', 'three', 'four']) await say(text);
    await last;
    const ahead = { ...tab1.cursor };

    // Tab 2 comes back and replays what it missed from its own position:
    // it saves as it goes, but a reload at any moment must not resume
    // below what tab 1 already showed.
    const replayed = next(tab2, 'resumed');
    tab2.connect();
    await replayed;
    const from = shared.writes.findIndex((c) => JSON.stringify(c) === JSON.stringify(ahead));
    assert.ok(from >= 0, `tab 1's position ${JSON.stringify(ahead)} was never stored: ${JSON.stringify(shared.writes)}`);
    for (const c of shared.writes.slice(from)) {
      for (const [s, p] of Object.entries(ahead)) assert.ok((c[s] ?? 0) >= p, `stored ${JSON.stringify(c)} after tab 1 stored ${JSON.stringify(ahead)}: ${JSON.stringify(shared.writes)}`);
    }
    const reload = clientOf(b, shared);
    assert.ok(reload.cursor[0] >= ahead[0] && reload.position >= ahead[0]);
    assert.deepEqual(tab2.cursor, tab1.cursor, 'each tab keeps its own position in memory, caught up');
  } finally {
    alice.close();
    tab1.close();
    tab2.close();
  }
});

test('connect() after a terminal close connects again, with the new token it is given', live, async () => {
  const { sessions: [a], suffix } = await registerAll('nagain');
  const alice = clientOf({ ...a, token: `${a.token}x` }); // a refused token: 4100
  try {
    const refused = next(alice, 'unauthorized');
    alice.connect();
    assert.equal((await refused).code, 4100);
    assert.equal(alice.state, State.Disconnected);
    // The app logs the user in again and connects with the new token.
    const fresh = await login(baseURL, `nagain${suffix}`, password);
    const welcome = next(alice, 'welcome');
    alice.connect({ token: fresh.token });
    assert.equal(alice.state, State.Connecting, 'connect() after a terminal close did nothing');
    await welcome;
    assert.equal(alice.token, fresh.token);
    assert.equal(alice.state, State.Connected);
    // While connected, connect() changes nothing: the same socket stays.
    const ws = alice.ws;
    alice.connect();
    assert.equal(alice.ws, ws);
    assert.equal(alice.state, State.Connected);
  } finally {
    alice.close();
  }
});
