package sqlstore

import (
	"context"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/batchq"
)

// The writes. Each validates its input, then hands a closure to the
// engine's batcher (Engine.Write); the closure runs inside the batch
// transaction and fills the results, which are read only after Write
// returned nil.

// NewID makes the id of a new row: a UUIDv7, so ids sort by creation.
// Its random bits come from uuid's pool (see init): one allocation, the
// string, where reading crypto/rand per id was a second (the UUID, escaping
// through io.ReadFull) and, on kernels without the vDSO getrandom, a
// syscall.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// init turns on uuid's pool of random bytes (still from crypto/rand, 256
// bytes at a time) for the process: sqlstore makes an id per message on
// the write path. uuid asks for it before any concurrent use, which init
// is.
func init() { uuid.EnableRandPool() }

// CreateUser implements parley.Store.
func (s *Store) CreateUser(ctx context.Context, name string, passwordHash []byte) (parley.User, error) {
	name, err := parley.NormalizeUsername(name)
	if err != nil {
		return parley.User{}, err
	}
	u := parley.User{ID: NewID(), Name: name, CreatedAt: parley.Now()}
	key := parley.NameKey(name)
	err = s.e.Write(ctx, func(w Tx) error {
		if err := s.nameFree(w, name, key, u.ID); err != nil {
			return err
		}
		_, err := w.Exec(bg, qInsertUser, u.ID, u.Name, key, passwordHash, s.d.Time(u.CreatedAt))
		return err
	})
	if err != nil {
		return parley.User{}, err
	}
	return u, nil
}

// EnsureUser implements parley.Store. A user who already exists with this
// name costs one read and no write.
func (s *Store) EnsureUser(ctx context.Context, id, name string) (parley.User, error) {
	if err := parley.ValidateID("user id", id); err != nil {
		return parley.User{}, err
	}
	if err := parley.ValidateDisplayName(name); err != nil {
		return parley.User{}, err
	}
	if u, err := s.User(ctx, id); err == nil && u.Name == name {
		return u, nil
	}
	var u parley.User
	key := parley.NameKey(name)
	err := s.e.Write(ctx, func(w Tx) error {
		var err error
		u, err = ScanUser(s.d, w.QueryRow(bg, qUserByID, id))
		switch {
		case s.d.IsNoRows(err):
			if err := s.nameFree(w, name, key, id); err != nil {
				return err
			}
			u = parley.User{ID: id, Name: name, CreatedAt: parley.Now()}
			_, err := w.Exec(bg, qInsertUser, u.ID, u.Name, key, nil, s.d.Time(u.CreatedAt))
			return err
		case err != nil:
			return err
		case u.Name == name:
			return nil
		}
		if err := s.nameFree(w, name, key, id); err != nil {
			return err
		}
		u.Name = name
		w.UserRenamed(id)
		if _, err := w.Exec(bg, qRenameUser, name, key, id); err != nil {
			return err
		}
		return userChanged(w, id)
	})
	if err != nil {
		return parley.User{}, err
	}
	return u, nil
}

// nameFree returns ECONFLICT (parley.NameTaken) when a user other than
// id holds name or its key. Writes are serialised (one writer in SQLite,
// the positions lock in PostgreSQL, and the unique indexes back them up),
// which makes check-then-insert safe.
func (s *Store) nameFree(w Tx, name, key, id string) error {
	var taken string
	err := w.QueryRow(bg, s.sql.userNameTaken, name, key, id).Scan(&taken)
	switch {
	case s.d.IsNoRows(err):
		return nil
	case err != nil:
		return err
	}
	return parley.NameTaken(name, taken)
}

// usersExist returns ENOTFOUND naming the first id with no user.
func usersExist(w Tx, ids ...string) error {
	for _, id := range ids {
		var ok bool
		if err := w.QueryRow(bg, qUserExists, id).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return parley.Errorf(parley.ENOTFOUND, "no user %q", id)
		}
	}
	return nil
}

// CreateDirect implements parley.Store. The pair is stored in canonical
// order under a unique index, so there is one conversation per pair.
func (s *Store) CreateDirect(ctx context.Context, userID, otherID string) (parley.Conversation, []parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return parley.Conversation{}, nil, err
	}
	if err := parley.ValidateID("other user id", otherID); err != nil {
		return parley.Conversation{}, nil, err
	}
	if userID == otherID {
		return parley.Conversation{}, nil, invalidf("a direct conversation needs two different users")
	}
	a, b := min(userID, otherID), max(userID, otherID)
	var (
		c      parley.Conversation
		events []parley.Event
	)
	return writeEvents(ctx, s, &c, &events, func(w Tx) error {
		var id string
		err := w.QueryRow(bg, qDirectByPair, a, b).Scan(&id)
		if err == nil {
			c, err = s.view(bg, w, userID, id)
			return err
		}
		if !s.d.IsNoRows(err) {
			return err
		}
		request, err := s.reachable(w, userID, otherID, true)
		if err != nil {
			return err
		}
		c, events, err = s.create(w, userID, []string{userID, otherID}, parley.Direct, "", a, b)
		if err != nil || !request {
			return err
		}
		// From a non-contact (of a user who accepts everyone; under
		// contacts, reachable refused it): a request for otherID until
		// they accept it or write in it.
		_, err = w.Exec(bg, qSetRequest, requestRecipient, c.ID, otherID)
		return err
	})
}

// CreateGroup implements parley.Store.
func (s *Store) CreateGroup(ctx context.Context, userID, title string, memberIDs []string) (parley.Conversation, []parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return parley.Conversation{}, nil, err
	}
	if err := parley.ValidateTitle(title); err != nil {
		return parley.Conversation{}, nil, err
	}
	others, err := parley.DedupeIDs("member id", memberIDs, userID)
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	if 1+len(others) > parley.MaxGroupMembers {
		return parley.Conversation{}, nil, invalidf("a group has at most %d members", parley.MaxGroupMembers)
	}
	var (
		c      parley.Conversation
		events []parley.Event
	)
	err = s.e.Write(ctx, func(w Tx) error {
		for _, id := range others {
			if _, err := s.reachable(w, userID, id, false); err != nil {
				return err
			}
		}
		var err error
		c, events, err = s.create(w, userID, append([]string{userID}, others...), parley.Group, title, nil, nil)
		return err
	})
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	return c, events, nil
}

// create stores a new conversation made by userID (the first of
// members, who must all exist), its members and its created event (the
// members' windows start at it), and returns it as userID sees it.
// directA and directB are a direct conversation's pair, nil for a group.
func (s *Store) create(w Tx, userID string, members []string, kind parley.ConversationKind, title string, directA, directB any) (parley.Conversation, []parley.Event, error) {
	if err := usersExist(w, members...); err != nil {
		return parley.Conversation{}, nil, err
	}
	id := NewID()
	now := s.d.Time(parley.Now())
	if _, err := w.Exec(bg, qInsertConversation, id, kind, title, userID, now, now, directA, directB); err != nil {
		return parley.Conversation{}, nil, err
	}
	pos := w.NextPos(s.ShardOf(id))
	for i, m := range members {
		role := parley.RoleMember
		if i == 0 && kind == parley.Group {
			role = parley.RoleOwner // the creator
		}
		if err := joinAs(w, id, m, pos, role); err != nil {
			return parley.Conversation{}, nil, err
		}
	}
	e, err := s.conversationEvent(w, pos, id, userID, parley.ChangeCreated, nil, nil)
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	c, err := s.view(bg, w, userID, id)
	return c, []parley.Event{e}, err
}

// conversationEvent records a conversationUpdated event at pos with a
// snapshot of the conversation after the change. extra are audience
// members beyond the current ones (removed users).
func (s *Store) conversationEvent(w Tx, pos int64, id, actor string, ch parley.Change, userIDs, extra []string) (parley.Event, error) {
	snap, err := s.snapshot(bg, w, id)
	if err != nil {
		return parley.Event{}, err
	}
	e := parley.Event{
		Pos:            pos,
		Type:           parley.EventConversationUpdated,
		ConversationID: id,
		UserID:         actor,
		Conversation:   &snap,
		Change:         ch,
		UserIDs:        userIDs,
		At:             parley.Now(),
	}
	return e, s.insertEvent(w, &e, nil, extra)
}

// record stores e at the next position (with insertEvent) and returns it
// as the write's events.
func (s *Store) record(w Tx, e parley.Event, messageID *string) ([]parley.Event, error) {
	e.Pos = w.NextPos(s.ShardOf(e.ConversationID))
	if err := s.insertEvent(w, &e, messageID, nil); err != nil {
		return nil, err
	}
	return []parley.Event{e}, nil
}

// insertEvent stores e (whose Pos is set) and fills its UserName and
// Audience: the current members, plus extra.
func (s *Store) insertEvent(w Tx, e *parley.Event, messageID *string, extra []string) error {
	data, err := s.encodeEventData(e)
	if err != nil {
		return err
	}
	var recipient any
	if e.Recipient != "" {
		recipient = e.Recipient
	}
	var conv any // NULL: a user's own event of no conversation
	if e.ConversationID != "" {
		conv = e.ConversationID
	}
	e.Shard = s.ShardOf(e.ConversationID)
	if _, err := w.Exec(bg, qInsertEvent, e.Pos, conv, string(e.Type), e.UserID, messageID, data, s.d.Time(e.At), recipient, e.Shard); err != nil {
		return err
	}
	if e.UserName == "" {
		if e.UserName, err = w.UserName(e.UserID); err != nil {
			return err
		}
	}
	if e.Recipient != "" {
		e.Audience = []string{e.Recipient}
		w.Stored(*e)
		return nil
	}
	members, err := w.Audience(e.ConversationID)
	if err != nil {
		return err
	}
	// A copy: the engine's slice may be shared, the event's is the
	// caller's.
	e.Audience = make([]string, len(members), len(members)+len(extra))
	copy(e.Audience, members)
	e.Audience = append(e.Audience, extra...)
	if err := s.audienceFor(w, e); err != nil {
		return err
	}
	w.Stored(*e)
	return nil
}

// UpdateConversation implements parley.Store. The changes are made, and
// their events recorded, in this order: rename, add, remove, promote,
// demote (see Store.UpdateConversation for the rules). Every check runs
// before anything changes, so a refused change changes nothing.
func (s *Store) UpdateConversation(ctx context.Context, userID, conversationID string, ch parley.ConversationChange) (parley.Conversation, []parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return parley.Conversation{}, nil, err
	}
	if err := parley.ValidateID("conversation id", conversationID); err != nil {
		return parley.Conversation{}, nil, err
	}
	if ch.Title != nil {
		if err := parley.ValidateTitle(*ch.Title); err != nil {
			return parley.Conversation{}, nil, err
		}
	}
	var lists [4][]string
	for i, l := range [][]string{ch.Add, ch.Remove, ch.Promote, ch.Demote} {
		var err error
		if lists[i], err = parley.DedupeIDs("member id", l, ""); err != nil {
			return parley.Conversation{}, nil, err
		}
	}
	add, remove, promote, demote := lists[0], lists[1], lists[2], lists[3]
	for _, id := range promote {
		if slices.Contains(demote, id) {
			return parley.Conversation{}, nil, invalidf("user %q is both promoted and demoted", id)
		}
	}
	var (
		c      parley.Conversation
		events []parley.Event
	)
	return writeEventsIn(ctx, s, s.ShardOf(conversationID), &c, &events, func(w Tx) error {
		if _, err := s.readSeq(bg, w, conversationID, userID); err != nil {
			return err
		}
		cur, err := s.snapshot(bg, w, conversationID)
		if err != nil {
			return err
		}
		plan, err := planChange(cur, userID, ch.Title, add, remove, promote, demote)
		if err != nil {
			return err
		}
		if err := usersExist(w, plan.added...); err != nil {
			return err
		}
		for _, id := range plan.added {
			if _, err := s.reachable(w, userID, id, false); err != nil {
				return err
			}
		}

		if plan.rename {
			if _, err := w.Exec(bg, qRenameConversation, *ch.Title, conversationID); err != nil {
				return err
			}
			e, err := s.conversationEvent(w, w.NextPos(s.ShardOf(conversationID)), conversationID, userID, parley.ChangeRenamed, nil, nil)
			if err != nil {
				return err
			}
			events = append(events, e)
		}
		for _, step := range []struct {
			ids    []string
			change parley.Change
			apply  func(w Tx, conversationID, userID string, pos int64) error
			extra  []string
		}{
			{plan.added, parley.ChangeMembersAdded, join, nil},
			// The removed users hear of their removal, and nothing after.
			{plan.removed, parley.ChangeMembersRemoved, leave, plan.removed},
			{plan.promoted, parley.ChangeMembersPromoted, setRole(parley.RoleOwner), nil},
			{plan.demoted, parley.ChangeMembersDemoted, setRole(parley.RoleMember), nil},
		} {
			if len(step.ids) == 0 {
				continue
			}
			pos := w.NextPos(s.ShardOf(conversationID))
			for _, id := range step.ids {
				if err := step.apply(w, conversationID, id, pos); err != nil {
					return err
				}
			}
			e, err := s.conversationEvent(w, pos, conversationID, userID, step.change, step.ids, step.extra)
			if err != nil {
				return err
			}
			events = append(events, e)
		}

		if slices.Contains(plan.removed, userID) {
			// The user left: they see the conversation as it is now, but
			// no longer as a member.
			c, err = s.snapshot(bg, w, conversationID)
			return err
		}
		c, err = s.view(bg, w, userID, conversationID)
		return err
	})
}

// changePlan is what a change does, once checked: each list holds only
// the users it changes.
type changePlan struct {
	rename                            bool
	added, removed, promoted, demoted []string
}

// planChange checks a change of cur asked by userID (a member) against
// the roles and returns what it changes. Users already in the state asked
// for (adding a member, removing a non-member, promoting an owner) are
// left out; when the change leaves members but no owner because the last
// owner left, the longest-standing remaining member is promoted.
func planChange(cur parley.Conversation, userID string, title *string, add, remove, promote, demote []string) (changePlan, error) {
	var p changePlan
	if cur.Kind != parley.Group {
		return p, invalidf("a direct conversation cannot be changed")
	}
	role := make(map[string]parley.Role, len(cur.Members))
	for _, m := range cur.Members {
		role[m.UserID] = m.Role
	}
	owner := role[userID] == parley.RoleOwner
	forbidden := func(what string) error {
		return parley.Errorf(parley.EFORBIDDEN, "only an owner of the group may %s", what)
	}
	switch {
	case title != nil && !owner:
		return p, forbidden("rename it")
	case len(add) > 0 && !owner:
		return p, forbidden("add members")
	case (len(promote) > 0 || len(demote) > 0) && !owner:
		return p, forbidden("promote or demote members")
	}
	for _, id := range remove {
		if id != userID && !owner {
			return p, forbidden("remove others (a member may only leave)")
		}
	}

	p.rename = title != nil && *title != cur.Title
	for _, id := range add {
		if role[id] == "" {
			p.added = append(p.added, id)
			role[id] = parley.RoleMember
		}
	}
	if len(cur.Members)+len(p.added) > parley.MaxGroupMembers {
		return p, invalidf("a group has at most %d members", parley.MaxGroupMembers)
	}
	for _, id := range remove {
		if role[id] != "" && !slices.Contains(p.added, id) {
			p.removed = append(p.removed, id)
			delete(role, id)
		}
	}
	// Promotions, then demotions: each moves a member from one role to
	// the other (one already there is no change).
	for _, ch := range []struct {
		ids      []string
		from, to parley.Role
		changed  *[]string
	}{
		{promote, parley.RoleMember, parley.RoleOwner, &p.promoted},
		{demote, parley.RoleOwner, parley.RoleMember, &p.demoted},
	} {
		for _, id := range ch.ids {
			switch role[id] {
			case "":
				return p, invalidf("user %q is not a member of the group", id)
			case ch.from:
				*ch.changed = append(*ch.changed, id)
				role[id] = ch.to
			}
		}
	}

	owners := 0
	for _, r := range role {
		if r == parley.RoleOwner {
			owners++
		}
	}
	if owners > 0 || len(role) == 0 {
		return p, nil
	}
	if len(p.demoted) > 0 && !slices.Contains(p.removed, userID) {
		return p, invalidf("a group needs an owner: promote another member before demoting the last owner")
	}
	// The last owner left (or was removed along with every other owner):
	// the longest-standing member takes over. cur.Members is in the order
	// they joined; the added ones come after them, in the order given.
	for _, id := range append(memberIDsOf(cur), p.added...) {
		if role[id] == parley.RoleMember {
			p.promoted = append(p.promoted, id)
			p.demoted = slices.DeleteFunc(p.demoted, func(d string) bool { return d == id })
			break
		}
	}
	return p, nil
}

func memberIDsOf(c parley.Conversation) []string {
	ids := make([]string, len(c.Members))
	for i, m := range c.Members {
		ids[i] = m.UserID
	}
	return ids
}

// setRole returns a step that gives its users role.
func setRole(role parley.Role) func(w Tx, conversationID, userID string, pos int64) error {
	return func(w Tx, conversationID, userID string, _ int64) error {
		_, err := w.Exec(bg, qSetRole, string(role), conversationID, userID)
		return err
	}
}

// join opens a membership window at pos, as a member; leave closes it.
func join(w Tx, conversationID, userID string, pos int64) error {
	return joinAs(w, conversationID, userID, pos, parley.RoleMember)
}

func joinAs(w Tx, conversationID, userID string, pos int64, role parley.Role) error {
	w.MembersChanged(conversationID)
	_, err := w.Exec(bg, qInsertMember, conversationID, userID, pos, string(role))
	return err
}

func leave(w Tx, conversationID, userID string, pos int64) error {
	w.MembersChanged(conversationID)
	_, err := w.Exec(bg, qRemoveMember, pos, conversationID, userID)
	return err
}

// NewSend is a send as the engine's send path takes it: with its default
// type, validated.
func NewSend(nm parley.NewMessage) (parley.NewMessage, error) {
	if nm.Type == "" {
		nm.Type = parley.Text
	}
	return nm, nm.Validate()
}

// SendMessage implements parley.Store. The sender must be a member; then a
// ClientID the sender already used returns the stored message and no
// events (SendRule). It is the hot write: the engine's own path
// (Engine.Send) stores it.
func (s *Store) SendMessage(ctx context.Context, nm parley.NewMessage) (parley.Message, []parley.Event, error) {
	nm, err := NewSend(nm)
	if err != nil {
		return parley.Message{}, nil, err
	}
	return s.e.Send(ctx, nm)
}

// SendMessages implements parley.MultiSender: the valid sends go to the
// engine together, in order (Engine.SendMany), so they share a batch (or
// follow each other in consecutive ones), and each is answered as its
// batch commits; an invalid one is answered in its place.
func (s *Store) SendMessages(ctx context.Context, nms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) {
	s.sendMessages(nms, func(valid []parley.NewMessage, answer func(int, parley.Message, []parley.Event, error)) {
		s.e.SendMany(ctx, false, nil, valid, answer)
	}, done)
}

// SendMessagesAsync implements parley.AsyncSender: SendMessages through
// Engine.SendMany with async, so done runs on the batcher goroutine.
func (s *Store) SendMessagesAsync(nms []parley.NewMessage, drop *atomic.Bool, done func(int, parley.Message, []parley.Event, error)) {
	s.sendMessages(nms, func(valid []parley.NewMessage, answer func(int, parley.Message, []parley.Event, error)) {
		s.e.SendMany(context.Background(), true, drop, valid, answer)
	}, done)
}

// sendMessages validates nms and hands the valid ones to send, answering
// every one of nms through done in order (the invalid ones in their
// place, see batchq.InOrder).
func (s *Store) sendMessages(nms []parley.NewMessage, send func([]parley.NewMessage, func(int, parley.Message, []parley.Event, error)), done func(int, parley.Message, []parley.Event, error)) {
	var invalid []error // nil while every send is valid (the usual case)
	valid := make([]parley.NewMessage, 0, len(nms))
	for i, nm := range nms {
		nm, err := NewSend(nm)
		if err == nil {
			valid = append(valid, nm)
			continue
		}
		if invalid == nil {
			invalid = make([]error, len(nms))
		}
		invalid[i] = err
	}
	if invalid == nil {
		send(valid, done) // valid[k] is nms[k]: nothing to answer in between
		return
	}
	// The results of the send being answered: send's done answers
	// through InOrder, which calls ours at once.
	var (
		msg    parley.Message
		events []parley.Event
	)
	batchq.InOrder(invalid, func(answer func(int, error)) {
		send(valid, func(k int, m parley.Message, evs []parley.Event, err error) {
			msg, events = m, evs
			answer(k, err)
		})
	}, func(i int, err error) {
		if err != nil {
			done(i, parley.Message{}, nil, err)
			return
		}
		done(i, msg, events, nil)
	})
}

// DeleteMessage implements parley.Store.
func (s *Store) DeleteMessage(ctx context.Context, userID, conversationID, messageID string) (parley.Message, []parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return parley.Message{}, nil, err
	}
	return s.deleteMessage(ctx, userID, conversationID, messageID)
}

// ModerateMessage implements parley.APIKeyStore: DeleteMessage for the
// server API, with no sender or membership check; the event names the
// sender as its user.
func (s *Store) ModerateMessage(ctx context.Context, conversationID, messageID string) (parley.Message, []parley.Event, error) {
	return s.deleteMessage(ctx, "", conversationID, messageID)
}

// deleteMessage tombstones a message: userID's own (a member's), or with
// userID "" any (moderation).
func (s *Store) deleteMessage(ctx context.Context, userID, conversationID, messageID string) (parley.Message, []parley.Event, error) {
	for _, f := range [][2]string{{"conversation id", conversationID}, {"message id", messageID}} {
		if err := parley.ValidateID(f[0], f[1]); err != nil {
			return parley.Message{}, nil, err
		}
	}
	var (
		msg    parley.Message
		events []parley.Event
	)
	return writeEventsIn(ctx, s, s.ShardOf(conversationID), &msg, &events, func(w Tx) error {
		if userID != "" {
			if _, err := s.readSeq(bg, w, conversationID, userID); err != nil {
				return err
			}
		}
		var err error
		msg, err = ScanMessage(s.d, w.QueryRow(bg, qMessageByID, messageID, conversationID))
		switch {
		case err != nil:
			return s.notFound(err, parley.ErrNotFound)
		case userID != "" && msg.SenderID != userID:
			return parley.Errorf(parley.EFORBIDDEN, "only the sender may delete a message")
		case msg.Deleted:
			return nil
		}
		now := parley.Now()
		if _, err := w.Exec(bg, qDeleteMessage, s.d.Time(now), messageID); err != nil {
			return err
		}
		if _, err := w.Exec(bg, qDeleteReactions, messageID); err != nil {
			return err
		}
		msg, err = ScanMessage(s.d, w.QueryRow(bg, qMessageByID, messageID, conversationID))
		if err != nil {
			return err
		}
		events, err = s.record(w, parley.Event{Type: parley.EventMessageDeleted, ConversationID: conversationID,
			UserID: msg.SenderID, Message: &msg, At: now}, &messageID)
		return err
	})
}

// EditMessage implements parley.Store. The edit's client id is checked
// before the message's state, so a resend of an applied edit returns the
// message whatever happened to it since (a later edit, a delete).
func (s *Store) EditMessage(ctx context.Context, ed parley.MessageEdit) (parley.Message, []parley.Event, error) {
	if err := ed.Validate(); err != nil {
		return parley.Message{}, nil, err
	}
	var (
		msg    parley.Message
		events []parley.Event
	)
	return writeEventsIn(ctx, s, s.ShardOf(ed.ConversationID), &msg, &events, func(w Tx) error {
		if err := s.edit(w, ed, &msg, &events); err != nil {
			return err
		}
		// The answer is the message as its sender reads it; the event's
		// is whole (its receivers' quotes: QuoteHidden).
		return s.hideQuoteFor(w, ed.UserID, &msg)
	})
}

// edit is EditMessage's write: msg is the message as it is after it,
// whole, and events its event (none for an edit that changes nothing).
func (s *Store) edit(w Tx, ed parley.MessageEdit, msg *parley.Message, events *[]parley.Event) error {
	if _, err := s.readSeq(bg, w, ed.ConversationID, ed.UserID); err != nil {
		return err
	}
	var err error
	if ed.MessageID != "" {
		*msg, err = ScanMessage(s.d, w.QueryRow(bg, qMessageByID, ed.MessageID, ed.ConversationID))
	} else {
		*msg, err = ScanMessage(s.d, w.QueryRow(bg, qMessageByClientIDWhole, ed.UserID, ed.MessageClientID))
		if err == nil && msg.ConversationID != ed.ConversationID {
			return parley.ErrNotFound
		}
	}
	switch {
	case err != nil:
		return s.notFound(err, parley.ErrNotFound)
	case msg.SenderID != ed.UserID:
		return parley.Errorf(parley.EFORBIDDEN, "only the sender may edit a message")
	}
	var applied string
	err = w.QueryRow(bg, qEditByClientID, ed.UserID, ed.ClientID).Scan(&applied)
	switch {
	case err == nil && applied != msg.ID:
		return parley.Errorf(parley.ECONFLICT, "client_id %q was used for an edit of another message", ed.ClientID)
	case err == nil:
		return nil // a resend of an applied edit: the message as it is
	case !s.d.IsNoRows(err):
		return err
	case msg.Deleted:
		return invalidf("a deleted message cannot be edited")
	}
	if err := parley.ValidateText(ed.Text, msg.Type == parley.Text); err != nil {
		return err
	}
	if _, err := w.Exec(bg, qInsertEdit, ed.UserID, ed.ClientID, msg.ID); err != nil {
		return err
	}
	if ed.Text == msg.Text {
		return nil // nothing changes: no event
	}
	// An edit resolves its mentions afresh, against the members now.
	mentions, err := MentionRule(s.d, w, ed.ConversationID, ed.UserID, ed.Text)
	if err != nil {
		return err
	}
	now := parley.Now()
	if _, err := w.Exec(bg, qEditMessage, ed.Text, s.d.Time(now), msg.ID, mentionsArg(mentions)); err != nil {
		return err
	}
	msg.Text, msg.EditedAt, msg.Mentions = ed.Text, &now, mentions
	whole := *msg // the event's own: msg becomes the sender's
	*events, err = s.record(w, parley.Event{Type: parley.EventMessageEdited, ConversationID: ed.ConversationID,
		UserID: ed.UserID, Message: &whole, At: now}, &msg.ID)
	return err
}

// hideQuoteFor hides m's quote (parley.Quote.Hide) when reader blocked
// the sender of the message m replies to: m as reader reads it. A query
// only for a reply quoting another user.
func (s *Store) hideQuoteFor(q Querier, reader string, m *parley.Message) error {
	if m.ReplyTo == nil || m.ReplyTo.Hidden || m.ReplyTo.SenderID == reader {
		return nil
	}
	var blocked bool
	if err := q.QueryRow(bg, qHasBlocked, reader, m.ReplyTo.SenderID).Scan(&blocked); err != nil {
		return err
	}
	if blocked {
		m.ReplyTo = m.ReplyTo.Hide()
	}
	return nil
}

// React implements parley.Store.
func (s *Store) React(ctx context.Context, userID, conversationID, messageID, emoji string, add bool) ([]parley.Reaction, []parley.Event, error) {
	for _, f := range [][2]string{{"user id", userID}, {"conversation id", conversationID}, {"message id", messageID}} {
		if err := parley.ValidateID(f[0], f[1]); err != nil {
			return nil, nil, err
		}
	}
	if err := parley.ValidateEmoji(emoji); err != nil {
		return nil, nil, err
	}
	var (
		reactions []parley.Reaction
		events    []parley.Event
	)
	err := s.e.WriteShard(ctx, s.ShardOf(conversationID), func(w Tx) error {
		events = nil
		if _, err := s.readSeq(bg, w, conversationID, userID); err != nil {
			return err
		}
		msg, err := ScanMessage(s.d, w.QueryRow(bg, qMessageByID, messageID, conversationID))
		if err != nil {
			return s.notFound(err, parley.ErrNotFound)
		}
		var changed bool
		if add {
			changed, err = s.canAddReaction(w, msg, userID, emoji)
		} else {
			var n int64
			n, err = w.Exec(bg, qDeleteReaction, messageID, userID, emoji)
			changed = n > 0
		}
		if err != nil {
			return err
		}
		var e parley.Event
		if changed {
			e = parley.Event{Type: parley.EventReactionRemoved, ConversationID: conversationID, UserID: userID,
				MessageID: messageID, Seq: msg.Seq, Emoji: emoji, At: parley.Now(), Pos: w.NextPos(s.ShardOf(conversationID))}
			if add {
				// The reaction keeps its event's position: it orders a
				// message's emoji by first use.
				e.Type = parley.EventReactionAdded
				if _, err := w.Exec(bg, qInsertReaction, messageID, userID, emoji, e.Pos); err != nil {
					return err
				}
			}
		}
		rs, err := s.reactionsOf(bg, w, userID, []string{messageID})
		if err != nil {
			return err
		}
		reactions = rs[messageID]
		if !changed {
			return nil
		}
		for _, r := range reactions {
			if r.Emoji == emoji {
				e.Count = r.Count
			}
		}
		// The message's id goes in the event's column too, for the
		// replay's filter (ReplayFilter: a reaction on the message of a
		// user the reader blocked).
		if err := s.insertEvent(w, &e, &messageID, nil); err != nil {
			return err
		}
		events = []parley.Event{e}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if reactions == nil {
		reactions = []parley.Reaction{}
	}
	return reactions, events, nil
}

// canAddReaction reports whether userID's emoji is new on msg, and
// refuses it (EINVALID) on a tombstone or past MaxReactionKinds.
func (s *Store) canAddReaction(w Tx, msg parley.Message, userID, emoji string) (bool, error) {
	var has bool
	if err := w.QueryRow(bg, qHasReaction, msg.ID, userID, emoji).Scan(&has); err != nil || has {
		return false, err
	}
	if msg.Deleted {
		return false, invalidf("a deleted message takes no reactions")
	}
	var kinds, known int64
	if err := w.QueryRow(bg, qReactionKinds, msg.ID, emoji).Scan(&kinds, &known); err != nil {
		return false, err
	}
	if known == 0 && kinds >= parley.MaxReactionKinds {
		return false, invalidf("a message takes at most %d different emoji", parley.MaxReactionKinds)
	}
	return true, nil
}

// SetFlags implements parley.Store.
func (s *Store) SetFlags(ctx context.Context, userID, conversationID string, muted, archived *bool) (parley.Conversation, []parley.Event, error) {
	if err := validMembership(userID, conversationID); err != nil {
		return parley.Conversation{}, nil, err
	}
	var (
		c      parley.Conversation
		events []parley.Event
	)
	return writeEventsIn(ctx, s, s.ShardOf(conversationID), &c, &events, func(w Tx) error {
		var (
			f       parley.MemberFlags
			lastSeq int64
		)
		if err := w.QueryRow(bg, qMemberFlags, conversationID, userID).Scan(&f.Muted, &f.Archived, &lastSeq); err != nil {
			return s.notFound(err, parley.ErrNotFound)
		}
		next := f
		if muted != nil {
			next.Muted = *muted
		}
		if archived != nil {
			next.Archived = *archived
		}
		if next != f {
			if next.Muted != f.Muted {
				if _, err := w.Exec(bg, qSetMuted, next.Muted, conversationID, userID); err != nil {
					return err
				}
			}
			if next.Archived != f.Archived {
				var seq any // NULL: not archived
				if next.Archived {
					seq = lastSeq
				}
				if _, err := w.Exec(bg, qSetArchived, seq, conversationID, userID); err != nil {
					return err
				}
			}
			var err error
			events, err = s.record(w, parley.Event{Type: parley.EventFlagsChanged, ConversationID: conversationID,
				UserID: userID, Flags: &next, Recipient: userID, At: parley.Now()}, nil)
			if err != nil {
				return err
			}
		}
		var err error
		c, err = s.view(bg, w, userID, conversationID)
		return err
	})
}

// MarkRead implements parley.Store.
func (s *Store) MarkRead(ctx context.Context, userID, conversationID string, seq int64) ([]parley.Event, error) {
	if err := parley.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	if err := parley.ValidateID("conversation id", conversationID); err != nil {
		return nil, err
	}
	if seq < 0 {
		return nil, invalidf("seq must not be negative")
	}
	var events []parley.Event
	err := s.e.WriteShard(ctx, s.ShardOf(conversationID), func(w Tx) error {
		events = nil
		cur, err := s.readSeq(bg, w, conversationID, userID)
		if err != nil {
			return err
		}
		var last int64
		if err := w.QueryRow(bg, QLastSeq, conversationID).Scan(&last); err != nil {
			return err
		}
		seq := min(seq, last)
		if seq <= cur {
			return nil
		}
		if _, err := w.Exec(bg, qSetReadSeq, seq, conversationID, userID); err != nil {
			return err
		}
		events, err = s.record(w, parley.Event{Type: parley.EventMessageRead, ConversationID: conversationID,
			UserID: userID, ReadSeq: seq, At: parley.Now()}, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// PutAttachment implements parley.Store. Size is len(data) whatever a.Size
// says. The quota is checked in the write, under the batch's lock.
func (s *Store) PutAttachment(ctx context.Context, ownerID string, a parley.Attachment, data, thumb []byte, quota int64) error {
	if err := parley.ValidateID("owner id", ownerID); err != nil {
		return err
	}
	if err := parley.ValidateID("attachment id", a.ID); err != nil {
		return err
	}
	switch {
	case a.ContentType == "":
		return invalidf("content type is required")
	case len(data) == 0:
		return invalidf("the attachment is empty")
	case a.Width < 0 || a.Height < 0:
		return invalidf("width and height must not be negative")
	case len(a.Name) > parley.MaxFileNameBytes || !utf8.ValidString(a.Name):
		return invalidf("name must be valid UTF-8 of at most %d bytes", parley.MaxFileNameBytes)
	case a.Name != "" && (a.Width != 0 || a.Height != 0):
		return invalidf("a file (with a name) has no width or height")
	}
	if len(thumb) == 0 {
		thumb = nil
	}
	return s.e.Write(ctx, func(w Tx) error {
		if err := usersExist(w, ownerID); err != nil {
			return err
		}
		var taken bool
		if err := w.QueryRow(bg, qAttachmentExists, a.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return parley.Errorf(parley.ECONFLICT, "attachment %q exists", a.ID)
		}
		if quota > 0 {
			var used int64
			if err := w.QueryRow(bg, qUploadUsage, ownerID).Scan(&used); err != nil {
				return err
			}
			if need := int64(len(data) + len(thumb)); used+need > quota {
				return parley.QuotaError(used, need, quota)
			}
		}
		inline := data
		if s.chunked {
			inline = []byte{} // the data goes in chunk rows (ChunkedAttachments)
		}
		if _, err := w.Exec(bg, qInsertAttachment, a.ID, ownerID, a.ContentType, int64(len(data)), a.Width, a.Height,
			inline, thumb, s.d.Time(parley.Now()), a.Name); err != nil || !s.chunked {
			return err
		}
		for n := 0; n*AttachmentChunkBytes < len(data); n++ {
			chunk := data[n*AttachmentChunkBytes : min(len(data), (n+1)*AttachmentChunkBytes)]
			if _, err := w.Exec(bg, qInsertAttachmentChunk, a.ID, n, chunk); err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteOrphanAttachments implements parley.Store. It is a write like
// any other, so a send naming an attachment runs wholly before or after it.
func (s *Store) DeleteOrphanAttachments(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, invalidf("limit must be positive")
	}
	var n int64
	err := s.e.Write(ctx, func(w Tx) error {
		var err error
		n, err = w.Exec(bg, qDeleteOrphans, s.d.Time(before), limit)
		return err
	})
	return int(n), err
}

// writeEvents runs body in a write transaction and returns what body left
// in *v and *events, or the zero T and the error. The engine may run body
// more than once (a retried transaction): *events is reset before each
// run.
func writeEvents[T any](ctx context.Context, s *Store, v *T, events *[]parley.Event, body func(w Tx) error) (T, []parley.Event, error) {
	return writeEventsIn(ctx, s, -1, v, events, body)
}

// writeEventsIn is writeEvents for a body that takes positions in shard
// alone (Engine.WriteShard), or in any shard when shard is -1.
func writeEventsIn[T any](ctx context.Context, s *Store, shard int, v *T, events *[]parley.Event, body func(w Tx) error) (T, []parley.Event, error) {
	fn := func(w Tx) error {
		*events = nil
		return body(w)
	}
	var err error
	if shard < 0 {
		err = s.e.Write(ctx, fn)
	} else {
		err = s.e.WriteShard(ctx, shard, fn)
	}
	if err != nil {
		var zero T
		return zero, nil, err
	}
	return *v, *events, nil
}
