// privacy.js: message requests, blocks and the consent setting in the
// chat page (docs/protocol.md, "Consent and blocks"). A direct
// conversation from someone who is not a contact arrives as a request
// (a user who accepts contacts only gets none: strangers are refused):
// it is listed under "Message requests", and its pane offers Accept,
// Decline and Block. A direct conversation's header, and each row of a
// group's member panel, offer Block or Unblock; the sidebar's Privacy
// panel sets who may reach this user and lists whom they blocked. The
// server filters what a block hides (history, unread counts, events), so
// the page only reloads what it holds when the list changes.
//
// Like members.js it keeps its state in `priv` and reaches the page only
// through the hooks given to initPrivacy.

const priv = {
  hooks: null,
  consent: 'everyone',
  blocked: new Map(), // user id -> name
  open: false, // the Privacy panel
  error: '',
};

/**
 * initPrivacy gives the module the page's pieces: h, app (app.client
 * makes the calls), merge(conv) (a view of the caller's), fetch(id) (reads a
 * conversation's view), rerender(), reload() (forget the loaded
 * threads and load the list and the open thread again) and the
 * elements header (the pane header) and sidebar (where the Privacy
 * panel goes, before the conversation list).
 */
export function initPrivacy(hooks) {
  priv.hooks = hooks;
}

/** loadPrivacy reads the consent setting and the blocked list. */
export async function loadPrivacy() {
  try {
    const p = await priv.hooks.app.client.privacy();
    priv.consent = p.consent;
    priv.blocked = new Map((p.blocked || []).map((b) => [b.user_id, b.name]));
  } catch (err) {
    priv.error = err.message;
  }
  priv.hooks.rerender();
}

/** isRequest reports whether conv is a request this user has not accepted. */
export function isRequest(conv) {
  return conv.request === 'pending' || conv.request === 'declined';
}

/**
 * onPrivacyEvent applies this user's own events (from this device or
 * another): it reports whether ev was one.
 */
export function onPrivacyEvent(ev) {
  const { app, reload } = priv.hooks;
  switch (ev.type) {
    case 'userBlocked':
    case 'userUnblocked': {
      const id = ev.user_ids?.[0];
      if (!id) return true;
      if (ev.type === 'userBlocked') priv.blocked.set(id, priv.blocked.get(id) || nameIn(app, id));
      else priv.blocked.delete(id);
      reload(); // what the server hides changed: history, unread counts
      return true;
    }
    case 'privacyChanged':
      if (ev.consent) priv.consent = ev.consent;
      return true;
    case 'requestAccepted':
    case 'requestDeclined': {
      const conv = app.convs.get(ev.conversation_id);
      if (conv) conv.request = ev.type === 'requestAccepted' ? undefined : 'declined';
      return true;
    }
    case 'conversationUpdated':
      // An event carries no viewer's fields: a direct conversation
      // someone else started may be a request, which only this user's
      // view of it says.
      if (ev.change === 'created' && ev.conversation?.kind === 'direct' && ev.user_id !== app.me.id) priv.hooks.fetch(ev.conversation_id);
      return false;
    case 'newMessage': {
      // Writing in a request accepts it, a declined one too.
      const conv = app.convs.get(ev.conversation_id);
      if ((conv?.request === 'pending' || conv?.request === 'declined') && ev.message?.sender_id === app.me.id) conv.request = undefined;
      return false;
    }
  }
  return false;
}

function nameIn(app, id) {
  for (const c of app.convs.values()) {
    const m = (c.members || []).find((mm) => mm.user_id === id);
    if (m) return m.name;
  }
  return id;
}

/** call runs op(client) (a Client method), merging a Conversation it returns and showing its error. */
async function call(op) {
  const { app, merge, rerender } = priv.hooks;
  priv.error = '';
  try {
    const res = await op(app.client);
    if (res?.id && res?.kind) merge(res);
    return res;
  } catch (err) {
    priv.error = err.message;
    return null;
  } finally {
    rerender();
  }
}

/** blockButton is a Block or Unblock button for a user (never oneself). */
export function blockButton(userID, name) {
  const { h, app } = priv.hooks;
  if (userID === app.me.id) return null;
  const blocked = priv.blocked.has(userID);
  return h(
    'button',
    {
      type: 'button',
      class: 'secondary',
      'data-testid': blocked ? 'unblock-user' : 'block-user',
      'data-user': name,
      onclick: async () => {
        const res = await call((c) => (blocked ? c.unblock(userID) : c.block(userID)));
        if (res) {
          if (res.blocked) priv.blocked.set(userID, name);
          else priv.blocked.delete(userID);
          priv.hooks.rerender();
        }
      },
    },
    blocked ? `Unblock ${name}` : `Block ${name}`,
  );
}

/** requestsSection is the list's "Message requests" heading and items, or nothing. */
export function requestsSection(items) {
  const { h } = priv.hooks;
  if (!items.length) return [];
  return [h('li', { class: 'list-heading', 'data-testid': 'requests-heading' }, h('h2', {}, `Message requests (${items.length})`)), ...items];
}

/**
 * renderPrivacy draws, for the open conversation, the request banner
 * (Accept, Decline, Block) and a direct conversation's Block button,
 * and the sidebar's Privacy panel.
 */
export function renderPrivacy() {
  const { h, app, header, sidebar, rerender } = priv.hooks;
  header.parentElement.querySelector('[data-testid=request-banner]')?.remove();
  header.querySelector('[data-testid=header-block]')?.remove();
  const conv = app.open && app.convs.get(app.open);
  if (conv?.kind === 'direct') {
    const other = (conv.members || []).find((m) => m.user_id !== app.me.id);
    if (other) header.append(h('span', { 'data-testid': 'header-block' }, blockButton(other.user_id, other.name)));
    if (isRequest(conv)) {
      const declined = conv.request === 'declined';
      header.after(
        h(
          'div',
          { class: 'request-banner', role: 'region', 'aria-label': 'Message request', 'data-testid': 'request-banner' },
          h(
            'p',
            {},
            declined
              ? `You declined ${other?.name || 'this user'}'s request: they cannot write to you here.`
              : `${other?.name || 'Someone'} is not in your contacts. Until you accept, they do not see when you are online, have read or are typing.`,
          ),
          h('button', { type: 'button', 'data-testid': 'request-accept', onclick: () => call((c) => c.acceptRequest(conv.id)) }, 'Accept'),
          declined ? null : h('button', { type: 'button', class: 'secondary', 'data-testid': 'request-decline', onclick: () => call((c) => c.declineRequest(conv.id)) }, 'Decline'),
          priv.error ? h('p', { class: 'error', role: 'alert' }, priv.error) : null,
        ),
      );
    }
  }

  const oldPanel = sidebar.querySelector('[data-testid=privacy-panel]');
  const toggle =
    sidebar.querySelector('[data-testid=privacy-toggle]') ||
    h('button', {
      type: 'button',
      class: 'link-button',
      'data-testid': 'privacy-toggle',
      onclick: () => {
        priv.open = !priv.open;
        if (priv.open) loadPrivacy();
        rerender();
      },
    });
  toggle.textContent = priv.open ? 'Hide privacy settings' : 'Privacy';
  toggle.setAttribute('aria-expanded', String(priv.open));
  const list = sidebar.querySelector('#conversations');
  if (!toggle.isConnected) list.before(toggle);
  oldPanel?.remove();
  if (!priv.open) return;
  const select = h(
    'select',
    {
      id: 'consent-select',
      'data-testid': 'consent',
      onchange: async () => {
        const p = await call((c) => c.setPrivacy(select.value));
        if (p) priv.consent = p.consent;
      },
    },
    h('option', { value: 'everyone' }, 'Everyone (strangers as requests)'),
    h('option', { value: 'contacts' }, 'Only my contacts'),
  );
  select.value = priv.consent;
  const blocked = [...priv.blocked].map(([id, name]) => h('li', { 'data-testid': 'blocked-user', 'data-user': name }, `${name} `, blockButton(id, name)));
  list.before(
    h(
      'section',
      // data-consent: the setting as the server last said it.
      // Headings go h1 (the page), h2 (this panel), h3: no level skipped.
      { class: 'privacy-panel', 'data-testid': 'privacy-panel', 'data-consent': priv.consent, 'aria-labelledby': 'privacy-title' },
      h('h2', { id: 'privacy-title' }, 'Privacy'),
      h('label', { for: 'consent-select' }, 'Who may start a conversation with you or add you to groups'),
      select,
      h('h3', {}, 'Blocked'),
      blocked.length ? h('ul', { class: 'blocked' }, blocked) : h('p', { class: 'empty', 'data-testid': 'no-blocked' }, 'Nobody.'),
      priv.error && !app.open ? h('p', { class: 'error', role: 'alert' }, priv.error) : null,
    ),
  );
}
