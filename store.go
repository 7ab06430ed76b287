package parley

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// Store keeps users, conversations, messages, attachments and the event log.
//
// Implementations: internal/sqlite (the embedded default) and
// internal/postgres. Both pass internal/storetest, which is the precise
// statement of this contract; read it with this doc.
//
// Rules every implementation keeps:
//
//   - Authorization lives here: every method that takes a userID and a
//     conversation returns ErrNotFound when the user is not a member, so no
//     caller can forget the check and existence does not leak.
//   - Every write that returns events has committed them before it returns;
//     the events carry their positions and Audience. A write either commits
//     whole or not at all.
//   - Positions are dense and assigned in commit order per shard of the
//     event log (ShardedLog; with one shard, the default, they are
//     global: see the package doc). Head returns shard 0's newest
//     committed position.
//   - Writes are batched (group commit): many concurrent calls share one
//     transaction, so throughput does not stop at one fsync per message.
//     A call's failure (a validation error, say) does not fail the others
//     in its batch.
//   - Methods are safe for concurrent use. Validation errors are *Error
//     with EINVALID; unknown users, conversations and messages ENOTFOUND.
type Store interface {
	// CreateUser registers a user with a password hash (the store never sees
	// passwords) under NormalizeUsername(name). Names are unique by
	// NameKey: ECONFLICT (NameTaken) if another user's name has the same
	// key (the same name in another case or width, or a look-alike).
	CreateUser(ctx context.Context, name string, passwordHash []byte) (User, error)
	// Credentials returns the user with this name and the password hash.
	// ENOTFOUND when no such user or the user has no password. Like
	// UserByName, it finds a user by its name's NameKey (or, for a user
	// whose look-alike name predates keys, by the name itself).
	Credentials(ctx context.Context, name string) (User, []byte, error)
	// EnsureUser creates the user with this id and name on first sight and
	// updates the name when it changed (tokens minted by integrators). The
	// name (a display name, not normalised) is unique by NameKey as in
	// CreateUser: ECONFLICT if another user's name looks like it.
	EnsureUser(ctx context.Context, id, name string) (User, error)
	// User returns a user by id; UserByName by name (see Credentials).
	User(ctx context.Context, id string) (User, error)
	UserByName(ctx context.Context, name string) (User, error)

	// CreateDirect returns the direct conversation between userID and
	// otherID, creating it when there is none; it is idempotent (one per
	// pair, in either order). Events are empty when it already existed.
	CreateDirect(ctx context.Context, userID, otherID string) (Conversation, []Event, error)
	// CreateGroup creates a group with the creator and members (duplicates
	// and the creator in memberIDs are ignored).
	CreateGroup(ctx context.Context, userID, title string, memberIDs []string) (Conversation, []Event, error)
	// UpdateConversation renames a group, adds or removes members and
	// promotes or demotes them (see Role). Owners may do all of it; a
	// member may only remove themselves (leave), and anything else a
	// member asks for is EFORBIDDEN; a non-member (or a removed one) gets
	// ENOTFOUND. Promoting or demoting a user who is not a member (after
	// the change's adds and removes) is EINVALID, as is demoting the last
	// owner (promote another first); when the last owner leaves, the
	// longest-standing member is promoted. Direct conversations cannot be
	// changed (EINVALID). A refused change changes nothing. One event per
	// kind of change, in the order renamed, members_added,
	// members_removed, members_promoted, members_demoted; a change that
	// changes nothing (adding a member, promoting an owner) has none.
	UpdateConversation(ctx context.Context, userID, conversationID string, ch ConversationChange) (Conversation, []Event, error)

	// SetFlags changes userID's own flags of a conversation (nil fields
	// change nothing) and returns the conversation as userID sees it with
	// a flagsChanged event whose only Audience is userID. Setting flags
	// to what they are returns no events. Any member may (ENOTFOUND for
	// a non-member). Archiving a conversation with no messages is
	// allowed: the first message ends it.
	SetFlags(ctx context.Context, userID, conversationID string, muted, archived *bool) (Conversation, []Event, error)

	// SendMessage stores a message and returns it with a newMessage event.
	// It is idempotent on (sender, ClientID): a second call with the same
	// pair returns the stored message and no events. Sending also moves the
	// sender's read position to the new message.
	SendMessage(ctx context.Context, m NewMessage) (Message, []Event, error)
	// DeleteMessage turns the sender's own message into a tombstone
	// (EFORBIDDEN for someone else's). Deleting a tombstone again returns
	// it with no events.
	DeleteMessage(ctx context.Context, userID, conversationID, messageID string) (Message, []Event, error)
	// EditMessage replaces the text of the sender's own message (an
	// image's caption) and returns the message with a messageEdited event.
	// EFORBIDDEN for someone else's message, EINVALID for a tombstone. It
	// is idempotent on (sender, ClientID): an edit id already applied to
	// this message returns the message as it is and no events (ECONFLICT
	// when it was used for another message); an edit that leaves the text
	// as it is records its id and returns no events.
	EditMessage(ctx context.Context, e MessageEdit) (Message, []Event, error)
	// React adds (add) or removes emoji as userID's reaction on a message
	// of the conversation, and returns the message's reactions as userID
	// sees them. Adding one already there or removing one that is not
	// there changes nothing and returns no events; otherwise one
	// reactionAdded or reactionRemoved event. Adding to a tombstone, or a
	// new emoji to a message holding MaxReactionKinds, is EINVALID.
	React(ctx context.Context, userID, conversationID, messageID, emoji string, add bool) ([]Reaction, []Event, error)
	// MarkRead moves userID's read position up to seq (clamped to the
	// newest message). Moving backwards or not at all returns no events.
	MarkRead(ctx context.Context, userID, conversationID string, seq int64) ([]Event, error)

	// Conversations lists userID's conversations, most recent activity
	// first, with LastMessage, UnreadCount and ReadSeq filled.
	Conversations(ctx context.Context, userID string) ([]Conversation, error)
	// Conversation returns one conversation as userID sees it.
	Conversation(ctx context.Context, userID, conversationID string) (Conversation, error)
	// MemberIDs returns the ids of a conversation's members.
	MemberIDs(ctx context.Context, userID, conversationID string) ([]string, error)
	// Messages returns a page of history in ascending Seq order.
	Messages(ctx context.Context, userID, conversationID string, q MessageQuery) (MessagePage, error)
	// Contacts returns the ids of userID's contacts (not userID itself):
	// the audience of userID's presence. A contact is a user who is a
	// current member of a group with userID, or the other user of a
	// direct conversation in which both have written (a direct
	// conversation only one of them wrote in reveals nothing), and
	// neither blocked the other. At most MaxContacts, from userID's
	// MaxContacts most recently active direct conversations userID wrote
	// in and MaxContactGroups most recently active groups (in
	// Conversations' order): members of more recent conversations first
	// (each by the most recent of them shared with userID), ties by id. So
	// the bound is per user: A may be among B's contacts while B is not
	// among A's. Sorted by id.
	Contacts(ctx context.Context, userID string) ([]string, error)

	// EventsFor returns up to limit events after position `after` that
	// userID receives, in position order: events of conversations while
	// the user was a member (from the event that added them up to and
	// including the one that removed them). A newMessage of a message
	// deleted since carries the tombstone. Events a block hides from the
	// user are left out but read all the same, so a read reads at most
	// max(limit, ReplayScan) events of each membership window and stops
	// there: the page may then be short, even empty, with
	// EventsPage.Through where reading stopped.
	EventsFor(ctx context.Context, userID string, after int64, limit int) (EventsPage, error)
	// Events returns up to limit events of every conversation after
	// position `after`, with Audience filled: how a node fills a gap in
	// what its broker delivered.
	Events(ctx context.Context, after int64, limit int) ([]Event, error)
	// Head returns the newest committed position (0 for an empty log).
	Head(ctx context.Context) (int64, error)

	// PutAttachment stores an uploaded file and its thumbnail for ownerID.
	// a.ID must be set by the caller. With quota > 0, it stores nothing
	// and returns ETOOLARGE when the owner's UploadUsage plus len(data) and
	// len(thumb) would exceed quota; the check and the insert are one
	// write, so concurrent uploads cannot overshoot it together.
	PutAttachment(ctx context.Context, ownerID string, a Attachment, data, thumb []byte, quota int64) error
	// UploadUsage returns the bytes ownerID's stored attachments take:
	// their data and thumbnails, sent or not.
	UploadUsage(ctx context.Context, ownerID string) (int64, error)
	// DeleteOrphanAttachments deletes at most limit attachments created
	// before before that no message holds (never sent, or every message
	// that held them deleted), data and thumbnail, and returns how many it
	// deleted. A send that names an attachment and this delete are
	// serialised: a message never holds a deleted attachment.
	DeleteOrphanAttachments(ctx context.Context, before time.Time, limit int) (int, error)
	// AttachmentData returns an attachment and its bytes (the thumbnail's
	// when thumb is set: an image's, its full data when it has none, and
	// none, nil, for a file (Name set), so that thumb is the cheap way to
	// check access) to its owner or to a member of a conversation with a
	// message that holds it; ENOTFOUND to anyone else.
	AttachmentData(ctx context.Context, userID, attachmentID string, thumb bool) (Attachment, []byte, error)
	// AttachmentInfo returns what AttachmentData would without its
	// bytes: the attachment and the length of the bytes (0 for a file's
	// thumb), to the same users, ENOTFOUND to anyone else. It reads no
	// byte of the data or thumbnail, so a download learns how much it
	// will hold, and that it may, before it loads anything.
	AttachmentInfo(ctx context.Context, userID, attachmentID string, thumb bool) (Attachment, int64, error)
	// ReadAttachment reads len(p) bytes of what AttachmentData would
	// return, from byte off, into p, to the same users (ENOTFOUND to
	// anyone else), as io.ReaderAt does: it returns how many it read,
	// fewer than len(p) only with an error, io.EOF at the end of the
	// bytes. A download reads its attachment so, a chunk at a time, and
	// never holds it whole; each call checks access again.
	ReadAttachment(ctx context.Context, userID, attachmentID string, thumb bool, off int64, p []byte) (int, error)

	// Close waits for writes under way and releases the store.
	Close() error
}

// MultiSender is implemented by stores that take a run of sends at once:
// the server hands it the consecutive sends of one connection, so a store
// batch holds several sends per connection instead of one (a connection's
// requests would otherwise each wait for the commit of the one before).
// Both stores in this module implement it; storetest checks it. A Store
// that does not is called with SendMessage, one send after the other.
type MultiSender interface {
	// SendMessages stores ms as SendMessage would, one after the other
	// in slice order: per conversation, ms[i] gets a lower Seq (and
	// position) than any later ms[j] that is stored, a failed send does
	// not fail the others, and a ClientID repeated within ms is stored
	// once (the later send returns the stored message and no events).
	//
	// done is called once per send, in slice order, on the calling
	// goroutine, as soon as that send is committed (or failed), before
	// SendMessages returns. If ctx ends, the sends no batch has taken
	// yet fail with ctx.Err(); those are always the last ones of ms, so
	// no send is stored after a later one of the same call failed with
	// a context error.
	SendMessages(ctx context.Context, ms []NewMessage, done func(i int, m Message, evs []Event, err error))
}

// AsyncSender is implemented by stores that can answer a run of sends
// without a goroutine waiting for it: the server queues each send's reply
// from done, so a commit does not wake one goroutine per writer of the
// batch. Both stores in this module implement it; storetest checks it.
type AsyncSender interface {
	// SendMessagesAsync stores ms as SendMessages does (same order,
	// results and errors) but returns once they are queued, without
	// waiting for a commit. done is called once per send, in slice
	// order, one call at a time, each either on the store's batcher goroutine (after
	// the commit, or failure, of the send's batch; an invalid send is
	// answered in its place, with the send after it) or on the calling
	// goroutine before SendMessagesAsync returns (the store is closed,
	// or no send of ms is valid). A send queued is always run and answered,
	// even while the store closes, unless drop is set first: drop (nil:
	// never) is read when the batcher takes each send into a batch, and a
	// send it takes once drop is set is not run but answered
	// ErrSendDropped at once, on the batcher goroutine (so are the sends
	// after it: drop is never unset). A send already in a batch is run
	// and answered whatever drop says. The caller sets drop, from any
	// goroutine, when nobody waits for the answers any more (the server:
	// the connection that sent them closed; its client resends them). done
	// must be quick, must not block and must not call the store: every
	// write of the store waits while it runs. It may keep m and evs but
	// must not change them.
	SendMessagesAsync(ms []NewMessage, drop *atomic.Bool, done func(i int, m Message, evs []Event, err error))
}

// ErrSendDropped answers a send that AsyncSender.SendMessagesAsync did not
// run because its caller set drop before the store took it into a batch:
// nothing of it was stored.
var ErrSendDropped = &Error{Code: EUNAVAILABLE, Message: "the send was dropped before it was stored; send it again"}

// CommitPublisher is implemented by stores that hand the events of each
// committed write batch, at once, to one function: the server sets it to
// publish them to the broker, one publish per batch, instead of having
// every writer publish its own events after the commit (which wakes every
// writer of a batch to do it before the hub can deliver). Both stores in
// this module implement it.
type CommitPublisher interface {
	// PublishCommits sets publish to be called after every commit that
	// stored events, with all of them (durable, complete, as the write
	// methods return them) in position order (by shard, then position,
	// see ShardedLog), from the store's batcher (never two calls at
	// once), before any write of the batch returns. While it is set,
	// every event a write method returns has been (or is being) handed
	// to it: the caller publishes none of them again. publish must be
	// quick, must not block for long (every write of the store waits for
	// it) and must not call the store. It may keep the slice (each batch
	// has its own) but must not change the events: they share their
	// Message with what the writes return. nil removes it. Set it
	// before the first write: the events of a batch that began before
	// are not handed to it. One per store (the last set wins).
	PublishCommits(publish func(evs []Event))
}

// BulkReader is implemented by stores that read many users at once. A
// node warms its caches with it at start (the users of the latest events,
// the ones about to reconnect), so a reconnect storm after a restart does
// not cost a user read and a Contacts read per client.
type BulkReader interface {
	// UsersOf returns the users that exist among userIDs, in any order.
	UsersOf(ctx context.Context, userIDs []string) ([]User, error)
	// ContactsOf returns, for every id in userIDs, what Contacts returns
	// for it (an empty slice for a user with no contacts or no such user).
	ContactsOf(ctx context.Context, userIDs []string) (map[string][]string, error)
}

// ConversationPager is implemented by stores that read a user's
// conversation list a page at a time, so that a page costs what its
// conversations cost, not what the whole list does (the server then asks
// for one page per `conversations` request).
type ConversationPager interface {
	// ConversationsPage returns at most limit (at least 1) of what
	// Conversations returns for userID, in its order (newest activity
	// first, equal times: the greater id first), starting after the
	// conversation with activity afterAt and id afterID; afterID ""
	// starts at the top.
	ConversationsPage(ctx context.Context, userID string, afterAt time.Time, afterID string, limit int) ([]Conversation, error)
}

// NewMessage is what a sender asks to store.
type NewMessage struct {
	ConversationID string
	SenderID       string
	// ClientID is made by the client (a UUID is best) and makes the send
	// idempotent. Required; at most MaxClientIDLen bytes.
	ClientID string
	Type     MessageType
	// Text is required for text messages (1..MaxTextRunes code points,
	// valid UTF-8) and an optional caption for images.
	Text string
	// AttachmentID is required for image messages and must name an
	// attachment the sender uploaded.
	AttachmentID string
	// ReplyTo, when set, names the message this one replies to: a
	// message of the same conversation, not deleted (EINVALID otherwise).
	ReplyTo string
}

// MessageEdit is what a sender asks to change in their message.
type MessageEdit struct {
	UserID         string
	ConversationID string
	// MessageID names the message, or else MessageClientID, the client id
	// the user sent it with (so a client can edit a message whose send it
	// has not seen answered yet: its outbox sends the edit after it).
	MessageID       string
	MessageClientID string
	// ClientID is made by the client, one per edit (a UUID is best), and
	// makes the edit idempotent. Required; at most MaxClientIDLen bytes.
	ClientID string
	// Text is the new text: as a send's (1..MaxTextRunes code points, not
	// blank) for a text message, an optional caption for an image.
	Text string
}

// ConversationChange is a change to a group. Nil or empty fields change
// nothing.
type ConversationChange struct {
	Title  *string
	Add    []string
	Remove []string
	// Promote makes members owners; Demote makes owners members.
	Promote []string
	Demote  []string
}

// MessageQuery selects a page of history. With neither Before nor After it
// returns the newest messages. Before returns messages with Seq < Before,
// the newest of them; After returns messages with Seq > After, the oldest
// of them. A zero Before or After is "not given"; FromStart asks for the
// oldest messages, as After 0 would were 0 not "not given" (the protocol's
// `after: 0`), and may be combined with Before as After can. Limit
// defaults to DefaultPageLimit and is at most MaxPageLimit.
type MessageQuery struct {
	Before    int64
	After     int64
	FromStart bool
	Limit     int
}

// MessagePage is a page of messages in ascending Seq order. HasMore says
// whether there may be more in the direction of the query (older for
// Before and newest, newer for After), to ask for with Next.
type MessagePage struct {
	Messages []Message `json:"messages"`
	HasMore  bool      `json:"has_more"`
	// Next, set when HasMore, is the cursor of the following page: its
	// Before for a newest or Before page, its After for an After page. It
	// is the page's last message's Seq in that direction when the page is
	// full, or where reading stopped (HistoryWindow) when messages hidden
	// from the viewer filled the window: such a page is short, even
	// empty, and the pages after it may be too.
	Next int64 `json:"next,omitempty"`
}

// EventsPage is a page of a user's events (EventsFor, ShardEventsFor),
// in position order.
type EventsPage struct {
	Events []Event
	// Through, when not 0, is where the read stopped short of limit
	// events: at max(limit, ReplayScan) events of one of the user's
	// membership windows, too few of which the user may see (a run of a
	// user they blocked). Events then holds every event of (after,
	// Through] for the user, fewer than limit, and more may follow: the
	// next read is after Through. It is 0 when Events holds limit
	// events (the next read is after the last one's Pos) or every event
	// for the user after `after` (the end of the log when read).
	Through int64
}

// Next is the position to read after for the events that follow the
// page's: Through when set, else the last event's Pos, else after (the
// position the page was read after).
func (p EventsPage) Next(after int64) int64 {
	switch {
	case p.Through > 0:
		return p.Through
	case len(p.Events) > 0:
		return p.Events[len(p.Events)-1].Pos
	}
	return after
}

// Now is the store's clock, in UTC and rounded to microseconds so times
// survive both SQLite and PostgreSQL unchanged.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// QuotaError is the ETOOLARGE error PutAttachment returns when an upload
// of need bytes would take its owner, who stores used bytes, over quota.
func QuotaError(used, need, quota int64) *Error {
	return Errorf(ETOOLARGE, "upload quota: your uploads take %s of your %s and this one needs %s more; uploads never sent are deleted after a while",
		byteSize(used), byteSize(quota), byteSize(need))
}

func byteSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
