// Type declarations for parley.js (Parley's JavaScript SDK). They describe
// the module as it is; docs/sdk.md ("JavaScript SDK") says how to use it
// in a browser and under Node. Wire shapes follow docs/protocol.md.

/** Connection states, the same names as the Go SDK's. */
export declare const State: Readonly<{
  Disconnected: 'disconnected';
  Connecting: 'connecting';
  Connected: 'connected';
  Reconnecting: 'reconnecting';
  FeatureThrottled: 'featureThrottled';
}>;
export type StateName = (typeof State)[keyof typeof State];

export declare const TYPING_THROTTLE_MS: number;
/** How often, at most, noteDelivered reports what the client received (ms). */
export declare const DELIVERED_EVERY_MS: number;
export declare const TYPING_EXPIRY_MS: number;
/** The most different emoji one message holds (docs/protocol.md, react). */
export declare const MAX_REACTION_KINDS: number;
/** Where unread_count and unread_mentions stop: that value means that many or more. */
export declare const MAX_UNREAD_COUNT: number;
/** A count of unread messages as shown: the number, or "99+" from MAX_UNREAD_COUNT up. */
export declare function unreadLabel(n: number): string;
export declare const IMAGE_MAX_SIDE: number;
export declare const IMAGE_MAX_PIXELS: number;

/** Whether a close code means "reconnect and resume" (protocol.ShouldReconnect). */
export declare function shouldReconnect(code: number): boolean;
/** The full-jitter delay (ms) before reconnect attempt `attempt` (1-based). */
export declare function backoffDelay(attempt: number, rand?: () => number): number;
/** A client id for a new message (a UUID where crypto.randomUUID exists). */
export declare function newClientId(): string;
/** A protocol-2 cursor (shard number -> last position seen in it), as the wire has it. */
export type Cursor = Record<number, number>;
/** A copy of c if it is a protocol-2 cursor (shard keys, whole positions >= 0), else null. */
export declare function cleanCursor(c: unknown): Cursor | null;
/** Shrinks a photo over IMAGE_MAX_SIDE/IMAGE_MAX_PIXELS (browsers; elsewhere resolves to blob). */
export declare function shrinkImage(blob: Blob, opts?: { maxSide?: number; maxPixels?: number }): Promise<Blob>;

/** Wire error codes (docs/protocol.md section 7), plus "disconnected" for no answer. */
export type ErrorCode =
  | 'invalid' | 'bad_json' | 'unknown_op' | 'not_found' | 'conflict' | 'unauthorized' | 'forbidden'
  | 'rate_limited' | 'too_large' | 'unsupported' | 'unavailable' | 'internal' | 'disconnected';

/** An error with a wire code. */
export declare class ParleyError extends Error {
  constructor(code: ErrorCode | string, message?: string, retryAfterMs?: number);
  readonly name: 'ParleyError';
  code: ErrorCode | string;
  /** Wait this long before retrying (0: not said). */
  retryAfterMs: number;
}

export interface User {
  id: string;
  name: string;
  created_at: string;
  /** The profile (set_profile); absent while unset. */
  display_name?: string;
  avatar_id?: string;
}
export interface Member {
  user_id: string;
  name: string;
  read_seq: number;
  /** The newest seq a client of the member received; never below read_seq. */
  delivered_seq?: number;
  display_name?: string;
  avatar_id?: string;
}
export interface Attachment {
  id: string;
  content_type: string;
  size: number;
  width: number;
  height: number;
  /** A file's sanitised original name; absent for an image. */
  name?: string;
  url?: string;
  /** An image's thumbnail; absent for a file. */
  thumb_url?: string;
}
export interface Message {
  id: string;
  conversation_id: string;
  seq: number;
  sender_id: string;
  sender_name: string;
  client_id: string;
  type: 'text' | 'image' | 'file';
  text?: string;
  attachment?: Attachment;
  created_at: string;
  deleted?: boolean;
  deleted_at?: string;
  /** Ids of the members the text's @names name (docs/protocol.md, Mentions). */
  mentions?: string[];
  /** When the sender last edited the text; absent if never. */
  edited_at?: string;
  /** The message this one replies to, as it is now. */
  reply_to?: Quote;
  /** Filled in history pages only (a client applies reaction events to them). */
  reactions?: Reaction[];
}
/**
 * A reply's quote of its parent: the first 100 code points of its text, or
 * deleted; or, when the parent's sender is a user the reader blocked,
 * hidden: then only message_id, seq and hidden are present.
 */
export interface Quote {
  message_id: string;
  seq: number;
  /** Absent when hidden. */
  sender_id?: string;
  /** Absent when hidden. */
  sender_name?: string;
  /** Absent when hidden. */
  type?: 'text' | 'image' | 'file';
  text?: string;
  deleted?: boolean;
  /** The parent's sender is a user the reader blocked: show "a hidden message". */
  hidden?: boolean;
}
/** One emoji on a message: how many users hold it, and whether the caller does. */
export interface Reaction {
  emoji: string;
  count: number;
  me?: boolean;
}
/** The answer to react/unreact: the message's reactions now. */
export interface Reactions {
  message_id: string;
  reactions: Reaction[];
}
/**
 * A page of history (`history`, GET /v1/conversations/{id}/messages),
 * ascending by seq. With has_more, next is the following page's cursor
 * (before for a newest or before page, after for an after page); the page
 * may be short, even empty, when messages hidden by a block filled what
 * the server reads for one page.
 */
export interface MessagePage {
  messages: Message[];
  has_more: boolean;
  next?: number;
}
/** A page of GET /v1/search or GET /v1/mentions, newest first. */
export interface SearchPage {
  results: SearchResult[];
  has_more: boolean;
  next?: string;
}
export interface SearchResult {
  message: Message;
  /** The text cut into parts; render each as text, a match marked. */
  highlight?: { text: string; match?: boolean }[];
}
export interface Conversation {
  id: string;
  kind: 'direct' | 'group';
  title?: string;
  created_by: string;
  created_at: string;
  last_seq: number;
  last_activity_at: string;
  members: Member[] | null;
  last_message?: Message;
  unread_count: number;
  /** How many unread messages mention the viewer. */
  unread_mentions?: number;
  read_seq: number;
  /** The viewer's message request (a direct conversation a non-contact started); absent when none. */
  request?: 'pending' | 'declined';
}
/** Who may start a conversation with the user, and whom they blocked (oldest first). */
export interface Privacy {
  consent: 'everyone' | 'contacts';
  blocked: { user_id: string; name: string }[];
}
export type EventType =
  | 'newMessage' | 'messageRead' | 'messageDeleted' | 'conversationUpdated'
  | 'typingStarted' | 'typingStopped' | 'userOnline' | 'userOffline'
  | 'messageEdited' | 'reactionAdded' | 'reactionRemoved' | 'flagsChanged'
  | 'messageDelivered' | 'profileUpdated' | 'userBlocked' | 'userUnblocked'
  | 'privacyChanged' | 'requestAccepted' | 'requestDeclined';
export interface ParleyEvent {
  /** A durable event's position in its shard of the log; absent on ephemeral ones. */
  pos?: number;
  /** A durable event's shard of the log; absent when 0. */
  shard?: number;
  type: EventType;
  conversation_id?: string;
  user_id?: string;
  user_name?: string;
  message?: Message;
  read_seq?: number;
  conversation?: Conversation;
  change?: 'created' | 'renamed' | 'members_added' | 'members_removed' | 'members_promoted' | 'members_demoted';
  user_ids?: string[];
  /** reactionAdded/reactionRemoved: the message, its seq, the emoji and its count after the change (absent when 0). */
  message_id?: string;
  seq?: number;
  emoji?: string;
  count?: number;
  /** messageDelivered: user_id's delivered position now. */
  delivered_seq?: number;
  /** profileUpdated: user_id's profile after the change ("": none). */
  profile?: { display_name: string; avatar_id: string };
  /** privacyChanged: the consent after the change. */
  consent?: 'everyone' | 'contacts';
  /** flagsChanged: the member's flags after the change. */
  flags?: { muted: boolean; archived: boolean };
  at: string;
}
export interface Session {
  token: string;
  user: User;
  expires_at: string;
}
export interface Welcome {
  user: User;
  session_id: string;
  head: number;
  heartbeat_interval_ms: number;
  heartbeat_timeout_ms: number;
  max_frame_bytes: number;
  max_text_runes: number;
  resume_limit: number;
  online: string[] | null;
  /** Protocol 2: every shard's head (sparse), and the log's shard count. */
  cursor?: Cursor;
  shards?: number;
}

/** Resolves to a session for a new account (POST /v1/auth/register). */
export declare function register(baseURL: string, username: string, password: string): Promise<Session>;
/** Resolves to a session (POST /v1/auth/login). */
export declare function login(baseURL: string, username: string, password: string): Promise<Session>;

/** A message waiting in the outbox (persisted in storage until stored). */
export interface OutboxItem {
  client_id: string;
  conversation_id: string;
  /** 'edit': an edit of message_id (or of message_client_id, a message this client sent). */
  type: 'text' | 'image' | 'file' | 'edit';
  text: string;
  attachment_id: string;
  created_at: string;
  order: number;
  status: 'pending' | 'sending' | 'failed' | string;
  error: string;
  not_before: number;
  tries: number;
  file_name?: string;
  file_type?: string;
  file_size?: number;
  /** A send's parent message id (a reply). */
  reply_to?: string;
  /** An edit's target. */
  message_id?: string;
  message_client_id?: string;
}

export interface Status {
  state: StateName;
  attempt: number;
  /** When the next attempt starts (ms since the epoch); 0 when none waits. */
  retryAt: number;
  reason: string;
  /** Throttled features and until when (ms since the epoch). */
  throttled: Record<string, number>;
}

/** What each listener type receives (Client.on). */
export interface ClientEvents {
  state: Status;
  event: ParleyEvent;
  welcome: { welcome: Welcome; resumed: boolean };
  resumed: { from: number; to: number; count: number; cursor?: Cursor; shards?: number };
  /** tab: the resync is another tab's (cause log_lost): it saw the server's log lost, and this client took its saved cursor. */
  resync: { head: number; reason: string; cause?: string; from?: number; shard?: number; cursor?: Cursor; lost?: number[]; shards?: number; tab?: boolean };
  outbox: OutboxItem[];
  sent: { item: OutboxItem; message: Message; blob?: Blob };
  edited: { item: OutboxItem; message: Message };
  typing: { conversationId: string };
  presence: { userId: string | null; online: boolean | null };
  unauthorized: { code: number; reason: string };
}

/** The subset of the Web Storage API the client uses to persist its outbox and position. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
  readonly length: number;
  key(index: number): string | null;
}

export interface ClientOptions {
  /** Bearer token. */
  token: string;
  /** The token's user ({id, name}). */
  user: Pick<User, 'id' | 'name'> & Partial<User>;
  /** The server, e.g. "https://chat.example.com" (default: the page's origin). */
  baseURL?: string;
  /** Where the outbox and position persist (default: localStorage). */
  storage?: StorageLike;
}

/**
 * One user's connection to a Parley server. Everything runs on one
 * thread; listeners are called synchronously, in order.
 */
export declare class Client {
  constructor(opts: ClientOptions);
  readonly token: string;
  readonly user: ClientOptions['user'];
  readonly baseURL: string;
  readonly state: StateName;
  /** The last durable position seen in each shard (the resume point, protocol 2), or null. */
  readonly cursor: Cursor | null;
  /** Shard 0's entry of the cursor (on a log of one shard, the whole position), or null. */
  readonly position: number | null;
  /** Per shard, how many resyncs with cause log_lost the cursor's entry has had (0 left out); saved with it for the user's other tabs. */
  readonly resets: Cursor;
  readonly outbox: OutboxItem[];
  readonly limits: { maxTextRunes: number; maxFrameBytes: number };
  readonly stats: Record<string, number>;

  on<K extends keyof ClientEvents>(type: K, fn: (detail: ClientEvents[K]) => void): number;
  off(id: number): void;
  status(): Status;
  /**
   * Connects and keeps the connection up until close(); token, when given,
   * replaces the token first. After a terminal close (state disconnected)
   * it connects again, like reconnectNow; otherwise it changes nothing else.
   */
  connect(opts?: { token?: string }): void;
  close(): void;
  reconnectNow(): void;
  /** Sends op over the live connection and resolves with the reply's data. */
  request<T = unknown>(op: string, data?: unknown): Promise<T>;
  /** Calls the HTTP API with this client's token. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  send(conversationId: string, text: string, opts?: { replyTo?: string }): OutboxItem;
  /** Queues an edit of this user's stored message (sent in order with the sends). */
  edit(conversationId: string, messageId: string, text: string): OutboxItem;
  /** Queues an edit of a message this client sent, stored or not yet. */
  editQueued(item: OutboxItem | string, text: string): OutboxItem;
  editsFor(conversationId: string): OutboxItem[];
  /** Adds this user's reaction; not queued (rejects "disconnected" offline). */
  react(conversationId: string, messageId: string, emoji: string): Promise<Reactions>;
  unreact(conversationId: string, messageId: string, emoji: string): Promise<Reactions>;
  sendImage(conversationId: string, file: Blob & { name?: string }, caption?: string, opts?: { replyTo?: string }): OutboxItem;
  /** Queues a file of any type (POST /v1/files, then a send of type "file"). */
  sendFile(conversationId: string, file: Blob & { name?: string }, caption?: string, opts?: { replyTo?: string }): OutboxItem;
  /** Signed links to an attachment, valid for 5 minutes without a token; thumb_url only for an image. */
  attachmentLink(attachmentId: string): Promise<{ url: string; thumb_url?: string; expires_at: string }>;
  /** Puts a failed item (the item or its client_id) back in line. */
  retry(item: OutboxItem | string): void;
  /** Drops an item (the item or its client_id) from the outbox. */
  discard(item: OutboxItem | string): void;
  itemsFor(conversationId: string): OutboxItem[];
  imageBlob(clientId: string): Promise<Blob | null>;
  fetchBlob(path: string): Promise<Blob>;
  /** Uploads an image as is (POST /v1/uploads), e.g. for an avatar. */
  uploadImage(blob: Blob): Promise<Attachment>;
  /** Changes this user's display_name and/or avatar_id ("" clears): PATCH /v1/me. */
  setProfile(change: { display_name?: string; avatar_id?: string }): Promise<User>;
  /** Finds messages (GET /v1/search), newest first; pass a page's next as cursor. */
  search(query: string, opts?: { conversationId?: string; cursor?: string; limit?: number }): Promise<SearchPage>;
  /** The messages that mention this user (GET /v1/mentions), newest first. */
  mentions(opts?: { cursor?: string; limit?: number }): Promise<SearchPage>;
  privacy(): Promise<Privacy>;
  setPrivacy(consent: 'everyone' | 'contacts'): Promise<Privacy>;
  block(userId: string): Promise<{ user_id: string; blocked: boolean }>;
  unblock(userId: string): Promise<{ user_id: string; blocked: boolean }>;
  acceptRequest(conversationId: string): Promise<Conversation>;
  declineRequest(conversationId: string): Promise<Conversation>;
  flush(): Promise<void>;
  typing(conversationId: string): void;
  /**
   * noteDelivered records that the page handled conversationId's messages
   * up to seq and reports it (the delivered op; POST /v1/delivered while
   * not connected), at most once per DELIVERED_EVERY_MS, coalesced.
   */
  noteDelivered(conversationId: string, seq: number): void;
  stopTyping(conversationId: string): void;
  typersIn(conversationId: string): { userId: string; name: string }[];
  isOnline(userId: string): boolean;
  refreshPresence(): Promise<void>;
}
