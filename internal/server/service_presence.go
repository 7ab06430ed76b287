package server

import (
	"context"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// onlineContacts lists u's contacts who are online now (the presence
// query and welcome.online), at most parley.MaxContacts: the online users
// of u's own list, whether or not their lists hold u (see
// Server.notifyPresence). It reads from the contacts cache: a reconnect
// storm reads each user's contacts once, not once per connect and once
// per presence transition.
func (s *service) onlineContacts(ctx context.Context, userID string) ([]string, error) {
	ids, err := s.contacts.get(ctx, userID)
	if err != nil {
		return nil, err
	}
	online := []string{}
	for _, id := range ids {
		if s.pres.isOnline(id) {
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
