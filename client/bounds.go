package client

import (
	"unicode/utf8"

	"github.com/parleychat/parley"
)

// Bounds of the state the client keeps from what the server sends
// (docs/sdk.md, "Bounds"). Each map grew with every distinct id the
// server sent, linear in the bytes it received: a hostile server (or a
// man in the middle on plain ws) could fill the app's memory with small
// frames. Past its bound a map takes no new id (the ones it holds are
// still updated and removed); the events still reach the app.
const (
	// MaxKnownConversations bounds each per-conversation map: the cached
	// list (CachedConversations), its unread trackers, the
	// conversations this user was removed from (IsRemoved), those
	// waiting to be fetched alone and those with a delivery report
	// waiting. An honest server's big account has thousands.
	MaxKnownConversations = 20_000
	// MaxKnownUsers bounds presence (Online) and the display names the
	// client learnt from events: tens of thousands of contacts fit.
	MaxKnownUsers = 50_000
	// MaxTypists bounds who types, across every conversation (entries
	// expire after TypingExpiry anyway).
	MaxTypists = 1_000
	// MaxStateIDBytes bounds an id the state keeps: the server's ids are
	// UUIDs (36 bytes); a longer one is not kept. With it each entry is
	// at most MaxStateIDBytes of key, and a name at most
	// maxStateNameBytes, so every bound above is one in bytes.
	MaxStateIDBytes = 64
	// maxStateNameBytes bounds a display name kept: the server's are at
	// most parley.MaxDisplayNameRunes code points.
	maxStateNameBytes = parley.MaxDisplayNameRunes * utf8.UTFMax
)

// stateCaps are the bounds above, lowered in tests.
type stateCaps struct {
	convs, users, typists int
}

var defaultStateCaps = stateCaps{convs: MaxKnownConversations, users: MaxKnownUsers, typists: MaxTypists}

// roomFor reports whether m, bounded to max entries, may hold key: one it
// holds, or a new one while it has room; never an id over
// MaxStateIDBytes.
func roomFor[V any](m map[string]V, key string, max int) bool {
	if len(key) > MaxStateIDBytes {
		return false
	}
	if _, ok := m[key]; ok {
		return true
	}
	return len(m) < max
}
