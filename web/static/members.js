// members.js: people and groups in the chat page (issue 15): the member
// panel (roles; rename, add, remove, promote, demote, leave), the system
// lines drawn in a thread from conversationUpdated events, the notice
// shown when this user is removed from the open group (the composer is
// disabled then), and mute and archive (the user's own flags, synced
// across their devices by flagsChanged events).
//
// It keeps its own state in `mem` and reaches the page only through the
// hooks given to initMembers, so app.js calls it at a few points:
// onConversationUpdated (each conversationUpdated event), renderMembers
// (after the pane header is drawn) and systemLinesFor (while drawing a
// thread). The server's rules are in docs/protocol.md (update_conversation);
// the page offers only what the user may do, and shows the server's error
// for anything refused.

import { avatar, shownName } from './receipts.js';

const mem = {
  hooks: null,
  removed: new Map(), // conversation id -> the conversation as it was when this user was removed or left
  lines: new Map(), // conversation id -> [{pos, after, text}]
  names: new Map(), // user id -> username, of members seen (a removed member's name, whichever of the reply and the event comes first)
  panelOpen: false,
  error: '',
  showArchived: false,
};

/**
 * initMembers gives the module the page's pieces: h (the element
 * builder), app (the page state), api(method, path, body), merge(conv)
 * (mergeConversation), rerender() (redraws the list, header and thread),
 * and the elements header (the pane header), composer, input, send and
 * attach.
 */
export function initMembers(hooks) {
  mem.hooks = hooks;
}

/** inMainList reports whether conv belongs in the conversation list: not archived, or archived ones shown. */
export function inMainList(conv) {
  return mem.showArchived || !conv.archived || conv.id === mem.hooks.app.open;
}

/** archivedToggle is the list's "Archived (n)" switch, or nothing when none is archived. */
export function archivedToggle() {
  const { h, app, rerender } = mem.hooks;
  const n = [...app.convs.values()].filter((c) => c.archived).length;
  if (!n) return [];
  return [
    h(
      'li',
      {},
      h(
        'button',
        {
          type: 'button',
          class: 'link-button',
          'data-testid': 'archived-toggle',
          'aria-pressed': String(mem.showArchived),
          onclick: () => {
            mem.showArchived = !mem.showArchived;
            rerender();
          },
        },
        mem.showArchived ? `Hide archived (${n})` : `Archived (${n})`,
      ),
    ),
  ];
}

/** onFlagsChanged applies this user's flags from another device (or this one). */
export function onFlagsChanged(ev) {
  const conv = mem.hooks.app.convs.get(ev.conversation_id);
  if (conv && ev.flags) {
    conv.muted = ev.flags.muted;
    conv.archived = ev.flags.archived;
  }
}

async function setFlags(id, body) {
  const { api, merge, rerender } = mem.hooks;
  mem.error = '';
  try {
    merge(await api('PATCH', `/v1/conversations/${encodeURIComponent(id)}/flags`, body));
  } catch (err) {
    mem.error = err.message;
  }
  rerender();
}

/** isRemoved reports whether this user was removed from (or left) id. */
export function isRemoved(id) {
  return mem.removed.has(id);
}

/** removedConversation is the last known state of a group this user left. */
export function removedConversation(id) {
  return mem.removed.get(id) || null;
}

const nameOf = (conv, id, fallback) => (conv?.members || []).find((m) => m.user_id === id)?.name || fallback || mem.names.get(id) || id;

/** rememberNames keeps the usernames of conv's members for system lines. */
function rememberNames(conv) {
  for (const m of conv?.members || []) mem.names.set(m.user_id, m.name);
}

/** systemText is the line a conversationUpdated event draws in the thread. */
export function systemText(ev, before) {
  const conv = ev.conversation || {};
  const actor = ev.user_name || nameOf(conv, ev.user_id);
  // A removed user is no longer in the snapshot: take their name from
  // the conversation as it was before the change.
  const names = (ev.user_ids || []).map((id) => nameOf(conv, id, nameOf(before, id))).join(', ');
  switch (ev.change) {
    case 'created':
      return `${actor} created the group`;
    case 'renamed':
      return `${actor} renamed the group to "${conv.title}"`;
    case 'members_added':
      return `${actor} added ${names}`;
    case 'members_removed':
      return (ev.user_ids || []).length === 1 && ev.user_ids[0] === ev.user_id ? `${actor} left` : `${actor} removed ${names}`;
    case 'members_promoted':
      // The actor is gone when the last owner left and the server
      // handed the group on.
      return (conv.members || []).some((m) => m.user_id === ev.user_id) ? `${actor} made ${names} an owner` : `${names} is now an owner`;
    case 'members_demoted':
      return `${actor} made ${names} a member`;
  }
  return '';
}

/**
 * onConversationUpdated notes a conversationUpdated event: its system
 * line, and whether it removed or added back this user. before is the
 * conversation as the page knew it (for the names of removed users).
 * It returns true when the event removed this user.
 */
export function onConversationUpdated(ev, before) {
  const { app } = mem.hooks;
  const id = ev.conversation_id;
  rememberNames(before);
  // The viewer's flags in an event are zero, not this user's: keep ours.
  if (ev.conversation) {
    delete ev.conversation.muted;
    delete ev.conversation.archived;
  }
  if (ev.conversation?.kind === 'group' && ev.change !== 'created') {
    const list = mem.lines.get(id) || [];
    if (!list.some((l) => l.pos === ev.pos)) {
      list.push({ pos: ev.pos, after: ev.conversation.last_seq || 0, text: systemText(ev, before) });
      list.sort((a, b) => a.pos - b.pos);
      mem.lines.set(id, list);
    }
  }
  const mine = (ev.user_ids || []).includes(app.me.id);
  if (ev.change === 'members_removed' && mine) {
    mem.removed.set(id, { ...(before || ev.conversation), members: ev.conversation?.members || [] });
    if (app.open === id) mem.panelOpen = false;
    return true;
  }
  if ((ev.change === 'members_added' || ev.change === 'created') && (ev.conversation?.members || []).some((m) => m.user_id === app.me.id)) {
    mem.removed.delete(id);
  }
  return false;
}

/**
 * systemLinesFor returns the system lines of conversation id as list
 * items, each with `after`: the seq of the message it follows.
 */
export function systemLinesFor(id) {
  const { h } = mem.hooks;
  return (mem.lines.get(id) || []).map((l) => ({
    after: l.after,
    el: h('li', { class: 'system', 'data-testid': 'system-line', 'data-pos': l.pos }, l.text),
  }));
}

async function change(id, body) {
  const { api, merge, rerender } = mem.hooks;
  mem.error = '';
  rememberNames(mem.hooks.app.convs.get(id)); // the reply may come before the event and drop a removed member
  try {
    const conv = await api('PATCH', `/v1/conversations/${encodeURIComponent(id)}`, body);
    if (!body.remove?.includes(mem.hooks.app.me.id)) merge(conv);
  } catch (err) {
    mem.error = err.message;
  }
  rerender();
}

async function addByName(id, name) {
  const { api, rerender } = mem.hooks;
  try {
    const u = await api('GET', `/v1/users/${encodeURIComponent(name)}`);
    await change(id, { add: [u.id] });
  } catch (err) {
    mem.error = err.code === 'not_found' ? `No user named "${name}".` : err.message;
    rerender();
  }
}

/** rowForm is a one-line form of input and a submit button; submit gets the input's value when it is not blank. */
function rowForm(input, button, submit) {
  const onsubmit = (e) => {
    e.preventDefault();
    const v = input.value.trim();
    if (v) submit(v);
  };
  return mem.hooks.h('form', { class: 'row', onsubmit }, input, button);
}

/** memberPanel builds the member list of a group with the actions the user may take. */
function memberPanel(conv) {
  const { h, app } = mem.hooks;
  const owner = (conv.members || []).some((m) => m.user_id === app.me.id && m.role === 'owner');
  const rows = (conv.members || []).map((m) => {
    const me = m.user_id === app.me.id;
    return h(
      'li',
      { class: 'member', 'data-testid': 'member', 'data-user': m.name, 'data-role': m.role },
      avatar(m),
      h('span', { class: 'member-name' }, me ? `${shownName(m)} (you)` : shownName(m)),
      m.display_name && m.display_name !== m.name ? h('span', { class: 'member-username' }, ` @${m.name}`) : null,
      ' ',
      h('span', { class: 'role', 'data-testid': 'member-role' }, m.role === 'owner' ? 'owner' : 'member'),
      owner && !me && m.role !== 'owner'
        ? h('button', { type: 'button', class: 'secondary', 'data-testid': 'promote', onclick: () => change(conv.id, { promote: [m.user_id] }) }, 'Make owner')
        : null,
      owner && m.role === 'owner' && !me
        ? h('button', { type: 'button', class: 'secondary', 'data-testid': 'demote', onclick: () => change(conv.id, { demote: [m.user_id] }) }, 'Make member')
        : null,
      owner && !me
        ? h('button', { type: 'button', class: 'secondary', 'data-testid': 'remove-member', onclick: () => change(conv.id, { remove: [m.user_id] }) }, 'Remove')
        : null,
      me ? null : mem.hooks.blockButton?.(m.user_id, m.name),
    );
  });
  const forms = [];
  if (owner) {
    const add = h('input', { 'data-testid': 'add-member-name', placeholder: 'username', autocomplete: 'off', 'aria-label': 'Username to add' });
    forms.push(rowForm(add, h('button', { type: 'submit', 'data-testid': 'add-member' }, 'Add'), (name) => addByName(conv.id, name)));
    const title = h('input', { 'data-testid': 'rename-title', value: conv.title || '', maxlength: 100, 'aria-label': 'Group name' });
    forms.push(rowForm(title, h('button', { type: 'submit', 'data-testid': 'rename' }, 'Rename'), (t) => change(conv.id, { title: t })));
  }
  return h(
    'aside',
    { class: 'member-panel', 'data-testid': 'member-panel', 'aria-label': 'Members' },
    h('ul', { class: 'members' }, rows),
    forms,
    h('button', { type: 'button', class: 'secondary', 'data-testid': 'leave', onclick: () => change(conv.id, { remove: [app.me.id] }) }, 'Leave group'),
    mem.error ? h('p', { class: 'error', role: 'alert', 'data-testid': 'member-error' }, mem.error) : null,
  );
}

/**
 * renderMembers draws, for the open conversation, the Members button and
 * panel (groups only) and the removed notice, and disables the composer
 * while this user is removed from it.
 */
export function renderMembers() {
  const { h, app, header, composer, input, send, attach, rerender } = mem.hooks;
  const id = app.open;
  const conv = id && app.convs.get(id);
  const removed = !!id && mem.removed.has(id);
  // The panel is rebuilt on every redraw (a presence change redraws the
  // header): keep what is being typed in it, and the focus.
  const old = header.parentElement.querySelector('[data-testid=member-panel]');
  const typed = {};
  let focused = '';
  for (const el of old?.querySelectorAll('input') || []) {
    typed[el.dataset.testid] = el.value;
    if (el === document.activeElement) focused = el.dataset.testid;
  }
  old?.remove();
  header.querySelector('[data-testid=members-toggle]')?.remove();
  header.querySelector('[data-testid=flag-buttons]')?.remove();
  if (conv && !removed) {
    header.append(
      h(
        'span',
        { class: 'flag-buttons', 'data-testid': 'flag-buttons' },
        h(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'mute', 'aria-pressed': String(!!conv.muted), onclick: () => setFlags(id, { muted: !conv.muted }) },
          conv.muted ? 'Unmute' : 'Mute',
        ),
        h(
          'button',
          { type: 'button', class: 'secondary', 'data-testid': 'archive', 'aria-pressed': String(!!conv.archived), onclick: () => setFlags(id, { archived: !conv.archived }) },
          conv.archived ? 'Unarchive' : 'Archive',
        ),
      ),
    );
  }
  if (conv?.kind === 'group' && !removed) {
    header.append(
      h(
        'button',
        {
          type: 'button',
          class: 'secondary',
          'data-testid': 'members-toggle',
          'aria-expanded': String(mem.panelOpen),
          onclick: () => {
            mem.panelOpen = !mem.panelOpen;
            mem.error = '';
            rerender();
          },
        },
        `Members (${(conv.members || []).length})`,
      ),
    );
    if (mem.panelOpen) {
      const panel = memberPanel(conv);
      header.after(panel);
      for (const el of panel.querySelectorAll('input')) {
        if (el.dataset.testid in typed) el.value = typed[el.dataset.testid];
        if (el.dataset.testid === focused) el.focus();
      }
    }
  }

  let notice = composer.parentElement.querySelector('[data-testid=removed-notice]');
  if (removed && !notice) {
    notice = h('p', { class: 'removed-notice', role: 'status', 'data-testid': 'removed-notice' }, 'You are no longer a member of this group. You can read what was sent before, but you cannot send messages here.');
    composer.before(notice);
  } else if (!removed && notice) {
    notice.remove();
  }
  input.disabled = send.disabled = removed;
  attach.setAttribute('aria-disabled', String(removed));
  attach.classList.toggle('disabled', removed);
  composer.classList.toggle('removed', removed);
  if (removed) composer.querySelector('#attach-input').disabled = true;
  else composer.querySelector('#attach-input').disabled = false;
}
