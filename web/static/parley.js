// parley.js is Parley's browser SDK: one WebSocket connection with the same
// state machine as the Go SDK (package client), application-level
// heartbeats, a persisted outbox of messages not yet acknowledged (text and
// images), resume from the last position seen, and the ephemeral typing and
// presence state.
//
// It has no dependencies and no build step. Everything runs on the page's
// one thread, so there are no locks inside a page: state changes only
// inside the Client's methods, and listeners are called synchronously, in
// order. Several tabs of the same user share the stored outbox; see
// "outbox persistence" below for how they stay out of each other's way.
//
// docs/protocol.md is the contract with the server; protocol/protocol.go
// holds the same frames in Go.

/** Connection states, the same names as the Go SDK's. */
export const State = Object.freeze({
  Disconnected: 'disconnected',
  Connecting: 'connecting',
  Connected: 'connected',
  Reconnecting: 'reconnecting',
  // Connected, but the server switched a feature (typing, presence,
  // messages) off for a while to protect itself.
  FeatureThrottled: 'featureThrottled',
});

// Defaults the welcome frame normally overrides.
const HEARTBEAT_INTERVAL_MS = 4000;
const HEARTBEAT_TIMEOUT_MS = 9000;
// A connection attempt that has not produced a welcome by then is dropped:
// "stuck in connecting" is one of the complaints Parley answers.
const CONNECT_TIMEOUT_MS = 10000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_CAP_MS = 30000;
// Own typingStarted frames go out at most once per TYPING_THROTTLE_MS;
// others' typing state expires TYPING_EXPIRY_MS after their last start.
export const TYPING_THROTTLE_MS = 3000;
export const TYPING_EXPIRY_MS = 5000;
/** The most different emoji one message holds (docs/protocol.md, react). */
export const MAX_REACTION_KINDS = 20;
/**
 * MAX_UNREAD_COUNT is where a conversation's unread_count and
 * unread_mentions stop (docs/protocol.md, Conversation): that value
 * means that many or more.
 */
export const MAX_UNREAD_COUNT = 99;

/**
 * unreadLabel is how a count of unread messages reads: the number, or
 * "99+" from MAX_UNREAD_COUNT up (a count this client keeps from events
 * may pass it; the server's stops there).
 */
export function unreadLabel(n) {
  return n >= MAX_UNREAD_COUNT ? `${MAX_UNREAD_COUNT}+` : String(n);
}
/**
 * DELIVERED_EVERY_MS is how often, at most, noteDelivered reports what
 * this client received (docs/protocol.md, delivered: the reference
 * clients' rate, like the Go SDK's DefaultDeliveredInterval).
 */
export const DELIVERED_EVERY_MS = 1000;
// How many conversations one delivered op may carry (protocol limit).
const MAX_DELIVERED_MARKS = 100;
// A throttled feature counts as lifted this long after its `until` even
// without the server's unthrottled frame.
const THROTTLE_GRACE_MS = 2000;

/**
 * shouldReconnect mirrors protocol.ShouldReconnect: 4100-4199 and the
 * "your frames are wrong" codes are terminal; everything else (including
 * 1006, an abnormal close the browser reports when the server is gone)
 * means reconnect with backoff and resume.
 */
export function shouldReconnect(code) {
  if (code >= 4100 && code <= 4199) return false;
  return ![1002, 1003, 1007, 1008, 1009].includes(code);
}

/**
 * backoffDelay is the delay before reconnect attempt `attempt` (1-based):
 * full jitter over an exponential ceiling of 1 s, 2 s, 4 s ... capped at
 * 30 s, so a restarted server is not hit by every client at once.
 */
export function backoffDelay(attempt, rand = Math.random) {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(Math.max(attempt - 1, 0), 20));
  return Math.floor(rand() * ceiling);
}

/** pageQuery is a query string of params, leaving out empty ones ('' and 0). */
function pageQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, String(v));
  return q.toString();
}

/** ParleyError carries a wire error code (see error.go). */
export class ParleyError extends Error {
  constructor(code, message, retryAfterMs = 0) {
    super(message || code);
    this.name = 'ParleyError';
    this.code = code;
    this.retryAfterMs = retryAfterMs || 0;
  }
}

/** Codes after which resending the same message can succeed later. */
function retryable(code) {
  return code === 'unavailable' || code === 'rate_limited' || code === 'disconnected' || code === 'internal';
}

/** Codes an upload gets back that no retry will change (the server's answer stands). */
function uploadRefused(code) {
  return !retryable(code) && code !== 'unauthorized';
}

// How long one upload may take before it counts as lost and is retried.
const UPLOAD_TIMEOUT_MS = 120000;

// ---- shrinking photos ----
//
// The server refuses, before decoding, an upload whose decode would need
// more than its memory budget (64 MiB by default, docs/protocol.md
// "Uploads"): a color JPEG is costed at ~15 bytes per pixel, so a 12 MP
// phone photo is refused. Like other chat apps, the client shrinks photos
// before upload; it also saves bandwidth and time.

/** IMAGE_MAX_SIDE is the longest side, in px, of an image sent unshrunk. */
export const IMAGE_MAX_SIDE = 2048;

/**
 * IMAGE_MAX_PIXELS is the most pixels of an image sent unshrunk: a 4:3
 * photo at IMAGE_MAX_SIDE (2048 x 1536), which the server's default
 * budget accepts as a JPEG; a square 2048 x 2048 JPEG it would refuse.
 */
export const IMAGE_MAX_PIXELS = 2048 * 1536;

const SHRINK_JPEG_QUALITY = 0.85;

/**
 * shrinkImage resolves to blob itself when the image fits in maxSide on
 * its longest side and maxPixels, else to a copy scaled down to fit,
 * rotated upright by its EXIF orientation: a PNG stays a PNG (it may be
 * transparent), anything else becomes a JPEG (quality 0.85). It never
 * rejects: bytes this browser cannot decode or encode resolve to blob,
 * for the server to judge.
 */
export async function shrinkImage(blob, { maxSide = IMAGE_MAX_SIDE, maxPixels = IMAGE_MAX_PIXELS } = {}) {
  if (typeof globalThis.createImageBitmap !== 'function') return blob;
  let bmp;
  try {
    bmp = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    return blob; // not an image this browser reads: the server decides
  }
  try {
    const { width, height } = bmp;
    const scale = Math.min(1, maxSide / Math.max(width, height), Math.sqrt(maxPixels / (width * height)));
    if (!(scale < 1)) return blob;
    const w = Math.max(1, Math.floor(width * scale));
    const h = Math.max(1, Math.floor(height * scale));
    const type = blob.type === 'image/png' ? 'image/png' : 'image/jpeg';
    return (await drawScaled(bmp, w, h, type)) || blob;
  } catch (err) {
    console.warn('parley: the image is sent as it is; it could not be shrunk here', err);
    return blob;
  } finally {
    bmp.close();
  }
}

/** drawScaled draws bmp into a w x h canvas and resolves to its bytes as type (null if the browser cannot). */
async function drawScaled(bmp, w, h, type) {
  const offscreen = typeof globalThis.OffscreenCanvas === 'function';
  const canvas = offscreen ? new OffscreenCanvas(w, h) : Object.assign(document.createElement('canvas'), { width: w, height: h });
  const ctx = canvas.getContext('2d');
  if (!ctx) return null;
  if (type === 'image/jpeg') {
    // JPEG has no alpha: transparent pixels (a GIF's, a WebP's) become white, not black.
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, w, h);
  }
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bmp, 0, 0, w, h);
  if (offscreen) return canvas.convertToBlob({ type, quality: SHRINK_JPEG_QUALITY });
  return new Promise((resolve) => canvas.toBlob(resolve, type, SHRINK_JPEG_QUALITY));
}

// ---- image blobs ----
//
// An image waiting in the outbox keeps its bytes in IndexedDB (localStorage
// holds strings of a few MB at most), so a reload or a sibling tab can still
// upload it. When IndexedDB is unavailable the bytes live in the page only.

const BLOB_DB = 'parley-outbox';
let blobDB = null;

function openBlobDB() {
  if (!blobDB) {
    blobDB = new Promise((resolve, reject) => {
      if (!globalThis.indexedDB) {
        reject(new Error('no IndexedDB'));
        return;
      }
      const req = indexedDB.open(BLOB_DB, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('blobs');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    blobDB.catch(() => {});
  }
  return blobDB;
}

async function blobOp(mode, fn) {
  const db = await openBlobDB();
  return new Promise((resolve, reject) => {
    const tx = db.transaction('blobs', mode);
    const req = fn(tx.objectStore('blobs'));
    tx.oncomplete = () => resolve(req.result);
    tx.onerror = tx.onabort = () => reject(tx.error);
  });
}

/** byOrder sorts outbox items by when they were written. */
function byOrder(a, b) {
  return (a.order ?? Date.parse(a.created_at)) - (b.order ?? Date.parse(b.created_at)) || (a.client_id < b.client_id ? -1 : 1);
}

/** newClientId makes the id that keeps a resent message from being stored twice. */
export function newClientId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
}

async function httpJSON(baseURL, method, path, body, token, { raw, contentType, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (raw !== undefined) headers['Content-Type'] = contentType || 'application/octet-stream';
  else if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(baseURL + path, {
      method,
      headers,
      body: raw !== undefined ? raw : body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    throw new ParleyError('disconnected', 'The server cannot be reached. Check your connection.');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (!res.ok) throw httpError(res, null); // a proxy's page, not the server's answer
      throw new ParleyError('internal', `Unexpected answer from the server (HTTP ${res.status}).`);
    }
  }
  if (!res.ok) throw httpError(res, data);
  return data;
}

/**
 * httpError is the ParleyError of a refused HTTP answer: the server's
 * error object when the body holds one, else (a proxy's or load
 * balancer's page, or no body) the code its status means in
 * docs/protocol.md, so a bare 429 or 503 stays retryable and a bare 413
 * is too_large, not a permanent invalid. Retry-After (seconds) gives the
 * wait when the body names none.
 */
function httpError(res, data) {
  const e = data?.error;
  const after = Number(res.headers.get('Retry-After'));
  const retryAfterMs = e?.retry_after_ms || (after > 0 ? after * 1000 : 0);
  return new ParleyError(e?.code || statusCode(res.status), e?.message || `HTTP ${res.status}`, retryAfterMs);
}

/** statusCode is the error code docs/protocol.md gives an HTTP status. */
function statusCode(status) {
  if (status === 429) return 'rate_limited';
  if (status === 413) return 'too_large';
  if (status === 401) return 'unauthorized';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'not_found';
  if (status === 408 || status >= 500) return 'unavailable'; // 408: a proxy's timeout
  return 'invalid';
}

/** register creates an account: resolves to {token, user, expires_at}. */
export function register(baseURL, username, password) {
  return httpJSON(baseURL, 'POST', '/v1/auth/register', { username, password });
}

/** login resolves to {token, user, expires_at}. */
export function login(baseURL, username, password) {
  return httpJSON(baseURL, 'POST', '/v1/auth/login', { username, password });
}

/**
 * cleanCursor returns a copy of c if it is a protocol-2 cursor (an object
 * of shard number keys and whole positions >= 0), else null.
 */
export function cleanCursor(c) {
  if (c == null || typeof c !== 'object' || Array.isArray(c)) return null;
  const out = {};
  for (const [k, v] of Object.entries(c)) {
    if (!/^[0-9]{1,3}$/.test(k) || !Number.isSafeInteger(v) || v < 0) return null;
    out[Number(k)] = v;
  }
  return out;
}

/**
 * parseSaved reads a saved cursor: {cursor, resets} or, saved while no
 * shard's log was ever lost (and by versions that kept no resets), the
 * bare cursor. It returns {cursor, resets} or null.
 */
function parseSaved(o) {
  if (o != null && typeof o === 'object' && 'cursor' in o) {
    const cursor = cleanCursor(o.cursor);
    return cursor && { cursor, resets: cleanCursor(o.resets) ?? {} };
  }
  const cursor = cleanCursor(o);
  return cursor && { cursor, resets: {} };
}

/**
 * Client is one user's connection to a Parley server.
 *
 * Listeners (on(type, fn) returns an id for off(id)):
 *   state     {state, attempt, retryAt, reason, throttled}   every state change
 *   event     a parley Event (durable ones once each, in order)
 *   welcome   {welcome, resumed: bool}   a connection is up; resumed=false means
 *             no replay happens, so refetch state
 *   resumed   {from, to, count, cursor, shards}
 *   resync    {head, reason, cause, from, shard, cursor, lost, shards}   refetch
 *             conversations and messages (tab: true, with cause log_lost:
 *             another tab of the user saw the log lost; see adoptResets)
 *   outbox    [items]          the outbox changed
 *   sent      {item, message, blob}  the server stored a message from the
 *             outbox (blob: an image's bytes, when this page holds them)
 *   edited    {item, message}  the server applied an edit from the outbox
 *             (message: as edited; the messageEdited event comes too)
 *   typing    {conversationId} someone's typing state changed there
 *   presence  {userId, online}
 *   unauthorized {code, reason} the token is no longer good: log in again
 */
/** itemId is the client_id of an outbox item given as the item or as its id. */
function itemId(item) {
  return typeof item === 'string' ? item : item?.client_id;
}

export class Client {
  /**
   * @param {object} opts
   * @param {string} opts.token   bearer token
   * @param {object} opts.user    {id, name}
   * @param {string} [opts.baseURL]  defaults to the page's origin
   * @param {Storage} [opts.storage] where the outbox and position persist (localStorage)
   */
  constructor({ token, user, baseURL = location.origin, storage = globalThis.localStorage }) {
    this.token = token;
    this.user = user;
    this.baseURL = baseURL.replace(/\/$/, '');
    this.storage = storage;
    this.state = State.Disconnected;
    this.attempt = 0;
    this.retryAt = 0;
    this.reason = '';
    this.listeners = new Map();
    this.nextListenerId = 1;
    this.nextRequestId = 1;
    this.pending = new Map(); // request id -> {resolve, reject, op}
    this.ws = null;
    this.generation = 0; // bumps per socket so a dead socket's callbacks are ignored
    this.lastHeard = 0;
    this.heartbeat = { interval: HEARTBEAT_INTERVAL_MS, timeout: HEARTBEAT_TIMEOUT_MS };
    this.timers = { retry: 0, ping: 0, connect: 0, flush: 0 };
    this.goawayDelay = null;
    // While the wait before a reconnect is a goaway's: when it ends (ms).
    this.goawayUntil = 0;
    // Backoff steps waited since the last connection, goaway or
    // reconnectNow (the Go SDK's schedule; attempt counts failures).
    this.step = 0;
    this.wanted = false; // the app wants a connection (connect called, close not)
    this.live = false; // welcome received on the current socket
    this.throttled = new Map(); // feature -> until (ms)
    this.throttleTimers = new Map();
    this.online = new Set();
    this.typers = new Map(); // conversationId -> Map(userId -> {name, timer})
    this.typingSentAt = new Map(); // conversationId -> ms of our last typingStarted
    // Delivery receipts (noteDelivered): positions not yet reported, and
    // whether a report is in flight or its second has not passed.
    this.deliveredAcks = { pending: new Map(), busy: false, timer: 0, gen: 0 };
    this.flushing = false;
    this.flushAgain = false; // flush was asked for while it ran
    // Limits the server states in welcome; these defaults match parley.go.
    this.limits = { maxTextRunes: 4000, maxFrameBytes: 65536 };
    this.stats = { duplicatesDropped: 0, resumes: 0, resyncs: 0, reconnects: 0, pings: 0, maxTickGapMs: 0, batchedMessages: 0, throttled: 0, unthrottled: 0, uploads: 0, deliveredReports: 0 };

    const keyBase = `parley.${user.id}`;
    this.posKey = `${keyBase}.pos`; // shard 0's position, as before protocol 2
    this.cursorKey = `${keyBase}.cursor`;
    // Before per-item keys, the whole outbox was one JSON array here.
    this.legacyOutboxKey = `${keyBase}.outbox`;
    this.itemPrefix = `${keyBase}.outbox.`;
    this.senderLock = `${keyBase}.sender`;
    this.blobs = new Map(); // client_id -> Blob of an image this page holds
    this.shrinking = new Map(); // client_id -> promise of the shrunk bytes (see sendImage)
    this.uploadAbort = null; // aborts the upload in flight at close()
    // The last durable position seen per shard of the server's log
    // (protocol 2, docs/protocol.md section 3): {shard: pos}, or null
    // before the first welcome or event.
    this.cursor = this.loadCursor();
    // How many times each shard's log was lost (a resync with cause
    // log_lost) before the cursor's entry: {shard: n}, 0 left out. It
    // tells the tabs which saved entry belongs to the newer log (see
    // savePosition). resetsAtHello is the copy the last hello went with.
    this.resets = this.loadSaved()?.resets ?? {};
    this.resetsAtHello = {};
    this.outbox = this.loadOutbox();
    this.onStorage = (e) => this.storageChanged(e);

    this.onOnline = () => this.networkBack();
    this.onOffline = () => this.probe();
    this.onVisibility = () => {
      if (document.visibilityState !== 'visible') return;
      // A goaway's wait is the server's: the tab being looked at again
      // does not cut it short (a hidden tab's throttled timer may be
      // late, so once the wait is over it does reconnect at once).
      if (this.state === State.Reconnecting) {
        if (!(Date.now() < this.goawayUntil)) this.reconnectNow();
      } else this.probe();
    };
  }

  // ---- listeners ----

  on(type, fn) {
    const id = this.nextListenerId++;
    this.listeners.set(id, { type, fn });
    return id;
  }

  off(id) {
    this.listeners.delete(id);
  }

  emit(type, detail) {
    for (const { type: t, fn } of [...this.listeners.values()]) {
      if (t !== type) continue;
      try {
        fn(detail);
      } catch (err) {
        console.error(`parley: ${type} listener failed`, err);
      }
    }
  }

  // ---- persistence ----

  /** position is shard 0's entry of the cursor (on a log of one shard, the whole position), or null. */
  get position() {
    return this.cursor ? (this.cursor[0] ?? 0) : null;
  }

  /** loadCursor reads the stored cursor, or a position stored before protocol 2 as shard 0's. */
  loadCursor() {
    const saved = this.loadSaved();
    if (saved) return saved.cursor;
    const v = Number(this.storage?.getItem(this.posKey));
    return Number.isFinite(v) && v > 0 ? { 0: v } : null;
  }

  /**
   * loadSaved reads the stored cursor with its resets ({cursor, resets}),
   * or null. While no shard's log was ever lost it is stored as the bare
   * cursor, as before resets were kept: {resets: {}}.
   */
  loadSaved(raw = this.storage?.getItem(this.cursorKey)) {
    if (!raw) return null;
    try {
      return parseSaved(JSON.parse(raw));
    } catch {
      return null; // not JSON: the position under posKey is all there is
    }
  }

  /**
   * savePosition stores the cursor for the next page load. The user's
   * tabs share it, and a tab that is behind (back from a cut link,
   * replaying what it missed) saves positions below those a sibling tab
   * already showed and saved: a reload then would replay them. So per
   * shard the stored entry never goes lower: what is written is the
   * larger of the stored entry and this tab's, which keeps its own cursor
   * in memory for its own resume.
   *
   * That holds between entries of the same log only. Each entry is stored
   * with how many times its shard's log was lost (resets, counted by the
   * tab that saw the resync with cause log_lost, which moved it back).
   * An entry of a later log wins whatever its position: this tab's, after
   * a log_lost its siblings have not seen yet, replaces theirs; a stored
   * one, from a log_lost this tab has not seen (its own position is one
   * of the lost log, and its connection may still be: a node serving the
   * lost log, kept by a load balancer, would have it write that log's
   * positions back), is adopted (see adoptResets) and this tab's is not
   * written.
   */
  savePosition() {
    if (this.cursor == null) return;
    // A full storage (or one that refuses writes) costs only the saved
    // position: a throw here would stop the welcome or the rest of a
    // batch of frames, and with them the connection or events.
    try {
      const saved = this.loadSaved();
      if (saved) this.adoptResets(saved);
      const out = { ...this.cursor };
      if (saved) {
        for (const [s, p] of Object.entries(saved.cursor)) {
          if ((saved.resets[s] ?? 0) === (this.resets[s] ?? 0) && p > (out[s] ?? 0)) out[s] = p;
        }
      }
      const resets = cleanCursor(this.resets) ?? {};
      for (const s of Object.keys(resets)) if (!resets[s]) delete resets[s];
      this.storage?.setItem(this.cursorKey, JSON.stringify(Object.keys(resets).length ? { cursor: out, resets } : out));
      this.storage?.setItem(this.posKey, String(out[0] ?? 0));
    } catch (err) {
      console.warn('parley: the position could not be saved', err);
    }
  }

  /**
   * adoptResets takes from saved (loadSaved's) the entry of each shard
   * whose log a sibling tab saw lost more times than this tab did: this
   * tab's position there belongs to a log that is gone. Like a resync
   * with cause log_lost from the server, it tells the listeners (resync,
   * with cause "log_lost" and tab: true) so the app refetches its state.
   * A connection (or attempt) this tab has was resumed on the lost log,
   * or may have been (a node or load balancer still serving it): its
   * frames could save the lost log's positions again, so it is dropped
   * as a lost link is, and the next hello resumes from the new entries.
   */
  adoptResets(saved) {
    const lost = [];
    let from = 0;
    for (const [s, n] of Object.entries(saved.resets)) {
      if (n <= (this.resets[s] ?? 0)) continue;
      this.cursor ??= {};
      if (!lost.length) from = this.cursor[s] ?? 0;
      this.cursor[s] = saved.cursor[s] ?? 0;
      this.resets[s] = n;
      lost.push(Number(s));
    }
    if (!lost.length) return;
    this.emit('resync', {
      cause: 'log_lost',
      tab: true,
      reason: "another tab of this user found the server's log lost",
      shard: lost[0],
      head: this.cursor[lost[0]],
      from,
      lost,
      cursor: { ...this.cursor },
    });
    if (this.ws) this.lost(this.generation, 4000, "another tab found the server's log lost");
  }

  /** mergeCursor moves each entry up to c's where that is further, never back. */
  mergeCursor(c) {
    const o = cleanCursor(c);
    if (!o) return;
    this.cursor ??= {};
    for (const [s, p] of Object.entries(o)) if (p > (this.cursor[s] ?? 0)) this.cursor[s] = p;
  }

  // ---- outbox persistence ----
  //
  // Each outbox item is its own localStorage key, parley.<user>.outbox.<client_id>,
  // written whole by the one tab that changes it. Tabs of the same user
  // therefore never overwrite each other's items (a shared JSON array would
  // lose a message queued in one tab when another saved). The storage
  // event tells the other tabs, which mirror the change. Which tab sends is
  // settled by a Web Lock (see flush); if two tabs ever send the same item,
  // the server stores it once because the client_id is the same.

  /** loadOutbox reads every stored item of this user, oldest first. */
  loadOutbox() {
    const st = this.storage;
    if (!st) return [];
    this.migrateLegacyOutbox();
    const items = [];
    for (let i = 0; i < st.length; i++) {
      const key = st.key(i);
      if (!key?.startsWith(this.itemPrefix)) continue;
      const item = this.parseItem(st.getItem(key));
      // An item in flight when its page went away may or may not be
      // stored: resending it with the same client_id settles that.
      if (item) items.push({ ...item, status: item.status === 'failed' ? 'failed' : 'pending' });
    }
    return items.sort(byOrder);
  }

  migrateLegacyOutbox() {
    const raw = this.storage.getItem(this.legacyOutboxKey);
    if (raw == null) return;
    try {
      const base = Date.now();
      JSON.parse(raw).forEach((item, i) => {
        if (item?.client_id) this.storage.setItem(this.itemPrefix + item.client_id, JSON.stringify({ order: base + i / 1000, ...item }));
      });
    } catch {
      // Unreadable: nothing to keep.
    }
    this.storage.removeItem(this.legacyOutboxKey);
  }

  parseItem(raw) {
    try {
      const item = JSON.parse(raw);
      return item?.client_id && item?.conversation_id ? item : null;
    } catch {
      return null;
    }
  }

  /** putItem stores one item (added or changed) and tells the listeners. */
  putItem(item) {
    const i = this.outbox.findIndex((x) => x.client_id === item.client_id);
    if (i < 0) {
      this.outbox.push(item);
      this.outbox.sort(byOrder);
    } else if (this.outbox[i] !== item) {
      this.outbox[i] = item;
    }
    try {
      this.storage?.setItem(this.itemPrefix + item.client_id, JSON.stringify(item));
    } catch (err) {
      console.warn('parley: the outbox could not be saved', err);
    }
    this.emit('outbox', this.outbox.slice());
  }

  /** dropItem removes an item for good: sent, or discarded by the user. */
  dropItem(clientId) {
    this.outbox = this.outbox.filter((i) => i.client_id !== clientId);
    this.storage?.removeItem(this.itemPrefix + clientId);
    this.blobs.delete(clientId);
    blobOp('readwrite', (s) => s.delete(this.blobKey(clientId))).catch(() => {});
    this.emit('outbox', this.outbox.slice());
  }

  /**
   * storageChanged mirrors another tab's change to this user's outbox,
   * and adopts the entries of the saved cursor of a log it saw lost
   * (adoptResets): at once, so this tab's next hello resumes on the new log.
   */
  storageChanged(e) {
    if (e.storageArea !== this.storage) return;
    if (e.key === this.cursorKey) {
      const saved = this.loadSaved(e.newValue);
      if (saved && this.cursor != null) this.adoptResets(saved);
      return;
    }
    if (e.key !== null && !e.key.startsWith(this.itemPrefix)) return;
    if (e.key === null) {
      // The storage was cleared: keep only what this page holds.
      this.outbox = this.loadOutbox().concat(this.outbox.filter((i) => !this.storage.getItem(this.itemPrefix + i.client_id))).sort(byOrder);
    } else {
      const clientId = e.key.slice(this.itemPrefix.length);
      const item = e.newValue == null ? null : this.parseItem(e.newValue);
      const i = this.outbox.findIndex((x) => x.client_id === clientId);
      if (!item) {
        if (i >= 0) this.outbox.splice(i, 1);
        this.blobs.delete(clientId);
      } else if (i >= 0) {
        this.outbox[i] = item;
      } else {
        this.outbox.push(item);
        this.outbox.sort(byOrder);
      }
    }
    this.emit('outbox', this.outbox.slice());
    // A sibling tab may be cut off while this one is live: send for it.
    if (this.outbox.some((i) => i.status === 'pending')) this.flush();
  }

  blobKey(clientId) {
    return `${this.user.id}/${clientId}`;
  }

  /** imageBlob resolves to the bytes of an outbox image, or null when they are gone. */
  async imageBlob(clientId) {
    const b = this.blobs.get(clientId);
    if (b) return b;
    try {
      const stored = await blobOp('readonly', (s) => s.get(this.blobKey(clientId)));
      if (stored instanceof Blob) {
        this.blobs.set(clientId, stored);
        return stored;
      }
    } catch {
      // No IndexedDB here: only this page's memory held it.
    }
    return null;
  }

  // ---- state machine ----

  setState(state, extra = {}) {
    this.state = state;
    Object.assign(this, extra);
    this.emit('state', this.status());
  }

  /** status is a snapshot for the UI. */
  status() {
    return {
      state: this.state,
      attempt: this.attempt,
      retryAt: this.retryAt,
      reason: this.reason,
      throttled: Object.fromEntries(this.throttled),
    };
  }

  /**
   * connect starts connecting and keeps the connection up until close().
   * token, when given, replaces the client's token first (a fresh login of
   * the same user): the next hello and HTTP calls use it. After a
   * terminal close (a refused token, 4101, 4102, 4103: state
   * disconnected) it connects again, the backoff reset, like
   * reconnectNow: the app asks for a connection. While connecting,
   * connected or waiting to reconnect it changes nothing else.
   */
  connect({ token } = {}) {
    if (token) this.token = token;
    if (this.wanted) {
      if (this.state === State.Disconnected) this.reconnectNow();
      return;
    }
    this.wanted = true;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    window.addEventListener('storage', this.onStorage);
    document.addEventListener('visibilitychange', this.onVisibility);
    this.attempt = 0;
    this.step = 0;
    this.open(State.Connecting);
  }

  /** close disconnects for good (logout). The outbox stays persisted. */
  close() {
    this.wanted = false;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    window.removeEventListener('storage', this.onStorage);
    document.removeEventListener('visibilitychange', this.onVisibility);
    this.uploadAbort?.abort();
    // What was not reported yet stays pending for the next noteDelivered.
    clearTimeout(this.deliveredAcks.timer);
    this.deliveredAcks.timer = 0;
    this.deliveredAcks.busy = false;
    this.deliveredAcks.gen++; // a report in flight schedules no next one
    // A reconnect waiting out its backoff must not open a socket later.
    clearTimeout(this.timers.retry);
    this.goawayDelay = null;
    this.goawayUntil = 0;
    this.teardown(1000, 'client closed');
    this.setState(State.Disconnected, { reason: 'closed', retryAt: 0 });
  }

  /**
   * reconnectNow skips the backoff wait (the "Retry now" button) and resets
   * it. While an attempt is under way (a socket opening, or open without a
   * welcome yet, in state connecting or reconnecting) or connected, it does
   * nothing: there is one attempt at a time, and closing one to start
   * another only makes the server see more connections.
   */
  reconnectNow() {
    if (!this.wanted) {
      this.connect();
      return;
    }
    // this.ws is the socket of the attempt under way or of the
    // connection: lost() and close() clear it (teardown).
    if (this.live || this.ws) return;
    this.attempt = 0;
    this.step = 0;
    this.goawayDelay = null;
    this.open(State.Connecting);
  }

  networkBack() {
    // After a terminal close (a refused token, 4101, 4102, 4103) only the
    // app reconnects (reconnectNow): a network coming back changes nothing.
    if (!this.wanted || this.state === State.Disconnected) return;
    // The browser says the network is back: do not sit out a long backoff.
    if (!this.live) this.reconnectNow();
    else {
      this.probe();
      this.retryUploadsNow();
    }
  }

  /** probe pings at once, so a dead link is noticed within the heartbeat timeout. */
  probe() {
    if (this.live) this.sendFrame({ op: 'ping', id: this.newRequestId() });
  }

  open(state) {
    this.teardown(4000, 'reconnecting');
    clearTimeout(this.timers.retry);
    this.goawayUntil = 0;
    const gen = ++this.generation;
    this.setState(state, { retryAt: 0 });
    const url = this.baseURL.replace(/^http/, 'ws') + '/v1/ws';
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (err) {
      this.lost(gen, 1006, String(err));
      return;
    }
    this.ws = ws;
    this.timers.connect = setTimeout(() => this.lost(gen, 4000, 'connect timeout'), CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      if (gen !== this.generation) return;
      // batch: the server may pack several frames into one message,
      // separated by "\n" (docs/protocol.md section 2).
      // Protocol 2: the cursor per shard (null: a first connection).
      const hello = { token: this.token, batch: true, protocol: 2 };
      if (this.cursor != null) hello.cursor = { ...this.cursor };
      this.helloResumed = this.cursor != null;
      this.resetsAtHello = { ...this.resets };
      this.sendFrame({ op: 'hello', id: 'hello', data: hello });
    };
    ws.onmessage = (e) => {
      if (gen !== this.generation) return;
      this.lastHeard = Date.now();
      const parts = String(e.data).split('\n');
      if (parts.length > 1) this.stats.batchedMessages++;
      for (const part of parts) {
        if (!part) continue;
        let frame;
        try {
          frame = JSON.parse(part);
        } catch {
          console.warn('parley: frame is not JSON', part);
          continue;
        }
        // A frame may end this socket (a lost heartbeat, a terminal
        // error): the rest of the message belongs to it.
        if (gen !== this.generation) return;
        this.handleFrame(frame);
      }
    };
    ws.onclose = (e) => this.lost(gen, e.code, e.reason);
    ws.onerror = () => {}; // onclose follows and decides
  }

  /** teardown drops the current socket without deciding what happens next. */
  teardown(code, reason) {
    clearTimeout(this.timers.connect);
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.flush);
    const ws = this.ws;
    this.ws = null;
    this.live = false;
    this.generation++;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      // Not null: Node's ws package reports closing a socket still
      // connecting as an error event, which throws without a listener.
      ws.onerror = () => {};
      try {
        ws.close(code, reason);
      } catch {
        /* already closed */
      }
    }
    for (const [, p] of this.pending) p.reject(new ParleyError('disconnected', 'The connection was lost.'));
    this.pending.clear();
    // An item being sent goes back to pending when its request rejects
    // (flush); an upload in flight may still finish over HTTP.
    this.clearThrottles();
    this.clearAllTypers();
    // Without a link, presence is unknown: show no one as online rather
    // than a stale list; the next welcome brings the real one.
    if (this.online.size) {
      this.online = new Set();
      this.emit('presence', { userId: null, online: null });
    }
  }

  /** lost handles the end of socket `gen`, by close code. */
  lost(gen, code, reason) {
    if (gen !== this.generation || !this.wanted) return;
    this.teardown(4000, 'reconnecting');
    if (!shouldReconnect(code)) {
      this.setState(State.Disconnected, { reason: reason || `closed with code ${code}`, retryAt: 0 });
      if (code === 4100 || code === 4102) this.emit('unauthorized', { code, reason });
      return;
    }
    this.stats.reconnects++;
    this.attempt++;
    // A goaway names when the server wants us back: wait that long, and
    // start the backoff over, as the Go SDK does (the server restarts,
    // it is not failing). Otherwise back off.
    let delay;
    if (this.goawayDelay != null) {
      delay = this.goawayDelay;
      this.step = 0;
      this.goawayUntil = Date.now() + delay;
    } else {
      this.step++;
      delay = backoffDelay(this.step);
    }
    this.goawayDelay = null;
    this.timers.retry = setTimeout(() => this.open(State.Reconnecting), delay);
    this.setState(State.Reconnecting, { retryAt: Date.now() + delay, reason: reason || `closed with code ${code}` });
  }

  /** sendFrame sends frame (json: its encoding, when made already); false when there is no open socket. */
  sendFrame(frame, json = JSON.stringify(frame)) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(json);
    return true;
  }

  newRequestId() {
    return `r${this.nextRequestId++}`;
  }

  /**
   * request sends op over the live connection and resolves with the reply's
   * data; it rejects with a ParleyError (code "disconnected" when there is no
   * live connection or it drops before the reply).
   */
  request(op, data) {
    if (!this.live) return Promise.reject(new ParleyError('disconnected', 'Not connected.'));
    const id = this.newRequestId();
    // The server closes the connection with 1009, a code that is not
    // reconnected, on a frame over max_frame_bytes (docs/protocol.md
    // section 9): such a request fails alone instead, so an outbox item
    // does not end every connection it is sent on. (A UTF-16 unit is at
    // most 3 bytes of UTF-8: short frames need no encoding to tell.)
    const json = JSON.stringify({ op, id, data });
    const max = this.limits.maxFrameBytes;
    if (json.length > max / 3 && new TextEncoder().encode(json).length > max) {
      return Promise.reject(new ParleyError('too_large', `This is too large to send (over ${max} bytes).`));
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, op });
      this.sendFrame({ op, id, data }, json); // encoded once, above
    });
  }

  /** api calls the HTTP API with this client's token. */
  api(method, path, body) {
    return httpJSON(this.baseURL, method, path, body, this.token);
  }

  /**
   * uploadImage uploads an image (a Blob) as is and returns its Attachment
   * (for an avatar: setProfile({avatar_id: att.id})).
   */
  uploadImage(blob) {
    return httpJSON(this.baseURL, 'POST', '/v1/uploads', undefined, this.token, { raw: blob, contentType: blob.type || 'application/octet-stream' });
  }

  /** setProfile changes this user's display_name and/or avatar_id ("" clears) and returns the User. */
  setProfile(change) {
    return this.api('PATCH', '/v1/me', change);
  }

  /**
   * search finds messages (GET /v1/search) and resolves with a SearchPage,
   * newest first: all conversations, or conversationId's alone; pass the
   * page's `next` as cursor for the following page. The server validates
   * the query (code "invalid") and rate-limits searches.
   */
  search(query, { conversationId = '', cursor = '', limit = 0 } = {}) {
    return this.api('GET', `/v1/search?${pageQuery({ q: query, conversation_id: conversationId, cursor, limit })}`);
  }

  /** mentions resolves with a SearchPage of the messages that mention this user (GET /v1/mentions), newest first. */
  mentions({ cursor = '', limit = 0 } = {}) {
    const q = pageQuery({ cursor, limit });
    return this.api('GET', `/v1/mentions${q ? `?${q}` : ''}`);
  }

  /** privacy resolves with this user's Privacy: {consent, blocked} (GET /v1/me/privacy). */
  privacy() {
    return this.api('GET', '/v1/me/privacy');
  }

  /** setPrivacy sets who may start a conversation with this user ('everyone' | 'contacts') and resolves with the Privacy. */
  setPrivacy(consent) {
    return this.api('PATCH', '/v1/me/privacy', { consent });
  }

  /** block blocks userId and resolves with {user_id, blocked: true}. */
  block(userId) {
    return this.api('PUT', `/v1/me/blocked/${encodeURIComponent(userId)}`);
  }

  /** unblock unblocks userId and resolves with {user_id, blocked: false}. */
  unblock(userId) {
    return this.api('DELETE', `/v1/me/blocked/${encodeURIComponent(userId)}`);
  }

  /** acceptRequest accepts the message request of conversationId and resolves with the Conversation. */
  acceptRequest(conversationId) {
    return this.api('POST', `/v1/conversations/${encodeURIComponent(conversationId)}/accept`);
  }

  /** declineRequest declines the message request of conversationId and resolves with the Conversation. */
  declineRequest(conversationId) {
    return this.api('POST', `/v1/conversations/${encodeURIComponent(conversationId)}/decline`);
  }

  handleFrame(f) {
    switch (f.type) {
      case 'welcome':
        this.welcome(f.data);
        return;
      case 'pong':
        return;
      case 'reply': {
        const p = this.pending.get(f.id);
        if (p) {
          this.pending.delete(f.id);
          p.resolve(f.data);
        }
        return;
      }
      case 'error': {
        const e = f.error || {};
        if (f.id === 'hello') {
          // The hello itself failed; the close code that follows decides.
          this.reason = e.message || e.code;
          return;
        }
        const p = f.id && this.pending.get(f.id);
        if (p) {
          this.pending.delete(f.id);
          p.reject(new ParleyError(e.code, e.message, e.retry_after_ms));
        } else {
          console.warn('parley: server error', e);
        }
        return;
      }
      case 'event':
        this.handleEvent(f.data);
        return;
      case 'resumed':
        this.stats.resumes++;
        // The replay covered every shard up to the welcome's heads.
        if (this.cursor != null && f.data?.cursor) {
          this.mergeCursor(f.data.cursor);
          this.savePosition();
        }
        this.emit('resumed', f.data);
        return;
      case 'resync': {
        this.stats.resyncs++;
        // The position never moves backwards (events at or below it stay
        // dropped as seen): a head below it is a node that has not caught
        // up (older servers answer so). Only a server that says its log
        // was lost (cause log_lost: it gives positions after head again)
        // moves it back, to its head. docs/protocol.md section 3. With
        // protocol 2 (a cursor in the frame) that holds per shard: only
        // the shards listed as lost go back.
        const head = f.data?.head;
        const heads = cleanCursor(f.data?.cursor);
        if (heads) {
          this.cursor ??= {};
          const lost = f.data.cause === 'log_lost' ? f.data.lost || [] : [];
          for (const s of lost) {
            this.cursor[s] = heads[s] ?? 0;
            this.countReset(s);
          }
          this.mergeCursor(heads);
          this.savePosition();
        } else if (typeof head === 'number' && (this.position == null || head > this.position || f.data.cause === 'log_lost')) {
          this.cursor = { ...this.cursor, 0: head };
          if (f.data.cause === 'log_lost') this.countReset(0);
          this.savePosition();
        }
        this.emit('resync', f.data);
        return;
      }
      case 'throttled':
        this.stats.throttled++;
        this.throttle(f.data.feature, Date.parse(f.data.until) || Date.now() + 5000);
        return;
      case 'unthrottled':
        this.stats.unthrottled++;
        this.unthrottle(f.data.feature);
        return;
      case 'goaway':
        this.goawayDelay = Math.max(0, Number(f.data?.reconnect_after_ms) || 0);
        return;
      default:
        console.warn('parley: unknown frame type', f.type);
    }
  }

  /**
   * countReset counts a log_lost of shard s, answering the last hello:
   * one more than the count the hello went with, so the tabs that each
   * see the same loss count it once and their entries compare as of one
   * log (never less than this tab's count now: it may have adopted a
   * sibling's since the hello).
   */
  countReset(s) {
    this.resets[s] = Math.max((this.resetsAtHello[s] ?? 0) + 1, this.resets[s] ?? 0);
  }

  welcome(w) {
    clearTimeout(this.timers.connect);
    this.live = true;
    this.attempt = 0;
    this.step = 0;
    this.goawayDelay = null;
    this.heartbeat = {
      interval: w.heartbeat_interval_ms || HEARTBEAT_INTERVAL_MS,
      timeout: w.heartbeat_timeout_ms || HEARTBEAT_TIMEOUT_MS,
    };
    if (w.max_text_runes) this.limits.maxTextRunes = w.max_text_runes;
    if (w.max_frame_bytes) this.limits.maxFrameBytes = w.max_frame_bytes;
    const resumed = this.helloResumed;
    if (this.cursor == null) {
      // A protocol-1 answer has no cursor: its head is shard 0's.
      this.cursor = cleanCursor(w.cursor) ?? { 0: w.head };
      // The server's heads are of the log it has now: the one whose
      // resets the sibling tabs counted (nothing to adopt).
      this.resets = { ...(this.loadSaved()?.resets ?? {}) };
      this.savePosition();
    }
    this.online = new Set(w.online || []);
    const gen = this.generation;
    this.lastHeard = Date.now();
    // One timer both pings and checks for silence; browsers cannot see
    // WebSocket-level pings, so the check must live in the protocol. (The
    // server's WebSocket pings, which the browser answers by itself, keep
    // the link up from its side when this timer is throttled: a hidden
    // tab's runs about once a minute. docs/protocol.md section 4.)
    const tick = Math.min(1000, this.heartbeat.interval);
    let lastPing = Date.now();
    let lastTick = Date.now();
    // When a late tick last pinged: silence is counted from then, not from
    // the last frame heard before it, since no ping went out meanwhile to
    // be answered (judged from lastHeard, the tick after a minute-late one
    // closed a healthy link whose pong was more than one tick away).
    let lateAt = 0;
    this.timers.ping = setInterval(() => {
      if (gen !== this.generation) return;
      const now = Date.now();
      // A late tick means the page was frozen or throttled, not that the
      // link is dead: ping first and judge the link on the later ticks.
      const late = now - lastTick > 2 * tick + 500;
      this.stats.maxTickGapMs = Math.max(this.stats.maxTickGapMs, now - lastTick);
      lastTick = now;
      if (late) lateAt = now;
      if (!late && now - Math.max(this.lastHeard, lateAt) > this.heartbeat.timeout) {
        this.lost(gen, 4002, 'no answer from the server');
        return;
      }
      if (late || now - lastPing >= this.heartbeat.interval) {
        lastPing = now;
        this.stats.pings++;
        this.sendFrame({ op: 'ping', id: this.newRequestId() });
      }
    }, tick);
    this.setState(State.Connected, { retryAt: 0, reason: '' });
    this.emit('welcome', { welcome: w, resumed });
    this.emit('presence', { userId: null, online: null });
    this.retryUploadsNow();
  }

  /** retryUploadsNow ends the backoff of uploads the network cut off: it is back. */
  retryUploadsNow() {
    for (const i of this.outbox) if (i.status === 'pending' && i.tries > 0 && i.not_before) this.updateItem(i, { not_before: 0 });
    this.flush();
  }

  handleEvent(ev) {
    if (!ev) return;
    if (ev.pos) {
      // Positions only grow within a shard, so anything at or below the
      // one we hold for its shard was seen already (a replay overlapping
      // live delivery). Positions of different shards never compare.
      const shard = ev.shard || 0;
      if (this.cursor != null && ev.pos <= (this.cursor[shard] ?? 0)) {
        this.stats.duplicatesDropped++;
        return;
      }
      this.cursor ??= {};
      this.cursor[shard] = ev.pos;
    }
    switch (ev.type) {
      case 'typingStarted':
        if (ev.user_id !== this.user.id) this.setTyper(ev.conversation_id, ev.user_id, ev.user_name);
        break;
      case 'typingStopped':
        this.clearTyper(ev.conversation_id, ev.user_id);
        break;
      case 'userOnline':
        this.online.add(ev.user_id);
        this.emit('presence', { userId: ev.user_id, online: true });
        break;
      case 'userOffline':
        this.online.delete(ev.user_id);
        this.emit('presence', { userId: ev.user_id, online: false });
        break;
      case 'newMessage':
        // A message ends its sender's typing there.
        if (ev.message) this.clearTyper(ev.conversation_id, ev.message.sender_id);
        break;
      case 'userBlocked':
        // A blocked user's typing is hidden from now on: it ends here.
        for (const id of ev.user_ids || []) {
          for (const conversationId of [...this.typers.keys()]) this.clearTyper(conversationId, id);
        }
        break;
    }
    this.emit('event', ev);
    // Persist after the app has handled the event: a reload resumes from
    // here and replays anything newer.
    if (ev.pos) this.savePosition();
  }

  // ---- feature throttling ----

  throttle(feature, until) {
    this.throttled.set(feature, until);
    clearTimeout(this.throttleTimers.get(feature));
    // The server says when it lifts the limit with an unthrottled frame;
    // this timer is the fallback if that frame is lost, a little after
    // `until` (which is the server's clock, not ours).
    this.throttleTimers.set(feature, setTimeout(() => this.unthrottle(feature), Math.max(0, until - Date.now()) + THROTTLE_GRACE_MS));
    if (this.live) this.setState(State.FeatureThrottled);
  }

  unthrottle(feature) {
    clearTimeout(this.throttleTimers.get(feature));
    this.throttleTimers.delete(feature);
    if (!this.throttled.delete(feature)) return;
    if (this.live) this.setState(this.throttled.size ? State.FeatureThrottled : State.Connected);
    if (feature === 'messages') this.flush();
  }

  clearThrottles() {
    for (const t of this.throttleTimers.values()) clearTimeout(t);
    this.throttleTimers.clear();
    this.throttled.clear();
  }

  isThrottled(feature) {
    return this.throttled.has(feature);
  }

  // ---- outbox ----

  newItem(conversationId, fields) {
    const now = Date.now();
    // order keeps the items of all tabs in the order they were written;
    // the fraction orders items written within the same millisecond.
    this.lastOrder = Math.max(now, (this.lastOrder || 0) + 0.001);
    return {
      client_id: newClientId(),
      conversation_id: conversationId,
      type: 'text',
      text: '',
      attachment_id: '',
      created_at: new Date(now).toISOString(),
      order: this.lastOrder,
      status: 'pending',
      // error: the server's reason a failed item was refused; error_code:
      // its wire code (or 'gone': the image's bytes are no longer here),
      // so a page can tell a refusal a retry will not change (unsupported,
      // too_large, invalid, gone) from one that may.
      error: '',
      error_code: '',
      not_before: 0,
      tries: 0,
      ...fields,
    };
  }

  /**
   * send queues a text message and returns its outbox item at once; the
   * item leaves the outbox when the server has stored it (event "sent").
   * Queued items survive a reload. replyTo names the stored message this
   * one replies to (the server quotes it: Message.reply_to).
   */
  send(conversationId, text, { replyTo = '' } = {}) {
    const item = this.newItem(conversationId, { type: 'text', text, ...(replyTo ? { reply_to: replyTo } : {}) });
    this.putItem(item);
    this.stopTyping(conversationId);
    this.flush();
    return item;
  }

  /**
   * sendImage queues an image (a File or Blob) with an optional caption and
   * returns its outbox item at once; show imageBlob(item.client_id) as the
   * preview. The client_id is fixed now, before the upload: the upload
   * (POST /v1/uploads) happens when the item's turn comes, and its
   * attachment id is kept with the item, so a send that fails after a
   * good upload is retried without uploading again. An upload cut off by
   * the network is retried; one the server refuses (not an image, too
   * large, corrupt) marks the item failed with the server's reason.
   *
   * A photo over IMAGE_MAX_SIDE or IMAGE_MAX_PIXELS is shrunk first (see
   * shrinkImage); the outbox keeps, and uploads, the shrunk bytes.
   * replyTo: as send's.
   */
  sendImage(conversationId, file, caption = '', { replyTo = '' } = {}) {
    const item = this.blobItem(conversationId, 'image', file, caption, replyTo, '');
    // An upload of this page that starts before the shrink ends waits
    // for it (uploadItem).
    const shrunk = shrinkImage(file).then((blob) => {
      // A flush may have replaced the item meanwhile (updateItem).
      const cur = this.outbox.find((i) => i.client_id === item.client_id);
      if (blob !== file && cur) {
        this.blobs.set(item.client_id, blob);
        Object.assign(cur, { file_type: blob.type, file_size: blob.size });
      }
      return blob;
    });
    this.shrinking.set(item.client_id, shrunk);
    return this.queueBlob(item, file, shrunk);
  }

  /**
   * queueBlob shows an image or file item at once with the bytes given,
   * and stores it (so other tabs and a reload see it) once ready's bytes
   * are in IndexedDB, so no tab finds the item without its bytes.
   */
  queueBlob(item, file, ready) {
    this.blobs.set(item.client_id, file);
    this.outbox.push(item);
    this.emit('outbox', this.outbox.slice());
    ready
      .then((blob) => blobOp('readwrite', (s) => s.put(blob, this.blobKey(item.client_id))))
      .catch((err) => console.warn(`parley: the ${item.type} is kept in this page only`, err))
      .finally(() => {
        this.shrinking.delete(item.client_id);
        if (!this.outbox.includes(item)) return; // discarded meanwhile
        this.putItem(item);
        this.flush();
      });
    return item;
  }

  /**
   * sendFile queues a file of any type (a File or Blob) with an optional
   * caption and returns its outbox item at once. Like sendImage, the
   * client_id is fixed now and the bytes wait in IndexedDB (so a reload
   * keeps them); the upload (POST /v1/files, the name in ?name=) happens
   * when the item's turn comes, then a send of type "file". The server
   * keeps the name for display only, sanitised; a file over its limit
   * fails the item with too_large.
   */
  sendFile(conversationId, file, caption = '', { replyTo = '' } = {}) {
    const item = this.blobItem(conversationId, 'file', file, caption, replyTo, 'file');
    return this.queueBlob(item, file, Promise.resolve(file));
  }

  /**
   * blobItem is a new outbox item of type 'image' or 'file' for file (a
   * File or Blob), named unnamed when the file has no name. The name,
   * type and size are what the page shows until the upload is sent (an
   * image's name is for the user only: the server ignores it).
   */
  blobItem(conversationId, type, file, caption, replyTo, unnamed) {
    return this.newItem(conversationId, {
      type,
      text: caption,
      ...(replyTo ? { reply_to: replyTo } : {}),
      file_name: file.name || unnamed,
      file_type: file.type || '',
      file_size: file.size,
    });
  }

  /** attachmentLink asks for signed links to an attachment ({url, thumb_url?, expires_at}), usable without the token for 5 minutes. */
  attachmentLink(attachmentId) {
    return httpJSON(this.baseURL, 'POST', `/v1/attachments/${encodeURIComponent(attachmentId)}/link`, undefined, this.token);
  }

  /**
   * edit queues an edit of this user's stored message messageId and
   * returns its outbox item at once. Edits wait in the outbox like sends
   * and are sent in order with them (an edit made offline after a send is
   * applied after it); each has its own client_id, so a resend after a
   * lost reply is applied once. The item leaves the outbox when the server
   * has applied it (event "edited" with the message as edited), or is
   * marked failed (forbidden: not one's own; invalid: deleted, or a blank
   * text). A second edit of the same message while the first still waits
   * replaces the first's text: only the last text is sent.
   */
  edit(conversationId, messageId, text) {
    return this.queueEdit(conversationId, { message_id: messageId }, text);
  }

  /**
   * editQueued edits a message this client sent (an outbox item, or its
   * client_id), whether or not the server has stored it yet: the edit
   * names it by its client_id (message_client_id on the wire) and is sent
   * after it.
   */
  editQueued(item, text) {
    const clientId = itemId(item);
    const conv = typeof item === 'string' ? this.outbox.find((i) => i.client_id === clientId)?.conversation_id : item.conversation_id;
    if (!conv) throw new ParleyError('not_found', 'That message is not in the outbox.');
    return this.queueEdit(conv, { message_client_id: clientId }, text);
  }

  queueEdit(conversationId, target, text) {
    const same = (i) =>
      i.type === 'edit' && i.status === 'pending' && i.conversation_id === conversationId &&
      (i.message_id || '') === (target.message_id || '') && (i.message_client_id || '') === (target.message_client_id || '');
    const waiting = this.outbox.find(same);
    let item;
    if (waiting) {
      item = this.updateItem(waiting, { text });
    } else {
      item = this.newItem(conversationId, { type: 'edit', text, ...target });
      this.putItem(item);
    }
    this.flush();
    return item;
  }

  /** editsFor lists the edits waiting in the outbox for one conversation, oldest first. */
  editsFor(conversationId) {
    return this.outbox.filter((i) => i.conversation_id === conversationId && i.type === 'edit');
  }

  /**
   * react adds this user's reaction emoji to a message and resolves with
   * the message's reactions as this user sees them ({message_id,
   * reactions: [{emoji, count, me}]}). Reactions are not queued: without a
   * live connection it rejects with code "disconnected". Adding one the
   * user already has changes nothing; a message holds at most
   * MAX_REACTION_KINDS different emoji (a new one past that is "invalid").
   */
  react(conversationId, messageId, emoji) {
    return this.request('react', { conversation_id: conversationId, message_id: messageId, emoji });
  }

  /** unreact removes this user's reaction emoji from a message; otherwise as react. */
  unreact(conversationId, messageId, emoji) {
    return this.request('react', { conversation_id: conversationId, message_id: messageId, emoji, remove: true });
  }

  /**
   * retry puts a failed item back in line. item is the outbox item or its
   * client_id, as editQueued takes: the item a send returned is what an
   * app holds, and an id-only signature ignored it without a word.
   */
  retry(item) {
    const clientId = itemId(item);
    const old = this.outbox.find((i) => i.client_id === clientId);
    if (!old) return;
    this.putItem({ ...old, status: 'pending', error: '', error_code: '', not_before: 0, tries: 0 });
    this.flush();
  }

  /** discard removes an item from the outbox (a failed one the user gives up on); item as for retry. */
  discard(item) {
    const clientId = itemId(item);
    if (clientId) this.dropItem(clientId);
  }

  /** setItem stores a changed copy of an item, unless it left the outbox. */
  updateItem(item, fields) {
    const cur = this.outbox.find((i) => i.client_id === item.client_id);
    if (!cur) return null;
    const next = { ...cur, ...fields };
    this.putItem(next);
    return next;
  }

  /**
   * flush sends pending items one at a time, in order, each waiting for
   * its reply, so the server stores them in the order they were written.
   * Of the user's tabs, one at a time flushes: the one holding the Web
   * Lock parley.<user>.sender (browsers without Web Locks skip it; the
   * client_id still keeps a double send from being stored twice).
   */
  async flush() {
    // A flush asked for while one runs may come after that one's last
    // look at the outbox (its pass is ending): it runs again after it, or
    // an item queued then would wait for the next send or connection.
    if (this.flushing) {
      this.flushAgain = true;
      return;
    }
    this.flushing = true;
    try {
      do {
        this.flushAgain = false;
        const locks = globalThis.navigator?.locks;
        if (locks && this.live) await locks.request(this.senderLock, () => this.flushPass());
        else await this.flushPass();
      } while (this.flushAgain);
    } catch (err) {
      console.error('parley: flush failed', err);
    } finally {
      this.flushing = false;
    }
  }

  async flushPass() {
    // Whatever a sibling tab (or this one, cut off) left "sending" is ours
    // to settle now: with the lock no one else is sending; without Web
    // Locks a double send is stored once anyway.
    for (const i of this.outbox) if (i.status === 'sending') this.updateItem(i, { status: 'pending' });
    while (this.live && !this.isThrottled('messages')) {
      const now = Date.now();
      let item = this.outbox.find((i) => i.status === 'pending' || i.status === 'sending');
      if (!item || item.status === 'sending') break; // a sibling is on it
      if (item.not_before > now) {
        clearTimeout(this.timers.flush);
        this.timers.flush = setTimeout(() => this.flush(), item.not_before - now);
        break;
      }
      item = this.updateItem(item, { status: 'sending' });
      if ((item.type === 'image' || item.type === 'file') && !item.attachment_id) {
        item = await this.uploadItem(item);
        if (!item || !item.attachment_id) continue;
      }
      try {
        if (item.type === 'edit') {
          const data = { conversation_id: item.conversation_id, client_id: item.client_id, text: item.text };
          if (item.message_id) data.message_id = item.message_id;
          else data.message_client_id = item.message_client_id;
          const msg = await this.request('edit', data);
          this.dropItem(item.client_id);
          this.emit('edited', { item, message: msg });
          continue;
        }
        const data = { conversation_id: item.conversation_id, client_id: item.client_id, type: item.type };
        if (item.text) data.text = item.text;
        if (item.attachment_id) data.attachment_id = item.attachment_id;
        if (item.reply_to) data.reply_to = item.reply_to;
        const msg = await this.request('send', data);
        const blob = this.blobs.get(item.client_id) || null;
        this.dropItem(item.client_id);
        this.emit('sent', { item, message: msg, blob });
      } catch (err) {
        if (!this.outbox.some((i) => i.client_id === item.client_id)) continue;
        if (retryable(err.code)) {
          // Unknown trouble on a live link: try again shortly, not in a loop.
          const wait = err.retryAfterMs || (err.code === 'disconnected' ? 0 : 1000);
          this.updateItem(item, { status: 'pending', not_before: wait ? Date.now() + wait : 0 });
          if (err.code === 'disconnected') break;
        } else {
          this.updateItem(item, { status: 'failed', error: err.message, error_code: err.code || '' });
        }
      }
    }
  }

  /**
   * uploadItem uploads an image or file item's bytes and returns the item with its
   * attachment, or a failed or pending item (null if it left the outbox).
   */
  async uploadItem(item) {
    await this.shrinking.get(item.client_id)?.catch(() => {});
    const blob = await this.imageBlob(item.client_id);
    if (!blob) return this.updateItem(item, { status: 'failed', error: `the ${item.type === 'file' ? 'file' : 'image'} is no longer available here; attach it again`, error_code: 'gone' });
    const abort = new AbortController();
    this.uploadAbort = abort;
    const timer = setTimeout(() => abort.abort(), UPLOAD_TIMEOUT_MS);
    try {
      const path = item.type === 'file' ? `/v1/files?name=${encodeURIComponent(item.file_name || 'file')}` : '/v1/uploads';
      const att = await httpJSON(this.baseURL, 'POST', path, undefined, this.token, {
        raw: blob,
        contentType: blob.type || 'application/octet-stream',
        signal: abort.signal,
      });
      this.stats.uploads++;
      return this.updateItem(item, { attachment_id: att.id, attachment: att, tries: 0 });
    } catch (err) {
      if (uploadRefused(err.code)) return this.updateItem(item, { status: 'failed', error: err.message, error_code: err.code || '' });
      // Cut off, or the server is busy: upload again after a backoff (or
      // at once when the connection comes back, see welcome).
      const tries = (item.tries || 0) + 1;
      const wait = err.retryAfterMs || Math.max(500, backoffDelay(tries));
      if (err.code === 'unauthorized') this.emit('unauthorized', { code: 4100, reason: err.message });
      return this.updateItem(item, { status: 'pending', tries, not_before: Date.now() + wait });
    } finally {
      clearTimeout(timer);
      if (this.uploadAbort === abort) this.uploadAbort = null;
    }
  }

  /** fetchBlob downloads a path of the server with this client's token (an attachment or its thumbnail). */
  async fetchBlob(path) {
    let res;
    try {
      res = await fetch(this.baseURL + path, { headers: { Authorization: `Bearer ${this.token}` } });
    } catch {
      throw new ParleyError('disconnected', 'The server cannot be reached.');
    }
    if (!res.ok) {
      let data = null;
      try {
        data = await res.json();
      } catch {
        /* not JSON: a proxy's page */
      }
      throw httpError(res, data);
    }
    return res.blob();
  }

  /** itemsFor lists the messages waiting in the outbox for one conversation, oldest first (not edits: editsFor). */
  itemsFor(conversationId) {
    return this.outbox.filter((i) => i.conversation_id === conversationId && i.type !== 'edit');
  }

  // ---- typing ----

  /** typing tells the others we are typing, at most once per 3 s. */
  typing(conversationId) {
    if (!this.live || this.isThrottled('typing')) return;
    const now = Date.now();
    if (now - (this.typingSentAt.get(conversationId) || 0) < TYPING_THROTTLE_MS) return;
    this.typingSentAt.set(conversationId, now);
    this.request('typing', { conversation_id: conversationId, typing: true }).catch(() => {});
  }

  /**
   * stopTyping clears our typing state there, if we announced one. It goes
   * out while typing is throttled too: typing:false takes nothing from the
   * limit (docs/protocol.md, typing), and the others stop seeing us type now.
   */
  stopTyping(conversationId) {
    if (!this.typingSentAt.has(conversationId)) return;
    this.typingSentAt.delete(conversationId);
    if (!this.live) return;
    this.request('typing', { conversation_id: conversationId, typing: false }).catch(() => {});
  }

  // ---- delivery receipts ----

  /**
   * noteDelivered records that this page has handled conversationId's
   * messages up to seq (call it for each newMessage from someone else,
   * live or replayed, once shown) and reports it to the server: over the
   * connection's `delivered` op when it is live, else POST /v1/delivered.
   * Reports are coalesced as docs/protocol.md asks: the first after a
   * quiet DELIVERED_EVERY_MS at once, the ones within it in one report at
   * its end, every conversation together (up to 100 per report; the rest
   * in the next). A report that fails with a code a retry can change
   * (disconnected, rate_limited, unavailable, internal) is made again
   * with the next one. Positions only move forward, so seq at or below
   * one noted already changes nothing. close() stops reporting; what was
   * pending goes with the next noteDelivered.
   */
  noteDelivered(conversationId, seq) {
    if (!conversationId || !(seq > 0)) return;
    const d = this.deliveredAcks;
    if (seq > (d.pending.get(conversationId) || 0)) d.pending.set(conversationId, seq);
    if (d.busy) return;
    d.busy = true;
    this.reportDelivered(d.gen);
  }

  async reportDelivered(gen) {
    const d = this.deliveredAcks;
    if (gen !== d.gen) return;
    d.timer = 0;
    const marks = [...d.pending].slice(0, MAX_DELIVERED_MARKS).map(([conversation_id, seq]) => ({ conversation_id, seq }));
    if (!marks.length) {
      d.busy = false;
      return;
    }
    for (const m of marks) d.pending.delete(m.conversation_id);
    const body = { conversations: marks };
    try {
      if (this.live) await this.request('delivered', body);
      else await this.api('POST', '/v1/delivered', body);
      this.stats.deliveredReports++;
    } catch (err) {
      // Positions, not counts: put them back for the next report, unless
      // a newer one came meanwhile or no retry can change the answer.
      if (retryable(err?.code || 'disconnected')) {
        for (const m of marks) if (m.seq > (d.pending.get(m.conversation_id) || 0)) d.pending.set(m.conversation_id, m.seq);
      }
    }
    if (gen !== d.gen) return; // closed meanwhile
    d.timer = setTimeout(() => this.reportDelivered(gen), DELIVERED_EVERY_MS);
  }

  /** typersIn lists who is typing in a conversation: [{userId, name}]. */
  typersIn(conversationId) {
    const m = this.typers.get(conversationId);
    return m ? [...m].map(([userId, t]) => ({ userId, name: t.name })) : [];
  }

  setTyper(conversationId, userId, name) {
    let m = this.typers.get(conversationId);
    if (!m) this.typers.set(conversationId, (m = new Map()));
    const prev = m.get(userId);
    if (prev) clearTimeout(prev.timer);
    // Keyed by user id for both start and stop: never by name.
    const timer = setTimeout(() => this.clearTyper(conversationId, userId), TYPING_EXPIRY_MS);
    m.set(userId, { name: name || prev?.name || 'Someone', timer });
    this.emit('typing', { conversationId });
  }

  clearTyper(conversationId, userId) {
    const m = this.typers.get(conversationId);
    const t = m?.get(userId);
    if (!t) return;
    clearTimeout(t.timer);
    m.delete(userId);
    this.emit('typing', { conversationId });
  }

  clearAllTypers() {
    for (const [conversationId, m] of this.typers) {
      for (const t of m.values()) clearTimeout(t.timer);
      this.typers.delete(conversationId);
      this.emit('typing', { conversationId });
    }
  }

  // ---- presence ----

  isOnline(userId) {
    return this.online.has(userId);
  }

  /**
   * refreshPresence asks the server who is online. Online/offline events
   * only go to existing contacts, so call it when a new contact appears
   * (a conversation created or joined).
   */
  async refreshPresence() {
    if (!this.live || this.isThrottled('presence')) return;
    try {
      const res = await this.request('presence', {});
      this.online = new Set(res?.online || []);
      this.emit('presence', { userId: null, online: null });
    } catch {
      // The next welcome brings a fresh list.
    }
  }
}
