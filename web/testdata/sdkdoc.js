// The harness of TestSDKDocJS (web/sdkdoc_test.go). Written from the
// section "JavaScript SDK (parley.js)" of docs/sdk.md (and
// docs/protocol.md where it points) alone, without reading parley.js:
// every name used on the module or a Client is one that section gives.
// Every frame a page's WebSocket sends, with when ({t, op}): pings are
// frames with op "ping" (docs/protocol.md section 4).
window.wsSent = [];
const realSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  let op = '?';
  try { op = JSON.parse(data).op; } catch { /* not JSON */ }
  window.wsSent.push({ t: Date.now(), op, ws: this });
  return realSend.call(this, data);
};
window.sdkdoc = (async () => {
  const m = await import('/parley.js');
  // A storage with the Web Storage methods the section lists.
  const memStorage = () => {
    const mem = new Map();
    return {
      getItem: (k) => (mem.has(k) ? mem.get(k) : null),
      setItem: (k, v) => { mem.set(k, String(v)); },
      removeItem: (k) => { mem.delete(k); },
      key: (i) => [...mem.keys()][i] ?? null,
      get length() { return mem.size; },
      mem,
    };
  };
  // until polls cond every 50 ms for at most ms; true once it holds.
  const until = async (cond, ms = 15000) => {
    const end = Date.now() + ms;
    for (;;) {
      try { if (cond()) return true; } catch { /* not yet */ }
      if (Date.now() > end) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  // watch records what the documented listeners are told.
  const watch = (c) => {
    const w = { states: [], events: [], sent: [], edited: [], resyncs: [], typing: [], outbox: [], presence: [] };
    c.on('state', (s) => w.states.push(s.state));
    c.on('event', (e) => w.events.push(e));
    c.on('sent', (x) => w.sent.push(x));
    c.on('edited', (x) => w.edited.push(x));
    c.on('resync', (x) => w.resyncs.push(x));
    c.on('typing', (x) => w.typing.push(x));
    c.on('outbox', (x) => w.outbox.push(x.map((i) => i.client_id + ':' + i.status)));
    c.on('presence', (x) => w.presence.push(x));
    w.last = () => w.states[w.states.length - 1];
    w.texts = () => w.events.filter((e) => e.type === 'newMessage').map((e) => e.message.text);
    return w;
  };
  return { m, memStorage, until, sleep, watch };
})();
