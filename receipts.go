package parley

import "context"

// MaxDeliveredMarks bounds the conversations one delivered call names.
const MaxDeliveredMarks = 100

// DeliveredMark says a client of the user received conversation
// ConversationID's messages up to Seq.
type DeliveredMark struct {
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
}

// Receipts is implemented by stores that keep delivery positions. Both
// stores in this module do (sqlstore.Complete); storetest checks it.
//
// A member's delivered position is, like the read position, a position
// and not a counter: it only moves forward (a mark at or below it changes
// nothing), it is clamped to the conversation's newest message, and it is
// never below the read position (reading implies delivery, so a read
// moves no delivered position and makes no messageDelivered: clients take
// the larger of the two). How many members a message was delivered to is
// derived from the members' positions, never counted.
type Receipts interface {
	// MarkDelivered raises userID's delivered position in each named
	// conversation, in one write, and returns the marks as they are now
	// (Seq the member's delivered position) for the conversations that
	// moved, with one messageDelivered event each. Conversations userID
	// is not a member of (or that do not exist) are skipped, exactly
	// alike, so the answer reveals nothing of them. At most
	// MaxDeliveredMarks marks (EINVALID beyond, or for a negative Seq).
	MarkDelivered(ctx context.Context, userID string, marks []DeliveredMark) ([]DeliveredMark, []Event, error)
}
