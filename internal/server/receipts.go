package server

import (
	"context"
	"net/http"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Delivery receipts and profiles (issue 15, items 5 and 6): the ops
// delivered and set_profile and their HTTP routes, one service layer for
// both transports.

// delivered raises u's delivered positions (OpDelivered, POST
// /v1/delivered). It takes from the read marks budget: clients coalesce
// what they received into at most one call per second per connection
// (docs/protocol.md), so a busy conversation costs one write a second,
// not one per message.
func (s *service) delivered(ctx context.Context, u parley.User, d protocol.Delivered) (protocol.DeliveredResult, error) {
	if err := s.limits.readMarks.check(u.ID); err != nil {
		return protocol.DeliveredResult{}, err
	}
	if len(d.Conversations) == 0 {
		return protocol.DeliveredResult{}, parley.Errorf(parley.EINVALID, "conversations is required")
	}
	for _, m := range d.Conversations {
		if err := required("conversation_id", m.ConversationID); err != nil {
			return protocol.DeliveredResult{}, err
		}
	}
	r, ok := s.store.(parley.Receipts)
	if !ok {
		return protocol.DeliveredResult{}, parley.Errorf(parley.EUNSUPPORTED, "this server keeps no delivery receipts")
	}
	marks, evs, err := r.MarkDelivered(ctx, u.ID, d.Conversations)
	if err != nil {
		return protocol.DeliveredResult{}, err
	}
	s.publishStored(ctx, evs)
	if marks == nil {
		marks = []parley.DeliveredMark{}
	}
	return protocol.DeliveredResult{Conversations: marks}, nil
}

// setProfile changes u's display name or avatar (OpSetProfile, PATCH
// /v1/me), a conversation write for the rate limits: it makes one event
// per conversation of u's, written parley.MaxProfileEventsPerWrite at a
// time, and each write after the first takes a conversation write too
// (waiting for it within opTimeout), so the events a user makes a second
// are bounded whatever the number of conversations they are in.
func (s *service) setProfile(ctx context.Context, u parley.User, d protocol.SetProfile) (parley.User, error) {
	if err := s.limits.conversationWrites.check(u.ID); err != nil {
		return parley.User{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if d.DisplayName == nil && d.AvatarID == nil {
		return parley.User{}, parley.Errorf(parley.EINVALID, "display_name or avatar_id is required")
	}
	p, ok := s.store.(parley.Profiles)
	if !ok {
		return parley.User{}, parley.Errorf(parley.EUNSUPPORTED, "this server keeps no profiles")
	}
	pace := func(ctx context.Context) error { return s.limits.conversationWrites.take(ctx, u.ID) }
	user, evs, err := p.SetProfile(ctx, u.ID, parley.ProfileChange{DisplayName: d.DisplayName, AvatarID: d.AvatarID, Pace: pace})
	s.publishStored(ctx, evs) // those written, also when a later write failed
	// The cached user holds the old profile, and its next hello's welcome
	// would show it: this node forgets it, and tells the others (also
	// when a write failed: some may have been written). They would
	// forget it on its profileUpdated events too (hub.profileChanged),
	// but a user in no conversation makes none.
	s.ensured.forget(u.ID)
	s.announceUser(ctx, parley.UserChange{ID: u.ID})
	if err != nil {
		return parley.User{}, err
	}
	return user, nil
}

func (s *Server) receiptRoutes(mux *routeMux) {
	mux.HandleFunc("POST /v1/delivered", s.authed(s.handleDelivered))
	mux.HandleFunc("PATCH /v1/me", s.authed(s.handleSetProfile))
}

func (s *Server) handleDelivered(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveBody(s, w, r, u, http.StatusOK, s.svc.delivered, nil)
}

func (s *Server) handleSetProfile(w http.ResponseWriter, r *http.Request, u parley.User) {
	serveBody(s, w, r, u, http.StatusOK, s.svc.setProfile, nil)
}
