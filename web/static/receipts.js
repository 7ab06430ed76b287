// receipts.js: delivery receipts and profiles in the chat page (issue 15,
// items 5 and 6).
//
// Receipts: the page reports what it received through the SDK's
// Client.noteDelivered (the delivered op, coalesced like the Go SDK: the
// first message after a quiet second at once, those within the second in
// one report at its end, every conversation together). A message of this user's shows ✓ Sent, ✓✓
// Delivered (a client of every other member has it) and ✓✓ Read (in
// blue; in a group "Read by N of M" while some have not), derived from the members'
// delivered_seq and read_seq (docs/protocol.md, delivered).
//
// Profiles: display names and avatars (thumbnails fetched like any
// image's) in the list, the pane and messages, and a profile editor
// (display name, avatar upload). profileUpdated events keep the members
// current.
//
// app.js calls initReceipts once, noteListed for each page of the
// conversation list, noteReceived and onReceiptEvent for events, receiptOf while drawing a thread, and avatar/shownName while
// drawing people.

const rc = {
  hooks: null,
};

/**
 * initReceipts gives the module the page's pieces: h (the element
 * builder), app (the page state, whose client reports receipts), thumb(att)
 * (an attachment's thumbnail entry {url}), rerender() and the elements
 * meName (the top bar's name) and editor (the profile dialog).
 */
export function initReceipts(hooks) {
  rc.hooks = hooks;
  const { editor } = hooks;
  const form = editor.querySelector('form');
  const nameInput = editor.querySelector('[data-testid=profile-name]');
  const fileInput = editor.querySelector('[data-testid=profile-avatar]');
  const error = editor.querySelector('[data-testid=profile-error]');
  hooks.meName.addEventListener('click', () => {
    nameInput.value = hooks.app.me?.display_name || '';
    fileInput.value = '';
    error.textContent = '';
    editor.showModal();
  });
  editor.querySelector('[data-testid=profile-cancel]').addEventListener('click', () => editor.close());
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const c = hooks.app.client;
    try {
      const change = { display_name: nameInput.value.trim() };
      const file = fileInput.files?.[0];
      if (file) change.avatar_id = (await c.uploadImage(await squareAvatar(file))).id;
      const me = await c.setProfile(change);
      hooks.app.me = { ...hooks.app.me, ...me };
      renderMe();
      editor.close();
      hooks.rerender();
    } catch (err) {
      error.textContent = err.message || String(err);
    }
  });
}

/** AVATAR_SIDE is the side, in px, of the square avatar the page uploads. */
export const AVATAR_SIDE = 256;

/**
 * squareAvatar resolves to the middle square of an image, scaled down to
 * at most AVATAR_SIDE px (a PNG stays a PNG, anything else becomes a
 * JPEG of quality 0.9), turned upright by its EXIF orientation: a phone
 * photo, which the server's decode budget refuses as it is, becomes a
 * few kilobytes every viewer's list loads quickly. Bytes this browser
 * cannot read or draw resolve to the file itself, for the server to
 * judge.
 */
export async function squareAvatar(file) {
  if (typeof globalThis.createImageBitmap !== 'function') return file;
  let bmp;
  try {
    bmp = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return file;
  }
  try {
    const crop = Math.min(bmp.width, bmp.height);
    const side = Math.max(1, Math.min(AVATAR_SIDE, crop));
    const canvas = Object.assign(document.createElement('canvas'), { width: side, height: side });
    const ctx = canvas.getContext('2d');
    if (!ctx) return file;
    const type = file.type === 'image/png' ? 'image/png' : 'image/jpeg';
    if (type === 'image/jpeg') {
      ctx.fillStyle = '#fff'; // JPEG has no alpha: transparency becomes white
      ctx.fillRect(0, 0, side, side);
    }
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(bmp, (bmp.width - crop) / 2, (bmp.height - crop) / 2, crop, crop, 0, 0, side, side);
    return (await new Promise((resolve) => canvas.toBlob(resolve, type, 0.9))) || file;
  } finally {
    bmp.close();
  }
}

/** renderMe shows this user's display name (or name) in the top bar. */
export function renderMe() {
  const me = rc.hooks.app.me;
  rc.hooks.meName.textContent = me.display_name || me.name;
  rc.hooks.meName.title = 'Edit your profile';
}

/** noteReceived reports a newMessage from someone else as delivered (the SDK coalesces). */
export function noteReceived(m) {
  const app = rc.hooks.app;
  if (!m || m.sender_id === app.me.id) return;
  app.client?.noteDelivered(m.conversation_id, m.seq);
}

/**
 * noteListed reports the conversations of a fetched list whose newest
 * message this user's positions do not cover: messages that came while no
 * client of theirs was connected, beyond what a resume replays (a new
 * device, a lost position). As the Go SDK does.
 */
export function noteListed(convs) {
  const app = rc.hooks.app;
  for (const conv of convs || []) {
    const me = (conv.members || []).find((mm) => mm.user_id === app.me.id);
    if (me && Math.max(me.delivered_seq || 0, me.read_seq || 0) < (conv.last_seq || 0)) app.client?.noteDelivered(conv.id, conv.last_seq);
  }
}

/**
 * onReceiptEvent applies messageDelivered, messageRead (reading implies
 * delivery) and profileUpdated to the conversation's members; it returns
 * true when it changed something to redraw.
 */
export function onReceiptEvent(ev, conv) {
  const member = (conv?.members || []).find((mm) => mm.user_id === ev.user_id);
  switch (ev.type) {
    case 'messageDelivered':
      if (member) member.delivered_seq = Math.max(member.delivered_seq || 0, ev.delivered_seq || 0);
      return !!member;
    case 'messageRead':
      if (member) member.delivered_seq = Math.max(member.delivered_seq || 0, ev.read_seq || 0);
      return !!member;
    case 'profileUpdated': {
      const app = rc.hooks.app;
      if (member && ev.profile) Object.assign(member, ev.profile);
      if (ev.user_id === app.me.id && ev.profile) {
        app.me = { ...app.me, ...ev.profile };
        renderMe();
      }
      return !!member;
    }
  }
  return false;
}

/** mergePositions keeps the larger of each member's positions across a refetch. */
export function mergePositions(old, fresh) {
  for (const m of fresh || []) {
    const o = (old || []).find((x) => x.user_id === m.user_id);
    if (!o) continue;
    m.read_seq = Math.max(m.read_seq || 0, o.read_seq || 0);
    m.delivered_seq = Math.max(m.delivered_seq || 0, o.delivered_seq || 0);
  }
  return fresh;
}

/**
 * receiptOf is a stored own message's receipt: {status: 'sent' |
 * 'delivered' | 'read', label, recipients, delivered, read}.
 */
export function receiptOf(conv, m) {
  const others = (conv?.members || []).filter((mm) => mm.user_id !== m.sender_id);
  const delivered = others.filter((mm) => Math.max(mm.delivered_seq || 0, mm.read_seq || 0) >= m.seq).length;
  const read = others.filter((mm) => (mm.read_seq || 0) >= m.seq).length;
  const n = others.length;
  const group = conv?.kind === 'group';
  if (n > 0 && read === n) return { status: 'read', label: group ? `✓✓ Read by ${n}` : '✓✓ Read', recipients: n, delivered, read };
  if (group && read > 0) return { status: delivered === n ? 'delivered' : 'sent', label: `${delivered === n ? '✓✓' : '✓'} Read by ${read} of ${n}`, recipients: n, delivered, read };
  if (n > 0 && delivered === n) return { status: 'delivered', label: '✓✓ Delivered', recipients: n, delivered, read };
  if (group && delivered > 0) return { status: 'sent', label: `✓ Delivered to ${delivered} of ${n}`, recipients: n, delivered, read };
  return { status: 'sent', label: '✓ Sent', recipients: n, delivered, read };
}

/** shownName is a member's display name, or their name. */
export function shownName(member, fallback) {
  return member?.display_name || member?.name || fallback || '';
}

/**
 * avatar is a member's avatar thumbnail (an <img>, loaded like any
 * image's thumbnail), or initials when they have none. It is hidden from
 * screen readers: the name is beside it.
 */
export function avatar(member, size = 'small') {
  const { h, thumb } = rc.hooks;
  const cls = `avatar avatar-${size}`;
  if (member?.avatar_id) {
    const entry = thumb({ id: member.avatar_id });
    if (entry.url) return h('img', { class: cls, src: entry.url, alt: '', 'aria-hidden': 'true', 'data-testid': 'avatar', 'data-user-id': member.user_id });
  }
  const initial = (shownName(member) || '?').trim().slice(0, 1).toUpperCase();
  return h('span', { class: `${cls} initials`, 'aria-hidden': 'true', 'data-testid': 'avatar-initials', 'data-initial': initial });
}
