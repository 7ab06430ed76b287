package sqlstore

import (
	"encoding/json"
	"time"

	"github.com/parleychat/parley"
)

// Conversions between rows and domain values live here, in one place.

// NullString, NullInt64 and NullTime receive nullable columns. The
// dialect hands the driver a destination it fills directly (Dialect.Dest):
// the first two have the layout of database/sql's and pgx's own nullable
// types, so an engine converts the pointer and a scan allocates nothing.
type (
	NullString struct {
		String string
		Valid  bool
	}
	NullInt64 struct {
		Int64 int64
		Valid bool
	}
	NullTime struct {
		Time  time.Time // in UTC
		Valid bool
	}
)

// messageCols selects a message with its sender's name, its attachment
// and the quote of the message it replies to (p, its sender pu), read
// now: a quote follows its parent's edits and delete, and is hidden
// (parley.Quote.Hide) when its reader blocked the parent's sender (qb,
// see parentJoinsFor). Every column is nullable so the same scan serves
// the LEFT JOIN of events.
const messageCols = `m.id, m.conversation_id, m.seq, m.sender_id, su.name, m.client_id, m.type,
	m.text, m.created_at, m.deleted_at,
	a.id, a.content_type, a.size, a.width, a.height, a.name,
	m.edited_at, p.id, p.seq, p.sender_id, pu.name, p.type, ` + quoteText + `, p.deleted_at, m.mentions, qb.blocker_id`

// quoteText is the parent's text a quote carries: substr counts code
// points in both engines.
const quoteText = `substr(p.text, 1, 100)`

// parentJoinsFor join a message's parent (m.reply_to_id) for
// messageCols, and the block (qb) by which the reader hides the parent
// (the reader blocked its sender: its quote is hidden). It ends in the
// reader's id, which each statement writes right after it: an
// expression (a parameter, or a column such as mb.user_id), or NULL in
// a read for no one reader (ShardEvents, and the writes' reads of the
// message an event carries: each receiver's quote is then the hub's,
// parley.Event.QuoteHidden).
const parentJoinsFor = `
	LEFT JOIN messages p ON p.id = m.reply_to_id
	LEFT JOIN users pu ON pu.id = p.sender_id
	LEFT JOIN blocks qb ON qb.blocked_id = p.sender_id AND qb.blocker_id = `

// messageJoinsFor go with messageCols; the message table is aliased m.
// Like parentJoinsFor, they end in the reader's id, which the statement
// writes after them.
const messageJoinsFor = `JOIN users su ON su.id = m.sender_id
	LEFT JOIN attachments a ON a.id = m.attachment_id` + parentJoinsFor

// msgCols is the number of messageCols.
const msgCols = 26

// msgRow receives messageCols.
type msgRow struct {
	id, conversationID, senderID, senderName, clientID, typ, text NullString
	seq                                                           NullInt64
	createdAt, deletedAt                                          NullTime
	attID, attType, attName                                       NullString
	attSize, attWidth, attHeight                                  NullInt64
	editedAt                                                      NullTime
	pID, pSender, pName, pType, pText                             NullString
	pSeq                                                          NullInt64
	pDeleted                                                      NullTime
	mentions                                                      NullString
	// hiddenBy is the reader when they blocked the parent's sender.
	hiddenBy NullString
}

// appendDest appends the destinations of messageCols to dest.
func (r *msgRow) appendDest(d Dialect, dest []any) []any {
	str, num, tm := d.StringDest, d.IntDest, d.TimeDest
	return append(dest, str(&r.id), str(&r.conversationID), num(&r.seq), str(&r.senderID),
		str(&r.senderName), str(&r.clientID), str(&r.typ), str(&r.text),
		tm(&r.createdAt), tm(&r.deletedAt),
		str(&r.attID), str(&r.attType), num(&r.attSize), num(&r.attWidth), num(&r.attHeight), str(&r.attName),
		tm(&r.editedAt), str(&r.pID), num(&r.pSeq), str(&r.pSender), str(&r.pName), str(&r.pType), str(&r.pText), tm(&r.pDeleted), str(&r.mentions), str(&r.hiddenBy))
}

// message returns the row as a Message, or nil when the row had none (an
// event without a message). A deleted message comes out as a tombstone.
func (r *msgRow) message() *parley.Message {
	if !r.id.Valid {
		return nil
	}
	m := &parley.Message{
		ID:             r.id.String,
		ConversationID: r.conversationID.String,
		Seq:            r.seq.Int64,
		SenderID:       r.senderID.String,
		SenderName:     r.senderName.String,
		ClientID:       r.clientID.String,
		Type:           parley.MessageType(r.typ.String),
		CreatedAt:      r.createdAt.Time,
	}
	if r.deletedAt.Valid {
		at := r.deletedAt.Time
		m.Deleted, m.DeletedAt = true, &at
		return m // content gone; the row keeps none anyway
	}
	m.Text = r.text.String
	if r.editedAt.Valid {
		at := r.editedAt.Time
		m.EditedAt = &at
	}
	if r.mentions.Valid {
		// Written by MentionsArg: a JSON array of ids. A value that does
		// not decode leaves the message without mentions rather than
		// failing its read.
		_ = json.Unmarshal([]byte(r.mentions.String), &m.Mentions)
	}
	if r.pID.Valid {
		m.ReplyTo = &parley.Quote{
			MessageID:  r.pID.String,
			Seq:        r.pSeq.Int64,
			SenderID:   r.pSender.String,
			SenderName: r.pName.String,
			Type:       parley.MessageType(r.pType.String),
			Text:       r.pText.String,
			Deleted:    r.pDeleted.Valid,
		}
		if r.hiddenBy.Valid {
			m.ReplyTo = m.ReplyTo.Hide()
		}
	}
	if r.attID.Valid {
		m.Attachment = &parley.Attachment{
			ID:          r.attID.String,
			ContentType: r.attType.String,
			Size:        r.attSize.Int64,
			Width:       int(r.attWidth.Int64),
			Height:      int(r.attHeight.Int64),
			Name:        r.attName.String,
		}
	}
	return m
}

// ScanMessage scans a row of messageCols (QMessageByClientID's, say).
func ScanMessage(d Dialect, s Row) (parley.Message, error) {
	var r msgRow
	var buf [msgCols]any
	if err := s.Scan(r.appendDest(d, buf[:0])...); err != nil {
		return parley.Message{}, err
	}
	return *r.message(), nil
}

// eventData is the JSON kept in events.data: the parts of an Event that
// are neither columns nor read from other tables at replay time.
type eventData struct {
	ReadSeq      int64                `json:"read_seq,omitempty"`
	MessageID    string               `json:"message_id,omitempty"`
	Seq          int64                `json:"seq,omitempty"`
	Emoji        string               `json:"emoji,omitempty"`
	Count        int64                `json:"count,omitempty"`
	Change       parley.Change        `json:"change,omitempty"`
	UserIDs      []string             `json:"user_ids,omitempty"`
	Conversation *parley.Conversation `json:"conversation,omitempty"`
	Flags        *parley.MemberFlags  `json:"flags,omitempty"`
	DeliveredSeq int64                `json:"delivered_seq,omitempty"`
	Profile      *parley.Profile      `json:"profile,omitempty"`
	Consent      parley.Consent       `json:"consent,omitempty"`
}

// EmptyEventData is the data of an event with nothing beyond its columns
// (a newMessage): what encodeEventData makes of it.
const EmptyEventData = "{}"

func (s *Store) encodeEventData(e *parley.Event) (string, error) {
	b, err := json.Marshal(eventData{
		ReadSeq:      e.ReadSeq,
		MessageID:    e.MessageID,
		Seq:          e.Seq,
		Emoji:        e.Emoji,
		Count:        e.Count,
		Change:       e.Change,
		UserIDs:      e.UserIDs,
		Conversation: e.Conversation,
		Flags:        e.Flags,
		DeliveredSeq: e.DeliveredSeq,
		Profile:      e.Profile,
		Consent:      e.Consent,
	})
	if err != nil {
		return "", s.internalf("encode event: %w", err)
	}
	return string(b), nil
}

// EventCols selects an event with its actor's name and its message; the
// engines' EventsForSQL select it too. Its reader, for the message's
// quote, follows EventJoinsFor.
const EventCols = `e.pos, e.conversation_id, e.type, e.actor_id, eu.name, CAST(e.data AS TEXT), e.at, e.recipient, ` + messageCols

// EventJoinsFor go with EventCols; the event table is aliased e. Like
// parentJoinsFor, they end in the reader's id (NULL for no one reader),
// which the statement writes after them.
const EventJoinsFor = `JOIN users eu ON eu.id = e.actor_id
	LEFT JOIN messages m ON m.id = e.message_id
	LEFT JOIN users su ON su.id = m.sender_id
	LEFT JOIN attachments a ON a.id = m.attachment_id` + parentJoinsFor

func (s *Store) scanEvent(row Row) (parley.Event, error) {
	var (
		e    parley.Event
		typ  string
		data string
		at   NullTime
		rcpt NullString
		conv NullString
		r    msgRow
		buf  [8 + msgCols]any // the event's own columns, then the message's
	)
	dest := append(buf[:0], &e.Pos, s.d.StringDest(&conv), &typ, &e.UserID, &e.UserName, &data, s.d.TimeDest(&at), s.d.StringDest(&rcpt))
	if err := row.Scan(r.appendDest(s.d, dest)...); err != nil {
		return e, err
	}
	e.Type = parley.EventType(typ)
	e.At = at.Time
	e.Recipient = rcpt.String
	e.ConversationID = conv.String
	e.Shard = s.ShardOf(e.ConversationID)
	e.Message = r.message()
	if data == EmptyEventData {
		// Most events (every newMessage) carry nothing more: skip the
		// decoder, a replay reads up to ResumeLimit+1 of them.
		return e, nil
	}
	var d eventData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return e, s.internalf("decode event %d: %w", e.Pos, err)
	}
	e.ReadSeq, e.Change, e.UserIDs, e.Conversation, e.Flags, e.Consent = d.ReadSeq, d.Change, d.UserIDs, d.Conversation, d.Flags, d.Consent
	e.MessageID, e.Seq, e.Emoji, e.Count = d.MessageID, d.Seq, d.Emoji, d.Count
	if e.Type == parley.EventReactionAdded || e.Type == parley.EventReactionRemoved {
		e.Message = nil // a reaction names its message (message_id) and carries none
	}
	e.DeliveredSeq, e.Profile = d.DeliveredSeq, d.Profile
	if e.Conversation != nil {
		// Events stored before snapshots hid positions carry them.
		hidePositions(e.Conversation)
	}
	return e, nil
}

// ScanUser scans a row of userCols: id, name, created_at and the profile.
func ScanUser(d Dialect, s Row) (parley.User, error) {
	var (
		u  parley.User
		at NullTime
	)
	if err := s.Scan(&u.ID, &u.Name, d.TimeDest(&at), &u.DisplayName, &u.AvatarID); err != nil {
		return u, err
	}
	u.CreatedAt = at.Time
	return u, nil
}

const conversationCols = `c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, c.last_activity_at`

// convRow receives conversationCols.
type convRow struct {
	c                 parley.Conversation
	created, activity NullTime
}

func (r *convRow) appendDest(d Dialect, dest []any) []any {
	c := &r.c
	return append(dest, &c.ID, (*string)(&c.Kind), &c.Title, &c.CreatedBy, d.TimeDest(&r.created), &c.LastSeq, d.TimeDest(&r.activity))
}

func (r *convRow) conversation() parley.Conversation {
	r.c.CreatedAt, r.c.LastActivityAt = r.created.Time, r.activity.Time
	return r.c
}
