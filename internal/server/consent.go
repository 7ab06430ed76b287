package server

import (
	"context"
	"net/http"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Consent and blocks: the ops and routes of a user's own settings
// (docs/protocol.md, "Consent and blocks"), over parley.Consenter. The
// events they make go to the user's own connections only.

// consenter is the store's parley.Consenter (both stores have it:
// sqlstore.Complete); a store without it answers unsupported.
func (s *service) consenter() (parley.Consenter, error) {
	cs, ok := s.store.(parley.Consenter)
	if !ok {
		return nil, parley.Errorf(parley.EUNSUPPORTED, "this server's store has no blocks or consent")
	}
	return cs, nil
}

// consentStore is the prologue of this file's writes and reads: it
// charges userID in lim, checks that the field called name is set (when
// name is not ""), and returns the store's Consenter.
func (s *service) consentStore(lim *limiterSet, userID, name, value string) (parley.Consenter, error) {
	if err := lim.check(userID); err != nil {
		return nil, err
	}
	if name != "" {
		if err := required(name, value); err != nil {
			return nil, err
		}
	}
	return s.consenter()
}

// block blocks (or unblocks) d.UserID for u (block, unblock, PUT and
// DELETE /v1/me/blocked/{user_id}).
func (s *service) block(ctx context.Context, u parley.User, d protocol.UserRef, block bool) (protocol.BlockResult, error) {
	cs, err := s.consentStore(s.limits.conversationWrites, u.ID, "user_id", d.UserID)
	if err != nil {
		return protocol.BlockResult{}, err
	}
	var evs []parley.Event
	if block {
		evs, err = cs.Block(ctx, u.ID, d.UserID)
	} else {
		evs, err = cs.Unblock(ctx, u.ID, d.UserID)
	}
	if err != nil {
		return protocol.BlockResult{}, err
	}
	s.publishStored(ctx, evs)
	return protocol.BlockResult{UserID: d.UserID, Blocked: block}, nil
}

// privacy returns u's consent setting and blocked list (privacy, GET
// /v1/me/privacy).
func (s *service) privacy(ctx context.Context, u parley.User) (parley.Privacy, error) {
	cs, err := s.consentStore(s.limits.reads, u.ID, "", "")
	if err != nil {
		return parley.Privacy{}, err
	}
	return cs.Privacy(ctx, u.ID)
}

// setPrivacy sets u's consent (set_privacy, PATCH /v1/me/privacy).
func (s *service) setPrivacy(ctx context.Context, u parley.User, d protocol.SetPrivacy) (parley.Privacy, error) {
	cs, err := s.consentStore(s.limits.conversationWrites, u.ID, "consent", string(d.Consent))
	if err != nil {
		return parley.Privacy{}, err
	}
	evs, err := cs.SetConsent(ctx, u.ID, d.Consent)
	if err != nil {
		return parley.Privacy{}, err
	}
	s.publishStored(ctx, evs)
	return cs.Privacy(ctx, u.ID)
}

// answerRequest accepts or declines a request u received
// (accept_request, decline_request, POST /v1/conversations/{id}/accept
// and .../decline).
func (s *service) answerRequest(ctx context.Context, u parley.User, d protocol.ConversationRef, accept bool) (parley.Conversation, error) {
	cs, err := s.consentStore(s.limits.conversationWrites, u.ID, "conversation_id", d.ConversationID)
	if err != nil {
		return parley.Conversation{}, err
	}
	c, evs, err := cs.AnswerRequest(ctx, u.ID, d.ConversationID, accept)
	if err != nil {
		return parley.Conversation{}, err
	}
	s.publishStored(ctx, evs)
	return conversationURLs(c), nil
}

// peers returns who may see u's typing in a conversation: its members
// but u, less those blocked either way, and none while the conversation
// is a request u has not accepted (parley.Consenter.Peers).
func (s *service) peers(ctx context.Context, u parley.User, conversationID string) ([]string, error) {
	if cs, ok := s.store.(parley.Consenter); ok {
		return cs.Peers(ctx, u.ID, conversationID)
	}
	return s.store.MemberIDs(ctx, u.ID, conversationID)
}

// consentOp runs the ops of this file; ok is false for any other op.
func (c *conn) consentOp(ctx context.Context, req protocol.Request) (v any, err error, ok bool) {
	svc, u := c.s.svc, c.user
	switch req.Op {
	case protocol.OpBlock, protocol.OpUnblock:
		block := req.Op == protocol.OpBlock
		v, err := runOp(ctx, u, req, func(ctx context.Context, u parley.User, d protocol.UserRef) (protocol.BlockResult, error) {
			return svc.block(ctx, u, d, block)
		})
		return v, err, true
	case protocol.OpPrivacy:
		v, err := svc.privacy(ctx, u)
		return v, err, true
	case protocol.OpSetPrivacy:
		v, err := runOp(ctx, u, req, svc.setPrivacy)
		return v, err, true
	case protocol.OpAcceptRequest, protocol.OpDeclineRequest:
		accept := req.Op == protocol.OpAcceptRequest
		v, err := runOp(ctx, u, req, func(ctx context.Context, u parley.User, d protocol.ConversationRef) (parley.Conversation, error) {
			return svc.answerRequest(ctx, u, d, accept)
		})
		return v, err, true
	}
	return nil, nil, false
}

func (s *Server) consentRoutes(mux *routeMux) {
	mux.HandleFunc("GET /v1/me/privacy", s.authed(func(w http.ResponseWriter, r *http.Request, u parley.User) {
		v, err := s.svc.privacy(r.Context(), u)
		s.reply(w, http.StatusOK, v, err)
	}))
	mux.HandleFunc("PATCH /v1/me/privacy", s.authed(func(w http.ResponseWriter, r *http.Request, u parley.User) {
		var d protocol.SetPrivacy
		if err := decodeBody(w, r, &d); err != nil {
			s.writeError(w, err)
			return
		}
		v, err := s.svc.setPrivacy(r.Context(), u, d)
		s.reply(w, http.StatusOK, v, err)
	}))
	for _, block := range []bool{true, false} {
		method := "PUT"
		if !block {
			method = "DELETE"
		}
		mux.HandleFunc(method+" /v1/me/blocked/{user_id}", s.authed(func(w http.ResponseWriter, r *http.Request, u parley.User) {
			v, err := s.svc.block(r.Context(), u, protocol.UserRef{UserID: r.PathValue("user_id")}, block)
			s.reply(w, http.StatusOK, v, err)
		}))
	}
	for _, accept := range []bool{true, false} {
		path := "POST /v1/conversations/{id}/accept"
		if !accept {
			path = "POST /v1/conversations/{id}/decline"
		}
		mux.HandleFunc(path, s.authed(func(w http.ResponseWriter, r *http.Request, u parley.User) {
			v, err := s.svc.answerRequest(r.Context(), u, protocol.ConversationRef{ConversationID: r.PathValue("id")}, accept)
			s.reply(w, http.StatusOK, v, err)
		}))
	}
}

// consentChanged runs on the hub's run goroutine before a block, an
// unblock or an accepted request is delivered: the two users' cached
// contacts are dropped (a block ends contacts, an unblock or an accept
// may make them again). A block ends what presence crossed between them
// (blockedOffline); an unblock or an accept tells them of each other's
// presence when they are contacts now (after an unblock, through a group
// too), as a first answer in a direct conversation does.
func (s *Server) consentChanged(ev parley.Event) {
	if len(ev.UserIDs) != 1 {
		return
	}
	a, b := ev.UserID, ev.UserIDs[0]
	s.hub.contacts.invalidate([]string{a, b})
	if ev.Type != parley.EventUserBlocked {
		s.announceContacts(a, b, ev.Type == parley.EventUserUnblocked)
		return
	}
	s.blockedOffline(a, b)
}

// blockedOffline runs for blocker a's block of b: their presence no
// longer reaches each other, so each of them (on this node) who may show
// the other online hears userOffline of the other once, and nobody else
// hears anything. That is each of the two, when the other is online and
// they were contacts until this block (parley.Consenter.Tie with groups:
// a group they share or a direct conversation both wrote in, and b had
// not blocked a). A user the other was no contact of never heard the
// other's presence: a userOffline out of nowhere, at the moment of the
// block, would tell a blocked stranger they were blocked
// (docs/protocol.md, section 5: they learn no presence either way). The
// tie is read only when one of them is online and the other has a
// connection here; a failed read tells nobody.
func (s *Server) blockedOffline(a, b string) {
	tell := func(to, about string) bool { return s.pres.isOnline(about) && s.hub.local(to) }
	toA, toB := tell(a, b), tell(b, a)
	if !toA && !toB {
		return
	}
	t, ok := s.tie(a, b, true)
	if !ok || (!t.Direct && !t.Group) || t.BlockedBy {
		return // no contacts before the block either: nothing to end
	}
	at := parley.Now()
	if toB {
		s.hub.deliverPresence([]string{b}, a, false, at)
	}
	if toA {
		s.hub.deliverPresence([]string{a}, b, false, at)
	}
}
