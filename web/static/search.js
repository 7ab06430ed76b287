// search.js: finding messages and naming people in the chat page (issue 14):
// the search box in the sidebar, whose results open their conversation at
// the message, and @-completion of the open conversation's members in the
// composer. Results are drawn as text: the server's highlight parts become
// text nodes and <mark> elements, never HTML.

let ctx; // set by initSearch: {h, app, openAt, input, titleOf}

const ui = {};

/**
 * initSearch wires the search form and the composer's completion.
 * deps: h (element builder), app (the page's state; app.client searches), openAt(conversationId, seq, messageId) (opens a
 * conversation at a message), input (the composer's textarea), titleOf(conv).
 */
export function initSearch(deps) {
  ctx = deps;
  ui.form = document.getElementById('search-form');
  ui.query = document.querySelector('[data-testid="search-input"]');
  ui.results = document.querySelector('[data-testid="search-results"]');
  ui.status = document.querySelector('[data-testid="search-status"]');
  ui.suggest = document.querySelector('[data-testid="mention-suggestions"]');
  ui.form.addEventListener('submit', (e) => {
    e.preventDefault();
    search(ui.query.value, '');
  });
  ui.query.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') clearSearch();
  });
  // How to search, while the box is empty and has the focus (the
  // placeholder is too short to say it).
  ui.query.addEventListener('focus', () => {
    if (!ui.status.textContent && ui.results.hidden) ui.status.textContent = SEARCH_HINT;
  });
  ui.query.addEventListener('blur', () => {
    if (ui.status.textContent === SEARCH_HINT) ui.status.textContent = '';
  });
  // Capture, so a pick takes Enter and Tab before the composer sends.
  deps.input.addEventListener('keydown', onComposerKey, { capture: true });
  deps.input.addEventListener('input', suggestMentions);
  deps.input.addEventListener('blur', () => setTimeout(hideSuggestions, 150));
}

// ---------- search ----------

let searchGen = 0;

/** SEARCH_HINT says how a query matches (docs/protocol.md, search). */
const SEARCH_HINT = 'Every word must match; end one with * to match the start of a word.';

/** when is a result's time: the time today, else the date and time. */
function when(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
}

/** search asks the server and draws a page of results (after cursor). */
async function search(query, cursor) {
  const q = query.trim();
  if (!q) {
    clearSearch();
    return;
  }
  const gen = ++searchGen;
  ui.status.textContent = 'Searching…';
  let page;
  try {
    page = await ctx.app.client.search(q, { cursor, limit: 20 });
  } catch (err) {
    if (gen === searchGen) ui.status.textContent = `Search failed: ${err.message || err}`;
    return;
  }
  if (gen !== searchGen) return; // a newer search is under way
  const { h } = ctx;
  const items = (page.results || []).map((r) =>
    h(
      'li',
      {},
      h(
        'button',
        {
          type: 'button',
          class: 'search-result',
          'data-testid': 'search-result',
          'data-conversation-id': r.message.conversation_id,
          'data-message-id': r.message.id,
          'data-seq': r.message.seq,
          onclick: () => ctx.openAt(r.message.conversation_id, r.message.seq, r.message.id),
        },
        h('span', { class: 'search-where' }, [...new Set([convTitle(r.message.conversation_id), r.message.sender_name, when(r.message.created_at)])].filter(Boolean).join(' · ')),
        h('span', { class: 'search-text', 'data-testid': 'search-text' }, highlighted(r)),
      ),
    ),
  );
  if (cursor) ui.results.querySelector('[data-testid="search-more"]')?.parentElement.remove();
  else ui.results.replaceChildren();
  ui.results.append(...items);
  if (page.has_more) {
    ui.results.append(
      h('li', {}, h('button', { type: 'button', class: 'link-button', 'data-testid': 'search-more', onclick: () => search(q, page.next) }, 'More results')),
    );
  }
  const n = ui.results.querySelectorAll('[data-testid="search-result"]').length;
  ui.status.textContent = n ? `${n}${page.has_more ? '+' : ''} found` : 'Nothing found';
  ui.results.hidden = false;
}

/** highlighted turns a result's highlight parts into text and <mark>s. */
function highlighted(r) {
  const { h } = ctx;
  if (!r.highlight || !r.highlight.length) return r.message.text || '';
  return r.highlight.map((p) => (p.match ? h('mark', { 'data-testid': 'search-match' }, p.text) : p.text));
}

function convTitle(id) {
  const conv = ctx.app.convs.get(id);
  return conv ? ctx.titleOf(conv) : 'a conversation';
}

function clearSearch() {
  searchGen++;
  ui.results.replaceChildren();
  ui.results.hidden = true;
  ui.status.textContent = '';
}

// ---------- @-completion ----------

let picks = []; // the members offered
let active = 0; // the highlighted one
let word = null; // {start, end}: the @name being typed, '@' included

// A name's characters as the server reads a mention (docs/protocol.md).
const NAME = /[\p{L}\p{Nd}\p{Mn}_.-]/u;

/** mentionAt finds the @word that ends at the caret, or null. */
function mentionAt(text, caret) {
  let i = caret;
  while (i > 0 && NAME.test(text[i - 1])) i--;
  if (i === 0 || text[i - 1] !== '@') return null;
  const before = i >= 2 ? text[i - 2] : '';
  if (before && (NAME.test(before) || before === '@')) return null; // an e-mail, @@
  return { start: i - 1, end: caret, prefix: text.slice(i, caret).toLowerCase() };
}

function suggestMentions() {
  const input = ctx.input;
  const conv = ctx.app.open && ctx.app.convs.get(ctx.app.open);
  const at = conv && input.selectionStart === input.selectionEnd ? mentionAt(input.value, input.selectionStart) : null;
  if (!at) {
    hideSuggestions();
    return;
  }
  // Members other than me whose name is a username (one a mention can
  // spell: no spaces), starting with what is typed.
  picks = (conv.members || [])
    .filter((m) => m.user_id !== ctx.app.me.id && /^[\p{L}\p{Nd}\p{Mn}_.-]{3,32}$/u.test(m.name))
    .filter((m) => m.name.toLowerCase().startsWith(at.prefix))
    .slice(0, 8);
  if (!picks.length) {
    hideSuggestions();
    return;
  }
  word = at;
  active = 0;
  drawSuggestions();
}

function drawSuggestions() {
  const { h } = ctx;
  ui.suggest.replaceChildren(
    ...picks.map((m, i) =>
      h(
        'li',
        {
          id: `mention-${i}`,
          role: 'option',
          class: i === active ? 'active' : '',
          'aria-selected': i === active ? 'true' : 'false',
          'data-testid': 'mention-suggestion',
          'data-name': m.name,
          // mousedown, not click: the textarea keeps its focus and caret.
          onmousedown: (e) => {
            e.preventDefault();
            pick(i);
          },
        },
        `@${m.name}`,
      ),
    ),
  );
  ui.suggest.hidden = false;
  ctx.input.setAttribute('aria-activedescendant', `mention-${active}`);
}

function hideSuggestions() {
  picks = [];
  word = null;
  ui.suggest.hidden = true;
  ui.suggest.replaceChildren();
  ctx.input.removeAttribute('aria-activedescendant');
}

/** pick puts "@name " in place of the word being typed. */
function pick(i) {
  const m = picks[i];
  if (!m || !word) return;
  const input = ctx.input;
  const text = `@${m.name} `;
  input.setRangeText(text, word.start, word.end, 'end');
  hideSuggestions();
  input.dispatchEvent(new Event('input', { bubbles: true }));
}

function onComposerKey(e) {
  if (ui.suggest.hidden || !picks.length) return;
  switch (e.key) {
    case 'ArrowDown':
    case 'ArrowUp':
      active = (active + (e.key === 'ArrowDown' ? 1 : picks.length - 1)) % picks.length;
      drawSuggestions();
      break;
    case 'Enter':
    case 'Tab':
      if (e.shiftKey) return;
      pick(active);
      break;
    case 'Escape':
      hideSuggestions();
      break;
    default:
      return;
  }
  e.preventDefault();
  e.stopImmediatePropagation();
}
