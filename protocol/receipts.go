package protocol

import "github.com/parleychat/parley"

// Delivered reports what a client received (OpDelivered): per
// conversation, the highest Seq among the messages it has. At most
// parley.MaxDeliveredMarks conversations. The reply's data is a
// DeliveredResult.
type Delivered struct {
	Conversations []parley.DeliveredMark `json:"conversations"`
}

// DeliveredResult is the reply to OpDelivered: the conversations whose
// delivered position moved, with the position now. Marks at or below the
// position, and conversations the caller is not a member of, are absent.
type DeliveredResult struct {
	Conversations []parley.DeliveredMark `json:"conversations"`
}

// SetProfile changes the caller's profile (OpSetProfile). A nil field
// changes nothing; "" clears it. The reply's data is the User.
type SetProfile struct {
	DisplayName *string `json:"display_name"`
	AvatarID    *string `json:"avatar_id"`
}
