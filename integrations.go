package parley

import (
	"context"
	"time"
)

// WebhookDelivery is one durable event waiting in the store's webhook
// outbox to be delivered to one endpoint. Shard and Pos (the event's
// position in its shard of the log) are its idempotency key: a receiver
// may get a delivery more than once, always with the same Shard and Pos.
type WebhookDelivery struct {
	Endpoint       string
	Shard          int
	Pos            int64
	ConversationID string
	// Payload is the JSON body, made when the event was enqueued (it
	// carries the offline members of that moment).
	Payload []byte
	// Attempts counts the deliveries tried (claims), NextAt is when the
	// next may start and CreatedAt when it was enqueued (all in ms).
	Attempts  int
	NextAt    time.Time
	CreatedAt time.Time
}

// WebhookQueue is the durable outbox webhooks are delivered from. Both
// stores implement it (internal/sqlstore); storetest checks it. A node's
// enqueuer follows each shard of the event log (ShardedLog) from that
// shard's cursor and writes a delivery per subscribed endpoint; its
// workers claim, deliver and finish them. Methods are safe for concurrent
// use, also from several nodes. A shard outside the log's is EINVALID.
type WebhookQueue interface {
	// WebhookCursor returns the position of shard up to which events
	// have been enqueued; -1 when webhooks never ran on it (the enqueuer
	// then starts at the shard's head: history is not delivered).
	WebhookCursor(ctx context.Context, shard int) (int64, error)
	// EnqueueWebhooks stores ds (events of shard) and moves shard's
	// cursor from `from` to `to`, in one write. When the cursor is not
	// at from (another node moved it first) it writes nothing and
	// returns ECONFLICT.
	EnqueueWebhooks(ctx context.Context, shard int, from, to int64, ds []WebhookDelivery) error
	// ClaimWebhooks returns up to limit deliveries of endpoint that are
	// due at now and are each the oldest pending one of their
	// conversation (so a conversation's events go out in order), after
	// adding one to their Attempts and pushing their NextAt to
	// leaseUntil: another node will not claim them before that.
	ClaimWebhooks(ctx context.Context, endpoint string, now, leaseUntil time.Time, limit int) ([]WebhookDelivery, error)
	// FinishWebhook deletes a delivery (delivered, or given up).
	FinishWebhook(ctx context.Context, endpoint string, shard int, pos int64) error
	// RetryWebhook sets when a delivery may be tried again.
	RetryWebhook(ctx context.Context, endpoint string, shard int, pos int64, nextAt time.Time) error
	// WebhookBacklog returns how many deliveries wait per endpoint.
	WebhookBacklog(ctx context.Context) (map[string]int, error)
}

// UserChangeLog is the store's record of changed users, the backstop of
// the broker's notices of them (BrokerMessage.Users): every write that
// changes what a node may hold cached of a user (a rename, a profile, a
// ban) gives that user the next number of one counter, in the write's
// own transaction, so a change that committed is in the log whatever
// happens to the node that made it after its commit. Each node reads the
// changes after the last number it saw, every few seconds, and forgets
// those users (and applies their bans). Numbers are handed out in commit
// order: a read never sees a number while a lower one is still to
// commit, so a reader that goes on after the last number it read misses
// none. A user keeps only their last number. Both stores implement it
// (internal/sqlstore); storetest checks it. Methods are safe for
// concurrent use.
type UserChangeLog interface {
	// UserChangeMark returns the last number handed out (0 when none): a
	// reader starting afresh goes on after it, replaying no history.
	UserChangeMark(ctx context.Context) (int64, error)
	// UserChangesAfter returns the users whose last change has a number
	// above after, by number, at most limit of them (1 to
	// MaxUserChangesPage): a reader asks again after the last one's
	// number until fewer than limit come back.
	UserChangesAfter(ctx context.Context, after int64, limit int) ([]LoggedUserChange, error)
}

// MaxUserChangesPage bounds UserChangeLog.UserChangesAfter's limit.
const MaxUserChangesPage = 1000

// LoggedUserChange is a user's entry in the UserChangeLog: the user, their
// last change's number, and Banned when the user is banned (now, not
// necessarily by that change).
type LoggedUserChange struct {
	Seq int64
	UserChange
}

// APIKey is a key of the server API. Only the SHA-256 of the secret key is
// stored; ID names it in listings and to revoke it.
type APIKey struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// APIKeyStore keeps the server API's keys and the users it banned. Both
// stores implement it (internal/sqlstore); storetest checks it.
type APIKeyStore interface {
	// CreateAPIKey stores k under hash (the SHA-256 of the key).
	CreateAPIKey(ctx context.Context, k APIKey, hash []byte) error
	// APIKeyByHash returns the key with this hash, revoked or not;
	// ENOTFOUND when there is none.
	APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error)
	// RevokeAPIKey marks a key revoked (ENOTFOUND for no such key; a key
	// revoked already stays revoked at its first time).
	RevokeAPIKey(ctx context.Context, id string) error
	// APIKeys lists every key, oldest first.
	APIKeys(ctx context.Context) ([]APIKey, error)
	// BanUser records a ban (idempotent; ENOTFOUND for no such user).
	// BannedUsers lists the banned users' ids.
	BanUser(ctx context.Context, userID string) error
	BannedUsers(ctx context.Context) ([]string, error)
	// ModerateMessage tombstones any message, as DeleteMessage does for
	// its sender (the messageDeleted event names the sender as its user);
	// ENOTFOUND for no such message in the conversation.
	ModerateMessage(ctx context.Context, conversationID, messageID string) (Message, []Event, error)
	// MessagesBySender returns up to limit (at most 1000) of the messages
	// userID sent, tombstones included, ordered by ClientID, after the
	// one with afterClientID ("" for the first page).
	MessagesBySender(ctx context.Context, userID, afterClientID string, limit int) ([]Message, error)
	// EraseProgress returns where the erasure of a banned user has got
	// to: the ClientID of the last of their messages an erase call went
	// through, "" when none, and the server's place in its walk of their
	// conversations (opaque to the store), "" when none; both "" for a
	// user not banned. SetEraseProgress records both; for a user not
	// banned it does nothing.
	EraseProgress(ctx context.Context, userID string) (afterClientID, conversations string, err error)
	SetEraseProgress(ctx context.Context, userID, afterClientID, conversations string) error
}
