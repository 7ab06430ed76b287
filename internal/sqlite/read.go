package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/parleychat/parley"
)

// The reads. They run on the read pool, each in one read transaction when
// it takes more than one query; the helpers below also serve the writes,
// inside the batch transaction (both are queriers).
//
// The read queries (readQueries) are prepared once on the read pool:
// database/sql then prepares each on a pool connection the first time it
// runs there and keeps it, so SQLite parses a query once per connection,
// not once per call.

// querier runs queries: a read transaction (readQ) or the batch
// transaction (writeTx), both with prepared statements.
type querier interface {
	QueryRow(query string, args ...any) *sql.Row
	Query(query string, args ...any) (*sql.Rows, error)
}

// readQ is a read transaction running the prepared read statements.
type readQ struct {
	ctx context.Context
	tx  *sql.Tx
	db  *DB
}

func (r readQ) QueryRow(query string, args ...any) *sql.Row {
	if st, ok := r.db.rstmts[query]; ok {
		return r.tx.StmtContext(r.ctx, st).QueryRowContext(r.ctx, args...)
	}
	return r.tx.QueryRowContext(r.ctx, query, args...)
}

func (r readQ) Query(query string, args ...any) (*sql.Rows, error) {
	if st, ok := r.db.rstmts[query]; ok {
		return r.tx.StmtContext(r.ctx, st).QueryContext(r.ctx, args...)
	}
	return r.tx.QueryContext(r.ctx, query, args...)
}

// queryRow and query run one prepared read statement outside a read
// transaction.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := db.rstmts[query]; ok {
		return st.QueryRowContext(ctx, args...)
	}
	return db.read.QueryRowContext(ctx, query, args...)
}

func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := db.rstmts[query]; ok {
		return st.QueryContext(ctx, args...)
	}
	return db.read.QueryContext(ctx, query, args...)
}

// readQueries are prepared on the read pool when the store opens.
var readQueries = []string{
	qHead, qUserByID, qUserByName, qCredentials,
	qConversationRow, qViews, qView, qMembership, qMembers, qMembersOfViewer, qMemberIDs, qContacts, qContactsOf, qUsersOf,
	qPageNewest, qPageBefore, qPageAfter, qEvents, qEventsFor, qAttachmentData,
}

// readSeq returns userID's read position, or ErrNotFound when the user is
// not a member: the authorization check of every per-conversation method.
func readSeq(tx querier, conversationID, userID string) (int64, error) {
	var seq int64
	if err := tx.QueryRow(qMembership, conversationID, userID).Scan(&seq); err != nil {
		return 0, notFound(err, parley.ErrNotFound)
	}
	return seq, nil
}

func memberIDs(tx querier, conversationID string) ([]string, error) {
	rows, err := tx.Query(qMemberIDs, conversationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

func members(tx querier, conversationID string) ([]parley.Member, error) {
	rows, err := tx.Query(qMembers, conversationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ms := []parley.Member{}
	for rows.Next() {
		var m parley.Member
		if err := rows.Scan(&m.UserID, &m.Name, &m.ReadSeq); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

// snapshot returns the conversation as everyone sees it (no viewer fields),
// with no membership check: for events and internal use.
func snapshot(tx querier, id string) (parley.Conversation, error) {
	var (
		c                 parley.Conversation
		created, activity int64
	)
	if err := tx.QueryRow(qConversationRow, id).Scan(conversationDest(&c, &created, &activity)...); err != nil {
		return c, notFound(err, parley.ErrNotFound)
	}
	c.CreatedAt, c.LastActivityAt = fromMicros(created), fromMicros(activity)
	var err error
	c.Members, err = members(tx, id)
	return c, err
}

// scanView reads a row of qViews/qView.
func scanView(s scanner) (parley.Conversation, error) {
	var (
		c                 parley.Conversation
		created, activity int64
		r                 msgRow
	)
	dest := append(conversationDest(&c, &created, &activity), &c.ReadSeq, &c.UnreadCount)
	if err := s.Scan(append(dest, r.dest()...)...); err != nil {
		return c, err
	}
	c.CreatedAt, c.LastActivityAt = fromMicros(created), fromMicros(activity)
	c.LastMessage = r.message()
	return c, nil
}

// view returns the conversation as userID sees it, or ErrNotFound when
// userID is not a member.
func view(tx querier, userID, id string) (parley.Conversation, error) {
	c, err := scanView(tx.QueryRow(qView, userID, id))
	if err != nil {
		return c, notFound(err, parley.ErrNotFound)
	}
	c.Members, err = members(tx, id)
	return c, err
}

// User implements parley.Store.
func (db *DB) User(ctx context.Context, id string) (parley.User, error) {
	u, err := scanUser(db.queryRow(ctx, qUserByID, id))
	if err != nil {
		return u, notFound(err, parley.ErrNotFound)
	}
	return u, nil
}

// UserByName implements parley.Store. Names match without regard to ASCII
// case.
func (db *DB) UserByName(ctx context.Context, name string) (parley.User, error) {
	u, err := scanUser(db.queryRow(ctx, qUserByName, name, parley.NameKey(name)))
	if err != nil {
		return u, notFound(err, parley.ErrNotFound)
	}
	return u, nil
}

// Credentials implements parley.Store.
func (db *DB) Credentials(ctx context.Context, name string) (parley.User, []byte, error) {
	var (
		u    parley.User
		at   int64
		hash []byte
	)
	err := db.queryRow(ctx, qCredentials, name, parley.NameKey(name)).Scan(&u.ID, &u.Name, &at, &hash)
	if err != nil {
		return parley.User{}, nil, notFound(err, parley.ErrNotFound)
	}
	u.CreatedAt = fromMicros(at)
	return u, hash, nil
}

// Conversations implements parley.Store.
func (db *DB) Conversations(ctx context.Context, userID string) ([]parley.Conversation, error) {
	convs := []parley.Conversation{}
	err := db.readTx(ctx, func(tx readQ) error {
		rows, err := tx.Query(qViews, userID)
		if err != nil {
			return err
		}
		defer rows.Close()
		index := map[string]int{}
		for rows.Next() {
			c, err := scanView(rows)
			if err != nil {
				return err
			}
			c.Members = []parley.Member{}
			index[c.ID] = len(convs)
			convs = append(convs, c)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		mrows, err := tx.Query(qMembersOfViewer, userID)
		if err != nil {
			return err
		}
		defer mrows.Close()
		for mrows.Next() {
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
		}
		return mrows.Err()
	})
	if err != nil {
		return nil, wrapInternal(err)
	}
	return convs, nil
}

// Conversation implements parley.Store.
func (db *DB) Conversation(ctx context.Context, userID, conversationID string) (parley.Conversation, error) {
	var c parley.Conversation
	err := db.readTx(ctx, func(tx readQ) error {
		var err error
		c, err = view(tx, userID, conversationID)
		return err
	})
	return c, wrapInternal(err)
}

// MemberIDs implements parley.Store.
func (db *DB) MemberIDs(ctx context.Context, userID, conversationID string) ([]string, error) {
	var ids []string
	err := db.readTx(ctx, func(tx readQ) error {
		if _, err := readSeq(tx, conversationID, userID); err != nil {
			return err
		}
		var err error
		ids, err = memberIDs(tx, conversationID)
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
	err = db.readTx(ctx, func(tx readQ) error {
		if _, err := readSeq(tx, conversationID, userID); err != nil {
			return err
		}
		var (
			rows *sql.Rows
			err  error
		)
		// Ask for one more than the page to learn whether there are more.
		switch {
		case q.After > 0 || q.FromStart:
			before := q.Before
			if before == 0 {
				before = noBefore
			}
			rows, err = tx.Query(qPageAfter, conversationID, q.After, before, limit+1)
		case q.Before > 0:
			rows, err = tx.Query(qPageBefore, conversationID, q.Before, limit+1)
		default:
			rows, err = tx.Query(qPageNewest, conversationID, limit+1)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				return err
			}
			page.Messages = append(page.Messages, m)
		}
		return rows.Err()
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
	rows, err := db.query(ctx, qContacts, userID)
	if err != nil {
		return nil, internalf("%w", err)
	}
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, internalf("%w", err)
		}
		ids = append(ids, id)
	}
	return ids, wrapInternal(rows.Err())
}

// bulkChunk bounds the ids of one qUsersOf or qContactsOf query.
const bulkChunk = 1000

// UsersOf implements parley.BulkReader.
func (db *DB) UsersOf(ctx context.Context, userIDs []string) ([]parley.User, error) {
	var users []parley.User
	for chunk := range slices.Chunk(userIDs, bulkChunk) {
		ids, err := json.Marshal(chunk)
		if err != nil {
			return nil, internalf("%w", err)
		}
		rows, err := db.query(ctx, qUsersOf, string(ids))
		if err != nil {
			return nil, internalf("%w", err)
		}
		for rows.Next() {
			u, err := scanUser(rows)
			if err != nil {
				rows.Close()
				return nil, internalf("%w", err)
			}
			users = append(users, u)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, internalf("%w", err)
		}
	}
	return users, nil
}

// ContactsOf implements parley.BulkReader.
func (db *DB) ContactsOf(ctx context.Context, userIDs []string) (map[string][]string, error) {
	out := make(map[string][]string, len(userIDs))
	for _, id := range userIDs {
		out[id] = []string{}
	}
	for chunk := range slices.Chunk(userIDs, bulkChunk) {
		ids, err := json.Marshal(chunk)
		if err != nil {
			return nil, internalf("%w", err)
		}
		rows, err := db.query(ctx, qContactsOf, string(ids))
		if err != nil {
			return nil, internalf("%w", err)
		}
		for rows.Next() {
			var user, other string
			if err := rows.Scan(&user, &other); err != nil {
				rows.Close()
				return nil, internalf("%w", err)
			}
			out[user] = append(out[user], other)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, internalf("%w", err)
		}
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
	events, err := db.events(ctx, qEventsFor, userID, after, limit)
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
	err = db.readTx(ctx, func(tx readQ) error {
		var err error
		events, err = scanEvents(tx.Query(qEvents, after, limit))
		if err != nil || len(events) == 0 {
			return err
		}
		return fillAudience(tx, events)
	})
	return events, wrapInternal(err)
}

func (db *DB) events(ctx context.Context, query string, args ...any) ([]parley.Event, error) {
	return scanEvents(db.query(ctx, query, args...))
}

func scanEvents(rows *sql.Rows, err error) ([]parley.Event, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	events := []parley.Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, rows.Err()
}

// fillAudience sets each event's Audience from the membership windows of
// its conversation.
func fillAudience(tx readQ, events []parley.Event) error {
	type window struct {
		user         string
		joined, left int64 // left 0: still a member
	}
	var ids []any
	seen := map[string]bool{}
	for _, e := range events {
		if !seen[e.ConversationID] {
			seen[e.ConversationID] = true
			ids = append(ids, e.ConversationID)
		}
	}
	// SQLite allows 32766 variables; a page of events names fewer
	// conversations than that.
	q := qWindowsPrefix + strings.Repeat("?,", len(ids)-1) + "?) ORDER BY joined_pos, user_id"
	rows, err := tx.Query(q, ids...)
	if err != nil {
		return err
	}
	defer rows.Close()
	windows := map[string][]window{}
	for rows.Next() {
		var (
			cid  string
			w    window
			left sql.NullInt64
		)
		if err := rows.Scan(&cid, &w.user, &w.joined, &left); err != nil {
			return err
		}
		w.left = left.Int64
		windows[cid] = append(windows[cid], w)
	}
	if err := rows.Err(); err != nil {
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

// Head implements parley.Store.
func (db *DB) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := db.queryRow(ctx, qHead).Scan(&head); err != nil {
		return 0, internalf("%w", err)
	}
	return head, nil
}

// UploadUsage implements parley.Store.
func (db *DB) UploadUsage(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	if err := db.queryRow(ctx, qUploadUsage, ownerID).Scan(&n); err != nil {
		return 0, internalf("%w", err)
	}
	return n, nil
}

// AttachmentData implements parley.Store. With thumb set and no thumbnail
// stored it returns the full data.
func (db *DB) AttachmentData(ctx context.Context, userID, attachmentID string, thumb bool) (parley.Attachment, []byte, error) {
	var (
		a    parley.Attachment
		data []byte
	)
	err := db.queryRow(ctx, qAttachmentData, thumb, attachmentID, userID, userID).
		Scan(&a.ID, &a.ContentType, &a.Size, &a.Width, &a.Height, &data)
	if err != nil {
		return parley.Attachment{}, nil, notFound(err, parley.ErrNotFound)
	}
	return a, data, nil
}

// wrapInternal leaves *parley.Error and context errors alone and marks
// anything else as a database failure.
func wrapInternal(err error) error {
	var pe *parley.Error
	if err == nil || errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return internalf("%w", err)
}
