// Compiled (not run) by `tsc -p tsconfig.json` in TestNodeSDK: a program
// an app would write against parley.d.ts, under --strict. It fails to
// compile when the declarations are inconsistent or stop describing the
// use docs/sdk.md shows.
import {
  Client, DELIVERED_EVERY_MS, MAX_REACTION_KINDS, ParleyError, State, backoffDelay, login, newClientId, register, shouldReconnect,
  type Conversation, type Message, type MessagePage, type OutboxItem, type ParleyEvent, type Privacy, type SearchPage, type Reaction, type Reactions, type Session, type StateName, type Status,
} from '../static/parley.js';

const storage = new Map<string, string>();
async function main(baseURL: string): Promise<void> {
  const s: Session = await register(baseURL, 'alice', 'correct horse battery').catch(() => login(baseURL, 'alice', 'correct horse battery'));
  const c = new Client({
    token: s.token, user: s.user, baseURL,
    storage: {
      getItem: (k) => storage.get(k) ?? null, setItem: (k, v) => void storage.set(k, v),
      removeItem: (k) => void storage.delete(k), get length() { return storage.size; },
      key: (i) => [...storage.keys()][i] ?? null,
    },
  });
  const id: number = c.on('state', (st: Status) => {
    const name: StateName = st.state;
    if (name === State.Reconnecting) console.log(`retry at ${new Date(st.retryAt).toISOString()}`);
  });
  c.on('event', (ev: ParleyEvent) => {
    if (ev.type === 'newMessage' && ev.message) console.log(ev.message.seq, ev.message.text ?? '');
  });
  c.on('sent', ({ item, message }: { item: OutboxItem; message: Message }) => console.log(item.client_id, message.seq));
  // A refused token: log in again and connect with the new one.
  c.on('unauthorized', ({ code }) => {
    console.log(code);
    void login(baseURL, 'alice', 'correct horse battery').then((fresh: Session) => c.connect({ token: fresh.token }));
  });
  c.connect();
  const conv = await c.api<Conversation>('POST', '/v1/conversations/direct', { username: 'bob' });
  const item: OutboxItem = c.send(conv.id, 'hello');
  const page = await c.request<MessagePage>('history', { conversation_id: conv.id, limit: 50 });
  const reply: OutboxItem = c.send(conv.id, 'yes', { replyTo: page.messages[0]?.id });
  const edit: OutboxItem = c.edit(conv.id, page.messages[0]?.id ?? '', 'hello, edited');
  c.editQueued(reply, 'yes!');
  if (item.status === 'failed') c.retry(item); // the item or its client_id
  if (reply.status === 'failed') c.discard(reply.client_id);
  c.on('edited', ({ message }: { item: OutboxItem; message: Message }) => console.log(message.edited_at, message.reply_to?.text));
  const rs: Reactions = await c.react(conv.id, page.messages[0]?.id ?? '', '👍');
  console.log(edit.type, c.editsFor(conv.id).length, rs.reactions.map((r: Reaction) => `${r.emoji} ${r.count} ${r.me ?? false}`), MAX_REACTION_KINDS);
  await c.unreact(conv.id, rs.message_id, '👍');
  console.log(item.status, page.messages.length, c.status().state, c.position, c.isOnline('bob'), c.typersIn(conv.id));
  try {
    await c.api('GET', '/v1/users/nobody');
  } catch (err) {
    if (err instanceof ParleyError) console.log(err.code, err.retryAfterMs);
  }
  const found: SearchPage = await c.search('hello', { conversationId: conv.id, limit: 5 });
  const more: SearchPage = await c.mentions({ cursor: found.next });
  const priv: Privacy = await c.setPrivacy('contacts');
  const { blocked }: { blocked: boolean } = await c.block(priv.blocked[0]?.user_id ?? 'bob');
  const req: Conversation = await c.acceptRequest(conv.id);
  c.on('event', (ev: ParleyEvent) => {
    if (ev.type === 'messageDelivered') console.log(ev.delivered_seq);
    if (ev.type === 'privacyChanged') console.log(ev.consent);
    if (ev.type === 'newMessage' && ev.message && ev.message.sender_id !== c.user.id) c.noteDelivered(ev.message.conversation_id, ev.message.seq);
  });
  const every: number = DELIVERED_EVERY_MS;
  console.log(every);
  console.log(found.results[0]?.highlight, more.has_more, blocked, req.request ?? 'none', (await c.privacy()).consent);
  await c.unblock('bob');
  await c.declineRequest(conv.id);
  const delay: number = backoffDelay(3);
  const again: boolean = shouldReconnect(4001);
  console.log(delay, again, newClientId());
  c.off(id);
  c.close();
}
void main;
