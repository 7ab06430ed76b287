package sqlstore

import (
	"context"
	"slices"

	"github.com/parleychat/parley"
)

// Consent and blocks (migration 00010): parley.Consenter, and the rules
// the other writes and reads take from it. A block hides the blocked
// user's messages from the blocker everywhere, by the blocks as they are
// when read: history pages, last_message and unread_count (qViewsBase),
// search results and the mentions list, the audience of message events
// (at write, replay and gap fill). So an unblock shows them again.

// SQL fragments of the views (qViewsBase: mb the viewer's membership, x a
// message) and of the request state.
const (
	blockedSender = `EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = mb.user_id AND b.blocked_id = x.sender_id)`
	// blockedSenderOf: the viewer ($1) blocked the sender of message m
	// (search results and the mentions list).
	blockedSenderOf = `EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = m.sender_id)`
	// requestExpr is the viewer's parley.Request: a direct conversation
	// started by a non-contact is pending until its recipient writes in
	// it or accepts it (members.wrote), declined once they decline it.
	requestExpr = `CASE WHEN mb.request = 2 THEN 'declined' WHEN mb.request = 1 AND NOT mb.wrote THEN 'pending' ELSE '' END`

	// viewedReadSeq is a member's (mb) read_seq as the viewer (mine)
	// sees it: 0 for the recipient of a request they have not accepted,
	// and across a block either way, as their messageRead events are.
	viewedReadSeq = `CASE WHEN ` + receiptsHidden + ` THEN 0 ELSE mb.read_seq END`
	// viewedDeliveredSeq is a member's delivered position (deliveredExpr)
	// as the viewer sees it, hidden as viewedReadSeq is.
	viewedDeliveredSeq = `CASE WHEN ` + receiptsHidden + ` THEN 0 ELSE ` + deliveredExpr + ` END`
	// receiptsHidden: the member (mb) is another user whose read and
	// delivered positions the viewer (mine) may not see: the recipient of
	// a request they have not accepted, or a user blocked either way.
	receiptsHidden = `mb.user_id != mine.user_id AND ((mb.request != 0 AND NOT mb.wrote)
		OR EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = mine.user_id AND b.blocked_id = mb.user_id)
			OR (b.blocker_id = mb.user_id AND b.blocked_id = mine.user_id)))`

	// requestRecipient and requestDeclined are members.request values.
	requestRecipient = 1
	requestDeclined  = 2
)

// ReplayFilter is the condition a replayed event e must meet to reach
// user $1 (the engines' EventsForSQL): events of a user $1 blocked are
// left out, and the reactions on their messages (e.message_id: the
// migrations PostgreSQL 00023 and SQLite 00020 gave it to the reactions
// recorded before reactions kept it there), a messageRead or messageDelivered of a user blocked either way or of the
// recipient of a request they have not accepted (pending or declined) too, as their audience at write left them out.
const ReplayFilter = `NOT (e.type IN ('newMessage', 'messageEdited', 'messageDeleted', 'reactionAdded', 'reactionRemoved')
		AND EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = $1 AND b.blocked_id = e.actor_id))
	AND NOT (e.type IN ('reactionAdded', 'reactionRemoved') AND EXISTS (SELECT 1 FROM messages rm
		JOIN blocks b ON b.blocked_id = rm.sender_id AND b.blocker_id = $1 WHERE rm.id = e.message_id))
	AND NOT (e.type IN ('messageRead', 'messageDelivered') AND e.actor_id != $1 AND (
		EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $1 AND b.blocked_id = e.actor_id) OR (b.blocker_id = e.actor_id AND b.blocked_id = $1))
		OR EXISTS (SELECT 1 FROM members r WHERE r.conversation_id = e.conversation_id AND r.user_id = e.actor_id
			AND r.left_pos IS NULL AND r.request != 0 AND NOT r.wrote)))`

// UserEventsSQL selects user $1's own events of no conversation (blocks,
// consent) in ($2, $5], at most $3, in shard $4 (they are all in shard
// 0), selecting EventCols: the engines' EventsForSQL add it to the
// conversations' events. None is hidden, so they need no scan bound of
// their own.
const UserEventsSQL = `SELECT ` + EventCols + ` FROM events e ` + EventJoinsFor + `$1
		WHERE e.conversation_id IS NULL AND e.recipient = $1 AND e.shard = $4 AND e.pos > $2 AND e.pos <= $5 ORDER BY e.pos LIMIT $3 + 0`

// SendGateSQL lists, for a conversation ($1), the pairs (who refuses,
// whom, declined) among its current members: a member who blocked a user
// (hidden: that user's messages are not for them; in a direct
// conversation the user's sends are refused), and the recipient who
// declined a request with its starter (declined = 1: sends refused).
const SendGateSQL = `SELECT b.blocker_id, b.blocked_id, 0 FROM blocks b
		JOIN members mb ON mb.conversation_id = $1 AND mb.user_id = b.blocker_id AND mb.left_pos IS NULL
	UNION ALL
	SELECT mb.user_id, o.user_id, 1 FROM members mb
		JOIN members o ON o.conversation_id = mb.conversation_id AND o.left_pos IS NULL AND o.user_id != mb.user_id
		WHERE mb.conversation_id = $1 AND mb.left_pos IS NULL AND mb.request = 2`

// SendRefusedSQL is true when a send of $2 in the direct conversation $1
// is refused (PostgreSQL's send check: the same rule as SendGate): the
// other member declined the request or blocked $2. It reads every current
// member of the conversation, so the check evaluates it for direct
// conversations alone (two members): only they have requests
// (members.request is set when a direct conversation is made, and
// declined from there), and a block refuses sends only there. In a group
// it would read the group's every member for each send.
const SendRefusedSQL = `EXISTS (SELECT 1 FROM members o
		WHERE o.conversation_id = $1 AND o.user_id != $2 AND o.left_pos IS NULL
		AND (o.request = 2 OR EXISTS (SELECT 1 FROM blocks b WHERE b.blocker_id = o.user_id AND b.blocked_id = $2)))`

// HiddenFromSQL lists the users who blocked $1: a message of $1 is not
// for them.
const HiddenFromSQL = `SELECT blocker_id FROM blocks WHERE blocked_id = $1`

// qHiddenFromSenderOf lists the users who blocked the sender of message
// $1: a reaction on it is not for them.
const qHiddenFromSenderOf = `SELECT b.blocker_id FROM blocks b JOIN messages m ON m.sender_id = b.blocked_id WHERE m.id = $1`

const (
	qReach = `SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $2 AND blocked_id = $1), u.consent,
		EXISTS (SELECT 1 FROM members mine
			JOIN members other ON other.conversation_id = mine.conversation_id AND other.left_pos IS NULL
			` + contactsJoin + `
			WHERE mine.user_id = $1 AND other.user_id = $2 AND mine.left_pos IS NULL AND ` + contactsRule + `)
		FROM users u WHERE u.id = $2`
	// qTie reads a pair's own rows (args: user, other, then the pair in
	// the order of conversations.direct_a and direct_b): whether their
	// direct conversation (conversations_direct_pair) has both members
	// written in it (members' key), and the blocks either way (blocks'
	// key). Each probe reads at most one row.
	qTie = `SELECT EXISTS (SELECT 1 FROM conversations c
			JOIN members x ON x.conversation_id = c.id AND x.user_id = $1 AND x.left_pos IS NULL
			JOIN members y ON y.conversation_id = c.id AND y.user_id = $2 AND y.left_pos IS NULL
			WHERE c.kind = 'direct' AND c.direct_a = $3 AND c.direct_b = $4 AND x.wrote AND y.wrote),
		EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2),
		EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $2 AND blocked_id = $1)`
	// qSharedGroup: whether users $1 and $2 are members of a group now;
	// it walks $1's memberships (members_by_user), probing $2's row of
	// each by members' key, and stops at the first group.
	qSharedGroup = `SELECT EXISTS (SELECT 1 FROM members mine
		JOIN members other ON other.conversation_id = mine.conversation_id AND other.user_id = $2 AND other.left_pos IS NULL
		` + contactsJoin + `
		WHERE mine.user_id = $1 AND mine.left_pos IS NULL AND c.kind = 'group')`
	qConsent          = `SELECT consent FROM users WHERE id = $1`
	qConversationKind = `SELECT kind FROM conversations WHERE id = $1`
	qSetConsent       = `UPDATE users SET consent = $1 WHERE id = $2`
	qInsertBlock      = `INSERT INTO blocks (blocker_id, blocked_id, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	qDeleteBlock      = `DELETE FROM blocks WHERE blocker_id = $1 AND blocked_id = $2`
	qBlockCount       = `SELECT COUNT(*) FROM blocks WHERE blocker_id = $1`
	qHasBlocked       = `SELECT EXISTS (SELECT 1 FROM blocks WHERE blocker_id = $1 AND blocked_id = $2)`
	qBlocked          = `SELECT b.blocked_id, u.name FROM blocks b JOIN users u ON u.id = b.blocked_id
		WHERE b.blocker_id = $1 ORDER BY b.at, b.blocked_id`
	qBlocksOf = `SELECT blocker_id, blocked_id FROM blocks WHERE blocker_id = $1 OR blocked_id = $1`
	qConvsOf  = `SELECT conversation_id FROM members WHERE user_id = $1 AND left_pos IS NULL`
	qRequest  = `SELECT c.kind, mb.request, mb.wrote FROM members mb JOIN conversations c ON c.id = mb.conversation_id
		WHERE mb.conversation_id = $1 AND mb.user_id = $2 AND mb.left_pos IS NULL`
	qSetRequest = `UPDATE members SET request = $1 WHERE conversation_id = $2 AND user_id = $3 AND left_pos IS NULL`
	// qAccept ends a request: the recipient ($2) and the starter count
	// as having written (members.wrote), so an accept makes them
	// contacts even before the starter writes. The recipient's row stays
	// a request's (requestRecipient, a declined one's too), so that an
	// accepted request is the same whether accepted or answered by
	// writing, and accepting it again is told from a conversation that
	// was no request: it changes nothing (docs/protocol.md, Requests).
	qAccept = `UPDATE members SET request = CASE WHEN user_id = $2 THEN 1 ELSE request END, wrote = true
		WHERE conversation_id = $1 AND left_pos IS NULL`
	qPeers = `SELECT o.user_id FROM members o
		WHERE o.conversation_id = $1 AND o.left_pos IS NULL AND o.user_id != $2
		AND NOT EXISTS (SELECT 1 FROM blocks b WHERE (b.blocker_id = $2 AND b.blocked_id = o.user_id) OR (b.blocker_id = o.user_id AND b.blocked_id = $2))
		AND NOT EXISTS (SELECT 1 FROM members me WHERE me.conversation_id = $1 AND me.user_id = $2
			AND me.left_pos IS NULL AND me.request != 0 AND NOT me.wrote)
		ORDER BY o.joined_pos, o.user_id`
)

// SendGate is what a conversation's sends are checked against
// (SendGateSQL), for an engine to cache with its members.
type SendGate struct {
	// Refused are the senders whose sends are refused.
	Refused map[string]bool
	// Hidden maps a sender to the members who blocked them.
	Hidden map[string][]string
	// Declined are the members who declined the conversation's request:
	// a send of theirs accepts it (QAcceptByWriting), as a reply to a
	// pending one does.
	Declined map[string]bool
}

// QAcceptByWriting ends a declined request whose recipient ($2) writes in
// the conversation ($1): the row goes back to a request's (requestRecipient),
// which the send's members.wrote marks answered, as a reply to a pending
// request is (docs/protocol.md, Requests). The PostgreSQL send does the
// same in its read-position update.
const QAcceptByWriting = `UPDATE members SET request = 1 WHERE conversation_id = $1 AND user_id = $2 AND request = 2 AND left_pos IS NULL`

// ReadSendGate reads a conversation's SendGate (a block refuses sends
// only in a direct conversation, whose kind it reads when it has one).
func ReadSendGate(ctx context.Context, q Querier, conversationID string) (SendGate, error) {
	var g SendGate
	type pair struct {
		by, of   string
		declined bool
	}
	ps, err := scanAll(query(q.Query(ctx, SendGateSQL, conversationID)), func(r Row) (pair, error) {
		var p pair
		var d int64
		err := r.Scan(&p.by, &p.of, &d)
		p.declined = d == 1
		return p, err
	})
	if err != nil || len(ps) == 0 {
		return g, err
	}
	var kind string
	if err := q.QueryRow(ctx, qConversationKind, conversationID).Scan(&kind); err != nil {
		return g, err
	}
	direct := kind == string(parley.Direct)
	for _, p := range ps {
		if p.declined {
			if g.Declined == nil {
				g.Declined = map[string]bool{}
			}
			g.Declined[p.by] = true
		}
		if p.declined || direct {
			if g.Refused == nil {
				g.Refused = map[string]bool{}
			}
			g.Refused[p.of] = true
		}
		if !p.declined {
			if g.Hidden == nil {
				g.Hidden = map[string][]string{}
			}
			g.Hidden[p.of] = append(g.Hidden[p.of], p.by)
		}
	}
	return g, nil
}

// Without returns ids without those in drop (a new slice).
func Without(ids, drop []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		keep := true
		for _, d := range drop {
			if id == d {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, id)
		}
	}
	return out
}

// Among returns the ids of ids that are in keep, in ids' order (a new
// slice), or nil when none is: who of an audience (ids) receives a
// reply's quote hidden (parley.Event.QuoteHidden), keep being the users
// who blocked the parent's sender.
func Among(ids, keep []string) []string {
	if len(keep) == 0 {
		return nil
	}
	var out []string
	for _, id := range ids {
		if slices.Contains(keep, id) {
			out = append(out, id)
		}
	}
	return out
}

// reachable refuses with parley.ErrUnreachable when actor may not add
// target to a group or start a direct conversation with them (direct):
// target blocked actor, or accepts contacts only and actor is none.
// request says a direct conversation actor starts is a request for
// target: actor is no contact of target (who accepts everyone).
func (s *Store) reachable(w Querier, actor, target string, direct bool) (request bool, err error) {
	var (
		blocked, contact bool
		consent          string
	)
	if err := w.QueryRow(bg, qReach, actor, target).Scan(&blocked, &consent, &contact); err != nil {
		if s.d.IsNoRows(err) {
			return false, parley.Errorf(parley.ENOTFOUND, "no user %q", target)
		}
		return false, err
	}
	if blocked || (parley.Consent(consent) == parley.ConsentContacts && !contact) {
		return false, parley.ErrUnreachable
	}
	return direct && !contact, nil
}

// audienceFor drops from e.Audience (the members) who must not receive
// it: for a message event, those who blocked its actor (for a reaction,
// also those who blocked the sender of the message it is on); for a
// messageRead or messageDelivered (receipts), users blocked by its reader or blocking them, and everyone
// but the reader while the reader's request is pending. For an event
// carrying a reply (e.Message's quote, whole), it sets e.QuoteHidden:
// who of the audience blocked the parent's sender.
func (s *Store) audienceFor(w Tx, e *parley.Event) error {
	switch e.Type {
	case parley.EventMessageEdited, parley.EventMessageDeleted, parley.EventReactionAdded, parley.EventReactionRemoved, parley.EventNewMessage:
		hidden, err := scanAll(query(w.Query(bg, HiddenFromSQL, e.UserID)), scanString)
		if err != nil {
			return err
		}
		if e.Type == parley.EventReactionAdded || e.Type == parley.EventReactionRemoved {
			// Nor the reactions on a message of a user they blocked.
			more, err := scanAll(query(w.Query(bg, qHiddenFromSenderOf, e.MessageID)), scanString)
			if err != nil {
				return err
			}
			hidden = append(hidden, more...)
		}
		if len(hidden) > 0 {
			e.Audience = Without(e.Audience, hidden)
		}
		if q := quoteOf(e); q != nil {
			blockers, err := scanAll(query(w.Query(bg, HiddenFromSQL, q.SenderID)), scanString)
			if err != nil {
				return err
			}
			e.QuoteHidden = Among(e.Audience, blockers)
		}
	case parley.EventMessageRead, parley.EventMessageDelivered:
		var (
			kind    string
			request int64
			wrote   bool
		)
		if err := w.QueryRow(bg, qRequest, e.ConversationID, e.UserID).Scan(&kind, &request, &wrote); err != nil {
			return err
		}
		if request != 0 && !wrote {
			// An unanswered request (pending or declined).
			e.Audience = []string{e.UserID}
			return nil
		}
		type pair struct{ by, of string }
		ps, err := scanAll(query(w.Query(bg, qBlocksOf, e.UserID)), func(r Row) (pair, error) {
			var p pair
			return p, r.Scan(&p.by, &p.of)
		})
		if err != nil || len(ps) == 0 {
			return err
		}
		drop := make([]string, 0, len(ps))
		for _, p := range ps {
			drop = append(drop, p.by, p.of)
		}
		e.Audience = append(Without(e.Audience, drop), e.UserID)
	}
	return nil
}

// ownEvent records a user's own event (Recipient: the user).
func (s *Store) ownEvent(w Tx, e parley.Event) ([]parley.Event, error) {
	e.Recipient, e.At = e.UserID, parley.Now()
	return s.record(w, e, nil)
}

// membersChangedOf tells the engine that the send gates of userID's
// conversations changed (its cached members carry them).
func membersChangedOf(w Tx, userID string) error {
	ids, err := scanAll(query(w.Query(bg, qConvsOf, userID)), scanString)
	for _, id := range ids {
		w.MembersChanged(id)
	}
	return err
}

func validPair(userID, otherID string) error {
	if err := parley.ValidateID("user id", userID); err != nil {
		return err
	}
	if err := parley.ValidateID("user id", otherID); err != nil {
		return err
	}
	if userID == otherID {
		return invalidf("a user cannot block themselves")
	}
	return nil
}

// Block implements parley.Consenter.
func (s *Store) Block(ctx context.Context, userID, otherID string) ([]parley.Event, error) {
	return s.changeBlock(ctx, userID, otherID, parley.EventUserBlocked, func(w Tx) (int64, error) {
		if err := usersExist(w, otherID); err != nil {
			return 0, err
		}
		var n int64
		if err := w.QueryRow(bg, qBlockCount, userID).Scan(&n); err != nil {
			return 0, err
		}
		if n >= parley.MaxBlocked {
			return 0, invalidf("at most %d users can be blocked", parley.MaxBlocked)
		}
		return w.Exec(bg, qInsertBlock, userID, otherID, s.d.Time(parley.Now()))
	})
}

// Unblock implements parley.Consenter.
func (s *Store) Unblock(ctx context.Context, userID, otherID string) ([]parley.Event, error) {
	return s.changeBlock(ctx, userID, otherID, parley.EventUserUnblocked, func(w Tx) (int64, error) {
		return w.Exec(bg, qDeleteBlock, userID, otherID)
	})
}

// changeBlock is Block and Unblock: in one write, change adds or removes
// the block (it returns the rows it changed); a change of nothing (a block
// already there, or none to remove) records no event; otherwise the send
// gates of userID's conversations change and userID's own devices get an
// event of type typ.
func (s *Store) changeBlock(ctx context.Context, userID, otherID string, typ parley.EventType, change func(w Tx) (int64, error)) ([]parley.Event, error) {
	if err := validPair(userID, otherID); err != nil {
		return nil, err
	}
	var events []parley.Event
	err := s.e.Write(ctx, func(w Tx) error {
		events = nil
		changed, err := change(w)
		if err != nil || changed == 0 {
			return err
		}
		if err := membersChangedOf(w, userID); err != nil {
			return err
		}
		events, err = s.ownEvent(w, parley.Event{Type: typ, UserID: userID, UserIDs: []string{otherID}})
		return err
	})
	return events, err
}

// Privacy implements parley.Consenter.
func (s *Store) Privacy(ctx context.Context, userID string) (parley.Privacy, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return parley.Privacy{}, err
	}
	var p parley.Privacy
	err := s.e.Read(ctx, func(q Querier) error {
		if err := q.QueryRow(ctx, qConsent, userID).Scan((*string)(&p.Consent)); err != nil {
			return s.notFound(err, parley.ErrNotFound)
		}
		var err error
		p.Blocked, err = scanAll(query(q.Query(ctx, qBlocked, userID)), func(r Row) (parley.BlockedUser, error) {
			var b parley.BlockedUser
			return b, r.Scan(&b.UserID, &b.Name)
		})
		return err
	})
	if p.Blocked == nil {
		p.Blocked = []parley.BlockedUser{}
	}
	return p, s.wrapInternal(err)
}

// SetConsent implements parley.Consenter.
func (s *Store) SetConsent(ctx context.Context, userID string, c parley.Consent) ([]parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	if !c.Valid() {
		return nil, invalidf(`consent must be "everyone" or "contacts"`)
	}
	var events []parley.Event
	err := s.e.Write(ctx, func(w Tx) error {
		events = nil
		var cur string
		if err := w.QueryRow(bg, qConsent, userID).Scan(&cur); err != nil {
			return s.notFound(err, parley.ErrNotFound)
		}
		if parley.Consent(cur) == c {
			return nil
		}
		if _, err := w.Exec(bg, qSetConsent, string(c), userID); err != nil {
			return err
		}
		var err error
		events, err = s.ownEvent(w, parley.Event{Type: parley.EventPrivacyChanged, UserID: userID, Consent: c})
		return err
	})
	return events, err
}

// AnswerRequest implements parley.Consenter.
func (s *Store) AnswerRequest(ctx context.Context, userID, conversationID string, accept bool) (parley.Conversation, []parley.Event, error) {
	if err := validMembership(userID, conversationID); err != nil {
		return parley.Conversation{}, nil, err
	}
	var (
		c      parley.Conversation
		events []parley.Event
	)
	err := s.e.Write(ctx, func(w Tx) error {
		events = nil
		var (
			kind    string
			request int64
			wrote   bool
		)
		if err := w.QueryRow(bg, qRequest, conversationID, userID).Scan(&kind, &request, &wrote); err != nil {
			return s.notFound(err, parley.ErrNotFound)
		}
		pending := request == requestRecipient && !wrote
		switch {
		case request == 0:
			return invalidf("this conversation is not a request to you")
		case accept && (pending || request == requestDeclined):
			if _, err := w.Exec(bg, qAccept, conversationID, userID); err != nil {
				return err
			}
		case !accept && pending:
			if _, err := w.Exec(bg, qSetRequest, requestDeclined, conversationID, userID); err != nil {
				return err
			}
		case !accept && request != requestDeclined:
			return invalidf("an accepted request cannot be declined; block the user instead")
		default:
			// Accepting an accepted request, declining a declined one.
			var err error
			c, err = s.view(bg, w, userID, conversationID)
			return err
		}
		w.MembersChanged(conversationID)
		typ := parley.EventRequestDeclined
		if accept {
			typ = parley.EventRequestAccepted
		}
		var err error
		members, err := MemberIDs(bg, w, conversationID)
		if err != nil {
			return err
		}
		// UserIDs: the starter, whose contacts an accept may change.
		events, err = s.ownEvent(w, parley.Event{Type: typ, UserID: userID, ConversationID: conversationID,
			UserIDs: Without(members, []string{userID})})
		if err != nil {
			return err
		}
		if accept {
			evs, err := s.revealPositions(w, userID, conversationID)
			if err != nil {
				return err
			}
			events = append(events, evs...)
		}
		c, err = s.view(bg, w, userID, conversationID)
		return err
	})
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	return c, events, nil
}

// revealPositions records, for the members of conversationID, the read
// and delivered positions userID reached while the request hid them (a
// messageRead, and a messageDelivered when delivery is ahead of it; none
// at 0): the starter's receipts catch up on the accept rather than at the
// recipient's next read.
func (s *Store) revealPositions(w Tx, userID, conversationID string) ([]parley.Event, error) {
	read, err := s.readSeq(bg, w, conversationID, userID)
	if err != nil {
		return nil, err
	}
	var delivered, last int64
	if err := w.QueryRow(bg, qDeliveredSeq, conversationID, userID).Scan(&delivered, &last); err != nil {
		return nil, err
	}
	var events []parley.Event
	at := parley.Now()
	if read > 0 {
		evs, err := s.record(w, parley.Event{Type: parley.EventMessageRead, ConversationID: conversationID,
			UserID: userID, ReadSeq: read, At: at}, nil)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	if delivered > read {
		evs, err := s.record(w, parley.Event{Type: parley.EventMessageDelivered, ConversationID: conversationID,
			UserID: userID, DeliveredSeq: delivered, At: at}, nil)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}

// Peers implements parley.Consenter.
func (s *Store) Peers(ctx context.Context, userID, conversationID string) ([]string, error) {
	return s.idsAsMember(ctx, userID, conversationID, func(q Querier) ([]string, error) {
		return scanAll(query(q.Query(ctx, qPeers, conversationID, userID)), scanString)
	})
}

// BlocksAmong implements parley.Consenter.
func (s *Store) BlocksAmong(ctx context.Context, userIDs []string) ([][2]string, error) {
	if len(userIDs) > parley.MaxGroupMembers {
		return nil, parley.Errorf(parley.EINVALID, "at most %d users", parley.MaxGroupMembers)
	}
	if len(userIDs) < 2 {
		return nil, nil
	}
	arg, err := s.d.IDs(userIDs)
	if err != nil {
		return nil, err
	}
	var pairs [][2]string
	err = s.e.Read(ctx, func(q Querier) error {
		pairs, err = scanAll(query(q.Query(ctx, s.sql.blocksWithin, arg)), scanPair)
		return err
	})
	return pairs, s.wrapInternal(err)
}

// Tie implements parley.Consenter.
func (s *Store) Tie(ctx context.Context, userID, otherID string, groups bool) (parley.Tie, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return parley.Tie{}, err
	}
	if err := parley.ValidateID("user id", otherID); err != nil {
		return parley.Tie{}, err
	}
	if userID == otherID {
		return parley.Tie{}, invalidf("a tie links two different users")
	}
	var t parley.Tie
	err := s.e.Read(ctx, func(q Querier) error {
		t = parley.Tie{}
		err := q.QueryRow(ctx, qTie, userID, otherID, min(userID, otherID), max(userID, otherID)).Scan(&t.Direct, &t.Blocked, &t.BlockedBy)
		if err != nil || !groups {
			return err
		}
		return q.QueryRow(ctx, qSharedGroup, userID, otherID).Scan(&t.Group)
	})
	return t, s.wrapInternal(err)
}

// scanPair reads a row of two strings: a block's blocker and blocked
// (BlocksAmong), a message's id and sender (blocksAmong).
func scanPair(r Row) ([2]string, error) {
	var p [2]string
	return p, r.Scan(&p[0], &p[1])
}

// blockSet is the blocks between the actors of some events and anyone:
// blocker -> blocked -> true.
type blockSet map[string]map[string]bool

// quoteOf is the quote, whole, of the reply e carries (newMessage,
// messageEdited), or nil: what a receiver may get hidden (QuoteHidden).
func quoteOf(e *parley.Event) *parley.Quote {
	if (e.Type != parley.EventNewMessage && e.Type != parley.EventMessageEdited) || e.Message == nil {
		return nil
	}
	if q := e.Message.ReplyTo; q != nil && !q.Hidden {
		return q
	}
	return nil
}

// reaches says whether e may go to user as audienceFor decides at write;
// sender is, for a reaction, the sender of the message it is on.
func (b blockSet) reaches(e *parley.Event, user, sender string) bool {
	switch e.Type {
	case parley.EventReactionAdded, parley.EventReactionRemoved:
		return !b[user][e.UserID] && !b[user][sender]
	case parley.EventNewMessage, parley.EventMessageEdited, parley.EventMessageDeleted:
		return !b[user][e.UserID]
	case parley.EventMessageRead, parley.EventMessageDelivered:
		return !b[user][e.UserID] && !b[e.UserID][user]
	}
	return true
}

// blocksAmong reads the blocks that involve the actors of events, the
// senders of the messages their reactions are on, and the senders of the
// messages their replies quote (for Events' audiences, and who of them
// receives a quote hidden); senders maps the reactions' messages to
// their senders.
func (s *Store) blocksAmong(ctx context.Context, q Querier, events []parley.Event) (b blockSet, senders map[string]string, err error) {
	var actors, reacted []string
	seen := map[string]bool{}
	for _, e := range events {
		if e.ConversationID != "" && !seen[e.UserID] {
			seen[e.UserID] = true
			actors = append(actors, e.UserID)
		}
		if (e.Type == parley.EventReactionAdded || e.Type == parley.EventReactionRemoved) && e.MessageID != "" {
			reacted = append(reacted, e.MessageID)
		}
		if q := quoteOf(&e); q != nil && !seen[q.SenderID] {
			seen[q.SenderID] = true
			actors = append(actors, q.SenderID)
		}
	}
	senders = map[string]string{}
	err = s.inChunks(reacted, func(arg any) error {
		ps, err := scanAll(query(q.Query(ctx, s.sql.sendersOf, arg)), scanPair)
		for _, p := range ps {
			senders[p[0]] = p[1]
			if !seen[p[1]] {
				seen[p[1]] = true
				actors = append(actors, p[1])
			}
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	b = blockSet{}
	err = s.inChunks(actors, func(arg any) error {
		type pair struct{ by, of string }
		ps, err := scanAll(query(q.Query(ctx, s.sql.blocksAmong, arg)), func(r Row) (pair, error) {
			var p pair
			return p, r.Scan(&p.by, &p.of)
		})
		for _, p := range ps {
			if b[p.by] == nil {
				b[p.by] = map[string]bool{}
			}
			b[p.by][p.of] = true
		}
		return err
	})
	return b, senders, err
}

// validMembership checks the ids of a user's op on a conversation.
func validMembership(userID, conversationID string) error {
	if err := parley.ValidateID("user id", userID); err != nil {
		return err
	}
	return parley.ValidateID("conversation id", conversationID)
}
