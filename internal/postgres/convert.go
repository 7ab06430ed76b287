package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
)

// Conversions between rows and domain values live here, in one place.

// utc returns t in UTC: pgx returns timestamptz in the local zone, and
// parley times are UTC (already rounded to microseconds, as timestamptz
// stores them, so they round-trip exactly).
func utc(t time.Time) time.Time { return t.UTC() }

// internalf wraps a failure of the database itself; callers see EINTERNAL.
func internalf(format string, args ...any) error {
	return fmt.Errorf("postgres: "+format, args...)
}

func invalidf(format string, args ...any) error {
	return parley.Errorf(parley.EINVALID, format, args...)
}

// notFound maps pgx.ErrNoRows to nf (usually parley.ErrNotFound) and wraps
// anything else as internal.
func notFound(err error, nf error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nf
	}
	return internalf("%w", err)
}

// scanner is a pgx.Row or pgx.Rows.
type scanner interface{ Scan(dest ...any) error }

// messageCols selects a message with its sender's name and its attachment.
// Every column is nullable so the same scan serves the LEFT JOIN of events.
const messageCols = `m.id, m.conversation_id, m.seq, m.sender_id, su.name, m.client_id, m.type,
	m.text, m.created_at, m.deleted_at,
	a.id, a.content_type, a.size, a.width, a.height`

// messageJoins go with messageCols; the message table is aliased m.
const messageJoins = `JOIN users su ON su.id = m.sender_id
	LEFT JOIN attachments a ON a.id = m.attachment_id`

// msgRow receives messageCols.
type msgRow struct {
	id, conversationID, senderID, senderName, clientID, typ, text *string
	seq                                                           *int64
	createdAt, deletedAt                                          *time.Time
	attID, attType                                                *string
	attSize                                                       *int64
	attWidth, attHeight                                           *int32
}

func (r *msgRow) dest() []any {
	return []any{&r.id, &r.conversationID, &r.seq, &r.senderID, &r.senderName, &r.clientID, &r.typ,
		&r.text, &r.createdAt, &r.deletedAt,
		&r.attID, &r.attType, &r.attSize, &r.attWidth, &r.attHeight}
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func num[T int32 | int64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}

// message returns the row as a Message, or nil when the row had none (an
// event without a message). A deleted message comes out as a tombstone.
func (r *msgRow) message() *parley.Message {
	if r.id == nil {
		return nil
	}
	m := &parley.Message{
		ID:             *r.id,
		ConversationID: str(r.conversationID),
		Seq:            num(r.seq),
		SenderID:       str(r.senderID),
		SenderName:     str(r.senderName),
		ClientID:       str(r.clientID),
		Type:           parley.MessageType(str(r.typ)),
	}
	if r.createdAt != nil {
		m.CreatedAt = utc(*r.createdAt)
	}
	if r.deletedAt != nil {
		at := utc(*r.deletedAt)
		m.Deleted, m.DeletedAt = true, &at
		return m // content gone; the row keeps none anyway
	}
	m.Text = str(r.text)
	if r.attID != nil {
		m.Attachment = &parley.Attachment{
			ID:          *r.attID,
			ContentType: str(r.attType),
			Size:        num(r.attSize),
			Width:       int(num(r.attWidth)),
			Height:      int(num(r.attHeight)),
		}
	}
	return m
}

func scanMessage(s scanner) (parley.Message, error) {
	var r msgRow
	if err := s.Scan(r.dest()...); err != nil {
		return parley.Message{}, err
	}
	return *r.message(), nil
}

// eventData is the JSON kept in events.data: the parts of an Event that
// are neither columns nor read from other tables at replay time.
type eventData struct {
	ReadSeq      int64                `json:"read_seq,omitempty"`
	Change       parley.Change        `json:"change,omitempty"`
	UserIDs      []string             `json:"user_ids,omitempty"`
	Conversation *parley.Conversation `json:"conversation,omitempty"`
}

func encodeEventData(e *parley.Event) (string, error) {
	b, err := json.Marshal(eventData{
		ReadSeq:      e.ReadSeq,
		Change:       e.Change,
		UserIDs:      e.UserIDs,
		Conversation: e.Conversation,
	})
	if err != nil {
		return "", internalf("encode event: %w", err)
	}
	return string(b), nil
}

// eventCols selects an event with its actor's name and its message.
const eventCols = `e.pos, e.conversation_id, e.type, e.actor_id, eu.name, e.data::text, e.at, ` + messageCols

const eventJoins = `JOIN users eu ON eu.id = e.actor_id
	LEFT JOIN messages m ON m.id = e.message_id
	LEFT JOIN users su ON su.id = m.sender_id
	LEFT JOIN attachments a ON a.id = m.attachment_id`

func scanEvent(s scanner) (parley.Event, error) {
	var (
		e    parley.Event
		typ  string
		data string
		at   time.Time
		r    msgRow
	)
	dest := append([]any{&e.Pos, &e.ConversationID, &typ, &e.UserID, &e.UserName, &data, &at}, r.dest()...)
	if err := s.Scan(dest...); err != nil {
		return e, err
	}
	e.Type = parley.EventType(typ)
	e.At = utc(at)
	e.Message = r.message()
	var d eventData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return e, internalf("decode event %d: %w", e.Pos, err)
	}
	e.ReadSeq, e.Change, e.UserIDs, e.Conversation = d.ReadSeq, d.Change, d.UserIDs, d.Conversation
	return e, nil
}

func scanUser(s scanner) (parley.User, error) {
	var u parley.User
	if err := s.Scan(&u.ID, &u.Name, &u.CreatedAt); err != nil {
		return u, err
	}
	u.CreatedAt = utc(u.CreatedAt)
	return u, nil
}

const conversationCols = `c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, c.last_activity_at`

func conversationDest(c *parley.Conversation) []any {
	return []any{&c.ID, (*string)(&c.Kind), &c.Title, &c.CreatedBy, &c.CreatedAt, &c.LastSeq, &c.LastActivityAt}
}

// fixTimes puts a scanned conversation's times in UTC.
func fixTimes(c *parley.Conversation) {
	c.CreatedAt, c.LastActivityAt = utc(c.CreatedAt), utc(c.LastActivityAt)
}
