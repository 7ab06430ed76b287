package client

import (
	"fmt"
	"time"

	"github.com/parleychat/parley"
)

// Event is something the app may show. The server's nine kinds arrive as
// NewMessage, MessageRead, MessageDeleted, ConversationUpdated, FlagsChanged,
// TypingStarted, TypingStopped, UserOnline and UserOffline; the SDK adds
// MessageStatusChanged (an outgoing message moved to Sent or Failed),
// ConversationsChanged (the cached conversation list changed),
// Resumed and Resynced. Receive them with Client.AddEventHandler.
//
// Durable events (the first five) carry Pos and reach handlers exactly
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

// ConversationUpdated says a conversation was created, renamed or had
// members added or removed. Conversation's viewer fields (UnreadCount,
// ReadSeq, LastMessage) are zero; the client's ConversationList keeps its
// own.
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
// continue from Head; the SDK refetches the conversation list and every
// open ConversationView, and an app that keeps its own state should
// refetch it too. Reason says why; Text is the server's own words.
type Resynced struct {
	Head   int64
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
	// (the server's data was wiped or restored from an older copy).
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

// resyncReason tells the two cases of docs/protocol.md section 3 apart by
// position rather than by the server's text: with resume_from P, a
// position beyond head means the log is behind the client; otherwise the
// client was too far behind (and what it was replayed is at or below
// head).
func resyncReason(havePos bool, pos, head int64) ResyncReason {
	switch {
	case !havePos:
		return ResyncUnknown
	case pos > head:
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
func (ConversationUpdated) isEvent()  {}
func (TypingStarted) isEvent()        {}
func (TypingStopped) isEvent()        {}
func (UserOnline) isEvent()           {}
func (UserOffline) isEvent()          {}
func (MessageStatusChanged) isEvent() {}
func (Resumed) isEvent()              {}
func (Resynced) isEvent()             {}
func (FlagsChanged) isEvent()         {}

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
	case parley.EventTypingStarted:
		return TypingStarted{ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventTypingStopped:
		return TypingStopped{ConversationID: ev.ConversationID, UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventUserOnline:
		return UserOnline{UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	case parley.EventUserOffline:
		return UserOffline{UserID: ev.UserID, UserName: ev.UserName, At: ev.At}
	}
	return nil
}
