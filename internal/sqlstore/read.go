package sqlstore

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/parleychat/parley"
)

// The reads. They run through the engine (Engine.Read for a read
// transaction, the Engine itself for one statement); the helpers below
// also serve the writes, inside the batch transaction (both are a
// Querier).

// readSeq returns userID's read position, or ErrNotFound when the user is
// not a member: the authorization check of every per-conversation method.
func (s *Store) readSeq(ctx context.Context, q Querier, conversationID, userID string) (int64, error) {
	var seq int64
	if err := q.QueryRow(ctx, qMembership, conversationID, userID).Scan(&seq); err != nil {
		return 0, s.notFound(err, parley.ErrNotFound)
	}
	return seq, nil
}

// queried holds a Query's results, for scanAll.
type queried struct {
	rows Rows
	err  error
}

func query(rows Rows, err error) queried { return queried{rows, err} }

// scanAll scans every row of a query with scan and closes its rows.
func scanAll[T any](qr queried, scan func(Row) (T, error)) ([]T, error) {
	rows, err := qr.rows, qr.err
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanString(r Row) (string, error) {
	var s string
	return s, r.Scan(&s)
}

// MemberIDs returns the current members of a conversation in the order
// they joined: what an engine's Tx.Audience reads.
func MemberIDs(ctx context.Context, q Querier, conversationID string) ([]string, error) {
	return scanAll(query(q.Query(ctx, qMemberIDs, conversationID)), scanString)
}

func (s *Store) members(ctx context.Context, q Querier, conversationID string) ([]parley.Member, error) {
	return scanAll(query(q.Query(ctx, qMembers, conversationID)), scanMember)
}

func scanMember(r Row) (parley.Member, error) {
	var m parley.Member
	return m, r.Scan(&m.UserID, &m.Name, &m.ReadSeq, (*string)(&m.Role), &m.DeliveredSeq, &m.DisplayName, &m.AvatarID)
}

// snapshot returns the conversation as everyone sees it (no viewer fields,
// no member positions: see hidePositions), with no membership check: for
// events and internal use.
func (s *Store) snapshot(ctx context.Context, q Querier, id string) (parley.Conversation, error) {
	var r convRow
	if err := q.QueryRow(ctx, qConversationRow, id).Scan(r.appendDest(s.d, nil)...); err != nil {
		return parley.Conversation{}, s.notFound(err, parley.ErrNotFound)
	}
	c := r.conversation()
	var err error
	c.Members, err = s.members(ctx, q, id)
	hidePositions(&c)
	return c, err
}

// hidePositions zeroes c's members' read and delivered positions. A
// snapshot is one value for every receiver, and whether a position may
// be shown depends on the viewer (receiptsHidden: blocks, requests), so
// a snapshot shows none; clients follow positions through messageRead
// and messageDelivered, and views (qMembersFor) show them per viewer.
func hidePositions(c *parley.Conversation) {
	for i := range c.Members {
		c.Members[i].ReadSeq, c.Members[i].DeliveredSeq = 0, 0
	}
}

// scanView reads a row of qViews/qView.
func (s *Store) scanView(row Row) (parley.Conversation, error) {
	var (
		r convRow
		m msgRow
	)
	dest := append(r.appendDest(s.d, make([]any, 0, 37)), &r.c.ReadSeq, &r.c.UnreadCount, &r.c.UnreadMentions, &r.c.Muted, &r.c.Archived, (*string)(&r.c.Request))
	if err := row.Scan(m.appendDest(s.d, dest)...); err != nil {
		return parley.Conversation{}, err
	}
	c := r.conversation()
	c.LastMessage = m.message()
	return c, nil
}

// view returns the conversation as userID sees it, or ErrNotFound when
// userID is not a member.
func (s *Store) view(ctx context.Context, q Querier, userID, id string) (parley.Conversation, error) {
	c, err := s.scanView(q.QueryRow(ctx, qView, userID, id))
	if err != nil {
		return c, s.notFound(err, parley.ErrNotFound)
	}
	c.Members, err = scanAll(query(q.Query(ctx, qMembersFor, id, userID)), scanMember)
	return c, err
}

// User implements parley.Store.
func (s *Store) User(ctx context.Context, id string) (parley.User, error) {
	u, err := ScanUser(s.d, s.e.QueryRow(ctx, qUserByID, id))
	if err != nil {
		return u, s.notFound(err, parley.ErrNotFound)
	}
	return u, nil
}

// UserByName implements parley.Store (see Dialect.NameIs).
func (s *Store) UserByName(ctx context.Context, name string) (parley.User, error) {
	u, err := ScanUser(s.d, s.e.QueryRow(ctx, s.sql.userByName, name, parley.NameKey(name)))
	if err != nil {
		return u, s.notFound(err, parley.ErrNotFound)
	}
	return u, nil
}

// Credentials implements parley.Store.
func (s *Store) Credentials(ctx context.Context, name string) (parley.User, []byte, error) {
	var (
		u    parley.User
		at   NullTime
		hash []byte
	)
	err := s.e.QueryRow(ctx, s.sql.credentials, name, parley.NameKey(name)).Scan(&u.ID, &u.Name, s.d.TimeDest(&at), &u.DisplayName, &u.AvatarID, &hash)
	if err != nil {
		return parley.User{}, nil, s.notFound(err, parley.ErrNotFound)
	}
	u.CreatedAt = at.Time
	return u, hash, nil
}

// Conversations implements parley.Store.
func (s *Store) Conversations(ctx context.Context, userID string) ([]parley.Conversation, error) {
	return s.views(ctx, qViews, qMembersOfViewer, userID)
}

// ConversationsPage implements parley.ConversationPager.
func (s *Store) ConversationsPage(ctx context.Context, userID string, afterAt time.Time, afterID string, limit int) ([]parley.Conversation, error) {
	if limit < 1 {
		return nil, invalidf("a page holds at least one conversation")
	}
	return s.views(ctx, qViewsPage, qMembersOfPage, userID, s.d.Time(afterAt), afterID, limit)
}

// views reads conversations as userID sees them (qViews or qViewsPage)
// and their members (the matching members statement), in one read.
func (s *Store) views(ctx context.Context, qViews, qMembers, userID string, args ...any) ([]parley.Conversation, error) {
	args = append([]any{userID}, args...)
	var convs []parley.Conversation
	err := s.e.Read(ctx, func(q Querier) error {
		var err error
		convs, err = scanAll(query(q.Query(ctx, qViews, args...)), s.scanView)
		if err != nil {
			return err
		}
		index := make(map[string]int, len(convs))
		for i := range convs {
			convs[i].Members = []parley.Member{}
			index[convs[i].ID] = i
		}
		type member struct {
			conv string
			m    parley.Member
		}
		ms, err := scanAll(query(q.Query(ctx, qMembers, args...)), func(r Row) (member, error) {
			var x member
			return x, r.Scan(&x.conv, &x.m.UserID, &x.m.Name, &x.m.ReadSeq, (*string)(&x.m.Role),
				&x.m.DeliveredSeq, &x.m.DisplayName, &x.m.AvatarID)
		})
		for _, x := range ms {
			if i, ok := index[x.conv]; ok {
				convs[i].Members = append(convs[i].Members, x.m)
			}
		}
		return err
	})
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	return convs, nil
}

// Conversation implements parley.Store.
func (s *Store) Conversation(ctx context.Context, userID, conversationID string) (parley.Conversation, error) {
	var c parley.Conversation
	err := s.e.Read(ctx, func(q Querier) error {
		var err error
		c, err = s.view(ctx, q, userID, conversationID)
		return err
	})
	return c, s.wrapInternal(err)
}

// MemberIDs implements parley.Store.
func (s *Store) MemberIDs(ctx context.Context, userID, conversationID string) ([]string, error) {
	return s.idsAsMember(ctx, userID, conversationID, func(q Querier) ([]string, error) {
		return MemberIDs(ctx, q, conversationID)
	})
}

// idsAsMember runs list in a read once userID is found a member of
// conversationID (readSeq: not found otherwise, as for a missing
// conversation).
func (s *Store) idsAsMember(ctx context.Context, userID, conversationID string, list func(q Querier) ([]string, error)) ([]string, error) {
	var ids []string
	err := s.e.Read(ctx, func(q Querier) error {
		if _, err := s.readSeq(ctx, q, conversationID, userID); err != nil {
			return err
		}
		var err error
		ids, err = list(q)
		return err
	})
	return ids, s.wrapInternal(err)
}

// Messages implements parley.Store. With both After and Before set it
// returns the oldest messages between them. A page reads at most
// parley.HistoryWindow seqs (historyWindow), so messages hidden from the
// viewer cost it a bounded walk, and says where the next page starts.
func (s *Store) Messages(ctx context.Context, userID, conversationID string, mq parley.MessageQuery) (parley.MessagePage, error) {
	limit, err := parley.PageLimit(mq.Limit)
	if err != nil {
		return parley.MessagePage{}, err
	}
	if mq.Before < 0 || mq.After < 0 {
		return parley.MessagePage{}, invalidf("before and after must not be negative")
	}
	var (
		page parley.MessagePage
		w    historyWindow
	)
	err = s.e.Read(ctx, func(q Querier) error {
		var last int64
		if err := q.QueryRow(ctx, qMembershipLast, conversationID, userID).Scan(&last); err != nil {
			return s.notFound(err, parley.ErrNotFound)
		}
		w = windowOf(mq, last)
		// Ask for one more than the page to learn whether there are more.
		var (
			rows Rows
			err  error
		)
		if w.forward {
			rows, err = q.Query(ctx, qPageAfter, conversationID, w.from, w.to, limit+1, userID)
		} else {
			rows, err = q.Query(ctx, qPageBefore, conversationID, w.to, w.from, limit+1, userID)
		}
		page.Messages, err = scanAll(query(rows, err), func(r Row) (parley.Message, error) { return ScanMessage(s.d, r) })
		if err != nil || len(page.Messages) == 0 {
			return err
		}
		ids := make([]string, len(page.Messages))
		for i, m := range page.Messages {
			ids[i] = m.ID
		}
		rs, err := s.reactionsOf(ctx, q, userID, ids)
		for i := range page.Messages {
			page.Messages[i].Reactions = rs[page.Messages[i].ID]
		}
		return err
	})
	if err != nil {
		return parley.MessagePage{}, s.wrapInternal(err)
	}
	switch {
	case len(page.Messages) > limit:
		page.HasMore = true
		page.Messages = page.Messages[:limit]
		page.Next = page.Messages[limit-1].Seq
	case w.more:
		page.HasMore, page.Next = true, w.to
	}
	if !w.forward {
		// Fetched newest first; the page is in ascending order.
		slices.Reverse(page.Messages)
	}
	return page, nil
}

// historyWindow is the seqs a page of history reads: (from, to] going
// forward, [to, from) going back, at most parley.HistoryWindow of them;
// more says seqs the query asked for lie past to.
type historyWindow struct {
	forward  bool
	from, to int64
	more     bool
}

// windowOf is the window of mq in a conversation whose newest seq is
// last. A cursor beyond last is taken as last, so a cursor far out does
// not make a run of empty pages.
func windowOf(mq parley.MessageQuery, last int64) historyWindow {
	const n = parley.HistoryWindow
	if mq.After > 0 || mq.FromStart {
		end := last // the last seq asked for
		if mq.Before > 0 && mq.Before-1 < end {
			end = mq.Before - 1
		}
		w := historyWindow{forward: true, from: mq.After, to: end}
		if mq.After < end-n {
			w.to, w.more = mq.After+n, true
		}
		return w
	}
	before := last + 1
	if mq.Before > 0 && mq.Before < before {
		before = mq.Before
	}
	w := historyWindow{from: before, to: 1}
	if before-n > 1 {
		w.to, w.more = before-n, true
	}
	return w
}

// reactionsOf returns the reactions of messages as viewer sees them, by
// message id (messages without any are absent).
func (s *Store) reactionsOf(ctx context.Context, q Querier, viewer string, messageIDs []string) (map[string][]parley.Reaction, error) {
	out := map[string][]parley.Reaction{}
	err := s.inChunks(messageIDs, func(arg any) error {
		type row struct {
			id string
			r  parley.Reaction
		}
		rows, err := scanAll(query(q.Query(ctx, s.sql.reactionsOf, arg, viewer)), func(r Row) (row, error) {
			var (
				x  row
				me int64
			)
			err := r.Scan(&x.id, &x.r.Emoji, &x.r.Count, &me)
			x.r.Me = me != 0
			return x, err
		})
		for _, x := range rows {
			out[x.id] = append(out[x.id], x.r)
		}
		return err
	})
	return out, err
}

// Contacts implements parley.Store. It runs ContactsOf's SQL for one
// user (contactsWith), so the two agree.
func (s *Store) Contacts(ctx context.Context, userID string) ([]string, error) {
	ids, err := scanAll(query(s.e.Query(ctx, s.sql.contacts, userID)), func(r Row) (string, error) {
		var me, id string
		return id, r.Scan(&me, &id)
	})
	return ids, s.wrapInternal(err)
}

// UsersOf implements parley.BulkReader.
func (s *Store) UsersOf(ctx context.Context, userIDs []string) ([]parley.User, error) {
	var users []parley.User
	err := s.inChunks(userIDs, func(ids any) error {
		us, err := scanAll(query(s.e.Query(ctx, s.sql.usersOf, ids)), func(r Row) (parley.User, error) { return ScanUser(s.d, r) })
		users = append(users, us...)
		return err
	})
	return users, s.wrapInternal(err)
}

// ContactsOf implements parley.BulkReader.
func (s *Store) ContactsOf(ctx context.Context, userIDs []string) (map[string][]string, error) {
	out := make(map[string][]string, len(userIDs))
	for _, id := range userIDs {
		out[id] = []string{}
	}
	err := s.inChunks(userIDs, func(ids any) error {
		pairs, err := scanAll(query(s.e.Query(ctx, s.sql.contactsOf, ids)), func(r Row) ([2]string, error) {
			var p [2]string
			return p, r.Scan(&p[0], &p[1])
		})
		for _, p := range pairs {
			out[p[0]] = append(out[p[0]], p[1])
		}
		return err
	})
	if err != nil {
		return nil, s.wrapInternal(err)
	}
	return out, nil
}

// inChunks calls fn with the InList argument of each chunk of ids.
func (s *Store) inChunks(ids []string, fn func(arg any) error) error {
	for chunk := range slices.Chunk(ids, s.d.ListChunk()) {
		arg, err := s.d.IDs(chunk)
		if err != nil {
			return err
		}
		if err := fn(arg); err != nil {
			return err
		}
	}
	return nil
}

// EventsFor implements parley.Store: shard 0's (the whole log with one
// shard), see ShardEventsFor.
func (s *Store) EventsFor(ctx context.Context, userID string, after int64, limit int) (parley.EventsPage, error) {
	return s.ShardEventsFor(ctx, userID, 0, after, limit)
}

// Events implements parley.Store: shard 0's (the whole log with one
// shard), see ShardEvents.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]parley.Event, error) {
	return s.ShardEvents(ctx, 0, after, limit)
}

// fillAudience sets each event's Audience from the membership windows of
// its conversation, and QuoteHidden from the blocks now.
func (s *Store) fillAudience(ctx context.Context, q Querier, events []parley.Event) error {
	type window struct {
		conv, user   string
		joined, left int64 // left 0: still a member
		pending      bool  // the user's request is unanswered (pending or declined)
	}
	var ids []string
	seen := map[string]bool{"": true} // a user's own events have none
	for _, e := range events {
		if !seen[e.ConversationID] {
			seen[e.ConversationID] = true
			ids = append(ids, e.ConversationID)
		}
	}
	windows := map[string][]window{}
	// A page of events names at most ResumeLimit+1 conversations: a
	// chunk or a few.
	err := s.inChunks(ids, func(arg any) error {
		ws, err := scanAll(query(q.Query(ctx, s.sql.windows, arg)), func(r Row) (window, error) {
			var (
				w    window
				left NullInt64
			)
			err := r.Scan(&w.conv, &w.user, &w.joined, s.d.IntDest(&left), &w.pending)
			w.left = left.Int64
			return w, err
		})
		for _, w := range ws {
			windows[w.conv] = append(windows[w.conv], w)
		}
		return err
	})
	if err != nil {
		return err
	}
	blocks, senders, err := s.blocksAmong(ctx, q, events)
	if err != nil {
		return err
	}
	for i := range events {
		e := &events[i]
		e.Audience = []string{}
		if e.ConversationID == "" {
			e.Audience = append(e.Audience, e.Recipient)
			continue
		}
		readerPending := false
		if e.Type == parley.EventMessageRead || e.Type == parley.EventMessageDelivered {
			for _, w := range windows[e.ConversationID] {
				readerPending = readerPending || (w.user == e.UserID && w.left == 0 && w.pending)
			}
		}
		for _, w := range windows[e.ConversationID] {
			if w.user != e.UserID && (readerPending || !blocks.reaches(e, w.user, senders[e.MessageID])) {
				continue
			}
			if e.Recipient != "" && w.user != e.Recipient {
				continue
			}
			if w.joined <= e.Pos && (w.left == 0 || e.Pos <= w.left) {
				e.Audience = append(e.Audience, w.user)
			}
		}
		if q := quoteOf(e); q != nil {
			for _, u := range e.Audience {
				if blocks[u][q.SenderID] {
					e.QuoteHidden = append(e.QuoteHidden, u)
				}
			}
		}
	}
	return nil
}

// Head implements parley.Store: shard 0's newest committed position (in
// PostgreSQL, cluster-wide), the whole log's with one shard.
func (s *Store) Head(ctx context.Context) (int64, error) { return s.ShardHead(ctx, 0) }

// UploadUsage implements parley.Store.
func (s *Store) UploadUsage(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	if err := s.e.QueryRow(ctx, qUploadUsage, ownerID).Scan(&n); err != nil {
		return 0, s.wrapInternal(err)
	}
	return n, nil
}

// AttachmentInfo implements parley.Store: qAttachmentData's row and
// access rule, with the length of the bytes in their place.
func (s *Store) AttachmentInfo(ctx context.Context, userID, attachmentID string, thumb bool) (parley.Attachment, int64, error) {
	var (
		a parley.Attachment
		n int64
	)
	err := s.e.QueryRow(ctx, qAttachmentInfo, thumb, attachmentID, userID).
		Scan(&a.ID, &a.ContentType, &a.Size, &a.Width, &a.Height, &a.Name, &n)
	if err != nil {
		return parley.Attachment{}, 0, s.notFound(err, parley.ErrNotFound)
	}
	return a, n, nil
}

// attachmentChunk is the most bytes AttachmentData reads with one
// ReadAttachment: what it holds besides the bytes it returns is that
// chunk as the driver hands it over (and database/sql's copy of it), not
// a second copy of the whole attachment.
const attachmentChunk = 1 << 20

// AttachmentData implements parley.Store: AttachmentInfo's size, then
// the bytes read into one buffer of that size a chunk at a time
// (ReadAttachment), so it allocates the attachment once. With thumb set
// it returns the thumbnail, the full data of an image stored without
// one, and no bytes of a file.
func (s *Store) AttachmentData(ctx context.Context, userID, attachmentID string, thumb bool) (parley.Attachment, []byte, error) {
	a, n, err := s.AttachmentInfo(ctx, userID, attachmentID, thumb)
	if err != nil || (thumb && a.Name != "") {
		return a, nil, err
	}
	data := make([]byte, n)
	for off := int64(0); off < n; off += attachmentChunk {
		if _, err := s.ReadAttachment(ctx, userID, attachmentID, thumb, off, data[off:min(n, off+attachmentChunk)]); err != nil {
			// Attachments never change: a short read is one withdrawn
			// meanwhile (ENOTFOUND) or a failed read.
			if err == io.EOF {
				err = s.wrapInternal(fmt.Errorf("attachment %s holds fewer than the %d bytes its size says", attachmentID, n))
			}
			return parley.Attachment{}, nil, err
		}
	}
	return a, data, nil
}

// ReadAttachment implements parley.Store: one query, qAttachmentRead.
func (s *Store) ReadAttachment(ctx context.Context, userID, attachmentID string, thumb bool, off int64, p []byte) (int, error) {
	if off < 0 {
		return 0, parley.Errorf(parley.EINVALID, "negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	into := &intoSlice{p: p}
	if s.chunked {
		// A thumbnail is a column; the data, chunk rows.
		var data bool
		err := s.e.QueryRow(ctx, qAttachmentThumb, thumb, attachmentID, userID, off+1, len(p)).Scan(&data, into)
		if err != nil {
			return 0, s.notFound(err, parley.ErrNotFound)
		}
		if data {
			return s.readChunks(ctx, userID, attachmentID, thumb, off, p)
		}
	} else if err := s.e.QueryRow(ctx, qAttachmentRead, thumb, attachmentID, userID, off+1, len(p)).Scan(into); err != nil {
		return 0, s.notFound(err, parley.ErrNotFound)
	}
	if into.n < len(p) {
		return into.n, io.EOF
	}
	return into.n, nil
}

// readChunks is ReadAttachment of a ChunkedAttachments dialect's data:
// one query reads the chunk rows that [off, off+len(p)) spans, each
// copied into p from the driver's bytes. Attachments never change, so
// a chunk missing before the last is a broken store.
func (s *Store) readChunks(ctx context.Context, userID, attachmentID string, thumb bool, off int64, p []byte) (int, error) {
	first := off / AttachmentChunkBytes
	last := (off + int64(len(p)) - 1) / AttachmentChunkBytes
	rows, err := s.e.Query(ctx, qAttachmentChunks, thumb, attachmentID, userID, first, last)
	if err != nil {
		return 0, s.wrapInternal(err)
	}
	defer rows.Close()
	dst := &chunkInto{p: p, off: off}
	for want := first; rows.Next(); want++ {
		if err := rows.Scan(&dst.n, dst); err != nil {
			return 0, s.wrapInternal(err)
		}
		if dst.n != want {
			return 0, s.internalf("attachment %s has no chunk %d", attachmentID, want)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, s.wrapInternal(err)
	}
	if dst.read < len(p) {
		return dst.read, io.EOF
	}
	return dst.read, nil
}

// chunkInto scans chunk n of an attachment's data (scanned just before
// it) into p, the bytes of the attachment from off: the part of the
// chunk that p spans, from the driver's bytes as they are (a
// sql.Scanner, as intoSlice).
type chunkInto struct {
	p    []byte
	off  int64
	n    int64
	read int
}

func (d *chunkInto) Scan(src any) error {
	v, ok := src.([]byte)
	if !ok {
		return fmt.Errorf("attachment chunk scanned from a %T", src)
	}
	start := d.n * AttachmentChunkBytes // the chunk's first byte in the attachment
	if at := d.off + int64(d.read); at >= start && at < start+int64(len(v)) {
		d.read += copy(d.p[d.read:], v[at-start:])
	}
	return nil
}

// intoSlice scans a bytes value (NULL: none) into p, as much as fits: a
// sql.Scanner, so database/sql hands it the driver's bytes as they are,
// where a *[]byte gets a copy of them first (a chunk more held while a
// download reads one); pgx, its decoded value.
type intoSlice struct {
	p []byte
	n int
}

func (d *intoSlice) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		d.n = 0
	case []byte:
		d.n = copy(d.p, v)
	case string:
		d.n = copy(d.p, v)
	default:
		return fmt.Errorf("attachment bytes scanned from a %T", src)
	}
	return nil
}
