// app.js is Parley's chat page. It keeps the page's state (conversations,
// the loaded part of each thread) and draws it; the connection, outbox,
// typing and presence live in parley.js.
//
// Messages are keyed by id and ordered by their per-conversation seq, so a
// message that arrives twice (a history page racing a live event, a replay
// after a reconnect) is drawn once, in its place.

import { Client, State, ParleyError, login, register, unreadLabel } from './parley.js';
import {
  archivedToggle,
  initMembers,
  inMainList,
  isRemoved,
  onConversationUpdated,
  onFlagsChanged,
  removedConversation,
  renderMembers,
  systemLinesFor,
} from './members.js';
import { downloadFile, fileBadge, fileChip } from './files.js';
import { blockButton, initPrivacy, isRequest, loadPrivacy, onPrivacyEvent, renderPrivacy, requestsSection } from './privacy.js';
import {
  applyMessageChange,
  editorView,
  editStatus,
  highlighted,
  initActions,
  isEditing,
  jumpTo,
  messageActions,
  messageGone,
  messageText,
  onEdited,
  outboxActions,
  pendingQuote,
  pickerView,
  quoteView,
  reactionsView,
  resetActions,
  takeReply,
} from './actions.js';
import { avatar, initReceipts, mergePositions, noteListed, noteReceived, onReceiptEvent, receiptOf, renderMe, shownName } from './receipts.js';
import { initSearch } from './search.js';

const AUTH_KEY = 'parley.auth';
const PAGE = 50;
const TYPING_IDLE_MS = 4000;

const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

/** h builds an element; children that are strings become text (never HTML). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// ---------- errors as people read them ----------

// What the user reads for each wire code (error.go). Codes whose server
// message is written for people (invalid, conflict, not_found, forbidden)
// keep it; the others say what happened and what to do, so no internal
// text ("context deadline exceeded", a MIME type) reaches the page.
const ERROR_TEXT = {
  disconnected: 'The server cannot be reached. Check your connection and try again.',
  unavailable: 'The server is busy or restarting. Try again in a moment.',
  rate_limited: 'Too many requests. Wait a moment and try again.',
  internal: 'Something went wrong on the server. Try again later.',
  bad_json: 'Something went wrong. Reload the page and try again.',
  unknown_op: 'Something went wrong. Reload the page and try again.',
  unauthorized: 'Your session has expired. Please log in again.',
  too_large: 'The file is too large to send.',
  unsupported: 'This file is not an image Parley can send (PNG, JPEG, GIF or WebP).',
  gone: 'The image is no longer available here. Attach it again.',
};

// Refusals that a retry of the same message cannot change: the page
// offers Discard only. (not_found and forbidden are not among them: being
// added to the conversation again makes a retry work.)
const PERMANENT = new Set(['unsupported', 'too_large', 'invalid', 'gone']);

/** humanError is err (a ParleyError, or anything thrown) as a sentence for the page. */
function humanError(err) {
  const code = err?.code || '';
  if (ERROR_TEXT[code]) return ERROR_TEXT[code];
  if (err instanceof ParleyError && err.message) return sentence(err.message);
  return ERROR_TEXT.internal;
}

/** itemError is why an outbox item failed, as a sentence. */
function itemError(item) {
  if (item.error_code) return humanError(new ParleyError(item.error_code, item.error));
  // Stored before error codes were kept: the server's own words.
  return item.error ? sentence(item.error) : 'Not sent.';
}

/** sentence starts s with a capital and ends it with a full stop. */
function sentence(s) {
  s = String(s).trim();
  if (!s) return s;
  s = s[0].toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(s) ? s : `${s}.`;
}

const IMAGE_TYPES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

const ui = {
  auth: document.getElementById('auth'),
  authForm: document.getElementById('auth-form'),
  authError: byTestId('auth-error'),
  chat: document.getElementById('chat'),
  conn: document.getElementById('conn'),
  connText: byTestId('conn-text'),
  connShort: byTestId('conn-short'),
  connAnnouncer: byTestId('conn-announcer'),
  announcer: byTestId('announcer'),
  notifyEnable: byTestId('notify-enable'),
  tray: byTestId('tray'),
  composerHint: document.getElementById('composer-hint'),
  retryNow: byTestId('retry-now'),
  me: document.querySelector('.me'),
  meName: byTestId('me-name'),
  logout: byTestId('logout'),
  directForm: document.getElementById('direct-form'),
  directUsername: byTestId('direct-username'),
  groupForm: document.getElementById('group-form'),
  sidebarError: byTestId('sidebar-error'),
  list: document.getElementById('conversations'),
  noConversations: byTestId('no-conversations'),
  paneTitle: byTestId('pane-title'),
  panePresence: byTestId('pane-presence'),
  panePresenceText: document.getElementById('pane-presence-text'),
  paneAvatar: byTestId('pane-avatar'),
  back: byTestId('back'),
  messages: document.getElementById('messages'),
  messageList: document.getElementById('message-list'),
  loadingOlder: byTestId('loading-older'),
  typing: byTestId('typing'),
  composer: document.getElementById('composer'),
  input: byTestId('composer'),
  send: byTestId('send'),
  attach: byTestId('attach'),
  attachInput: byTestId('attach-input'),
  pane: byTestId('pane'),
  lightbox: byTestId('lightbox'),
  lightboxTitle: byTestId('lightbox-title'),
  lightboxImage: byTestId('lightbox-image'),
  lightboxStatus: byTestId('lightbox-status'),
  lightboxOpen: byTestId('lightbox-open'),
  lightboxClose: byTestId('lightbox-close'),
};

const app = {
  client: null,
  me: null,
  convs: new Map(), // id -> Conversation (viewer's side)
  threads: new Map(), // id -> {msgs: Map(id -> Message), hasMore, loaded, loading, error}
  open: null, // the open conversation's id
  readSent: new Map(), // id -> highest seq a read was sent for
  ticker: 0,
  typingIdle: 0,
  paneError: '',
  // Images: object URLs by key ('t:<attachment id>' a thumbnail,
  // 'p:<client id>' an outbox preview), each {url, local, loading, error};
  // and the <img> elements of the open pane by message key, reused across
  // redraws so an image is not decoded again on every change.
  media: new Map(),
  tray: [], // images waiting for Send: {file, url}
  convsLoaded: false,
  announcedState: '',
  confirmDelete: '', // the id of the message whose deletion waits for a yes
  focusKey: '', // the control to focus after the next message redraw
  tooLong: false,
  imgs: new Map(),
  lightboxURL: '',
};
// Exposed for debugging from the console and for the browser tests.
window.parleyApp = app;
// The member panel, system lines and removed notice live in members.js.
initMembers({
  h,
  app,
  api: (method, path, body) => app.client.api(method, path, body),
  merge: (conv) => mergeConversation(conv),
  rerender: () => {
    renderConversations();
    renderPaneHeader();
    renderMessages();
  },
  header: document.querySelector('.pane-header'),
  composer: ui.composer,
  input: ui.input,
  send: ui.send,
  attach: ui.attach,
  blockButton: (id, name) => blockButton(id, name),
});
// Requests, blocks and the consent setting live in privacy.js.
initPrivacy({
  h,
  app,
  merge: (conv) => mergeConversation(conv, true),
  fetch: (id) => fetchConversation(id),
  rerender: () => {
    renderConversations();
    renderPaneHeader();
    renderMessages();
  },
  reload: () => refetchAll(),
  header: document.querySelector('.pane-header'),
  sidebar: document.querySelector('.sidebar'),
});
// The search box and @-completion live in search.js.
initSearch({
  h,
  app,
  openAt: (id, seq, messageId) => openAt(id, seq, messageId),
  input: ui.input,
  titleOf: (conv) => titleOf(conv),
});

// Receipts, display names, avatars and the profile editor: receipts.js.
initReceipts({
  h,
  app,
  thumb: (att) => thumbEntry(att),
  rerender: () => {
    renderConversations();
    renderPaneHeader();
    renderMessages();
  },
  meName: ui.meName,
  editor: byTestId('profile-editor'),
});

// Edit, react and reply live in actions.js.
initActions({
  h,
  app,
  humanError,
  announce: (text) => announce(text),
  rerender: () => renderMessages(),
  scheduleRender: () => scheduleRender(),
  loadOlder: (id) => loadOlder(id),
  composer: ui.composer,
  input: ui.input,
});

// ---------- auth ----------

function savedAuth() {
  try {
    const a = JSON.parse(localStorage.getItem(AUTH_KEY) || 'null');
    return a?.token && a?.user?.id ? a : null;
  } catch {
    return null;
  }
}

ui.authForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const action = e.submitter?.value || 'login';
  const username = ui.authForm.username.value.trim();
  const password = ui.authForm.password.value;
  ui.authError.textContent = '';
  if (!username || !password) {
    ui.authError.textContent = 'Enter a username and a password.';
    return;
  }
  for (const b of ui.authForm.querySelectorAll('button')) b.disabled = true;
  try {
    const fn = action === 'register' ? register : login;
    const res = await fn(location.origin, username, password);
    localStorage.setItem(AUTH_KEY, JSON.stringify({ token: res.token, user: res.user }));
    ui.authForm.reset();
    start({ token: res.token, user: res.user });
  } catch (err) {
    ui.authError.textContent = humanError(err);
  } finally {
    for (const b of ui.authForm.querySelectorAll('button')) b.disabled = false;
  }
});

ui.logout.addEventListener('click', () => logout(''));

function logout(message) {
  app.client?.close();
  app.client = null;
  localStorage.removeItem(AUTH_KEY);
  app.convs.clear();
  app.threads.clear();
  app.open = null;
  for (const m of app.media.values()) if (m.url) URL.revokeObjectURL(m.url);
  app.media.clear();
  app.imgs.clear();
  clearInterval(app.ticker);
  app.convsLoaded = false;
  app.announcedState = '';
  app.confirmDelete = '';
  resetActions();
  clearTray();
  document.title = 'Parley';
  ui.chat.hidden = true;
  ui.conn.hidden = true;
  ui.me.hidden = true;
  ui.auth.hidden = false;
  ui.authError.textContent = message;
  ui.authForm.username.focus();
}

// ---------- start ----------

function start({ token, user }) {
  app.me = user;
  ui.auth.hidden = true;
  ui.chat.hidden = false;
  ui.conn.hidden = false;
  ui.me.hidden = false;
  renderMe();
  const c = new Client({ token, user });
  app.client = c;
  // The saved user may predate a profile change on another device.
  c.api('GET', '/v1/me').then(
    (u) => {
      if (app.client !== c) return;
      app.me = { ...app.me, ...u };
      renderMe();
    },
    () => {},
  );
  c.on('state', () => {
    renderConn();
    scheduleRender();
  });
  c.on('event', onEvent);
  c.on('welcome', ({ resumed }) => {
    // Without a replay there is no telling what was missed: refetch.
    if (!resumed) refetchAll();
    else markRead(app.open);
  });
  c.on('resync', () => refetchAll());
  c.on('outbox', () => {
    dropPreviews();
    scheduleRender();
    renderConn();
  });
  c.on('sent', ({ message, blob }) => {
    if (!message) return;
    // Until the server's thumbnail arrives, the stored image shows the
    // bytes we already have, so it does not flicker on the way.
    const id = message.attachment?.id;
    if (message.type === 'image' && id && blob && !app.media.has(`t:${id}`)) app.media.set(`t:${id}`, { url: URL.createObjectURL(blob), local: true });
    applyMessage(message, true);
  });
  c.on('edited', onEdited);
  c.on('typing', ({ conversationId }) => {
    if (conversationId === app.open) renderTyping();
  });
  c.on('presence', () => {
    renderConversations();
    renderPaneHeader();
  });
  c.on('unauthorized', () => logout('Your session has expired. Please log in again.'));
  clearInterval(app.ticker);
  // The countdown in the indicator needs a clock while reconnecting.
  app.ticker = setInterval(() => {
    if (c.state === State.Reconnecting) renderConn();
  }, 250);
  renderConn();
  renderNotifyButton();
  c.connect();
  loadConversations();
  loadPrivacy();
}

function refetchAll() {
  // A resync or a fresh start: forget the loaded threads (they may have
  // holes now) and load again what is on screen.
  for (const t of app.threads.values()) {
    t.msgs.clear();
    t.loaded = false;
    t.hasMore = true;
    t.older = 0;
  }
  loadConversations();
  if (app.open) loadLatest(app.open);
}

// ---------- connection indicator ----------

const FEATURE_NAMES = { typing: 'typing', presence: 'presence', messages: 'sending' };

function renderConn() {
  const c = app.client;
  if (!c) return;
  const s = c.status();
  ui.conn.dataset.state = s.state;
  const queued = c.outbox.filter((i) => i.status !== 'failed').length;
  const queuedText = queued ? ` · ${queued} queued` : '';
  let text;
  let showRetry = false;
  switch (s.state) {
    case State.Connected:
      text = 'Connected';
      break;
    case State.FeatureThrottled: {
      const parts = Object.entries(s.throttled).map(
        ([f, until]) => `${FEATURE_NAMES[f] || f} paused until ${new Date(until).toLocaleTimeString()}`,
      );
      text = `Connected (limited: ${parts.join(', ')})`;
      break;
    }
    case State.Connecting:
      text = 'Connecting…';
      break;
    case State.Reconnecting: {
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      text = s.retryAt && secs > 0 ? `Reconnecting in ${secs} s (attempt ${s.attempt})` : `Reconnecting… (attempt ${s.attempt})`;
      showRetry = true;
      break;
    }
    default:
      // The close reason is for developers (the console), not the page.
      text = 'Disconnected';
      showRetry = true;
  }
  ui.connText.textContent = text + queuedText;
  ui.connShort.textContent = shortConnText(s);
  ui.conn.title = text + queuedText;
  ui.retryNow.hidden = !showRetry;
  // Screen readers hear the state when it changes, not every tick of the
  // countdown (the pill itself is not a live region).
  if (s.state !== app.announcedState) {
    const first = !app.announcedState;
    app.announcedState = s.state;
    const said = {
      [State.Connected]: 'Connected.',
      [State.FeatureThrottled]: 'Connected, some features paused for a while.',
      [State.Reconnecting]: 'Connection lost. Reconnecting; messages you send will wait.',
      [State.Disconnected]: 'Disconnected. Use Retry now to connect again.',
    }[s.state];
    if (said && !(first && s.state === State.Connected)) ui.connAnnouncer.textContent = said;
  }
  // Send works while reconnecting (the message waits in the outbox), not
  // when the client has given up.
  ui.send.disabled = s.state === State.Disconnected;
  ui.send.title = ui.send.disabled ? 'Not connected' : '';
  ui.attachInput.disabled = ui.send.disabled;
  ui.attach.classList.toggle('disabled', ui.send.disabled);
}

ui.retryNow.addEventListener('click', () => app.client?.reconnectNow());

/** shortConnText is the indicator's text on a phone: a few words, fixed width digits. */
function shortConnText(s) {
  switch (s.state) {
    case State.Connected:
      return 'Connected';
    case State.FeatureThrottled:
      return 'Limited';
    case State.Connecting:
      return 'Connecting…';
    case State.Reconnecting: {
      const secs = Math.max(0, Math.ceil((s.retryAt - Date.now()) / 1000));
      return s.retryAt && secs > 0 ? `Retry in ${secs} s` : 'Reconnecting…';
    }
    default:
      return 'Offline';
  }
}

// ---------- announcements, tab title, notifications ----------

/** announce has screen readers say text (a polite live region). */
function announce(text) {
  // The same text twice in a row is said twice: clear, then set a moment
  // later (a timer, not an animation frame: those stop in a hidden tab).
  ui.announcer.textContent = '';
  clearTimeout(app.announceTimer);
  app.announceTimer = setTimeout(() => {
    ui.announcer.textContent = text;
  }, 50);
}

/** preview is a message as one short line (notifications, announcements). */
function preview(m) {
  if (m.deleted) return 'Message deleted';
  const text = (m.text || '').replace(/\s+/g, ' ').trim();
  const short = [...text].length > 120 ? `${[...text].slice(0, 119).join('')}…` : text;
  if (m.type === 'image') return short ? `Image: ${short}` : 'Sent an image';
  if (m.type === 'file') return `File: ${m.attachment?.name || 'file'}${short ? ` ${short}` : ''}`;
  return short;
}

/** newFromOthers tells the user about a message someone else just sent. */
function newFromOthers(m, conv) {
  const where = conv && conv.kind === 'group' ? ` in ${titleOf(conv)}` : '';
  if (m.conversation_id === app.open) announce(`${m.sender_name}${where}: ${preview(m)}`);
  else announce(`New message from ${m.sender_name}${where}.`);
  notify(m, conv);
}

/**
 * notify shows a desktop notification for m while the page is hidden, if
 * the user allowed them (asked only from the button, a user gesture). A
 * click brings the page back with the conversation open.
 */
function notify(m, conv) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  if (document.visibilityState !== 'hidden') return;
  try {
    const n = new Notification(conv && conv.kind === 'group' ? `${m.sender_name} in ${titleOf(conv)}` : m.sender_name, {
      body: preview(m),
      tag: m.conversation_id, // one notification per conversation, replaced
    });
    n.onclick = () => {
      window.focus();
      openConversation(m.conversation_id);
      n.close();
    };
  } catch (err) {
    console.warn('parley: notification failed', err);
  }
}

function renderNotifyButton() {
  ui.notifyEnable.hidden = !('Notification' in window) || Notification.permission !== 'default';
}

ui.notifyEnable.addEventListener('click', async () => {
  try {
    await Notification.requestPermission();
  } catch {
    /* the browser said no */
  }
  renderNotifyButton();
});

/** renderTitle puts the number of unread messages in the tab's title. */
function renderTitle() {
  let total = 0;
  for (const c of app.convs.values()) total += c.unread_count || 0;
  document.title = total ? `(${unreadLabel(total)}) Parley` : 'Parley';
}

// ---------- conversations ----------

function titleOf(conv) {
  if (conv.kind === 'group') return conv.title || 'Group';
  const other = (conv.members || []).find((m) => m.user_id !== app.me.id);
  return shownName(other, app.me.name);
}

function otherMember(conv) {
  if (conv.kind !== 'direct') return null;
  return (conv.members || []).find((m) => m.user_id !== app.me.id) || null;
}

/** mergeConversation keeps the newer of two views of a conversation. */
// view says fresh is the viewer's own view (a reply or a fetch), not an
// event's snapshot: its request state then holds, absent meaning none.
function mergeConversation(fresh, view = false) {
  const old = app.convs.get(fresh.id);
  if (!old) {
    app.convs.set(fresh.id, {
      unread_count: 0,
      read_seq: 0,
      last_seq: 0,
      ...fresh,
    });
    return;
  }
  const merged = { ...old, ...fresh };
  // An answer fetched before a live event must not undo that event.
  if ((old.last_seq || 0) > (fresh.last_seq || 0)) {
    merged.last_seq = old.last_seq;
    merged.last_message = old.last_message;
    merged.last_activity_at = old.last_activity_at;
    merged.unread_count = old.unread_count;
    merged.unread_mentions = old.unread_mentions;
  }
  // In a view, no last_message means none the viewer may see (a blocked
  // sender's are left out); in an event's snapshot it means not sent.
  if (fresh.last_message === undefined) {
    if (view && (fresh.last_seq || 0) >= (old.last_seq || 0)) delete merged.last_message;
    else merged.last_message = old.last_message;
  }
  if (fresh.unread_count === undefined) merged.unread_count = old.unread_count;
  if (fresh.unread_mentions === undefined) merged.unread_mentions = old.unread_mentions;
  merged.read_seq = Math.max(old.read_seq || 0, fresh.read_seq || 0);
  if (fresh.members) merged.members = mergePositions(old.members, fresh.members);
  if (view) merged.request = fresh.request;
  app.convs.set(fresh.id, merged);
}

async function loadConversations() {
  const c = app.client;
  try {
    // The server cuts a long list into pages: follow `next` while it
    // says has_more (an older server sends the whole list at once).
    let cursor = '';
    for (;;) {
      const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
      const res = await c.api('GET', `/v1/conversations${q}`);
      if (c !== app.client) return;
      for (const conv of res.conversations || []) mergeConversation(conv, true);
      noteListed(res.conversations);
      if (!res.has_more || !res.next) break;
      cursor = res.next;
    }
    app.convsLoaded = true;
    ui.sidebarError.textContent = '';
  } catch (err) {
    if (c !== app.client) return;
    ui.sidebarError.textContent = `Could not load conversations. ${humanError(err)}`;
    if (err.code === 'unauthorized') logout('Your session has expired. Please log in again.');
  }
  renderConversations();
  renderPaneHeader();
}

async function fetchConversation(id) {
  try {
    const conv = await app.client.api('GET', `/v1/conversations/${encodeURIComponent(id)}`);
    mergeConversation(conv, true);
    app.client.refreshPresence();
    renderConversations();
  } catch (err) {
    ui.sidebarError.textContent = `Could not load a conversation. ${humanError(err)}`;
  }
}

function renderConversations() {
  // Archived conversations are left out unless shown (members.js).
  // Requests are listed apart, under their own heading (privacy.js).
  const sorted = [...app.convs.values()].filter(inMainList).sort(
    (a, b) => Date.parse(b.last_activity_at || b.created_at || 0) - Date.parse(a.last_activity_at || a.created_at || 0),
  );
  const convs = sorted.filter((c) => !isRequest(c));
  const requests = sorted.filter((c) => c.request === 'pending' || (c.request === 'declined' && c.id === app.open));
  // Said only once the list is known: before that, nothing is.
  ui.noConversations.hidden = convs.length + requests.length > 0 || !app.convsLoaded;
  renderTitle();
  const itemOf = (conv) => {
    const other = otherMember(conv);
    const online = other ? app.client?.isOnline(other.user_id) : null;
    const last = conv.last_message;
    let lastText = '';
    if (last) {
      const who = last.sender_id === app.me.id ? 'You' : shownName((conv.members || []).find((mm) => mm.user_id === last.sender_id), last.sender_name);
      const text = messageText(last); // an edit waiting in the outbox shows at once
      lastText = `${who}: ${last.deleted ? 'message deleted' : last.type === 'image' ? `[image]${text ? ` ${text}` : ''}` : last.type === 'file' ? `[file] ${last.attachment?.name || 'file'}${text ? ` ${text}` : ''}` : text}`;
    }
    const title = titleOf(conv);
    const unread = conv.unread_count || 0;
    const mentioned = conv.unread_mentions || 0;
    // The accessible name is the visible text plus what the dot and the
    // badge show (as hidden words), so it contains what is seen.
    return h(
      'li',
      {},
      h(
        'button',
        {
          type: 'button',
          class: 'conversation',
          'data-testid': 'conversation',
          'data-conversation-id': conv.id,
          'data-title': title,
          'aria-current': conv.id === app.open ? 'true' : 'false',
          'data-label': `${title}${other ? (online ? ', online' : ', offline') : ''}${unread ? `, ${unreadLabel(unread)} unread` : ''}${mentioned ? ', you are mentioned' : ''}`,
          onclick: () => openConversation(conv.id),
        },
        h('span', {
          class: 'presence-dot',
          'data-testid': 'presence',
          'data-online': other ? String(!!online) : 'none',
          'aria-hidden': 'true',
        }),
        h('span', { class: 'title' }, other ? avatar(other) : null, title, other ? h('span', { class: 'visually-hidden' }, online ? ', online' : ', offline') : null),
        unread
          ? h(
              'span',
              { class: `badge${mentioned ? ' mentioned' : ''}` },
              mentioned ? h('span', { 'data-testid': 'unread-mentions', 'aria-hidden': 'true' }, '@') : null,
              h('span', { 'data-testid': 'unread' }, unreadLabel(unread)),
              h('span', { class: 'visually-hidden' }, mentioned ? ' unread, you are mentioned' : ' unread'),
            )
          : h('span'),
        h('span', { class: 'last', 'data-testid': 'last-message' }, lastText),
      ),
    );
  };
  ui.list.replaceChildren(...convs.map(itemOf), ...archivedToggle(), ...requestsSection(requests.map(itemOf)));
}

function renderPaneHeader() {
  renderMembers();
  renderPrivacy();
  const conv = app.open && (app.convs.get(app.open) || removedConversation(app.open));
  if (!conv) {
    ui.paneTitle.textContent = app.open ? 'Loading…' : 'Pick a conversation';
    ui.panePresence.dataset.online = 'none';
    ui.paneAvatar.replaceChildren();
    return;
  }
  ui.paneTitle.textContent = titleOf(conv);
  const other = otherMember(conv);
  ui.paneAvatar.replaceChildren(...(other ? [avatar(other)] : []));
  if (other) {
    const online = app.client.isOnline(other.user_id);
    ui.panePresence.dataset.online = String(online);
    ui.panePresenceText.textContent = online ? 'online' : 'offline';
  } else {
    ui.panePresence.dataset.online = 'none';
    ui.panePresenceText.textContent = `${(conv.members || []).length} members`;
  }
}

ui.directForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const username = ui.directUsername.value.trim();
  if (!username) return;
  ui.sidebarError.textContent = '';
  try {
    const conv = await app.client.api('POST', '/v1/conversations/direct', { username });
    mergeConversation(conv);
    app.client.refreshPresence();
    ui.directUsername.value = '';
    renderConversations();
    openConversation(conv.id);
  } catch (err) {
    ui.sidebarError.textContent = err.code === 'not_found' ? `No user named "${username}".` : humanError(err);
  }
});

ui.groupForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const title = ui.groupForm.querySelector('#group-title').value.trim();
  const names = ui.groupForm
    .querySelector('#group-members')
    .value.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  ui.sidebarError.textContent = '';
  try {
    const ids = [];
    for (const name of names) {
      try {
        const u = await app.client.api('GET', `/v1/users/${encodeURIComponent(name)}`);
        ids.push(u.id);
      } catch (err) {
        throw err.code === 'not_found' ? new ParleyError('not_found', `No user named "${name}".`) : err;
      }
    }
    const conv = await app.client.api('POST', '/v1/conversations/group', { title, member_ids: ids });
    mergeConversation(conv);
    app.client.refreshPresence();
    ui.groupForm.reset();
    ui.groupForm.closest('details').open = false;
    renderConversations();
    openConversation(conv.id);
  } catch (err) {
    ui.sidebarError.textContent = humanError(err);
  }
});

// ---------- threads ----------

function thread(id) {
  let t = app.threads.get(id);
  if (!t) {
    // older: with hasMore, the before cursor of the next older page.
    t = { msgs: new Map(), hasMore: true, older: 0, loaded: false, loading: false, error: '' };
    app.threads.set(id, t);
  }
  return t;
}

function openConversation(id) {
  if (app.open && app.open !== id) app.client.stopTyping(app.open);
  if (app.open !== id) {
    clearTray();
    resetActions();
    app.confirmDelete = '';
    app.tooLong = false;
  }
  app.open = id;
  app.paneError = '';
  ui.chat.classList.add('show-pane');
  ui.composer.hidden = false;
  renderConversations();
  renderPaneHeader();
  renderTyping();
  const t = thread(id);
  renderMessages({ toBottom: true });
  if (!t.loaded) loadLatest(id);
  else markRead(id);
  ui.input.focus();
}

/**
 * openAt opens a conversation at a message (a search result): once its
 * newest page is in, jumpTo (actions.js) loads older pages to the message,
 * scrolls to it and highlights it.
 */
async function openAt(id, seq, messageId) {
  openConversation(id);
  const t = thread(id);
  for (let i = 0; i < 200 && app.open === id && !t.loaded && !t.error; i++) {
    if (t.loading) await new Promise((r) => setTimeout(r, 50));
    else await loadLatest(id);
  }
  if (app.open === id && t.loaded) await jumpTo(id, messageId, seq);
}

ui.back.addEventListener('click', () => {
  ui.chat.classList.remove('show-pane');
});

async function loadLatest(id) {
  const t = thread(id);
  if (t.loading) return;
  t.loading = true;
  try {
    const res = await app.client.api('GET', `/v1/conversations/${encodeURIComponent(id)}/messages?limit=${PAGE}`);
    for (const m of res.messages || []) t.msgs.set(m.id, pickNewer(t.msgs.get(m.id), m));
    setOlder(t, res);
    t.loaded = true;
    t.error = '';
  } catch (err) {
    t.error = `Could not load messages. ${humanError(err)}`;
  } finally {
    t.loading = false;
  }
  if (id === app.open) {
    renderMessages({ toBottom: true });
    markRead(id);
    fillUp();
  }
}

/**
 * setOlder keeps a history page's has_more and where the next older page
 * starts: the server's next, which may lie below the page's oldest
 * message (a window of messages hidden by a block: the page may even be
 * empty), or that oldest message from a server that sends no next.
 */
function setOlder(t, res) {
  const msgs = res.messages || [];
  t.hasMore = !!res.has_more;
  t.older = t.hasMore ? res.next || (msgs.length ? msgs[0].seq : 0) : 0;
}

async function loadOlder(id) {
  const t = thread(id);
  if (t.loading || !t.loaded || !t.hasMore || !t.older) return;
  const oldest = t.older;
  t.loading = true;
  ui.loadingOlder.hidden = false;
  try {
    const res = await app.client.api(
      'GET',
      `/v1/conversations/${encodeURIComponent(id)}/messages?before=${oldest}&limit=${PAGE}`,
    );
    for (const m of res.messages || []) t.msgs.set(m.id, pickNewer(t.msgs.get(m.id), m));
    if (t.older === oldest) {
      // Not refetched meanwhile. A page that moves back nowhere ends the
      // paging rather than asking for itself again.
      setOlder(t, res);
      if (t.older >= oldest) {
        t.hasMore = false;
        t.older = 0;
      }
    }
    t.error = '';
  } catch (err) {
    t.error = `Could not load older messages. ${humanError(err)}`;
  } finally {
    t.loading = false;
    ui.loadingOlder.hidden = true;
  }
  if (id === app.open) {
    renderMessages({ keepOffset: true });
    fillUp();
  }
}

/** fillUp loads older pages until the pane can scroll (or history ends). */
function fillUp() {
  const t = app.open && app.threads.get(app.open);
  if (t && t.hasMore && !t.error && ui.messages.scrollHeight <= ui.messages.clientHeight + 10) loadOlder(app.open);
}

ui.messages.addEventListener('scroll', () => {
  if (app.open && ui.messages.scrollTop < 80) loadOlder(app.open);
});

/** pickNewer keeps a tombstone over an older copy of the same message. */
function pickNewer(old, m) {
  if (old?.deleted && !m.deleted) return old;
  return m;
}

// Bursts of events (a replay after a reconnect, a busy group) would
// redraw the page once per event; these coalesce them into one redraw and
// one read mark, so the main thread (and with it the heartbeat) stays free.
let renderTimer = 0;
function scheduleRender() {
  if (renderTimer) return;
  renderTimer = setTimeout(() => {
    renderTimer = 0;
    renderConversations();
    renderMessages();
  }, 16);
}

let readTimer = 0;
function scheduleMarkRead() {
  if (readTimer) return;
  readTimer = setTimeout(() => {
    readTimer = 0;
    markRead(app.open);
  }, 100);
}

/**
 * applyMessage puts a stored message (or tombstone) where it belongs.
 * isNew marks a newly sent message: sending moves the sender's read
 * position to it (docs/protocol.md), without a messageRead event.
 */
function applyMessage(m, isNew = false) {
  const conv = app.convs.get(m.conversation_id);
  if (conv && isNew) {
    const sender = (conv.members || []).find((mm) => mm.user_id === m.sender_id);
    if (sender) sender.read_seq = Math.max(sender.read_seq || 0, m.seq);
    if (m.sender_id === app.me.id) conv.read_seq = Math.max(conv.read_seq || 0, m.seq);
  }
  if (conv && m.seq >= (conv.last_seq || 0)) {
    conv.last_seq = m.seq;
    conv.last_message = pickNewer(conv.last_message?.id === m.id ? conv.last_message : null, m);
    conv.last_activity_at = m.created_at;
  }
  const t = app.threads.get(m.conversation_id);
  if (t) t.msgs.set(m.id, pickNewer(t.msgs.get(m.id), m));
  scheduleRender();
  if (m.conversation_id === app.open) scheduleMarkRead();
}

function onEvent(ev) {
  if (onPrivacyEvent(ev)) {
    renderConversations();
    renderPaneHeader();
    return;
  }
  const conv = app.convs.get(ev.conversation_id);
  switch (ev.type) {
    case 'newMessage': {
      const m = ev.message;
      if (!m) return;
      if (!conv) {
        fetchConversation(ev.conversation_id);
      } else if (m.seq > (conv.last_seq || 0) && m.sender_id !== app.me.id && m.seq > (conv.read_seq || 0)) {
        // Counted once: only a message newer than the newest we know.
        conv.unread_count = (conv.unread_count || 0) + 1;
        if ((m.mentions || []).includes(app.me.id)) conv.unread_mentions = (conv.unread_mentions || 0) + 1;
      }
      // Said once: a replayed message we already had is not news.
      const seen = app.threads.get(m.conversation_id)?.msgs.has(m.id) || (conv && m.seq <= (conv.last_seq || 0));
      if (m.sender_id !== app.me.id && !seen) newFromOthers(m, conv);
      noteReceived(m);
      if (conv && m.seq > (conv.last_seq || 0)) conv.archived = false; // a new message ends an archive
      applyMessage(m, true);
      break;
    }
    case 'messageDeleted': {
      const m = ev.message;
      if (!m) break;
      if (conv?.last_message?.id === m.id) conv.last_message = m;
      // A deleted message no longer counts as unread (the server leaves
      // it out of unread_count). Whether this one was counted here is not
      // known for sure (it may have been deleted before the list was
      // fetched), so the exact count comes from the server.
      const wasShown = app.threads.get(m.conversation_id)?.msgs.get(m.id);
      if (conv && !wasShown?.deleted && m.sender_id !== app.me.id && m.seq > (conv.read_seq || 0) && (conv.unread_count || 0) > 0) {
        fetchConversation(conv.id);
      }
      applyMessage(m);
      messageGone(m);
      break;
    }
    case 'messageEdited':
      // An edit may add or drop a mention of me in an unread message:
      // the exact count comes from the server.
      if (conv && ev.message && ev.message.sender_id !== app.me.id && ev.message.seq > (conv.read_seq || 0)) fetchConversation(conv.id);
      applyMessageChange(ev);
      break;
    case 'reactionAdded':
    case 'reactionRemoved':
      applyMessageChange(ev);
      break;
    case 'messageDelivered':
    case 'profileUpdated':
      if (onReceiptEvent(ev, conv)) {
        renderConversations();
        if (conv.id === app.open) {
          renderPaneHeader();
          scheduleRender();
        }
      }
      break;
    case 'messageRead':
      if (!conv) return;
      onReceiptEvent(ev, conv);
      if (ev.user_id === app.me.id) {
        conv.read_seq = Math.max(conv.read_seq || 0, ev.read_seq);
        if (conv.read_seq >= (conv.last_seq || 0)) conv.unread_count = conv.unread_mentions = 0;
        else fetchConversation(conv.id); // the exact count needs the server
        renderConversations();
      } else {
        const member = (conv.members || []).find((mm) => mm.user_id === ev.user_id);
        if (member) member.read_seq = Math.max(member.read_seq || 0, ev.read_seq);
        if (conv.id === app.open) scheduleRender();
      }
      break;
    case 'flagsChanged':
      onFlagsChanged(ev);
      renderConversations();
      renderPaneHeader();
      break;
    case 'conversationUpdated': {
      // A removed user's open pane stays, with a notice and the composer
      // disabled (members.js); the group leaves the list.
      const removedMe = onConversationUpdated(ev, conv);
      if (removedMe) {
        app.convs.delete(ev.conversation_id);
        if (app.open === ev.conversation_id) app.client.stopTyping(app.open);
      } else if (ev.conversation) {
        mergeConversation(ev.conversation);
        // The snapshot's positions are 0 (docs/protocol.md): a member
        // added (back) has theirs in the viewer's view, which the fetch
        // merges (it refreshes presence too); the open thread's marks
        // are redrawn from them.
        if (ev.change === 'members_added') {
          fetchConversation(ev.conversation_id).then(() => {
            if (ev.conversation_id === app.open) scheduleRender();
          });
        }
        else if (ev.change === 'created') app.client.refreshPresence();
      }
      renderConversations();
      renderPaneHeader();
      if (ev.conversation_id === app.open) scheduleRender();
      break;
    }
  }
}

async function markRead(id) {
  if (!id || document.visibilityState !== 'visible') return;
  const conv = app.convs.get(id);
  const t = app.threads.get(id);
  if (!conv || !t?.loaded) return;
  let target = conv.last_seq || 0;
  for (const m of t.msgs.values()) target = Math.max(target, m.seq);
  if (target <= (conv.read_seq || 0) || (app.readSent.get(id) || 0) >= target) return;
  app.readSent.set(id, target);
  try {
    const res = await app.client.api('POST', `/v1/conversations/${encodeURIComponent(id)}/read`, { seq: target });
    conv.read_seq = Math.max(conv.read_seq || 0, res.read_seq || target);
    if (conv.read_seq >= (conv.last_seq || 0)) conv.unread_count = conv.unread_mentions = 0;
    renderConversations();
  } catch {
    // Not marked: try again on the next message or reconnect.
    app.readSent.delete(id);
  }
}

document.addEventListener('visibilitychange', () => markRead(app.open));

// ---------- messages ----------

function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

// Delete asks first: the message's Delete button turns into "Delete for
// everyone?" with Delete and Cancel (Escape cancels too). One message at a
// time waits for the answer.
function askDelete(m) {
  app.confirmDelete = m.id;
  app.focusKey = `confirm:${m.id}`;
  renderMessages();
}

function cancelDelete() {
  const id = app.confirmDelete;
  app.confirmDelete = '';
  app.focusKey = `delete:${id}`;
  renderMessages();
}

async function deleteMessage(m) {
  app.confirmDelete = '';
  app.focusKey = '';
  ui.input.focus();
  try {
    const tomb = await app.client.api(
      'DELETE',
      `/v1/conversations/${encodeURIComponent(m.conversation_id)}/messages/${encodeURIComponent(m.id)}`,
    );
    applyMessage(tomb && tomb.id ? tomb : { ...m, deleted: true, text: '' });
    announce('Message deleted.');
  } catch (err) {
    app.paneError = `Could not delete. ${humanError(err)}`;
    renderMessages();
  }
}

// Links: only http(s) URLs in the text become links, built as elements
// (never HTML), opened in a new tab without giving it this page.
const URL_RE = /\bhttps?:\/\/[^\s<>"'`]+/gi;

/** linkify splits text into text and <a> nodes. */
function linkify(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    // Punctuation that ends a sentence is not part of the link; a closing
    // bracket is, when the URL opened one.
    let url = match[0].replace(/[.,;:!?'"*]+$/, '');
    while (/[)\]}]$/.test(url) && count(url, url.at(-1)) > count(url, { ')': '(', ']': '[', '}': '{' }[url.at(-1)])) {
      url = url.slice(0, -1);
    }
    let href = '';
    try {
      const u = new URL(url);
      if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
    } catch {
      /* not a URL after all: stays text */
    }
    if (!href) continue;
    if (match.index > last) out.push(text.slice(last, match.index));
    out.push(h('a', { href, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'link' }, url));
    last = match.index + url.length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function count(s, ch) {
  return s.split(ch).length - 1;
}

// Date separators: a message's local day, said the way people say it.
function dayKey(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

function dayLabel(iso, now = new Date()) {
  const d = new Date(iso);
  const start = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const days = Math.round((start(now) - start(d)) / 86400000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  const opts = { weekday: 'long', day: 'numeric', month: 'long' };
  if (d.getFullYear() !== now.getFullYear()) opts.year = 'numeric';
  return d.toLocaleDateString([], opts);
}

function renderMessages({ toBottom = false, keepOffset = false } = {}) {
  const id = app.open;
  const c = app.client;
  if (!id || !c) {
    ui.messageList.replaceChildren();
    return;
  }
  const conv = app.convs.get(id);
  const t = thread(id);
  const box = ui.messages;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
  const prevHeight = box.scrollHeight;
  const prevTop = box.scrollTop;
  // The list is redrawn from scratch: remember which control had the
  // focus, to give it back to its new copy (keyboard users keep their place).
  const focused = ui.messageList.contains(document.activeElement) ? document.activeElement.dataset.focus : '';

  const group = conv?.kind === 'group';
  const confirmed = [...t.msgs.values()].sort((a, b) => a.seq - b.seq);
  const ownClientIds = new Set(confirmed.filter((m) => m.sender_id === app.me.id).map((m) => m.client_id));
  const rows = [];

  if (t.error) {
    rows.push(
      h(
        'li',
        { class: 'error' },
        h(
          'span',
          { role: 'alert', 'data-testid': 'thread-error' },
          t.error,
          ' ',
          h('button', { type: 'button', class: 'link-button', onclick: () => (t.loaded ? loadOlder(id) : loadLatest(id)) }, 'Try again'),
        ),
      ),
    );
  } else if (t.loaded && !t.hasMore) {
    rows.push(h('li', { class: 'empty', 'data-testid': 'history-start' }, 'This is the start of the conversation.'));
  }

  const usedImgs = new Set();
  let day = '';
  const now = new Date();
  // System lines ("alice added bob") go after the message they followed;
  // those before the loaded history are left out while older pages remain.
  const firstSeq = confirmed.length ? confirmed[0].seq : Infinity;
  const sys = systemLinesFor(id).filter((l) => !t.hasMore || l.after >= firstSeq);
  for (const m of confirmed) {
    while (sys.length && sys[0].after < m.seq) rows.push(sys.shift().el);
    const own = m.sender_id === app.me.id;
    const key = dayKey(m.created_at);
    if (key && key !== day) {
      day = key;
      rows.push(h('li', { class: 'day', 'data-testid': 'day-separator' }, h('span', {}, dayLabel(m.created_at, now))));
    }
    const image = m.type === 'image' && m.attachment && !m.deleted ? storedImage(m, usedImgs) : m.type === 'file' && m.attachment && !m.deleted ? storedFile(m) : null;
    const receipt = own ? receiptOf(conv, m) : null;
    const status = own ? receipt.status : 'received';
    const mark = own ? receipt.label : '';
    const sender = own ? null : (conv?.members || []).find((mm) => mm.user_id === m.sender_id);
    const asking = own && !m.deleted && app.confirmDelete === m.id;
    let actions = null;
    if (asking) {
      actions = h(
        'span',
        { class: 'confirm', 'data-testid': 'confirm-delete', role: 'group', 'aria-label': 'Delete this message for everyone?' },
        h('span', { 'aria-hidden': 'true' }, 'Delete for everyone?'),
        h('button', { type: 'button', class: 'danger', 'data-testid': 'confirm-delete-yes', 'data-focus': `confirm:${m.id}`, onclick: () => deleteMessage(m) }, 'Delete'),
        h('button', { type: 'button', class: 'secondary', 'data-testid': 'confirm-delete-no', 'data-focus': `cancel:${m.id}`, onclick: cancelDelete }, 'Cancel'),
      );
    } else if (own && !m.deleted) {
      actions = h('button', { type: 'button', class: 'secondary', 'data-testid': 'delete', 'data-focus': `delete:${m.id}`, 'aria-label': 'Delete message', onclick: () => askDelete(m) }, 'Delete');
    }
    rows.push(
      h(
        'li',
        {
          class: `message${own ? ' own' : ''}${m.deleted ? ' deleted' : ''}${!m.deleted && (m.mentions || []).includes(app.me.id) ? ' mentioned' : ''}`,
          'data-testid': 'message',
          'data-message-id': m.id,
          'data-client-id': m.client_id,
          'data-seq': m.seq,
          'data-status': status,
          'data-sender': m.sender_name,
          'data-type': m.type || 'text',
          // Focusable from script only: a jump to a quoted message lands here.
          tabindex: '-1',
          'data-focus': `msg:${m.id}`,
          'data-highlight': highlighted(m) ? 'true' : null,
          onkeydown: asking ? (e) => e.key === 'Escape' && cancelDelete() : null,
        },
        !own && (group || sender?.avatar_id) ? h('div', { class: 'sender' }, avatar(sender || { name: m.sender_name }), group ? shownName(sender, m.sender_name) : null) : null,
        m.reply_to && !m.deleted ? quoteView(m.reply_to, m.conversation_id) : null,
        image,
        isEditing(m)
          ? editorView(m)
          : h('div', { class: 'text', 'data-testid': 'message-text' }, m.deleted ? 'Message deleted' : linkify(messageText(m))),
        reactionsView(m),
        pickerView(m),
        editStatus(m),
        h(
          'div',
          { class: 'meta' },
          h('time', { datetime: m.created_at }, fmtTime(m.created_at)),
          m.edited_at && !m.deleted
            ? h('span', { class: 'edited', 'data-testid': 'edited', title: `Edited ${new Date(m.edited_at).toLocaleString()}` }, '(edited)')
            : null,
          own && !m.deleted ? h('span', { class: `mark mark-${status}`, 'data-testid': 'mark', 'data-read': String(receipt.read), 'data-delivered': String(receipt.delivered) }, mark) : null,
          asking ? actions : messageActions(m, own, actions),
        ),
      ),
    );
  }

  for (const l of sys) rows.push(l.el);

  for (const item of c.itemsFor(id)) {
    if (ownClientIds.has(item.client_id)) continue; // stored already; the reply is on its way
    const live = c.state === State.Connected || c.state === State.FeatureThrottled;
    const status = item.status === 'failed' ? 'failed' : item.status === 'sending' || live ? 'sending' : 'queued';
    const uploading = (item.type === 'image' || item.type === 'file') && !item.attachment_id && item.status === 'sending';
    const mark = { failed: `Not sent: ${itemError(item)}`, sending: uploading ? 'Uploading…' : 'Sending…', queued: 'Queued' }[status];
    // Retry only where a retry can work: not for a file the server will
    // never take, nor a text it refused as it is.
    const canRetry = status === 'failed' && !PERMANENT.has(item.error_code);
    rows.push(
      h(
        'li',
        { class: 'message own', 'data-testid': 'message', 'data-client-id': item.client_id, 'data-status': status, 'data-type': item.type },
        pendingQuote(item),
        item.type === 'image'
          ? outboxImage(item, usedImgs)
          : item.type === 'file'
            ? fileChip(h, { name: item.file_name, size: item.file_size, content_type: item.file_type }, { status: uploading ? 'Uploading…' : '' })
            : null,
        isEditing(item) ? editorView(item) : h('div', { class: 'text', 'data-testid': 'message-text' }, linkify(messageText(item))),
        editStatus(item),
        h(
          'div',
          { class: 'meta' },
          h('span', { class: 'mark', 'data-testid': 'mark' }, mark),
          outboxActions(item),
          canRetry ? h('button', { type: 'button', 'data-testid': 'retry', 'data-focus': `retry:${item.client_id}`, onclick: () => c.retry(item.client_id) }, 'Retry') : null,
          status === 'failed'
            ? h('button', { type: 'button', class: 'secondary', 'data-testid': 'discard', 'data-focus': `discard:${item.client_id}`, onclick: () => c.discard(item.client_id) }, 'Discard')
            : null,
        ),
      ),
    );
  }
  if (app.paneError) rows.push(h('li', { class: 'error' }, h('span', { role: 'alert', 'data-testid': 'pane-error' }, app.paneError)));

  ui.messageList.replaceChildren(...rows);
  for (const key of app.imgs.keys()) if (!usedImgs.has(key)) app.imgs.delete(key);
  const want = app.focusKey || focused;
  app.focusKey = '';
  if (want) ui.messageList.querySelector(`[data-focus="${CSS.escape(want)}"]`)?.focus();
  if (keepOffset) box.scrollTop = prevTop + (box.scrollHeight - prevHeight);
  else if (toBottom || atBottom) box.scrollTop = box.scrollHeight;
}

// ---------- images ----------

const THUMB_BOX = 240; // px: the largest side of an image in the pane

/** fitBox scales w x h to fit in THUMB_BOX, never up. */
function fitBox(w, h) {
  if (!w || !h) return {};
  const k = Math.min(1, THUMB_BOX / Math.max(w, h));
  return { width: Math.max(1, Math.round(w * k)), height: Math.max(1, Math.round(h * k)) };
}

/**
 * thumbEntry returns what to show for a stored attachment's thumbnail and
 * fetches it (with the bearer token; an <img src> cannot send one) once.
 * A fetch the network cut off is tried again on a later redraw.
 */
function thumbEntry(att) {
  const key = `t:${att.id}`;
  const cur = app.media.get(key);
  if (cur && (cur.fetched || cur.loading || (cur.error && Date.now() < cur.retryAt))) return cur;
  const entry = { ...(cur || {}), loading: true, error: '' };
  app.media.set(key, entry);
  const c = app.client;
  c.fetchBlob(att.thumb_url || `/v1/attachments/${encodeURIComponent(att.id)}/thumb`).then(
    (blob) => {
      if (c !== app.client) return;
      const old = app.media.get(key);
      if (old?.url) URL.revokeObjectURL(old.url);
      app.media.set(key, { url: URL.createObjectURL(blob), fetched: true });
      scheduleRender();
    },
    (err) => {
      if (c !== app.client) return;
      const old = app.media.get(key) || {};
      const retryAt = err.code === 'disconnected' || err.code === 'unavailable' ? Date.now() + 3000 : Infinity;
      app.media.set(key, { ...old, loading: false, error: humanError(err), retryAt });
      scheduleRender();
    },
  );
  return entry;
}

/** previewEntry returns an outbox image's local preview (an object URL of its bytes). */
function previewEntry(item) {
  const key = `p:${item.client_id}`;
  const cur = app.media.get(key);
  if (cur) return cur;
  const entry = { loading: true };
  app.media.set(key, entry);
  const c = app.client;
  c.imageBlob(item.client_id).then((blob) => {
    if (c !== app.client || app.media.get(key) !== entry) return;
    app.media.set(key, blob ? { url: URL.createObjectURL(blob), blob } : { error: 'the image is no longer available here' });
    scheduleRender();
  });
  return entry;
}

/** dropPreviews frees the previews of items that left the outbox. */
function dropPreviews() {
  const live = new Set(app.client?.outbox.map((i) => i.client_id));
  for (const [key, e] of app.media) {
    if (key.startsWith('p:') && !live.has(key.slice(2))) {
      if (e.url) URL.revokeObjectURL(e.url);
      app.media.delete(key);
    }
  }
}

/**
 * imageView draws an image as a button that opens it full size. The <img>
 * element is kept per message across redraws (key), so it is not loaded
 * and decoded again each time the pane changes.
 */
function imageView(key, entry, size, who, open, used, name = '') {
  used.add(key);
  if (entry.error && !entry.url) {
    return h('p', { class: 'image-error', 'data-testid': 'image-error' }, `Image unavailable. ${sentence(entry.error)}`);
  }
  let img = app.imgs.get(key);
  if (!img) {
    img = h('img', { 'data-testid': 'thumb', alt: `Image from ${who}`, decoding: 'async' });
    img.addEventListener('error', () => {
      if (!img.getAttribute('src')) return;
      img.dataset.broken = 'true';
      scheduleRender();
    });
    app.imgs.set(key, img);
  }
  if (entry.url && img.getAttribute('src') !== entry.url) {
    delete img.dataset.broken;
    img.src = entry.url;
  }
  if (img.dataset.broken) {
    // The browser cannot show these bytes (e.g. not an image at all).
    return h('p', { class: 'image-error', 'data-testid': 'image-error' }, `${name || 'This file'} cannot be shown as an image`);
  }
  if (size.width) {
    img.width = size.width;
    img.height = size.height;
  }
  img.dataset.loading = String(!entry.url || !!entry.local);
  return h(
    'button',
    { type: 'button', class: 'thumb', 'data-testid': 'open-image', 'aria-label': `Open the image from ${who}`, onclick: open },
    img,
  );
}

function storedImage(m, used) {
  const att = m.attachment;
  const who = m.sender_id === app.me.id ? 'you' : m.sender_name;
  const entry = thumbEntry(att);
  const path = att.url || `/v1/attachments/${encodeURIComponent(att.id)}`;
  return imageView(`m:${m.id}`, entry, fitBox(att.width, att.height), who, () => openImage(who, () => app.client.fetchBlob(path)), used);
}

function outboxImage(item, used) {
  const entry = previewEntry(item);
  const att = item.attachment;
  const open = () => openImage('you', async () => entry.blob || (await app.client.imageBlob(item.client_id)));
  return imageView(`c:${item.client_id}`, entry, fitBox(att?.width, att?.height), 'you', open, used, item.file_name);
}

/** storedFile draws a stored file message's chip, with a download link. */
function storedFile(m) {
  return fileChip(h, m.attachment, {
    download: () =>
      downloadFile(app.client, m.attachment, (err) => {
        app.paneError = `Could not download ${m.attachment.name || 'the file'}. ${humanError(err)}`;
        renderMessages({ toBottom: true });
      }),
  });
}

/** openImage shows an image full size in the lightbox; load resolves to its bytes. */
async function openImage(who, load) {
  closeLightboxImage();
  const token = {};
  app.lightboxToken = token;
  ui.lightboxTitle.textContent = `Image from ${who}`;
  ui.lightboxImage.alt = `Image from ${who}, full size`;
  ui.lightboxImage.hidden = true;
  ui.lightboxOpen.hidden = true;
  ui.lightboxStatus.textContent = 'Loading…';
  if (!ui.lightbox.open) ui.lightbox.showModal();
  try {
    const blob = await load();
    if (!blob) throw new Error('the image is no longer available here');
    if (app.lightboxToken !== token) return;
    app.lightboxURL = URL.createObjectURL(blob);
    ui.lightboxImage.src = app.lightboxURL;
    ui.lightboxImage.hidden = false;
    ui.lightboxOpen.href = app.lightboxURL;
    ui.lightboxOpen.hidden = false;
    ui.lightboxStatus.textContent = '';
  } catch (err) {
    if (app.lightboxToken === token) ui.lightboxStatus.textContent = `Could not load the image. ${humanError(err)}`;
  }
}

function closeLightboxImage() {
  app.lightboxToken = null;
  ui.lightboxImage.removeAttribute('src');
  if (app.lightboxURL) URL.revokeObjectURL(app.lightboxURL);
  app.lightboxURL = '';
}

ui.lightbox.addEventListener('close', closeLightboxImage);
ui.lightboxClose.addEventListener('click', () => ui.lightbox.close());
// A click on the backdrop (outside the dialog's box) closes it too.
ui.lightbox.addEventListener('click', (e) => {
  if (e.target !== ui.lightbox) return;
  const r = ui.lightbox.getBoundingClientRect();
  const inside = e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
  if (!inside) ui.lightbox.close();
});

// Images wait in a tray above the composer until Send: the composer's
// text goes with the first one as its caption. The picker, a drop on the
// pane and a paste into the composer all put images there.
const TRAY_MAX = 10;

/**
 * attachFiles puts files in the tray: PNG, JPEG, GIF and WebP images go as
 * images (a preview, a thumbnail for the others), any other file as a file
 * (a chip with its name, size and type, downloaded by the others).
 */
function attachFiles(files) {
  const c = app.client;
  if (!files.length || !app.open || !c || c.state === State.Disconnected) return;
  app.paneError = '';
  for (const f of files) {
    if (app.tray.length >= TRAY_MAX) break;
    if (IMAGE_TYPES.has(f.type)) app.tray.push({ file: f, url: URL.createObjectURL(f) });
    else app.tray.push({ file: f, isFile: true });
  }
  renderTray();
  renderMessages({ toBottom: true });
  ui.input.focus();
}

function clearTray() {
  for (const t of app.tray) if (t.url) URL.revokeObjectURL(t.url);
  app.tray = [];
  renderTray();
}

function renderTray() {
  ui.tray.hidden = app.tray.length === 0;
  ui.tray.replaceChildren(
    ...app.tray.map((t, i) =>
      h(
        'li',
        { class: 'tray-item', 'data-testid': 'tray-item' },
        t.isFile ? h('span', { class: 'tray-file', 'aria-hidden': 'true' }, fileBadge(t.file.name)) : h('img', { src: t.url, alt: '', width: 48, height: 48 }),
        h('span', { class: 'tray-name' }, t.file.name || 'Pasted image'),
        h(
          'button',
          {
            type: 'button',
            class: 'secondary',
            'data-testid': 'tray-remove',
            'aria-label': `Remove ${t.file.name || 'the pasted image'}`,
            onclick: () => {
              if (t.url) URL.revokeObjectURL(t.url);
              app.tray.splice(i, 1);
              renderTray();
              ui.input.focus();
            },
          },
          '×',
        ),
      ),
    ),
  );
  ui.input.placeholder = app.tray.length ? 'Add a caption (optional)' : 'Write a message';
}

ui.attachInput.addEventListener('change', () => {
  attachFiles([...ui.attachInput.files]);
  ui.attachInput.value = '';
});

// Drag and drop onto the message pane. Elsewhere on the page a dropped
// file must not make the browser navigate away to it.
const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
let dragDepth = 0;
ui.pane.addEventListener('dragenter', (e) => {
  if (!hasFiles(e) || !app.open) return;
  e.preventDefault();
  dragDepth++;
  ui.pane.classList.add('dropping');
});
ui.pane.addEventListener('dragover', (e) => {
  if (!hasFiles(e) || !app.open) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
});
ui.pane.addEventListener('dragleave', () => {
  if (--dragDepth > 0) return;
  dragDepth = 0;
  ui.pane.classList.remove('dropping');
});
ui.pane.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.stopPropagation();
  dragDepth = 0;
  ui.pane.classList.remove('dropping');
  attachFiles([...e.dataTransfer.files]);
});

// A pasted image (a screenshot, a copied picture) goes to the tray; pasted
// text stays text.
ui.input.addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files || [])];
  if (!files.length) return;
  e.preventDefault();
  attachFiles(files);
});
for (const type of ['dragover', 'drop']) {
  window.addEventListener(type, (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
}

function renderTyping() {
  const members = app.convs.get(app.open)?.members || [];
  const typers = app.open ? app.client.typersIn(app.open).map((t) => members.find((mm) => mm.user_id === t.userId) || { user_id: t.userId, name: t.name }) : [];
  const names = typers.map((m) => shownName(m));
  let text = '';
  if (names.length === 1) text = `${names[0]} is typing…`;
  else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
  else if (names.length > 2) text = 'Several people are typing…';
  // The typers' avatars (at most two), then the words.
  ui.typing.replaceChildren(...(names.length <= 2 ? typers.map((m) => avatar(m)) : []), text);
}

// ---------- composer ----------

function submitMessage() {
  const c = app.client;
  const text = ui.input.value.trim();
  if ((!text && !app.tray.length) || !app.open || !c || c.state === State.Disconnected || isRemoved(app.open)) return;
  const max = c.limits.maxTextRunes;
  if ([...text].length > max) {
    app.paneError = `A message can hold at most ${max} characters.`;
    app.tooLong = true;
    renderMessages({ toBottom: true });
    return;
  }
  app.paneError = '';
  app.tooLong = false;
  const replyTo = takeReply(app.open);
  if (app.tray.length) {
    app.tray.forEach((t, i) => (t.isFile ? c.sendFile : c.sendImage).call(c, app.open, t.file, i === 0 ? text : '', { replyTo: i === 0 ? replyTo : '' }));
    clearTray();
  } else {
    c.send(app.open, text, { replyTo });
  }
  ui.input.value = '';
  fitComposer();
  clearTimeout(app.typingIdle);
  renderMessages({ toBottom: true });
}

/** fitComposer grows the composer with its text, up to its CSS max-height. */
function fitComposer() {
  ui.input.style.height = 'auto';
  if (ui.input.value) ui.input.style.height = `${ui.input.scrollHeight + 2}px`; // + the borders
  else ui.input.style.height = '';
}

ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  submitMessage();
});

// Enter sends, Shift+Enter is a new line. Some input paths (synthetic key
// events, some IMEs) deliver the Enter's line break separately from its
// keydown, so the break that follows a sending Enter is refused too.
let enterSent = false;
ui.input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    enterSent = true;
    submitMessage();
  } else {
    enterSent = false;
  }
});
ui.input.addEventListener('beforeinput', (e) => {
  if (enterSent && (e.inputType === 'insertLineBreak' || e.inputType === 'insertParagraph')) e.preventDefault();
  enterSent = false;
});
ui.input.addEventListener('keyup', (e) => {
  if (e.key === 'Enter') enterSent = false;
});

ui.input.addEventListener('input', () => {
  fitComposer();
  const c = app.client;
  if (!c || !app.open) return;
  // The length error goes as soon as the text fits again.
  if (app.tooLong && [...ui.input.value.trim()].length <= c.limits.maxTextRunes) {
    app.tooLong = false;
    app.paneError = '';
    renderMessages();
  }
  const id = app.open;
  clearTimeout(app.typingIdle);
  if (!ui.input.value.trim()) {
    c.stopTyping(id);
    return;
  }
  c.typing(id);
  app.typingIdle = setTimeout(() => c.stopTyping(id), TYPING_IDLE_MS);
});

// ---------- boot ----------

const auth = savedAuth();
if (auth) start(auth);
else ui.authForm.username.focus();
