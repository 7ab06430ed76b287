// Package parley holds Parley's domain vocabulary: users, conversations,
// messages and the events that tell members about them, plus the two
// contracts the rest of the module is built on, [Store] and [Broker].
//
// Nothing in this package does I/O. The server lives in internal/server, the
// stores in internal/sqlite and internal/postgres, the wire frames in
// package protocol and the Go SDK in package client.
//
// # Positions
//
// Every durable event (a message, a delete, a read receipt, a conversation
// change) gets a position: an int64 from one global, dense sequence (1, 2,
// 3, ... with no holes) assigned in commit order. Commit order is what makes
// a position a safe resume cursor: a store hands out positions only while it
// holds the one write lock (SQLite's single writer, or a PostgreSQL advisory
// lock), so an event with a larger position can never become visible before
// one with a smaller position. A client that saw position P and asks for
// "everything after P" therefore misses nothing and sees nothing twice.
//
// Messages also carry a per-conversation sequence (Message.Seq, 1, 2, 3...)
// used for history pagination and read positions.
package parley

import (
	"encoding/json"
	"fmt"
	"time"
)

// Limits shared by the server, the SDKs and the docs. Changing one is a
// protocol change: update docs/protocol.md with it.
const (
	// MaxFrameBytes is the largest WebSocket frame the server reads.
	MaxFrameBytes = 64 << 10
	// MaxTextRunes is the longest message text, in Unicode code points.
	MaxTextRunes = 4000
	// MaxTitleRunes is the longest group title.
	MaxTitleRunes = 100
	// MaxGroupMembers is the most members a group may have.
	MaxGroupMembers = 256
	// MaxContacts bounds a user's contacts as presence uses them
	// (Store.Contacts): they are taken from the user's MaxContacts most
	// recently active direct conversations they wrote in and their
	// MaxContactGroups most recently active groups, members of more
	// recent conversations first, and at most MaxContacts are kept. A
	// user may be added to any number of groups by others, so without it
	// one user's welcome, presence reply and every presence transition
	// would grow with what others did to them, and so would the read
	// behind them: with it, a read takes at most MaxContacts direct
	// conversations of 2 and MaxContactGroups groups of MaxGroupMembers.
	MaxContacts = 1000
	// MaxContactGroups is how many of a user's groups, the most recently
	// active, make contacts (see MaxContacts).
	MaxContactGroups = 100
	// MaxUsernameRunes is the longest username; usernames are at least 3.
	MaxUsernameRunes = 32
	// DefaultPageLimit and MaxPageLimit bound a page of history.
	DefaultPageLimit = 50
	MaxPageLimit     = 100
	// HistoryWindow bounds what a page of history reads: the
	// HistoryWindow seqs next to its cursor. Messages of a user the
	// viewer blocked are left out of pages but read all the same, so a
	// page over a run of them may come back short or empty, with
	// MessagePage.Next where reading stopped; without the bound one page
	// would walk the whole run.
	HistoryWindow = 1000
	// MaxClientIDLen is the longest client-made message id.
	MaxClientIDLen = 64
	// MaxReactionKinds is the most distinct emoji one message may carry
	// (each user may add each of them once).
	MaxReactionKinds = 20
	// MaxEmojiBytes and MaxEmojiRunes bound one reaction's emoji.
	MaxEmojiBytes = 64
	MaxEmojiRunes = 16
	// QuoteRunes is how many code points of a parent's text a reply's
	// quote carries.
	QuoteRunes = 100
	// MaxUnreadCount bounds a conversation's unread_count and
	// unread_mentions: they count up to it, and a value of MaxUnreadCount
	// means that many or more (a client shows "99+"). Counting is the
	// only part of a conversation list whose work grows with history: a
	// user away from a hundred busy groups would otherwise have each
	// list read every message they missed.
	MaxUnreadCount = 99
	// ListWindow bounds what a conversation list reads of each
	// conversation: its unread counts and its last_message are taken
	// from the conversation's newest ListWindow messages. Deleted
	// messages and those of a user the viewer blocked count for nothing
	// but are read all the same, so without it a run of them (any
	// member can delete their own messages) would make every other
	// member's list read the whole run. Past the window the counts stop
	// early (they are capped anyway) and last_message is absent.
	ListWindow = 500
	// ReplayScan bounds what one read of a user's events (EventsFor)
	// reads: at most max(limit, ReplayScan) events of each of the user's
	// membership windows (a conversation, from the event that added them
	// to the one that removed them). Events of a user the reader blocked
	// are left out but read all the same, so over a run of them a read
	// stops there and says where (EventsPage.Through); without the bound
	// one read would walk the whole run, however small its limit.
	ReplayScan = 1000
	// ResumeLimit is how many missed events a resume replays at most. A
	// client further behind than this gets a resync instead and refetches
	// its state; nothing is skipped silently.
	ResumeLimit = 10000
)

// User is an account. IDs are opaque strings: UUIDv7 for registered users,
// the token's "sub" for users minted by an integrator.
type User struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// DisplayName and AvatarID are the user's profile (see Profile):
	// empty until the user sets them.
	DisplayName string `json:"display_name,omitempty"`
	AvatarID    string `json:"avatar_id,omitempty"`
}

// ConversationKind tells a direct (two-person) conversation from a group.
type ConversationKind string

const (
	Direct ConversationKind = "direct"
	Group  ConversationKind = "group"
)

// Member is a user's place in a conversation.
type Member struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
	// ReadSeq is the Seq of the newest message this member has read.
	ReadSeq int64 `json:"read_seq"`
	// DeliveredSeq is the Seq of the newest message a client of this
	// member has received: never below ReadSeq (reading implies
	// delivery), and it only moves forward.
	DeliveredSeq int64 `json:"delivered_seq"`
	// DisplayName and AvatarID are the member's profile (see Profile).
	DisplayName string `json:"display_name,omitempty"`
	AvatarID    string `json:"avatar_id,omitempty"`
	// Role is the member's role in a group: RoleOwner or RoleMember.
	// Members of a direct conversation are all RoleMember (it has no
	// owners and cannot be changed).
	Role Role `json:"role"`
}

// Role is a member's role in a group. Owners rename the group, add and
// remove members, and promote and demote; members may only leave. The
// creator is the first owner, and a group that has members always has an
// owner: when the last owner leaves, the longest-standing member (the
// earliest current membership) becomes one.
type Role string

const (
	RoleOwner  Role = "owner"
	RoleMember Role = "member"
)

// Conversation is a direct chat or a group. The fields after Members are
// seen from one user's side (the viewer) and are zero in events, which go to
// every member alike.
type Conversation struct {
	ID        string           `json:"id"`
	Kind      ConversationKind `json:"kind"`
	Title     string           `json:"title,omitempty"`
	CreatedBy string           `json:"created_by"`
	CreatedAt time.Time        `json:"created_at"`
	// LastSeq is the Seq of the newest message (0 when there is none).
	LastSeq int64 `json:"last_seq"`
	// LastActivityAt is when the newest message was sent, or when the
	// conversation was created if it has none.
	LastActivityAt time.Time `json:"last_activity_at"`
	Members        []Member  `json:"members"`

	// LastMessage is the newest message (a tombstone if it was deleted).
	LastMessage *Message `json:"last_message,omitempty"`
	// UnreadCount is derived, never stored: the number of messages not
	// deleted, sent by someone else, with Seq above the viewer's ReadSeq.
	UnreadCount int64 `json:"unread_count"`
	// UnreadMentions is derived like UnreadCount: how many of those
	// unread messages mention the viewer.
	UnreadMentions int64 `json:"unread_mentions"`
	// ReadSeq is the viewer's own read position.
	ReadSeq int64 `json:"read_seq"`
	// Muted and Archived are the viewer's own flags (MemberFlags).
	// Archived is derived: the viewer archived the conversation and no
	// message came since.
	Muted    bool `json:"muted"`
	Archived bool `json:"archived"`
	// Request is the viewer's request state of a direct conversation
	// (pending or declined; empty when it is no request of theirs).
	Request Request `json:"request,omitempty"`
}

// MemberFlags are a member's own settings of a conversation, the same on
// all their devices. A muted conversation keeps its unread count; clients
// do not notify for it. An archived one leaves the main list until a new
// message arrives (archiving stores the conversation's LastSeq; a message
// with a higher Seq ends it, with no write).
type MemberFlags struct {
	Muted    bool `json:"muted"`
	Archived bool `json:"archived"`
}

// MessageType tells a text message from an image message.
type MessageType string

const (
	Text  MessageType = "text"
	Image MessageType = "image"
	// File is a message carrying a file of any type (Attachment.Name set),
	// served for download only.
	File MessageType = "file"
)

// HasAttachment reports whether messages of type t carry an attachment
// (Image and File).
func (t MessageType) HasAttachment() bool { return t == Image || t == File }

// MaxFileNameBytes bounds an attachment's Name.
const MaxFileNameBytes = 255

// Message is one message. A deleted message stays as a tombstone: Deleted is
// true, Text and Attachment are gone, ID and Seq keep its place in order.
type Message struct {
	ID             string      `json:"id"`
	ConversationID string      `json:"conversation_id"`
	Seq            int64       `json:"seq"`
	SenderID       string      `json:"sender_id"`
	SenderName     string      `json:"sender_name"`
	ClientID       string      `json:"client_id"`
	Type           MessageType `json:"type"`
	Text           string      `json:"text,omitempty"`
	Attachment     *Attachment `json:"attachment,omitempty"`
	CreatedAt      time.Time   `json:"created_at"`
	Deleted        bool        `json:"deleted,omitempty"`
	DeletedAt      *time.Time  `json:"deleted_at,omitempty"`
	// EditedAt is when the sender last edited the text; nil if never.
	EditedAt *time.Time `json:"edited_at,omitempty"`
	// ReplyTo quotes the message this one replies to, as that message is
	// now (read when the reply is read, so it follows edits and deletes).
	ReplyTo *Quote `json:"reply_to,omitempty"`
	// Reactions are the message's reactions as the reader sees them,
	// filled in history pages (Store.Messages) only, ordered by the
	// oldest reaction each emoji still has.
	Reactions []Reaction `json:"reactions,omitempty"`
	// Mentions are the ids of the members the text's @names named when
	// it was sent or last edited (ParseMentions; the sender and names of
	// non-members are left out), in order of first appearance.
	Mentions []string `json:"mentions,omitempty"`
}

// Quote is the part of a replied-to message a reply carries.
type Quote struct {
	MessageID string `json:"message_id"`
	Seq       int64  `json:"seq"`
	// SenderID, SenderName and Type are the parent's; empty (left out of
	// the JSON) when Hidden, and only then.
	SenderID   string      `json:"sender_id,omitempty"`
	SenderName string      `json:"sender_name,omitempty"`
	Type       MessageType `json:"type,omitempty"`
	// Text is the first QuoteRunes code points of the parent's text (its
	// caption for an image); empty when Deleted or Hidden.
	Text    string `json:"text,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
	// Hidden: the parent's sender is a user the reader blocked, whose
	// messages are hidden from them everywhere (docs/protocol.md,
	// "Consent and blocks"). Such a quote holds MessageID, Seq and
	// Hidden only: see Hide.
	Hidden bool `json:"hidden,omitempty"`
}

// Hide returns q as a reader who blocked the parent's sender reads it:
// its place (MessageID, Seq) and Hidden, nothing of the parent's sender
// or content (not even whether it was deleted).
func (q *Quote) Hide() *Quote {
	return &Quote{MessageID: q.MessageID, Seq: q.Seq, Hidden: true}
}

// WithQuoteHidden returns m as a reader from whom its quote is hidden
// reads it (Quote.Hide): m itself when it quotes nothing or its quote is
// hidden already, else a copy (m's quote may be shared, with an event's
// other receivers say).
func (m *Message) WithQuoteHidden() *Message {
	if m.ReplyTo == nil || m.ReplyTo.Hidden {
		return m
	}
	c := *m
	c.ReplyTo = m.ReplyTo.Hide()
	return &c
}

// Reaction is one emoji on a message: how many users added it and
// whether the reader is one of them.
type Reaction struct {
	Emoji string `json:"emoji"`
	Count int64  `json:"count"`
	Me    bool   `json:"me,omitempty"`
}

// Attachment is an upload a message refers to: an image (Name empty), or
// a file (Name set, Width and Height 0).
type Attachment struct {
	ID string `json:"id"`
	// ContentType is sniffed from the content. A file's is never one a
	// browser would run (HTML, XML, SVG, scripts): those are
	// application/octet-stream.
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Width       int    `json:"width"`
	Height      int    `json:"height"`
	// Name is a file's original name, sanitised, for display only (the
	// file is stored under ID); empty for an image.
	Name string `json:"name,omitempty"`
	// URL and ThumbURL are paths on the server, filled by the server.
	URL      string `json:"url,omitempty"`
	ThumbURL string `json:"thumb_url,omitempty"`
}

// EventType names an event. The names are the wire names.
type EventType string

const (
	// Durable events: stored, with a position, replayed on resume.
	EventNewMessage          EventType = "newMessage"
	EventMessageRead         EventType = "messageRead"
	EventMessageDeleted      EventType = "messageDeleted"
	EventConversationUpdated EventType = "conversationUpdated"
	EventMessageEdited       EventType = "messageEdited"
	EventReactionAdded       EventType = "reactionAdded"
	EventReactionRemoved     EventType = "reactionRemoved"
	// EventFlagsChanged tells a user's own clients that they muted,
	// unmuted, archived or unarchived a conversation. Only that user
	// receives it (Event.Recipient).
	EventFlagsChanged EventType = "flagsChanged"
	// EventMessageDelivered: a member's delivered position moved
	// (receipts.go). Durable, to the members.
	EventMessageDelivered EventType = "messageDelivered"
	// EventProfileUpdated: a member changed their display name or avatar
	// (profile.go). Durable: one per conversation the user is in.
	EventProfileUpdated EventType = "profileUpdated"

	// Ephemeral events: never stored, no position, not replayed.
	EventTypingStarted EventType = "typingStarted"
	EventTypingStopped EventType = "typingStopped"
	EventUserOnline    EventType = "userOnline"
	EventUserOffline   EventType = "userOffline"
)

// Durable reports whether events of this type are stored and replayed.
func (t EventType) Durable() bool {
	switch t {
	case EventNewMessage, EventMessageRead, EventMessageDeleted, EventConversationUpdated,
		EventMessageEdited, EventReactionAdded, EventReactionRemoved, EventFlagsChanged,
		EventMessageDelivered, EventProfileUpdated,
		EventUserBlocked, EventUserUnblocked, EventPrivacyChanged, EventRequestAccepted, EventRequestDeclined:
		return true
	}
	return false
}

// Change says what a conversationUpdated event changed.
type Change string

const (
	ChangeCreated        Change = "created"
	ChangeRenamed        Change = "renamed"
	ChangeMembersAdded   Change = "members_added"
	ChangeMembersRemoved Change = "members_removed"
	// ChangeMembersPromoted: UserIDs became owners. When the last owner
	// leaves, the same write records their members_removed and then a
	// members_promoted with the leaver as actor and the
	// longest-standing member in UserIDs.
	ChangeMembersPromoted Change = "members_promoted"
	// ChangeMembersDemoted: UserIDs, owners, became members.
	ChangeMembersDemoted Change = "members_demoted"
)

// Event tells members that something happened.
type Event struct {
	// Pos is the position of a durable event in its shard's log; 0 for
	// ephemeral ones. With one shard (the default) it is global.
	Pos int64 `json:"pos,omitempty"`
	// Shard is the log shard the event is in (see ShardOf): its
	// conversation's, or 0 for a user's own events of no conversation.
	// Always 0 with one shard, and then left out of the wire.
	Shard          int       `json:"shard,omitempty"`
	Type           EventType `json:"type"`
	ConversationID string    `json:"conversation_id,omitempty"`
	// UserID and UserName name who acted: the sender, reader, deleter,
	// typist, the user who came online or went offline, or who changed
	// the conversation.
	UserID   string `json:"user_id,omitempty"`
	UserName string `json:"user_name,omitempty"`
	// Message is set on newMessage, messageEdited (the message as it is
	// now) and, as a tombstone, on messageDeleted.
	Message *Message `json:"message,omitempty"`
	// MessageID, Seq, Emoji and Count are set on reactionAdded and
	// reactionRemoved: UserID added or removed Emoji on that message,
	// which then has Count reactions with it (0 is left out). Count is a
	// state, not a delta, so applying the event to a page read after it
	// changes nothing.
	MessageID string `json:"message_id,omitempty"`
	Seq       int64  `json:"seq,omitempty"`
	Emoji     string `json:"emoji,omitempty"`
	Count     int64  `json:"count,omitempty"`
	// ReadSeq is set on messageRead: UserID has read up to this Seq.
	ReadSeq int64 `json:"read_seq,omitempty"`
	// DeliveredSeq is set on messageDelivered: a client of UserID has
	// received the conversation's messages up to this Seq.
	DeliveredSeq int64 `json:"delivered_seq,omitempty"`
	// Profile is set on profileUpdated: UserID's profile after the change.
	Profile *Profile `json:"profile,omitempty"`
	// Conversation and Change are set on conversationUpdated.
	Conversation *Conversation `json:"conversation,omitempty"`
	Change       Change        `json:"change,omitempty"`
	// UserIDs lists the users a membership change added or removed.
	UserIDs []string `json:"user_ids,omitempty"`
	// Flags is set on flagsChanged: UserID's flags after the change.
	Flags *MemberFlags `json:"flags,omitempty"`
	// Consent is set on privacyChanged: the user's setting after it.
	Consent Consent   `json:"consent,omitempty"`
	At      time.Time `json:"at"`

	// Recipient, when set, is the only user the event is for (a
	// member's own settings: flagsChanged); the other members neither
	// receive it nor have it replayed. Stores only; never on the wire.
	Recipient string `json:"-"`

	// Audience is who receives the event: the members at commit time (for
	// a removal, the removed users too), or for ephemeral events the users
	// the server chose. It travels between nodes but never to clients.
	Audience []string `json:"-"`

	// QuoteHidden lists the users of Audience who receive Message (a
	// newMessage's or a messageEdited's) with its quote hidden
	// (Message.WithQuoteHidden): they blocked the sender of the message
	// it replies to. Nil for everyone else's events: Message holds the
	// quote as the other receivers read it. Set by the store with
	// Audience, at write (the blocks then) and in ShardEvents (the
	// blocks now); like Audience it travels between nodes but never to
	// clients.
	QuoteHidden []string `json:"-"`

	// Data, when set, is the event as clients receive it: the JSON of
	// its event frame's "data" (docs/protocol.md), attachment URLs filled
	// in. The server sets it on the events it publishes when its broker
	// carries it (internal/natsbroker), and writes it to clients as it is
	// rather than encoding the event again. A broker may hand a receiving
	// node an event with Data and only the fields it routes on (Pos,
	// Shard, Type, ConversationID, Change, At, Audience, QuoteHidden):
	// the node reads the others with Decode, when it needs them. Data is
	// what every receiver but QuoteHidden's gets (their frame is encoded
	// for them). Never sent to clients itself; it must not be modified
	// (it is shared).
	Data []byte `json:"-"`
}

// Decode returns e with every field read from its Data (see Data), and
// e's Pos, Shard, Audience, QuoteHidden and Data; e itself when it has no Data.
// Cost: a JSON decode; call it only for the events whose other fields
// are needed.
func (e Event) Decode() (Event, error) {
	if e.Data == nil {
		return e, nil
	}
	var d Event
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return e, fmt.Errorf("parley: event data: %w", err)
	}
	d.Pos, d.Shard, d.Audience, d.Data, d.Recipient, d.QuoteHidden = e.Pos, e.Shard, e.Audience, e.Data, e.Recipient, e.QuoteHidden
	return d, nil
}

// ApproxSize estimates the memory e holds, in bytes: a fixed part for its
// structs plus its strings and lists. Queues of events bound themselves
// with it (the hub, internal/membroker).
func (e *Event) ApproxSize() int {
	n := 256 + len(e.ConversationID) + len(e.UserID) + len(e.UserName) + len(e.MessageID) + len(e.Emoji)
	if m := e.Message; m != nil {
		n += 256 + len(m.Text)
		for _, id := range m.Mentions {
			n += 16 + len(id)
		}
		if m.ReplyTo != nil {
			n += 128 + len(m.ReplyTo.Text)
		}
	}
	if c := e.Conversation; c != nil {
		n += 256 + len(c.Title) + 96*len(c.Members)
		if c.LastMessage != nil {
			n += 256 + len(c.LastMessage.Text)
		}
	}
	for _, id := range e.Audience {
		n += 16 + len(id)
	}
	for _, id := range e.QuoteHidden {
		n += 16 + len(id)
	}
	for _, id := range e.UserIDs {
		n += 16 + len(id)
	}
	return n + len(e.Data)
}
