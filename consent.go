package parley

import "context"

// Consent says who may start a direct conversation with a user or add them
// to a group. A contact is a user the two share a group with now, or a
// direct conversation in which both have written (or whose request the
// recipient accepted): the relation that shares presence (Store.Contacts).
type Consent string

const (
	// ConsentEveryone (the default): anyone not blocked may add the user
	// to a group or start a direct conversation with them; a direct
	// conversation a non-contact starts is a request for the user until
	// they accept it (Conversation.Request).
	ConsentEveryone Consent = "everyone"
	// ConsentContacts: only contacts may add the user to a group or
	// start a direct conversation with them; anyone else is refused with
	// ErrUnreachable, as a blocked user is.
	ConsentContacts Consent = "contacts"
)

// Valid reports whether c is a known setting.
func (c Consent) Valid() bool { return c == ConsentEveryone || c == ConsentContacts }

// Request is a direct conversation's request state, as its recipient sees
// it (Conversation.Request): empty when it is not a request.
type Request string

const (
	// RequestPending: started by someone who was not a contact of the
	// viewer, and neither accepted nor answered yet (a message from the
	// viewer accepts it). The starter learns nothing of the viewer's
	// presence, read position or typing meanwhile.
	RequestPending Request = "pending"
	// RequestDeclined: the viewer declined it. It is left out of the
	// viewer's list and the starter's sends are refused with
	// ErrUnreachable, until the viewer accepts it after all.
	RequestDeclined Request = "declined"
)

// ErrUnreachable refuses, with one message whatever the reason (a block,
// a contacts-only setting, a declined request), what would reach a user
// who does not accept it from the caller, so the caller cannot tell which
// reason it is.
var ErrUnreachable = &Error{Code: EFORBIDDEN, Message: "this user does not accept this from you"}

// Durable events of a user's own settings, for that user's devices only
// (Event.Recipient): blocked and unblocked carry the other user in
// UserIDs; privacyChanged carries Consent (neither has a conversation);
// requestAccepted and requestDeclined name the conversation.
const (
	EventUserBlocked     EventType = "userBlocked"
	EventUserUnblocked   EventType = "userUnblocked"
	EventPrivacyChanged  EventType = "privacyChanged"
	EventRequestAccepted EventType = "requestAccepted"
	EventRequestDeclined EventType = "requestDeclined"
)

// Privacy is a user's own settings, as GET /v1/me/privacy answers them.
type Privacy struct {
	Consent Consent `json:"consent"`
	// Blocked are the users this user blocked, oldest first.
	Blocked []BlockedUser `json:"blocked"`
}

// BlockedUser is one entry of a user's blocked list.
type BlockedUser struct {
	UserID string `json:"user_id"`
	Name   string `json:"name"`
}

// MaxBlocked bounds a user's blocked list.
const MaxBlocked = 1000

// Consenter is what a store does for consent and blocks (both stores).
// Each write returns the durable events it recorded (none when it changed
// nothing), for the user's own devices.
type Consenter interface {
	// Block makes userID block otherID (an existing user, not userID):
	// otherID can no longer start a conversation with userID, add them
	// to a group or send in their direct conversation, and otherID's
	// messages in shared groups are hidden from userID. Blocking twice
	// changes nothing.
	Block(ctx context.Context, userID, otherID string) ([]Event, error)
	// Unblock undoes Block; unblocking a user not blocked changes nothing.
	Unblock(ctx context.Context, userID, otherID string) ([]Event, error)
	// Privacy returns userID's consent setting and blocked list.
	Privacy(ctx context.Context, userID string) (Privacy, error)
	// SetConsent sets userID's consent setting.
	SetConsent(ctx context.Context, userID string, c Consent) ([]Event, error)
	// AnswerRequest accepts (or declines) the direct conversation request
	// conversationID as its recipient userID; ENOTFOUND for a user who is
	// not a member, EINVALID for a conversation that is no request of
	// theirs. Accepting a request already accepted changes nothing. An
	// accept's events are the requestAccepted for userID's devices, then,
	// for the members, a messageRead of userID's read position and a
	// messageDelivered of their delivered position when it is ahead
	// (none at 0): what the request hid from the starter.
	AnswerRequest(ctx context.Context, userID, conversationID string, accept bool) (Conversation, []Event, error)
	// Peers returns the members of conversationID (userID must be one:
	// ENOTFOUND otherwise) who may see userID's typing and read position:
	// neither blocked by userID nor blocking them, and none while the
	// conversation is a pending request of userID's.
	Peers(ctx context.Context, userID, conversationID string) ([]string, error)
	// BlocksAmong returns the blocks whose two users are both in userIDs,
	// each as {blocker, blocked}, in no particular order: who of a new
	// group's members must not hear of each other. At most
	// MaxGroupMembers ids (EINVALID past that), so the read is bounded by
	// that many users' blocked lists (MaxBlocked each).
	BlocksAmong(ctx context.Context, userIDs []string) ([][2]string, error)
	// Tie reads what links userID and otherID (two different users; a
	// user that does not exist is linked to nobody). Without groups it
	// reads only the pair's own rows, each by its key: their direct
	// conversation (by the pair), its two member rows and the two blocks
	// there may be, so it costs the same however many conversations and
	// contacts either has (the hub asks it for each message of a direct
	// conversation only one of them wrote in: has the other answered?).
	// With groups it also looks for a group both are members of now,
	// which reads userID's memberships, as the consent check of a
	// create_direct does.
	Tie(ctx context.Context, userID, otherID string, groups bool) (Tie, error)
}

// Tie is what links two users, the first and the second of
// Consenter.Tie: what Store.Contacts' rule reads of one pair.
type Tie struct {
	// Direct: they have a direct conversation in which both wrote (or
	// whose request its recipient accepted).
	Direct bool
	// Group: both are members of a group now; false unless Tie was asked
	// for groups.
	Group bool
	// Blocked: the first blocked the second. BlockedBy: the second
	// blocked the first.
	Blocked, BlockedBy bool
}

// Contacts reports whether t makes the two users contacts:
// Store.Contacts' rule without its limit (MaxContacts), and, for a Tie
// read without groups, through their direct conversation only.
func (t Tie) Contacts() bool { return (t.Direct || t.Group) && !t.Blocked && !t.BlockedBy }
