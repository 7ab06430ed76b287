package postgres

import (
	"context"
	"errors"
	"github.com/jackc/pgx/v5"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/batchq"
)

// The writes. Each validates its input, then queues a closure for the
// batcher (batch.go); the closure runs inside the batch transaction and
// fills the results, which are read only after db.b.do returned nil.

func newID() string { return uuid.Must(uuid.NewV7()).String() }

// CreateUser implements parley.Store.
func (db *DB) CreateUser(ctx context.Context, name string, passwordHash []byte) (parley.User, error) {
	name, err := parley.NormalizeUsername(name)
	if err != nil {
		return parley.User{}, err
	}
	u := parley.User{ID: newID(), Name: name, CreatedAt: parley.Now()}
	key := parley.NameKey(name)
	err = db.b.do(ctx, func(w *writeTx) error {
		if err := w.nameFree(name, key, u.ID); err != nil {
			return err
		}
		_, err := w.exec(qInsertUser, u.ID, u.Name, key, passwordHash, u.CreatedAt)
		return err
	})
	if err != nil {
		return parley.User{}, err
	}
	return u, nil
}

// EnsureUser implements parley.Store. A user who already exists with this
// name costs one read and no write.
func (db *DB) EnsureUser(ctx context.Context, id, name string) (parley.User, error) {
	if err := parley.ValidateID("user id", id); err != nil {
		return parley.User{}, err
	}
	if err := parley.ValidateDisplayName(name); err != nil {
		return parley.User{}, err
	}
	if u, err := db.User(ctx, id); err == nil && u.Name == name {
		return u, nil
	}
	var u parley.User
	key := parley.NameKey(name)
	err := db.b.do(ctx, func(w *writeTx) error {
		var err error
		u, err = scanUser(w.queryRow(qUserByID, id))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if err := w.nameFree(name, key, id); err != nil {
				return err
			}
			u = parley.User{ID: id, Name: name, CreatedAt: parley.Now()}
			_, err := w.exec(qInsertUser, u.ID, u.Name, key, nil, u.CreatedAt)
			return err
		case err != nil:
			return err
		case u.Name == name:
			return nil
		}
		if err := w.nameFree(name, key, id); err != nil {
			return err
		}
		u.Name = name
		_, err = w.exec(qRenameUser, name, key, id)
		return err
	})
	if err != nil {
		return parley.User{}, err
	}
	return u, nil
}

// nameFree returns ECONFLICT (parley.NameTaken) when a user other than
// id holds name or its key. The positions lock, held by every write
// transaction of every node, makes check-then-insert safe (and the unique
// indexes back it up).
func (w *writeTx) nameFree(name, key, id string) error {
	var taken string
	err := w.queryRow(qUserNameTaken, name, key, id).Scan(&taken)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return parley.NameTaken(name, taken)
}

// usersExist returns ENOTFOUND naming the first id with no user.
func (w *writeTx) usersExist(ids ...string) error {
	for _, id := range ids {
		var ok bool
		if err := w.queryRow(qUserExists, id).Scan(&ok); err != nil {
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
func (db *DB) CreateDirect(ctx context.Context, userID, otherID string) (parley.Conversation, []parley.Event, error) {
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
	err := db.b.do(ctx, func(w *writeTx) error {
		var id string
		err := w.queryRow(qDirectByPair, a, b).Scan(&id)
		if err == nil {
			c, err = view(bg, w, userID, id)
			return err
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := w.usersExist(userID, otherID); err != nil {
			return err
		}
		id = newID()
		now := parley.Now()
		if _, err := w.exec(qInsertConversation, id, parley.Direct, "", userID, now, now, a, b); err != nil {
			return err
		}
		e, err := w.created(id, userID, []string{userID, otherID})
		if err != nil {
			return err
		}
		events = []parley.Event{e}
		c, err = view(bg, w, userID, id)
		return err
	})
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	return c, events, nil
}

// CreateGroup implements parley.Store.
func (db *DB) CreateGroup(ctx context.Context, userID, title string, memberIDs []string) (parley.Conversation, []parley.Event, error) {
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
	err = db.b.do(ctx, func(w *writeTx) error {
		members := append([]string{userID}, others...)
		if err := w.usersExist(members...); err != nil {
			return err
		}
		id := newID()
		now := parley.Now()
		if _, err := w.exec(qInsertConversation, id, parley.Group, title, userID, now, now, nil, nil); err != nil {
			return err
		}
		e, err := w.created(id, userID, members)
		if err != nil {
			return err
		}
		events = []parley.Event{e}
		c, err = view(bg, w, userID, id)
		return err
	})
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	return c, events, nil
}

// created adds the members of a new conversation and its created event;
// the members' windows start at that event.
func (w *writeTx) created(id, actor string, members []string) (parley.Event, error) {
	pos := w.nextPos()
	for _, m := range members {
		if _, err := w.exec(qInsertMember, id, m, pos); err != nil {
			return parley.Event{}, err
		}
	}
	return w.conversationEvent(pos, id, actor, parley.ChangeCreated, nil, nil)
}

// conversationEvent records a conversationUpdated event at pos with a
// snapshot of the conversation after the change. extra are audience
// members beyond the current ones (removed users).
func (w *writeTx) conversationEvent(pos int64, id, actor string, ch parley.Change, userIDs, extra []string) (parley.Event, error) {
	snap, err := snapshot(bg, w, id)
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
	return e, w.insertEvent(&e, nil, extra)
}

// insertEvent stores e (whose Pos is set) and fills its UserName and
// Audience: the current members, plus extra.
func (w *writeTx) insertEvent(e *parley.Event, messageID *string, extra []string) error {
	data, err := encodeEventData(e)
	if err != nil {
		return err
	}
	if _, err := w.exec(qInsertEvent, e.Pos, e.ConversationID, string(e.Type), e.UserID, messageID, data, e.At); err != nil {
		return err
	}
	if err := w.queryRow(qUserByID, e.UserID).Scan(new(string), &e.UserName, new(time.Time)); err != nil {
		return err
	}
	e.Audience, err = memberIDs(bg, w, e.ConversationID)
	if err != nil {
		return err
	}
	e.Audience = append(e.Audience, extra...)
	return nil
}

// UpdateConversation implements parley.Store. The changes are made, and
// their events recorded, in this order: rename, add, remove.
func (db *DB) UpdateConversation(ctx context.Context, userID, conversationID string, ch parley.ConversationChange) (parley.Conversation, []parley.Event, error) {
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
	add, err := parley.DedupeIDs("member id", ch.Add, "")
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	remove, err := parley.DedupeIDs("member id", ch.Remove, "")
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	var (
		c      parley.Conversation
		events []parley.Event
	)
	err = db.b.do(ctx, func(w *writeTx) error {
		if err := w.member(conversationID, userID); err != nil {
			return err
		}
		cur, err := snapshot(bg, w, conversationID)
		if err != nil {
			return err
		}
		if cur.Kind != parley.Group {
			return invalidf("a direct conversation cannot be changed")
		}
		isMember := make(map[string]bool, len(cur.Members))
		for _, m := range cur.Members {
			isMember[m.UserID] = true
		}

		// Check everything before changing anything.
		var added, removed []string
		for _, id := range add {
			if !isMember[id] {
				added = append(added, id)
			}
		}
		for _, id := range remove {
			if isMember[id] && !contains(added, id) {
				removed = append(removed, id)
			}
		}
		if err := w.usersExist(added...); err != nil {
			return err
		}
		if len(cur.Members)+len(added) > parley.MaxGroupMembers {
			return invalidf("a group has at most %d members", parley.MaxGroupMembers)
		}
		for _, id := range removed {
			if id != userID && userID != cur.CreatedBy {
				return parley.Errorf(parley.EFORBIDDEN, "only the group's creator may remove others")
			}
		}

		if ch.Title != nil && *ch.Title != cur.Title {
			if _, err := w.exec(qRenameConversation, *ch.Title, conversationID); err != nil {
				return err
			}
			e, err := w.conversationEvent(w.nextPos(), conversationID, userID, parley.ChangeRenamed, nil, nil)
			if err != nil {
				return err
			}
			events = append(events, e)
		}
		if len(added) > 0 {
			pos := w.nextPos()
			for _, id := range added {
				if _, err := w.exec(qInsertMember, conversationID, id, pos); err != nil {
					return err
				}
			}
			e, err := w.conversationEvent(pos, conversationID, userID, parley.ChangeMembersAdded, added, nil)
			if err != nil {
				return err
			}
			events = append(events, e)
		}
		if len(removed) > 0 {
			pos := w.nextPos()
			for _, id := range removed {
				if _, err := w.exec(qRemoveMember, pos, conversationID, id); err != nil {
					return err
				}
			}
			// The removed users hear of their removal, and nothing after.
			e, err := w.conversationEvent(pos, conversationID, userID, parley.ChangeMembersRemoved, removed, removed)
			if err != nil {
				return err
			}
			events = append(events, e)
		}

		if contains(removed, userID) {
			// The user left: they see the conversation as it is now, but
			// no longer as a member.
			c, err = snapshot(bg, w, conversationID)
			return err
		}
		c, err = view(bg, w, userID, conversationID)
		return err
	})
	if err != nil {
		return parley.Conversation{}, nil, err
	}
	return c, events, nil
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// member returns ErrNotFound unless userID is a member of the conversation.
func (w *writeTx) member(conversationID, userID string) error {
	_, err := readSeq(bg, w, conversationID, userID)
	return err
}

// SendMessage implements parley.Store. The sender must be a member; then a
// ClientID the sender already used returns the stored message and no
// events.
func (db *DB) SendMessage(ctx context.Context, nm parley.NewMessage) (parley.Message, []parley.Event, error) {
	if nm.Type == "" {
		nm.Type = parley.Text
	}
	if err := nm.Validate(); err != nil {
		return parley.Message{}, nil, err
	}
	return db.send(ctx, nm)
}

// send is SendMessage after validation.
func (db *DB) send(ctx context.Context, nm parley.NewMessage) (parley.Message, []parley.Event, error) {
	o := newSendOp(nm)
	if err := db.b.enqueue(ctx, o); err != nil {
		return parley.Message{}, nil, err
	}
	return o.send.msg, o.send.events, nil
}

// SendMessages implements parley.MultiSender: the sends are queued for the
// batcher together, in order, so they share a batch (or follow each other
// in consecutive ones), and each is answered as its batch commits.
func (db *DB) SendMessages(ctx context.Context, nms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) {
	sends := make([]*op, len(nms)) // the op of each valid send
	invalid := make([]error, len(nms))
	ops := make([]*op, 0, len(nms))
	for i, nm := range nms {
		if nm.Type == "" {
			nm.Type = parley.Text
		}
		if invalid[i] = nm.Validate(); invalid[i] == nil {
			sends[i] = newSendOp(nm)
			ops = append(ops, sends[i])
		}
	}
	batchq.InOrder(invalid, func(answer func(int, error)) { db.b.enqueueMany(ctx, ops, answer) },
		func(i int, err error) {
			if err != nil {
				done(i, parley.Message{}, nil, err)
				return
			}
			done(i, sends[i].send.msg, sends[i].send.events, nil)
		})
}

// newSendOp makes the op of a validated send. The batcher normally runs
// every send of a batch together (bulk.go); its fn is the way one send
// runs alone, when a bulk statement failed. Its results are in op.send
// once it succeeded.
func newSendOp(nm parley.NewMessage) *op {
	so := &sendOp{nm: nm}
	msg, events := &so.msg, &so.events
	// Two statements: the first reads everything the checks need, the
	// second writes the message, the conversation's counters, the
	// sender's read position and the event, and returns the audience; the
	// message is built here, not re-read.
	return &op{send: so, done: make(chan error, 1), fn: func(w *writeTx) error {
		*msg, *events = parley.Message{}, nil // a failed bulk run may have set them
		var (
			member              bool
			last                int64
			senderName          string
			oldID, oldConv      *string
			owned               bool
			attType             *string
			attSize             *int64
			attWidth, attHeight *int32
		)
		err := w.queryRow(qSendCheck, nm.ConversationID, nm.SenderID, nm.ClientID, nm.AttachmentID).Scan(
			&member, &last, &senderName, &oldID, &oldConv, &owned, &attType, &attSize, &attWidth, &attHeight)
		if err != nil {
			return err
		}
		switch {
		case !member:
			return parley.ErrNotFound
		case oldID != nil && *oldConv == nm.ConversationID:
			*msg, err = scanMessage(w.queryRow(qMessageByID, *oldID, nm.ConversationID))
			return err
		case oldID != nil:
			return parley.Errorf(parley.ECONFLICT, "client_id %q was used for another conversation", nm.ClientID)
		}
		var attachment *string
		if nm.Type == parley.Image {
			if !owned {
				return invalidf("attachment_id does not name an upload of yours")
			}
			attachment = &nm.AttachmentID
		}
		id, seq, now := newID(), last+1, parley.Now()
		*msg = parley.Message{
			ID: id, ConversationID: nm.ConversationID, Seq: seq,
			SenderID: nm.SenderID, SenderName: senderName, ClientID: nm.ClientID,
			Type: nm.Type, Text: nm.Text, CreatedAt: now,
		}
		if attachment != nil {
			msg.Attachment = &parley.Attachment{ID: nm.AttachmentID, ContentType: str(attType),
				Size: num(attSize), Width: int(num(attWidth)), Height: int(num(attHeight))}
		}
		e := parley.Event{
			Pos:            w.nextPos(),
			Type:           parley.EventNewMessage,
			ConversationID: nm.ConversationID,
			UserID:         nm.SenderID,
			UserName:       senderName,
			Message:        msg,
			At:             now,
		}
		data, err := encodeEventData(&e)
		if err != nil {
			return err
		}
		if err := w.queryRow(qSendWrite, id, nm.ConversationID, seq, nm.SenderID, nm.ClientID,
			string(nm.Type), nm.Text, attachment, now, e.Pos, data).Scan(&e.Audience); err != nil {
			return err
		}
		*events = []parley.Event{e}
		return nil
	}}
}

// DeleteMessage implements parley.Store.
func (db *DB) DeleteMessage(ctx context.Context, userID, conversationID, messageID string) (parley.Message, []parley.Event, error) {
	for _, f := range [][2]string{{"user id", userID}, {"conversation id", conversationID}, {"message id", messageID}} {
		if err := parley.ValidateID(f[0], f[1]); err != nil {
			return parley.Message{}, nil, err
		}
	}
	var (
		msg    parley.Message
		events []parley.Event
	)
	err := db.b.do(ctx, func(w *writeTx) error {
		if err := w.member(conversationID, userID); err != nil {
			return err
		}
		var err error
		msg, err = scanMessage(w.queryRow(qMessageByID, messageID, conversationID))
		switch {
		case err != nil:
			return notFound(err, parley.ErrNotFound)
		case msg.SenderID != userID:
			return parley.Errorf(parley.EFORBIDDEN, "only the sender may delete a message")
		case msg.Deleted:
			return nil
		}
		now := parley.Now()
		if _, err := w.exec(qDeleteMessage, now, messageID); err != nil {
			return err
		}
		msg, err = scanMessage(w.queryRow(qMessageByID, messageID, conversationID))
		if err != nil {
			return err
		}
		e := parley.Event{
			Pos:            w.nextPos(),
			Type:           parley.EventMessageDeleted,
			ConversationID: conversationID,
			UserID:         userID,
			Message:        &msg,
			At:             now,
		}
		if err := w.insertEvent(&e, &messageID, nil); err != nil {
			return err
		}
		events = []parley.Event{e}
		return nil
	})
	if err != nil {
		return parley.Message{}, nil, err
	}
	return msg, events, nil
}

// MarkRead implements parley.Store.
func (db *DB) MarkRead(ctx context.Context, userID, conversationID string, seq int64) ([]parley.Event, error) {
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
	err := db.b.do(ctx, func(w *writeTx) error {
		cur, err := readSeq(bg, w, conversationID, userID)
		if err != nil {
			return err
		}
		var last int64
		if err := w.queryRow(qLastSeq, conversationID).Scan(&last); err != nil {
			return err
		}
		seq := min(seq, last)
		if seq <= cur {
			return nil
		}
		if _, err := w.exec(qSetReadSeq, seq, conversationID, userID); err != nil {
			return err
		}
		e := parley.Event{
			Pos:            w.nextPos(),
			Type:           parley.EventMessageRead,
			ConversationID: conversationID,
			UserID:         userID,
			ReadSeq:        seq,
			At:             parley.Now(),
		}
		if err := w.insertEvent(&e, nil, nil); err != nil {
			return err
		}
		events = []parley.Event{e}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return events, nil
}

// PutAttachment implements parley.Store. Size is len(data) whatever a.Size
// says. The quota is checked in the write, under the batch's lock.
func (db *DB) PutAttachment(ctx context.Context, ownerID string, a parley.Attachment, data, thumb []byte, quota int64) error {
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
	}
	if len(thumb) == 0 {
		thumb = nil
	}
	return db.b.do(ctx, func(w *writeTx) error {
		if err := w.usersExist(ownerID); err != nil {
			return err
		}
		var taken bool
		if err := w.queryRow(qAttachmentExists, a.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return parley.Errorf(parley.ECONFLICT, "attachment %q exists", a.ID)
		}
		if quota > 0 {
			var used int64
			if err := w.queryRow(qUploadUsage, ownerID).Scan(&used); err != nil {
				return err
			}
			if need := int64(len(data) + len(thumb)); used+need > quota {
				return parley.QuotaError(used, need, quota)
			}
		}
		_, err := w.exec(qInsertAttachment, a.ID, ownerID, a.ContentType, int64(len(data)), a.Width, a.Height,
			data, thumb, parley.Now())
		return err
	})
}

// DeleteOrphanAttachments implements parley.Store. It is a write like
// any other, so a send naming an attachment runs wholly before or after it.
func (db *DB) DeleteOrphanAttachments(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, invalidf("limit must be positive")
	}
	var n int64
	err := db.b.do(ctx, func(w *writeTx) error {
		res, err := w.exec(qDeleteOrphans, before, limit)
		if err != nil {
			return err
		}
		n = res.RowsAffected()
		return nil
	})
	return int(n), err
}

// noBefore stands for "no upper bound" in qPageAfter.
const noBefore = math.MaxInt64
