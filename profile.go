package parley

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxDisplayNameRunes bounds a display name (code points, after trimming).
const MaxDisplayNameRunes = 64

// Profile is what a user shows of themselves besides their unique name:
// a display name (not unique) and an avatar, an image the user uploaded
// (its Attachment id; clients fetch its thumbnail like any image's).
type Profile struct {
	DisplayName string `json:"display_name"`
	AvatarID    string `json:"avatar_id"`
}

// NormalizeProfileName trims name and checks it: at most
// MaxDisplayNameRunes code points, valid UTF-8, and no control, format
// (bidi overrides and isolates, zero-width characters), private-use or
// unassigned code points, and no line or paragraph separators, so a name
// can neither reorder nor hide the text around it. An empty result clears
// the display name (clients then show the user's name).
func NormalizeProfileName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", invalidf("display_name is not valid UTF-8")
	}
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n > MaxDisplayNameRunes {
		return "", invalidf("display_name is longer than %d characters", MaxDisplayNameRunes)
	}
	for _, r := range name {
		switch {
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp),
			!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs):
			return "", invalidf("display_name holds a control, format or unassigned character (U+%04X)", r)
		}
	}
	return name, nil
}

// MaxProfileEventsPerWrite bounds the profileUpdated events one write of
// Profiles.SetProfile records.
const MaxProfileEventsPerWrite = 128

// ProfileChange is a change to a user's profile; nil fields change
// nothing. An empty AvatarID removes the avatar.
type ProfileChange struct {
	DisplayName *string
	AvatarID    *string
	// Pace, when set, is called before each write after the first (the
	// further events of a user in more than MaxProfileEventsPerWrite
	// conversations), so the caller can charge them to the user's rate
	// limit: an error from it ends the change there, returned as a later
	// write's error is.
	Pace func(ctx context.Context) error
}

// Profiles is implemented by stores that keep user profiles. Both stores
// in this module do (sqlstore.Complete); storetest checks it.
type Profiles interface {
	// SetProfile changes userID's profile and returns the user with it,
	// and one profileUpdated event per conversation userID is a member
	// of (the audience: everyone who shares a conversation with them).
	// The change and the first MaxProfileEventsPerWrite events are one
	// write; the other events follow in writes of at most as many, each
	// carrying the profile as it is at its write (so two changes whose
	// writes interleave leave every conversation at the last). An error
	// of a later write is returned with the user and the events written
	// so far: the profile is changed, and the conversations not told
	// show it when next fetched.
	// The display name is checked with NormalizeProfileName; the avatar
	// must be an attachment userID uploaded (EINVALID otherwise). A
	// change that changes nothing returns no events. An avatar is held
	// like a sent attachment (never deleted as an orphan) while it is
	// someone's avatar, and is served to its owner and to the users who
	// share a conversation with them.
	SetProfile(ctx context.Context, userID string, ch ProfileChange) (User, []Event, error)
}
