package server

import (
	"context"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// onlineContacts lists u's contacts who are online now and share
// presence with u (sharePresence): the presence query and
// welcome.online, at most parley.MaxContacts. The lists come from the
// contacts cache: a reconnect storm reads each user's contacts once, not
// once per connect and once per presence transition, and an online
// contact's list is usually cached already (each node reads it when the
// contact comes online, to tell their contacts); those that are not are
// read at once.
func (s *service) onlineContacts(ctx context.Context, userID string) ([]string, error) {
	ids, err := s.contacts.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	var on []string
	for _, id := range ids {
		if s.pres.isOnline(id) {
			on = append(on, id)
		}
	}
	theirs, err := s.contacts.getAll(ctx, on)
	if err != nil {
		return nil, err
	}
	online := []string{}
	for _, id := range on {
		if sharePresence(userID, ids, id, theirs[id]) {
			online = append(online, id)
		}
	}
	return online, nil
}

func (s *service) presence(ctx context.Context, u parley.User) (protocol.PresenceList, error) {
	if err := s.limits.presence.check(u.ID); err != nil {
		return protocol.PresenceList{}, err
	}
	online, err := s.onlineContacts(ctx, u.ID)
	return protocol.PresenceList{Online: online}, err
}
