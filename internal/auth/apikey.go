package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// APIKeyPrefix starts every server API key, so a key pasted in the wrong
// place is recognisable (and a token is never taken for one).
const APIKeyPrefix = "pk_"

// Scopes of the server API. A key holds one or more.
const (
	ScopeUsers         = "users"         // create and update users
	ScopeTokens        = "tokens"        // mint tokens for users
	ScopeConversations = "conversations" // create conversations, add members
	ScopeMessages      = "messages"      // send as a user or bot
	ScopeModeration    = "moderation"    // delete any message, ban users
)

// Scopes lists every scope.
var Scopes = []string{ScopeUsers, ScopeTokens, ScopeConversations, ScopeMessages, ScopeModeration}

// NewAPIKey makes a key: "pk_<id>_<secret>", with a 64-bit id (how the key
// is named when listed or revoked) and a 256-bit secret. Only HashAPIKey
// of it is stored.
func NewAPIKey() (id, key string, err error) {
	var b [40]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	id = hex.EncodeToString(b[:8])
	return id, APIKeyPrefix + id + "_" + base64.RawURLEncoding.EncodeToString(b[8:]), nil
}

// HashAPIKey is what the store keeps of a key: its SHA-256. The key has
// 256 bits of entropy, so a fast hash is enough (no password stretching).
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(strings.TrimSpace(key)))
	return h[:]
}
