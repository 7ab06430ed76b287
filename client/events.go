package client

import (
	"fmt"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Event is something the app may show. The server's twelve kinds arrive as
// NewMessage, MessageRead, MessageDeleted, MessageEdited, ReactionAdded,
// ReactionRemoved, ConversationUpdated, FlagsChanged, TypingStarted,
// TypingStopped, UserOnline and UserOffline; the SDK adds
// MessageStatusChanged (an outgoing message moved to Sent or Failed),
// ConversationsChanged (the cached conversation list changed),
// Resumed and Resynced. Receive them with Client.AddEventHandler.
//
// Durable events (the first eight) carry Pos and reach handlers exactly
// once, in position order, across reconnects.
type Event interface{ isEvent() }

// NewMessage is a new message in a conversation the user is in (the user's
// own messages included, from any of their devices).
type NewMessage struct {
	Pos     int64
	Message parley.Message
	At      time.Time
}

// MessageRead says UserID has read ConversationID up to ReadSeq.
type MessageRead struct {
	Pos            int64
	ConversationID string
	UserID         string
	UserName       string
	ReadSeq        int64
	At             time.Time
}

// MessageDeleted carries the tombstone of a deleted message.
type MessageDeleted struct {
	Pos     int64
	Message parley.Message
	UserID  string
	At      time.Time
}

// MessageEdited carries a message whose sender edited its text (or an
// image's caption): Message is the message as it is now (a replayed
// event carries the latest text; a tombstone if deleted since). Its
// Reactions are empty: keep the ones you hold (ConversationView does).
type MessageEdited struct {
	Pos     int64
	Message parley.Message
	UserID  string
	At      time.Time
}

// ReactionAdded says UserID added Emoji to the message MessageID (Seq in
// ConversationID), which now holds Count reactions with that emoji.
type ReactionAdded struct {
	Pos            int64
	ConversationID string
	MessageID      string
	Seq            int64
	UserID         string
	UserName       string
	Emoji          string
	Count          int64
	At             time.Time
}

// ReactionRemoved says UserID removed Emoji from the message; Count is
// how many reactions with that emoji remain.
type ReactionRemoved ReactionAdded

// ConversationUpdated says a conversation was created, renamed or had
// members added or removed. Conversation's viewer fields (UnreadCount,
// ReadSeq, LastMessage) are zero, and so are its members' ReadSeq and
// DeliveredSeq (who may see them depends on the receiver); the client's
// ConversationList keeps its own, never lowering a position.
type ConversationUpdated struct {
	Pos          int64
	Conversation parley.Conversation
	Change       parley.Change
	UserIDs      []string
	UserID       string
	UserName     string
	At           time.Time
}

// FlagsChanged says this user muted, unmuted, archived or unarchived
// ConversationID (on this device or another); Flags are the flags after
// the change. Only the user concerned receives it.
type FlagsChanged struct {
	Pos            int64
	ConversationID string
	Flags          parley.MemberFlags
	At             time.Time
}

// TypingStarted says UserID started typing in ConversationID.
type TypingStarted struct {
	ConversationID string
	UserID         string
	UserName       string
	At             time.Time
}

// TypingStopped says UserID stopped typing; Expired is set when the SDK
// decided it (no typingStarted for TypingExpiry) rather than the server.
type TypingStopped struct {
	ConversationID string
	UserID         string
	UserName       string
	Expired        bool
	At             time.Time
}

// UserOnline says a contact came online.
type UserOnline struct {
	UserID   string
	UserName string
	At       time.Time
}

// UserOffline says a contact went offline.
type UserOffline struct {
	UserID   string
	UserName string
	At       time.Time
}

// MessageStatusChanged says an outgoing message moved on: to Sent (Stored
// is the stored message), Failed (Err says why) or back to Sending (a
// Resend). Message is the message itself, the pointer Send, SendImage or
// Pending gave the app, so a handler can find its own bookkeeping by
// pointer; its Status() is read live and may have moved on since this
// event (Status here is the change the event reports).
type MessageStatusChanged struct {
	Message        *Message
	ClientID       string
	ConversationID string
	Status         SendStatus
	Stored         parley.Message
	Err            error
}

// Resumed says the replay of missed events after a reconnect is complete:
// Count events after From, the last at To.
type Resumed struct {
	From, To int64
	Count    int
}

// Resynced says the client could not replay what it missed. Live events
// continue after Head, or after the client's own position when that is
// further: the SDK never moves its position back, except when the server
// says its log was lost (ResyncAheadOfLog from a server that gives the
// cause). The SDK refetches the conversation list and every open
// ConversationView, and an app that keeps its own state should refetch
// it too. Reason says why; From and Head bound the events in question
// (docs/protocol.md section 3; From is 0 from a server that does not say);
// Text is the server's own words.
type Resynced struct {
	Head   int64
	From   int64
	Reason ResyncReason
	Text   string
}

// ResyncReason is why the server answered resync instead of a replay
// (docs/protocol.md section 3).
type ResyncReason int

const (
	// ResyncUnknown: a resync the SDK cannot place (it sent no position).
	ResyncUnknown ResyncReason = iota
	// ResyncResumeLimit: more events were missed than the server replays
	// (its resume_limit, parley.ResumeLimit by default); the server sent
	// the first resume_limit of them before the resync.
	ResyncResumeLimit
	// ResyncAheadOfLog: the client's position is beyond the server's log
	// (the server's data was wiped or restored from an older copy). With
	// a server that says so (cause log_lost) the client's position moves
	// back to Head, as the server gives positions after Head again; from
	// an older server that gives no cause (and answers so from a node
	// that merely lags) the position is kept.
	ResyncAheadOfLog
)

func (r ResyncReason) String() string {
	switch r {
	case ResyncUnknown:
		return "unknown"
	case ResyncResumeLimit:
		return "resumeLimit"
	case ResyncAheadOfLog:
		return "aheadOfLog"
	}
	return fmt.Sprintf("ResyncReason(%d)", int(r))
}

// resyncReason places a resync (docs/protocol.md section 3) by the
// cause the server gives, or, from a server that gives none, by position:
// with resume_from P, a head below P is a log behind the client (lost, or
// a node that has not caught up); otherwise the client was too far behind.
func resyncReason(havePos bool, pos int64, r protocol.Resync) ResyncReason {
	switch {
	case r.Cause == protocol.ResyncLogLost:
		return ResyncAheadOfLog
	case r.Cause == protocol.ResyncResumeLimit:
		return ResyncResumeLimit
	case !havePos:
		return ResyncUnknown
	case pos > r.Head:
		return ResyncAheadOfLog
	}
	return ResyncResumeLimit
}

// ConversationsChanged says CachedConversations changed (a new or deleted
// message, a read, a member or title change, a refetch): redraw the list.
type ConversationsChanged struct{}

func (ConversationsChanged) isEvent() {}
func (NewMessage) isEvent()           {}
func (MessageRead) isEvent()          {}
func (MessageDeleted) isEvent()       {}
func (MessageEdited) isEvent()        {}
func (ReactionAdded) isEvent()        {}
func (ReactionRemoved) isEvent()      {}
func (ConversationUpdated) isEvent()  {}
func (TypingStarted) isEvent()        {}
func (TypingStopped) isEvent()        {}
func (UserOnline) isEvent()           {}
func (UserOffline) isEvent()          {}
func (MessageStatusChanged) isEvent() {}
func (Resumed) isEvent()              {}
func (Resynced) isEvent()             {}
func (FlagsChanged) isEvent()         {}
func (MessageDelivered) isEvent()     {}
func (ProfileUpdated) isEvent()       {}

// typedEvent turns a wire event into its typed form; nil for a kind this
// SDK does not know (a newer server), which is skipped.
func typedEvent(ev *parley.Event) Event {
	switch ev.Type {
	case parley.EventNewMessage:
		if ev.Message == nil {
			return nil
		}
		return NewMessage{Pos: ev.Pos, Message: *ev.Message, At: ev.At}
	case parley.EventMessageRead:
		return MessageRead{Pos: ev.Pos, ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, ReadSeq: ev.ReadSeq, At: ev.At}
	case parley.EventMessageDeleted:
		if ev.Message == nil {
			return nil
		}
		return MessageDeleted{Pos: ev.Pos, Message: *ev.Message, UserID: ev.UserID, At: ev.At}
	case parley.EventMessageEdited:
		if ev.Message == nil {
			return nil
		}
		return MessageEdited{Pos: ev.Pos, Message: *ev.Message, UserID: ev.UserID, At: ev.At}
	case parley.EventReactionAdded, parley.EventReactionRemoved:
		r := ReactionAdded{Pos: ev.Pos, ConversationID: ev.ConversationID, MessageID: ev.MessageID, Seq: ev.Seq,
			UserID: ev.UserID, UserName: ev.UserName, Emoji: ev.Emoji, Count: ev.Count, At: ev.At}
		if ev.Type == parley.EventReactionRemoved {
			return ReactionRemoved(r)
		}
		return r
	case parley.EventConversationUpdated:
		if ev.Conversation == nil {
			return nil
		}
		return ConversationUpdated{Pos: ev.Pos, Conversation: *ev.Conversation, Change: ev.Change, UserIDs: ev.UserIDs, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventFlagsChanged:
		if ev.Flags == nil {
			return nil
		}
		return FlagsChanged{Pos: ev.Pos, ConversationID: ev.ConversationID, Flags: *ev.Flags, At: ev.At}
	case parley.EventMessageDelivered:
		return MessageDelivered{Pos: ev.Pos, ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, DeliveredSeq: ev.DeliveredSeq, At: ev.At}
	case parley.EventProfileUpdated:
		if ev.Profile == nil {
			return nil
		}
		return ProfileUpdated{Pos: ev.Pos, ConversationID: ev.ConversationID, UserID: ev.UserID, Profile: *ev.Profile, At: ev.At}
	case parley.EventTypingStarted:
		return TypingStarted{ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventTypingStopped:
		return TypingStopped{ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventUserOnline:
		return UserOnline{UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventUserOffline:
		return UserOffline{UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	}
	return consentEvent(ev)
}
