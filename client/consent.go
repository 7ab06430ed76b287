package client

import (
	"context"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Consent and blocks (docs/protocol.md, "Consent and blocks"). Each
// change reaches every device of the user as a typed event (UserBlocked,
// UserUnblocked, PrivacyChanged, RequestAnswered). What a block or an
// unanswered request refuses fails with parley.ErrUnreachable's code and
// message (forbidden, "this user does not accept this from you").

// Block blocks userID: they can no longer start a conversation with this
// user, add them to groups or write in their direct conversation, and
// their messages are hidden from this user everywhere (the server filters
// history, unread counts and events). Blocking a blocked user changes
// nothing.
func (c *Client) Block(ctx context.Context, userID string) error {
	return c.call(ctx, protocol.OpBlock, protocol.UserRef{UserID: userID}, nil, true)
}

// Unblock undoes Block: everything comes back, history included.
func (c *Client) Unblock(ctx context.Context, userID string) error {
	return c.call(ctx, protocol.OpUnblock, protocol.UserRef{UserID: userID}, nil, true)
}

// Privacy returns this user's consent setting and blocked list.
func (c *Client) Privacy(ctx context.Context) (parley.Privacy, error) {
	var p parley.Privacy
	err := c.call(ctx, protocol.OpPrivacy, nil, &p, true)
	return p, err
}

// SetConsent sets who may start a direct conversation with this user or
// add them to a group: parley.ConsentEveryone or parley.ConsentContacts.
func (c *Client) SetConsent(ctx context.Context, consent parley.Consent) (parley.Privacy, error) {
	var p parley.Privacy
	err := c.call(ctx, protocol.OpSetPrivacy, protocol.SetPrivacy{Consent: consent}, &p, true)
	return p, err
}

// AcceptRequest accepts a direct conversation request this user received
// (Conversation.Request): its starter then sees this user's reads and
// typing, and they become contacts once the starter has written.
// Replying in it accepts it too.
func (c *Client) AcceptRequest(ctx context.Context, conversationID string) (parley.Conversation, error) {
	return c.answer(ctx, protocol.OpAcceptRequest, conversationID)
}

// DeclineRequest declines a pending request: it leaves the conversation
// list (AcceptRequest still takes it back) and its starter's sends are
// refused.
func (c *Client) DeclineRequest(ctx context.Context, conversationID string) (parley.Conversation, error) {
	return c.answer(ctx, protocol.OpDeclineRequest, conversationID)
}

func (c *Client) answer(ctx context.Context, op, conversationID string) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, op, protocol.ConversationRef{ConversationID: conversationID}, &cv, true) // idempotent
	return cv, err
}

// UserBlocked says this user blocked UserID (on this device or another).
type UserBlocked struct {
	Pos    int64
	UserID string
	At     time.Time
}

// UserUnblocked says this user unblocked UserID.
type UserUnblocked struct {
	Pos    int64
	UserID string
	At     time.Time
}

// PrivacyChanged says this user's consent setting is now Consent.
type PrivacyChanged struct {
	Pos     int64
	Consent parley.Consent
	At      time.Time
}

// RequestAnswered says this user accepted (Accepted) or declined the
// request ConversationID.
type RequestAnswered struct {
	Pos            int64
	ConversationID string
	Accepted       bool
	At             time.Time
}

func (UserBlocked) isEvent()     {}
func (UserUnblocked) isEvent()   {}
func (PrivacyChanged) isEvent()  {}
func (RequestAnswered) isEvent() {}

// consentEvent is typedEvent for the events of this file.
func consentEvent(ev *parley.Event) Event {
	switch ev.Type {
	case parley.EventUserBlocked, parley.EventUserUnblocked:
		if len(ev.UserIDs) != 1 {
			return nil
		}
		if ev.Type == parley.EventUserUnblocked {
			return UserUnblocked{Pos: ev.Pos, UserID: ev.UserIDs[0], At: ev.At}
		}
		return UserBlocked{Pos: ev.Pos, UserID: ev.UserIDs[0], At: ev.At}
	case parley.EventPrivacyChanged:
		return PrivacyChanged{Pos: ev.Pos, Consent: ev.Consent, At: ev.At}
	case parley.EventRequestAccepted, parley.EventRequestDeclined:
		return RequestAnswered{Pos: ev.Pos, ConversationID: ev.ConversationID, Accepted: ev.Type == parley.EventRequestAccepted, At: ev.At}
	}
	return nil
}

// applyRequestLocked keeps the cached conversation's Request: an answer
// sets it, and this user's own message in a request, pending or
// declined, accepts it (docs/protocol.md, Requests).
// Caller holds s.mu; it reports whether the list changed.
func (s *chatState) applyRequestLocked(ev Event, me string) bool {
	switch e := ev.(type) {
	case RequestAnswered:
		cv := s.convs[e.ConversationID]
		if cv == nil {
			return false
		}
		cv.Request = parley.RequestDeclined
		if e.Accepted {
			cv.Request = ""
		}
		return true
	case NewMessage:
		if cv := s.convs[e.Message.ConversationID]; cv != nil && cv.Request != "" && e.Message.SenderID == me {
			cv.Request = ""
			return true
		}
	}
	return false
}
