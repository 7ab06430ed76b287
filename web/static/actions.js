// actions.js: what a user does to a message in the chat page (issue 14):
// edit their own (an inline editor; the edit waits in the SDK's outbox
// like a send, so it is queued offline), react (a small fixed set of
// emoji; the reactions show as chips that toggle this user's own), and
// reply (a quote bar above the composer; a reply's quote jumps to its
// parent, loading older pages until it is there). It also applies the
// events that change a message in place (messageEdited, reactionAdded,
// reactionRemoved) and keeps the quotes of replies right.
//
// It keeps its own state in `act` and reaches the page only through the
// hooks given to initActions; app.js calls it while drawing a message
// (quoteView, messageBody, reactionsView, messageActions, editStatus) and
// from the composer (takeReply, cancelReply), so the two stay apart.
// The server's rules are in docs/protocol.md (edit, react, Replies).

import { MAX_REACTION_KINDS, ParleyError, State } from './parley.js';

/** The emoji the picker offers, with the names screen readers say. */
export const REACTION_SET = [
  ['👍', 'thumbs up'],
  ['❤️', 'heart'],
  ['😂', 'laughing'],
  ['😮', 'surprised'],
  ['😢', 'sad'],
  ['🎉', 'party'],
];

// How many history pages a jump to a quoted message loads at most (50
// messages each): a parent further back is reported instead of loading
// the whole conversation.
const JUMP_MAX_PAGES = 100;
const HIGHLIGHT_MS = 2500;
const QUOTE_RUNES = 100; // the server's quote length (docs/protocol.md, Quote)

const act = {
  hooks: null,
  editing: '', // the id of the message being edited
  editor: null, // its <textarea>, kept across redraws (draft, caret)
  picker: '', // the id of the message whose emoji picker is open
  errors: new Map(), // message id -> why an action on it failed, in words
  replyTo: null, // {conversation_id, id, sender_name, text, type}: the composer's parent
  replyBar: null,
  savingEnter: false, // the Enter that saved an edit is still down
  highlight: '', // the id of the message a jump landed on
  highlightTimer: 0,
};

/**
 * initActions gives the module the page's pieces: h (the element
 * builder), app (the page state), humanError(err), announce(text),
 * rerender() (redraws the open thread), scheduleRender() (redraws list
 * and thread soon), loadOlder(conversationId) (a promise: one older page
 * loaded), composer (the form) and input (its textarea).
 */
export function initActions(hooks) {
  act.hooks = hooks;
  const { h, composer, input } = hooks;
  act.replyBar = h('div', { class: 'reply-bar', 'data-testid': 'reply-bar', hidden: true });
  composer.prepend(act.replyBar);
  // Escape in an empty-handed composer cancels the reply.
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && act.replyTo) {
      e.preventDefault();
      cancelReply();
    }
  });
}

/** resetActions forgets what was started in the conversation left (or at logout). */
export function resetActions() {
  act.editing = '';
  act.editor = null;
  act.picker = '';
  act.errors.clear();
  act.highlight = '';
  cancelReply({ focus: false });
}

// ---------- applying changes ----------

/**
 * applyMessageChange applies messageEdited (the message as it is now; the
 * reactions we hold stay, events carry none) and reactionAdded/Removed
 * (the emoji's count after the change: a state, so a page read after it
 * is unchanged), and keeps the quotes of replies to an edited message.
 */
export function applyMessageChange(ev) {
  const { app, scheduleRender } = act.hooks;
  const t = app.threads.get(ev.conversation_id);
  const conv = app.convs.get(ev.conversation_id);
  if (ev.type === 'messageEdited') {
    const m = ev.message;
    if (!m) return;
    if (conv?.last_message?.id === m.id) conv.last_message = m;
    const old = t?.msgs.get(m.id);
    if (old && !old.deleted) t.msgs.set(m.id, { ...m, reactions: old.reactions });
    followQuotes(m);
    scheduleRender();
    return;
  }
  const old = t?.msgs.get(ev.message_id);
  if (!old) return;
  const mine = ev.user_id === app.me.id ? ev.type === 'reactionAdded' : undefined;
  t.msgs.set(ev.message_id, { ...old, reactions: setReaction(old.reactions, ev.emoji, ev.count || 0, mine) });
  scheduleRender();
}

/** setReaction is reactions with emoji's count set (dropped at 0) and, unless mine is undefined, its `me`. */
function setReaction(reactions = [], emoji, count, mine) {
  const rs = reactions.filter((r) => r.emoji !== emoji || count);
  const i = rs.findIndex((r) => r.emoji === emoji);
  if (count && i >= 0) rs[i] = { ...rs[i], count, me: mine ?? rs[i].me };
  else if (count) rs.push({ emoji, count, me: !!mine });
  return rs;
}

/**
 * followQuotes updates the quotes of m in the replies this page holds:
 * the server sends no event for them (docs/protocol.md, messageEdited).
 */
export function followQuotes(m) {
  const t = act.hooks.app.threads.get(m.conversation_id);
  if (!t) return;
  for (const [id, x] of t.msgs) {
    // A hidden quote (its parent's sender is blocked) stays hidden, even
    // for an event of the parent that was on its way when the block came.
    if (x.reply_to?.message_id !== m.id || x.reply_to.hidden) continue;
    const q = { ...x.reply_to, deleted: !!m.deleted };
    if (m.deleted) delete q.text;
    else q.text = [...(m.text || '')].slice(0, QUOTE_RUNES).join('');
    t.msgs.set(id, { ...x, reply_to: q });
  }
}

/**
 * messageGone handles a message deleted (here or elsewhere): the quotes of
 * it say so, and this user's edits of it still in the outbox go (the
 * server would refuse them, and a tombstone shows no edit to retry).
 */
export function messageGone(m) {
  followQuotes(m);
  const c = act.hooks.app.client;
  for (const e of c?.editsFor(m.conversation_id) || []) {
    if (e.message_id === m.id || (m.client_id && e.message_client_id === m.client_id && m.sender_id === act.hooks.app.me.id)) c.discard(e.client_id);
  }
  if (act.editing === editKey(m)) {
    act.editing = '';
    act.editor = null;
  }
}

/** onEdited applies the reply to an edit from the outbox (the event may come later). */
export function onEdited({ item, message }) {
  if (!message) return;
  applyMessageChange({ type: 'messageEdited', conversation_id: item.conversation_id, message });
}

// ---------- drawing a message ----------

/**
 * quoteView shows the message a reply quotes, as it is now; it jumps there.
 * A hidden quote (the parent's sender is a user this one blocked: the
 * server sends its place only) says so and goes nowhere.
 */
export function quoteView(q, conversationId) {
  const { h } = act.hooks;
  if (q.hidden) {
    return h(
      'button',
      {
        type: 'button',
        class: 'quote hidden',
        'data-testid': 'quote',
        'data-reply-to': q.message_id,
        'data-hidden': 'true',
        'aria-label': 'A reply to a hidden message, from a user you blocked',
        disabled: true,
      },
      h('em', {}, 'A hidden message'),
    );
  }
  const text = q.deleted ? 'Message deleted' : q.text || (q.type === 'image' ? 'Image' : q.type === 'file' ? 'File' : '');
  const cut = !q.deleted && [...(q.text || '')].length >= QUOTE_RUNES ? '…' : '';
  return h(
    'button',
    {
      type: 'button',
      class: `quote${q.deleted ? ' deleted' : ''}`,
      'data-testid': 'quote',
      'data-reply-to': q.message_id,
      'data-focus': conversationId ? `quote:${q.message_id}` : null,
      'aria-label': `${q.sender_name} ${text}${cut}: go to this message`,
      disabled: !conversationId,
      onclick: conversationId ? () => jumpTo(conversationId, q.message_id, q.seq) : null,
    },
    h('span', { class: 'sender' }, q.sender_name),
    ' ',
    q.deleted ? h('em', {}, text) : text + cut,
  );
}

/**
 * pendingQuote is the quote of an outbox reply, built from the parent this
 * page holds (the server quotes it once the reply is stored).
 */
export function pendingQuote(item) {
  if (!item.reply_to) return null;
  const p = act.hooks.app.threads.get(item.conversation_id)?.msgs.get(item.reply_to);
  if (!p) return null;
  return quoteView({ message_id: p.id, seq: p.seq, sender_name: p.sender_name, type: p.type, text: p.text, deleted: p.deleted });
}

/**
 * messageText is what the message says now in this page: the text of an
 * edit still waiting in the outbox, else the stored text.
 */
export function messageText(m) {
  const e = pendingEdit(m);
  return e && e.status !== 'failed' ? e.text : m.text || '';
}

function pendingEdit(m) {
  const c = act.hooks.app.client;
  if (!c || m.deleted) return null;
  // message_client_id names one of this user's messages (an outbox item has no sender_id).
  const mine = !m.sender_id || m.sender_id === act.hooks.app.me.id;
  return c.editsFor(m.conversation_id).findLast((i) => (m.id && i.message_id === m.id) || (mine && m.client_id && i.message_client_id === m.client_id)) || null;
}

// An edit is keyed by the message's client_id: the same for a message
// still in the outbox and for it once stored, so an editor opened on a
// queued message stays open when the server stores it.
const editKey = (m) => m.client_id || m.id;

/** isEditing reports whether m's text is in the inline editor. */
export function isEditing(m) {
  return act.editing === editKey(m) && !m.deleted && !!act.editor;
}

/** editorView is the inline editor of m: Enter saves, Shift+Enter a new line, Escape cancels. */
export function editorView(m) {
  const { h } = act.hooks;
  return h(
    'div',
    { class: 'editor', 'data-testid': 'editor' },
    act.editor,
    h(
      'div',
      { class: 'editor-buttons' },
      h('span', { class: 'editor-hint', id: `edit-hint-${editKey(m)}` }, 'Enter saves · Esc cancels'),
      h('button', { type: 'button', class: 'secondary', 'data-testid': 'edit-cancel', 'data-focus': `edit-cancel:${editKey(m)}`, onclick: () => cancelEdit(m) }, 'Cancel'),
      h('button', { type: 'button', 'data-testid': 'edit-save', 'data-focus': `edit-save:${editKey(m)}`, onclick: () => saveEdit(m) }, 'Save'),
    ),
  );
}

/** reactionsView shows a message's reactions as chips; a click toggles this user's own. */
export function reactionsView(m) {
  const { h } = act.hooks;
  if (m.deleted || !m.reactions?.length) return null;
  return h(
    'div',
    { class: 'reactions', 'data-testid': 'reactions', role: 'group', 'aria-label': 'Reactions' },
    ...m.reactions.map((r) =>
      h(
        'button',
        {
          type: 'button',
          class: `reaction${r.me ? ' mine' : ''}`,
          'data-testid': 'reaction',
          'data-emoji': r.emoji,
          'data-focus': `reaction:${m.id}:${r.emoji}`,
          'aria-pressed': String(!!r.me),
          'aria-label': `${r.emoji} ${r.count}: ${r.me ? 'remove your reaction' : 'add yours'}`,
          title: r.me ? 'You reacted. Click to remove yours.' : 'Click to react the same',
          onclick: () => toggleReaction(m, r.emoji),
        },
        `${r.emoji} ${r.count}`,
      ),
    ),
  );
}

/** pickerView is the open emoji picker of m (or nothing): one button per emoji. */
export function pickerView(m) {
  const { h } = act.hooks;
  if (act.picker !== m.id || m.deleted) return null;
  const mine = new Set((m.reactions || []).filter((r) => r.me).map((r) => r.emoji));
  return h(
    'div',
    {
      class: 'picker',
      'data-testid': 'reaction-picker',
      role: 'group',
      'aria-label': 'Pick a reaction',
      onkeydown: (e) => {
        if (e.key !== 'Escape') return;
        e.stopPropagation();
        closePicker(m);
      },
    },
    ...REACTION_SET.map(([emoji, name]) =>
      h(
        'button',
        {
          type: 'button',
          class: `pick${mine.has(emoji) ? ' mine' : ''}`,
          'data-testid': 'pick-reaction',
          'data-emoji': emoji,
          'data-focus': `pick:${m.id}:${emoji}`,
          'aria-pressed': String(mine.has(emoji)),
          'aria-label': `React with ${name}`,
          onclick: () => {
            act.picker = '';
            act.hooks.app.focusKey = `react:${m.id}`;
            toggleReaction(m, emoji);
          },
        },
        emoji,
      ),
    ),
  );
}

/**
 * messageActions are a stored message's Reply, React and (own) Edit
 * buttons, then the page's own (extra: Delete). With a mouse they show
 * while the pointer or the focus is on the message (style.css); on a
 * touch screen always.
 */
export function messageActions(m, own, ...extra) {
  const { h } = act.hooks;
  if (m.deleted) return null;
  const who = own ? 'your message' : `the message from ${m.sender_name}`;
  return h(
    'span',
    { class: 'actions' },
    h('button', { type: 'button', class: 'secondary', 'data-testid': 'reply', 'data-focus': `reply:${m.id}`, 'aria-label': `Reply to ${who}`, onclick: () => startReply(m) }, 'Reply'),
    h(
      'button',
      {
        type: 'button',
        class: 'secondary',
        'data-testid': 'react',
        'data-focus': `react:${m.id}`,
        'aria-label': `React to ${who}`,
        'aria-expanded': String(act.picker === m.id),
        onclick: () => togglePicker(m),
      },
      'React',
    ),
    own ? editButton(m) : null,
    ...extra,
  );
}

function editButton(m) {
  const { h } = act.hooks;
  if (isEditing(m)) return null;
  return h('button', { type: 'button', class: 'secondary', 'data-testid': 'edit', 'data-focus': `edit:${editKey(m)}`, 'aria-label': 'Edit your message', onclick: () => act.savingEnter || startEdit(m) }, 'Edit');
}

/**
 * outboxActions is Edit on a text message of this user's still in the
 * outbox (not a failed one: Discard it, or Retry it as it is): the edit
 * names it by its client_id and is sent after it.
 */
export function outboxActions(item) {
  const { h } = act.hooks;
  if (item.type !== 'text' || item.status === 'failed') return null;
  return h('span', { class: 'actions' }, editButton(item));
}

/**
 * editStatus says where this user's edit of m stands while it is in the
 * outbox (saving, queued offline, refused with Retry/Discard), and any
 * action on m that failed.
 */
export function editStatus(m) {
  const { h, app, humanError } = act.hooks;
  const out = [];
  const e = pendingEdit(m);
  if (e) {
    const c = app.client;
    const live = c.state === State.Connected || c.state === State.FeatureThrottled;
    if (e.status === 'failed') {
      const why = e.error_code ? humanError(new ParleyError(e.error_code, e.error)) : e.error || 'Not saved.';
      out.push(
        h(
          'div',
          { class: 'action-error', 'data-testid': 'edit-failed' },
          h('span', { role: 'alert' }, `Edit not saved: ${why}`),
          ' ',
          // Retry only where a retry can work: the server's invalid or
          // forbidden answer about this edit stands.
          e.error_code === 'invalid' || e.error_code === 'forbidden'
            ? null
            : h('button', { type: 'button', class: 'secondary', 'data-testid': 'edit-retry', 'data-focus': `edit-retry:${editKey(m)}`, onclick: () => c.retry(e.client_id) }, 'Retry'),
          h('button', { type: 'button', class: 'secondary', 'data-testid': 'edit-discard', 'data-focus': `edit-discard:${editKey(m)}`, onclick: () => c.discard(e.client_id) }, 'Discard'),
        ),
      );
    } else {
      out.push(h('div', { class: 'edit-status', 'data-testid': 'edit-status' }, live ? 'Saving edit…' : 'Edit queued'));
    }
  }
  // Refusals: of an edit (keyed by editKey), of a reaction (by id).
  const err = act.errors.get(editKey(m)) || (m.id && act.errors.get(m.id));
  if (err) out.push(h('div', { class: 'action-error', 'data-testid': 'action-error' }, h('span', { role: 'alert' }, err)));
  return out;
}

/** highlighted reports whether m is the message a jump just landed on. */
export function highlighted(m) {
  return act.highlight === m.id;
}

// ---------- edit ----------

function startEdit(m) {
  const { h, app, rerender } = act.hooks;
  act.picker = '';
  act.errors.delete(editKey(m));
  act.editing = editKey(m);
  act.editor = h('textarea', {
    class: 'edit-input',
    'data-testid': 'edit-input',
    'data-focus': `edit-input:${editKey(m)}`,
    'aria-label': 'Edit your message',
    'aria-describedby': `edit-hint-${editKey(m)}`,
    rows: 2,
  });
  act.editor.value = messageText(m);
  act.editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      // The focus goes back to Edit: some input paths (synthetic key
      // events, some IMEs) deliver this Enter's key press there too, which
      // must not open the editor again. Until the key is released, Edit
      // ignores it.
      act.savingEnter = true;
      window.addEventListener('keyup', () => (act.savingEnter = false), { once: true, capture: true });
      saveEdit(m);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      cancelEdit(m);
    }
  });
  app.focusKey = `edit-input:${editKey(m)}`;
  rerender();
  const end = act.editor.value.length;
  act.editor.setSelectionRange(end, end);
}

function cancelEdit(m) {
  const { app, rerender } = act.hooks;
  act.editing = '';
  act.editor = null;
  app.focusKey = `edit:${editKey(m)}`;
  rerender();
}

function saveEdit(m) {
  const { app, rerender } = act.hooks;
  const c = app.client;
  const text = act.editor.value.trim();
  const max = c.limits.maxTextRunes;
  let err = '';
  if (!text && m.type !== 'image') err = 'A message cannot be empty. Delete it instead.';
  else if ([...text].length > max) err = `A message can hold at most ${max} characters.`;
  if (err) {
    act.errors.set(editKey(m), err);
    app.focusKey = `edit-input:${editKey(m)}`;
    rerender();
    return;
  }
  act.errors.delete(editKey(m));
  if (text !== messageText(m)) {
    // A stored message by its id; one still in the outbox (or stored
    // since the editor opened on it) by its client_id, after its send.
    if (m.id) c.edit(m.conversation_id, m.id, text);
    else c.editQueued(m, text);
  }
  cancelEdit(m);
}

// ---------- reactions ----------

function togglePicker(m) {
  const { app, rerender } = act.hooks;
  const open = act.picker !== m.id;
  act.picker = open ? m.id : '';
  app.focusKey = open ? `pick:${m.id}:${REACTION_SET[0][0]}` : `react:${m.id}`;
  rerender();
}

function closePicker(m) {
  const { app, rerender } = act.hooks;
  act.picker = '';
  app.focusKey = `react:${m.id}`;
  rerender();
}

/**
 * toggleReaction adds emoji to m as this user's reaction, or removes it
 * when it is theirs already. A new emoji on a message that holds the most
 * different ones is refused here, in words, before asking the server.
 */
async function toggleReaction(m, emoji) {
  const { app, humanError, rerender, scheduleRender } = act.hooks;
  const c = app.client;
  const cur = app.threads.get(m.conversation_id)?.msgs.get(m.id) || m;
  const rs = cur.reactions || [];
  const has = rs.some((r) => r.emoji === emoji && r.me);
  act.errors.delete(m.id);
  if (!has && !rs.some((r) => r.emoji === emoji) && rs.length >= MAX_REACTION_KINDS) {
    act.errors.set(m.id, `This message already has ${MAX_REACTION_KINDS} different reactions, the most it can hold. Pick one of those instead.`);
    rerender();
    return;
  }
  rerender();
  try {
    const res = has ? await c.unreact(m.conversation_id, m.id, emoji) : await c.react(m.conversation_id, m.id, emoji);
    // Only this emoji is taken from the answer: events about the others
    // may have arrived since (a reply and events come in either order).
    const t = app.threads.get(m.conversation_id);
    const now = t?.msgs.get(m.id);
    if (now && !now.deleted) {
      const r = (res.reactions || []).find((x) => x.emoji === emoji);
      t.msgs.set(m.id, { ...now, reactions: setReaction(now.reactions, emoji, r?.count || 0, !has) });
    }
    scheduleRender();
  } catch (err) {
    const limit = err.code === 'invalid' && /different emoji/.test(err.message || '');
    act.errors.set(
      m.id,
      limit
        ? `This message already has ${MAX_REACTION_KINDS} different reactions, the most it can hold. Pick one of those instead.`
        : `Could not ${has ? 'remove' : 'add'} the reaction. ${humanError(err)}`,
    );
    rerender();
  }
}

// ---------- replies ----------

function startReply(m) {
  const { input } = act.hooks;
  act.replyTo = { conversation_id: m.conversation_id, id: m.id, sender_name: m.sender_name, text: messageText(m), type: m.type };
  renderReplyBar();
  input.focus();
}

/** cancelReply drops the composer's reply (the × button, or Escape in the composer). */
export function cancelReply({ focus = true } = {}) {
  act.replyTo = null;
  renderReplyBar();
  if (focus) act.hooks.input.focus();
}

/** takeReply is the id the composer's next message replies to (then the bar goes), or ''. */
export function takeReply(conversationId) {
  const r = act.replyTo;
  if (!r || r.conversation_id !== conversationId) return '';
  cancelReply({ focus: false });
  return r.id;
}

function renderReplyBar() {
  const { h, app } = act.hooks;
  const r = act.replyTo;
  const bar = act.replyBar;
  bar.hidden = !r || r.conversation_id !== app.open;
  if (bar.hidden) {
    bar.replaceChildren();
    return;
  }
  const short = [...(r.text || '')].length > QUOTE_RUNES ? `${[...r.text].slice(0, QUOTE_RUNES).join('')}…` : r.text || (r.type === 'image' ? 'Image' : '');
  bar.replaceChildren(
    h(
      'span',
      { class: 'reply-to', 'data-testid': 'reply-to' },
      h('span', { class: 'reply-label' }, 'Replying to '),
      h('span', { class: 'sender' }, r.sender_name),
      ' ',
      h('span', { class: 'reply-text' }, short),
    ),
    h('button', { type: 'button', class: 'secondary', 'data-testid': 'reply-cancel', 'aria-label': `Cancel the reply to ${r.sender_name}`, onclick: () => cancelReply() }, '×'),
  );
}

/**
 * jumpTo scrolls the open thread to the message id (seq) and highlights
 * it, loading older pages first while it is not loaded (up to
 * JUMP_MAX_PAGES).
 */
export async function jumpTo(conversationId, id, seq) {
  const { app, announce, loadOlder, rerender } = act.hooks;
  const t = app.threads.get(conversationId);
  if (!t) return;
  act.errors.delete(id);
  for (let pages = 0; !t.msgs.has(id) && app.open === conversationId; ) {
    // Read down to seq already (t.older: where the next page starts)?
    const oldest = Math.min(t.older || Infinity, ...[...t.msgs.values()].map((m) => m.seq));
    if (!t.hasMore || t.error || oldest <= seq || pages >= JUMP_MAX_PAGES) break;
    if (t.loading) {
      // A page is on its way already (a scroll started it): wait for it.
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    pages++;
    await loadOlder(conversationId);
  }
  if (app.open !== conversationId) return;
  if (!t.msgs.has(id)) {
    announce(t.error || 'That message is too far back to show here.');
    return;
  }
  act.highlight = id;
  clearTimeout(act.highlightTimer);
  act.highlightTimer = setTimeout(() => {
    act.highlight = '';
    rerender();
  }, HIGHLIGHT_MS);
  app.focusKey = `msg:${id}`;
  rerender();
  const el = document.querySelector(`[data-testid=message][data-message-id="${CSS.escape(id)}"]`);
  el?.scrollIntoView({ block: 'center' });
  const m = t.msgs.get(id);
  announce(m.deleted ? 'The quoted message was deleted.' : `Showing the message from ${m.sender_name}.`);
}
