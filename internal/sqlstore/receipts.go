package sqlstore

import (
	"context"

	"github.com/parleychat/parley"
)

// MarkDelivered implements parley.Receipts: one write for every mark, one
// messageDelivered event per conversation whose position moved.
func (s *Store) MarkDelivered(ctx context.Context, userID string, marks []parley.DeliveredMark) ([]parley.DeliveredMark, []parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return nil, nil, err
	}
	if len(marks) > parley.MaxDeliveredMarks {
		return nil, nil, invalidf("at most %d conversations per delivered mark", parley.MaxDeliveredMarks)
	}
	// A conversation named twice is marked once, at the larger seq, in
	// the place it was first named: one position, one event, and the
	// answer holds each position as it is now.
	folded := make([]parley.DeliveredMark, 0, len(marks))
	at := make(map[string]int, len(marks))
	for _, m := range marks {
		if err := parley.ValidateID("conversation id", m.ConversationID); err != nil {
			return nil, nil, err
		}
		if m.Seq < 0 {
			return nil, nil, invalidf("seq must not be negative")
		}
		if i, ok := at[m.ConversationID]; ok {
			folded[i].Seq = max(folded[i].Seq, m.Seq)
			continue
		}
		at[m.ConversationID] = len(folded)
		folded = append(folded, m)
	}
	marks = folded
	var (
		moved  []parley.DeliveredMark
		events []parley.Event
	)
	err := s.e.Write(ctx, func(w Tx) error {
		moved, events = nil, nil
		for _, m := range marks {
			var cur, last int64
			err := w.QueryRow(bg, qDeliveredSeq, m.ConversationID, userID).Scan(&cur, &last)
			if s.d.IsNoRows(err) {
				continue // not a member, or no such conversation: alike
			}
			if err != nil {
				return err
			}
			seq := min(m.Seq, last)
			if seq <= cur {
				continue
			}
			if _, err := w.Exec(bg, qSetDeliveredSeq, seq, m.ConversationID, userID); err != nil {
				return err
			}
			evs, err := s.record(w, parley.Event{Type: parley.EventMessageDelivered, ConversationID: m.ConversationID,
				UserID: userID, DeliveredSeq: seq, At: parley.Now()}, nil)
			if err != nil {
				return err
			}
			events = append(events, evs...)
			moved = append(moved, parley.DeliveredMark{ConversationID: m.ConversationID, Seq: seq})
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return moved, events, nil
}

// SetProfile implements parley.Profiles.
func (s *Store) SetProfile(ctx context.Context, userID string, ch parley.ProfileChange) (parley.User, []parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return parley.User{}, nil, err
	}
	var name string
	if ch.DisplayName != nil {
		var err error
		if name, err = parley.NormalizeProfileName(*ch.DisplayName); err != nil {
			return parley.User{}, nil, err
		}
	}
	if ch.AvatarID != nil && *ch.AvatarID != "" {
		if err := parley.ValidateID("avatar_id", *ch.AvatarID); err != nil {
			return parley.User{}, nil, err
		}
	}
	var (
		u      parley.User
		events []parley.Event
		after  string // the conversation id the next write goes on after
	)
	err := s.e.Write(ctx, func(w Tx) error {
		events, after = nil, ""
		var err error
		u, err = ScanUser(s.d, w.QueryRow(bg, qUserByID, userID))
		if err != nil {
			return s.notFound(err, parley.ErrNotFound)
		}
		next := parley.Profile{DisplayName: u.DisplayName, AvatarID: u.AvatarID}
		if ch.DisplayName != nil {
			next.DisplayName = name
		}
		if ch.AvatarID != nil {
			next.AvatarID = *ch.AvatarID
		}
		if next == (parley.Profile{DisplayName: u.DisplayName, AvatarID: u.AvatarID}) {
			return nil
		}
		if next.AvatarID != "" && next.AvatarID != u.AvatarID {
			var ct, name string
			var size int64
			var wd, ht int
			err := w.QueryRow(bg, QAttachmentOwned, next.AvatarID, userID).Scan(&ct, &size, &wd, &ht, &name)
			if s.d.IsNoRows(err) || (err == nil && name != "") { // a named upload is a file, not an image
				return invalidf("avatar_id does not name an image you uploaded")
			}
			if err != nil {
				return err
			}
		}
		var avatar any // NULL: no avatar
		if next.AvatarID != "" {
			avatar = next.AvatarID
		}
		if _, err := w.Exec(bg, qSetProfile, next.DisplayName, avatar, userID); err != nil {
			return err
		}
		if err := userChanged(w, userID); err != nil {
			return err
		}
		u.DisplayName, u.AvatarID = next.DisplayName, next.AvatarID
		events, after, err = s.profileEvents(w, userID, "")
		return err
	})
	if err != nil {
		return parley.User{}, nil, err
	}
	// The other conversations' events, in writes of at most
	// parley.MaxProfileEventsPerWrite each, so a user in thousands of
	// conversations makes no unbounded write.
	for after != "" {
		if ch.Pace != nil {
			if err := ch.Pace(ctx); err != nil {
				return u, events, err
			}
		}
		var evs []parley.Event
		err := s.e.Write(ctx, func(w Tx) error {
			var err error
			evs, after, err = s.profileEvents(w, userID, after)
			return err
		})
		if err != nil {
			return u, events, err
		}
		events = append(events, evs...)
	}
	return u, events, nil
}

// profileEvents records, in w, a profileUpdated event of userID's
// profile as it is now (so writes of two changes that interleave leave
// every conversation at the last one) in each of the next
// parley.MaxProfileEventsPerWrite conversations userID is a member of
// after the id after, and returns them with the id to go on after ("" when
// this was the last).
func (s *Store) profileEvents(w Tx, userID, after string) ([]parley.Event, string, error) {
	u, err := ScanUser(s.d, w.QueryRow(bg, qUserByID, userID))
	if err != nil {
		return nil, "", s.notFound(err, parley.ErrNotFound)
	}
	convs, err := scanAll(query(w.Query(bg, qConversationsOfUserAfter, userID, after, parley.MaxProfileEventsPerWrite)), scanString)
	if err != nil {
		return nil, "", err
	}
	var events []parley.Event
	at := parley.Now()
	for _, id := range convs {
		p := parley.Profile{DisplayName: u.DisplayName, AvatarID: u.AvatarID}
		evs, err := s.record(w, parley.Event{Type: parley.EventProfileUpdated, ConversationID: id,
			UserID: userID, Profile: &p, At: at}, nil)
		if err != nil {
			return nil, "", err
		}
		events = append(events, evs...)
	}
	if len(convs) < parley.MaxProfileEventsPerWrite {
		return events, "", nil
	}
	return events, convs[len(convs)-1], nil
}
