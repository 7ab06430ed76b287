package protocol

import "github.com/parleychat/parley"

// Consent and blocks: the caller's own settings (docs/protocol.md, section
// 5, "Consent and blocks").
const (
	OpBlock          = "block"           // data UserRef; reply BlockResult
	OpUnblock        = "unblock"         // data UserRef; reply BlockResult
	OpPrivacy        = "privacy"         // no data; reply parley.Privacy
	OpSetPrivacy     = "set_privacy"     // data SetPrivacy; reply parley.Privacy
	OpAcceptRequest  = "accept_request"  // data ConversationRef; reply parley.Conversation
	OpDeclineRequest = "decline_request" // data ConversationRef; reply parley.Conversation
)

// consentOps are the ops of this file, for DecodeRequest.
func consentOp(op string) bool {
	switch op {
	case OpBlock, OpUnblock, OpPrivacy, OpSetPrivacy, OpAcceptRequest, OpDeclineRequest:
		return true
	}
	return false
}

// UserRef names a user by id (block, unblock).
type UserRef struct {
	UserID string `json:"user_id"`
}

// BlockResult is the reply to block and unblock: whether the caller
// blocks the user now.
type BlockResult struct {
	UserID  string `json:"user_id"`
	Blocked bool   `json:"blocked"`
}

// SetPrivacy sets the caller's consent setting: "everyone" or "contacts".
type SetPrivacy struct {
	Consent parley.Consent `json:"consent"`
}
