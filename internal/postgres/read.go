package postgres

import (
	"context"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
)

// The reads. They run on the pool, each in one read transaction when it
// takes more than one query; the helpers below also serve the writes,
// inside the batch transaction (both are a querier).

// readSeq returns userID's read position, or ErrNotFound when the user is
// not a member: the authorization check of every per-conversation method.
func readSeq(ctx context.Context, q querier, conversationID, userID string) (int64, error) {
	var seq int64
	if err := q.QueryRow(ctx, qMembership, conversationID, userID).Scan(&seq); err != nil {
		return 0, notFound(err, parley.ErrNotFound)
	}
	return seq, nil
}

func memberIDs(ctx context.Context, q querier, conversationID string) ([]string, error) {
	rows, err := q.Query(ctx, qMemberIDs, conversationID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func members(ctx context.Context, q querier, conversationID string) ([]parley.Member, error) {
	rows, err := q.Query(ctx, qMembers, conversationID)
	if err != nil {
		return nil, err
	}
	ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (parley.Member, error) {
		var m parley.Member
		err := r.Scan(&m.UserID, &m.Name, &m.ReadSeq)
		return m, err
	})
	if ms == nil && err == nil {
		ms = []parley.Member{}
	}
	return ms, err
}

// snapshot returns the conversation as everyone sees it (no viewer fields),
// with no membership check: for events and internal use.
func snapshot(ctx context.Context, q querier, id string) (parley.Conversation, error) {
	var c parley.Conversation
	if err := q.QueryRow(ctx, qConversationRow, id).Scan(conversationDest(&c)...); err != nil {
		return c, notFound(err, parley.ErrNotFound)
	}
	fixTimes(&c)
	var err error
	c.Members, err = members(ctx, q, id)
	return c, err
}

// scanView reads a row of qViews/qView.
func scanView(s scanner) (parley.Conversation, error) {
	var (
		c parley.Conversation
		r msgRow
	)
	dest := append(conversationDest(&c), &c.ReadSeq, &c.UnreadCount)
	if err := s.Scan(append(dest, r.dest()...)...); err != nil {
		return c, err
	}
	fixTimes(&c)
	c.LastMessage = r.message()
	return c, nil
}

// view returns the conversation as userID sees it, or ErrNotFound when
// userID is not a member.
func view(ctx context.Context, q querier, userID, id string) (parley.Conversation, error) {
	c, err := scanView(q.QueryRow(ctx, qView, userID, id))
	if err != nil {
		return c, notFound(err, parley.ErrNotFound)
	}
	c.Members, err = members(ctx, q, id)
	return c, err
}

// User implements parley.Store.
func (db *DB) User(ctx context.Context, id string) (parley.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, qUserByID, id))
	if err != nil {
		return u, notFound(err, parley.ErrNotFound)
	}
	return u, nil
}

// UserByName implements parley.Store. Names match without regard to case.
func (db *DB) UserByName(ctx context.Context, name string) (parley.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, qUserByName, name, parley.NameKey(name)))
	if err != nil {
		return u, notFound(err, parley.ErrNotFound)
	}
	return u, nil
}

// Credentials implements parley.Store.
func (db *DB) Credentials(ctx context.Context, name string) (parley.User, []byte, error) {
	var (
		u    parley.User
		hash []byte
	)
	err := db.pool.QueryRow(ctx, qCredentials, name, parley.NameKey(name)).Scan(&u.ID, &u.Name, &u.CreatedAt, &hash)
	if err != nil {
		return parley.User{}, nil, notFound(err, parley.ErrNotFound)
	}
	u.CreatedAt = utc(u.CreatedAt)
	return u, hash, nil
}

// Conversations implements parley.Store.
func (db *DB) Conversations(ctx context.Context, userID string) ([]parley.Conversation, error) {
	convs := []parley.Conversation{}
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, qViews, userID)
		if err != nil {
			return err
		}
		index := map[string]int{}
		err = forEach(rows, func() error {
			c, err := scanView(rows)
			if err != nil {
				return err
			}
			c.Members = []parley.Member{}
			index[c.ID] = len(convs)
			convs = append(convs, c)
			return nil
		})
		if err != nil {
			return err
		}
		mrows, err := tx.Query(ctx, qMembersOfViewer, userID)
		if err != nil {
			return err
		}
		return forEach(mrows, func() error {
			var (
				cid string
				m   parley.Member
			)
			if err := mrows.Scan(&cid, &m.UserID, &m.Name, &m.ReadSeq); err != nil {
				return err
			}
			if i, ok := index[cid]; ok {
				convs[i].Members = append(convs[i].Members, m)
			}
			return nil
		})
	})
	if err != nil {
		return nil, wrapInternal(err)
	}
	return convs, nil
}

// forEach calls fn for every row and closes rows.
func forEach(rows pgx.Rows, fn func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Conversation implements parley.Store.
func (db *DB) Conversation(ctx context.Context, userID, conversationID string) (parley.Conversation, error) {
	var c parley.Conversation
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = view(ctx, tx, userID, conversationID)
		return err
	})
	return c, wrapInternal(err)
}

// MemberIDs implements parley.Store.
func (db *DB) MemberIDs(ctx context.Context, userID, conversationID string) ([]string, error) {
	var ids []string
	err := db.readTx(ctx, func(tx pgx.Tx) error {
		if _, err := readSeq(ctx, tx, conversationID, userID); err != nil {
			return err
		}
		var err error
		ids, err = memberIDs(ctx, tx, conversationID)
		return err
	})
	return ids, wrapInternal(err)
}

// Messages implements parley.Store. With both After and Before set it
// returns the oldest messages between them.
func (db *DB) Messages(ctx context.Context, userID, conversationID string, q parley.MessageQuery) (parley.MessagePage, error) {
	limit, err := parley.PageLimit(q.Limit)
	if err != nil {
		return parley.MessagePage{}, err
	}
	if q.Before < 0 || q.After < 0 {
		return parley.MessagePage{}, invalidf("before and after must not be negative")
	}
	page := parley.MessagePage{Messages: []parley.Message{}}
	err = db.readTx(ctx, func(tx pgx.Tx) error {
		if _, err := readSeq(ctx, tx, conversationID, userID); err != nil {
			return err
		}
		var (
			rows pgx.Rows
			err  error
		)
		// Ask for one more than the page to learn whether there are more.
		switch {
		case q.After > 0 || q.FromStart:
			before := q.Before
			if before == 0 {
				before = noBefore
			}
			rows, err = tx.Query(ctx, qPageAfter, conversationID, q.After, before, limit+1)
		case q.Before > 0:
			rows, err = tx.Query(ctx, qPageBefore, conversationID, q.Before, limit+1)
		default:
			rows, err = tx.Query(ctx, qPageNewest, conversationID, limit+1)
		}
		if err != nil {
			return err
		}
		return forEach(rows, func() error {
			m, err := scanMessage(rows)
			if err != nil {
				return err
			}
			page.Messages = append(page.Messages, m)
			return nil
		})
	})
	if err != nil {
		return parley.MessagePage{}, wrapInternal(err)
	}
	if len(page.Messages) > limit {
		page.HasMore = true
		page.Messages = page.Messages[:limit]
	}
	if q.After == 0 && !q.FromStart {
		// Fetched newest first; the page is in ascending order.
		slices.Reverse(page.Messages)
	}
	return page, nil
}

// Contacts implements parley.Store.
func (db *DB) Contacts(ctx context.Context, userID string) ([]string, error) {
	rows, err := db.pool.Query(ctx, qContacts, userID)
	if err != nil {
		return nil, wrapInternal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrapInternal(err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// UsersOf implements parley.BulkReader.
func (db *DB) UsersOf(ctx context.Context, userIDs []string) ([]parley.User, error) {
	rows, err := db.pool.Query(ctx, qUsersOf, userIDs)
	if err != nil {
		return nil, wrapInternal(err)
	}
	defer rows.Close()
	var users []parley.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrapInternal(err)
		}
		users = append(users, u)
	}
	return users, wrapInternal(rows.Err())
}

// ContactsOf implements parley.BulkReader.
func (db *DB) ContactsOf(ctx context.Context, userIDs []string) (map[string][]string, error) {
	out := make(map[string][]string, len(userIDs))
	for _, id := range userIDs {
		out[id] = []string{}
	}
	rows, err := db.pool.Query(ctx, qContactsOf, userIDs)
	if err != nil {
		return nil, wrapInternal(err)
	}
	var user, other string
	_, err = pgx.ForEachRow(rows, []any{&user, &other}, func() error {
		out[user] = append(out[user], other)
		return nil
	})
	if err != nil {
		return nil, wrapInternal(err)
	}
	return out, nil
}

// EventsFor implements parley.Store. limit must be positive and is at most
// ResumeLimit+1. The events carry no Audience.
func (db *DB) EventsFor(ctx context.Context, userID string, after int64, limit int) ([]parley.Event, error) {
	limit, err := parley.EventLimit(after, limit)
	if err != nil {
		return nil, err
	}
	events, err := scanEvents(db.pool.Query(ctx, qEventsFor, userID, after, limit))
	return events, wrapInternal(err)
}

// Events implements parley.Store. limit must be positive and is at most
// ResumeLimit+1. The Audience of an event is every user whose membership
// window holds it: the members when it was committed, and for a removal
// the removed users too.
func (db *DB) Events(ctx context.Context, after int64, limit int) ([]parley.Event, error) {
	limit, err := parley.EventLimit(after, limit)
	if err != nil {
		return nil, err
	}
	var events []parley.Event
	err = db.readTx(ctx, func(tx pgx.Tx) error {
		var err error
		events, err = scanEvents(tx.Query(ctx, qEvents, after, limit))
		if err != nil || len(events) == 0 {
			return err
		}
		return fillAudience(ctx, tx, events)
	})
	return events, wrapInternal(err)
}

func scanEvents(rows pgx.Rows, err error) ([]parley.Event, error) {
	if err != nil {
		return nil, err
	}
	events := []parley.Event{}
	err = forEach(rows, func() error {
		e, err := scanEvent(rows)
		if err != nil {
			return err
		}
		events = append(events, e)
		return nil
	})
	return events, err
}

// fillAudience sets each event's Audience from the membership windows of
// its conversation.
func fillAudience(ctx context.Context, tx pgx.Tx, events []parley.Event) error {
	type window struct {
		user         string
		joined, left int64 // left 0: still a member
	}
	var ids []string
	seen := map[string]bool{}
	for _, e := range events {
		if !seen[e.ConversationID] {
			seen[e.ConversationID] = true
			ids = append(ids, e.ConversationID)
		}
	}
	rows, err := tx.Query(ctx, qWindows, ids)
	if err != nil {
		return err
	}
	windows := map[string][]window{}
	err = forEach(rows, func() error {
		var (
			cid  string
			w    window
			left *int64
		)
		if err := rows.Scan(&cid, &w.user, &w.joined, &left); err != nil {
			return err
		}
		w.left = num(left)
		windows[cid] = append(windows[cid], w)
		return nil
	})
	if err != nil {
		return err
	}
	for i := range events {
		e := &events[i]
		e.Audience = []string{}
		for _, w := range windows[e.ConversationID] {
			if w.joined <= e.Pos && (w.left == 0 || e.Pos <= w.left) {
				e.Audience = append(e.Audience, w.user)
			}
		}
	}
	return nil
}

// Head implements parley.Store: the newest committed position, cluster-wide.
func (db *DB) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := db.pool.QueryRow(ctx, qHead).Scan(&head); err != nil {
		return 0, wrapInternal(err)
	}
	return head, nil
}

// UploadUsage implements parley.Store.
func (db *DB) UploadUsage(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, qUploadUsage, ownerID).Scan(&n); err != nil {
		return 0, wrapInternal(err)
	}
	return n, nil
}

// AttachmentData implements parley.Store. With thumb set and no thumbnail
// stored it returns the full data.
func (db *DB) AttachmentData(ctx context.Context, userID, attachmentID string, thumb bool) (parley.Attachment, []byte, error) {
	var (
		a             parley.Attachment
		width, height int32
		data          []byte
	)
	err := db.pool.QueryRow(ctx, qAttachmentData, thumb, attachmentID, userID).
		Scan(&a.ID, &a.ContentType, &a.Size, &width, &height, &data)
	if err != nil {
		return parley.Attachment{}, nil, notFound(err, parley.ErrNotFound)
	}
	a.Width, a.Height = int(width), int(height)
	return a, data, nil
}
