package sqlite

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parleychat/parley"
)

// Conversions between rows and domain values live here, in one place.

// toMicros stores a time as microseconds since the Unix epoch; parley.Now
// already rounds to microseconds, so times round-trip exactly.
func toMicros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// internalf wraps a failure of the database itself; callers see EINTERNAL.
func internalf(format string, args ...any) error {
	return fmt.Errorf("sqlite: "+format, args...)
}

func invalidf(format string, args ...any) error {
	return parley.Errorf(parley.EINVALID, format, args...)
}

// notFound maps sql.ErrNoRows to err (usually parley.ErrNotFound) and wraps
// anything else as internal.
func notFound(err error, nf error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nf
	}
	return internalf("%w", err)
}

// scanner is *sql.Row or *sql.Rows.
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
	id, conversationID, senderID, senderName, clientID, typ, text sql.NullString
	seq, createdAt, deletedAt                                     sql.NullInt64
	attID, attType                                                sql.NullString
	attSize, attWidth, attHeight                                  sql.NullInt64
}

func (r *msgRow) dest() []any {
	return []any{&r.id, &r.conversationID, &r.seq, &r.senderID, &r.senderName, &r.clientID, &r.typ,
		&r.text, &r.createdAt, &r.deletedAt,
		&r.attID, &r.attType, &r.attSize, &r.attWidth, &r.attHeight}
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
		CreatedAt:      fromMicros(r.createdAt.Int64),
	}
	if r.deletedAt.Valid {
		at := fromMicros(r.deletedAt.Int64)
		m.Deleted, m.DeletedAt = true, &at
		return m // content gone; the row keeps none anyway
	}
	m.Text = r.text.String
	if r.attID.Valid {
		m.Attachment = &parley.Attachment{
			ID:          r.attID.String,
			ContentType: r.attType.String,
			Size:        r.attSize.Int64,
			Width:       int(r.attWidth.Int64),
			Height:      int(r.attHeight.Int64),
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
const eventCols = `e.pos, e.conversation_id, e.type, e.actor_id, eu.name, e.data, e.at, ` + messageCols

const eventJoins = `JOIN users eu ON eu.id = e.actor_id
	LEFT JOIN messages m ON m.id = e.message_id
	LEFT JOIN users su ON su.id = m.sender_id
	LEFT JOIN attachments a ON a.id = m.attachment_id`

func scanEvent(s scanner) (parley.Event, error) {
	var (
		e    parley.Event
		typ  string
		data string
		at   int64
		r    msgRow
	)
	dest := append([]any{&e.Pos, &e.ConversationID, &typ, &e.UserID, &e.UserName, &data, &at}, r.dest()...)
	if err := s.Scan(dest...); err != nil {
		return e, err
	}
	e.Type = parley.EventType(typ)
	e.At = fromMicros(at)
	e.Message = r.message()
	if data == emptyEventData {
		// Most events (every newMessage) carry nothing more: skip the
		// decoder, a replay reads up to ResumeLimit+1 of them.
		return e, nil
	}
	var d eventData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return e, internalf("decode event %d: %w", e.Pos, err)
	}
	e.ReadSeq, e.Change, e.UserIDs, e.Conversation = d.ReadSeq, d.Change, d.UserIDs, d.Conversation
	return e, nil
}

func scanUser(s scanner) (parley.User, error) {
	var (
		u  parley.User
		at int64
	)
	if err := s.Scan(&u.ID, &u.Name, &at); err != nil {
		return u, err
	}
	u.CreatedAt = fromMicros(at)
	return u, nil
}

// convRow receives conversationCols.
const conversationCols = `c.id, c.kind, c.title, c.created_by, c.created_at, c.last_seq, c.last_activity_at`

func conversationDest(c *parley.Conversation, createdAt, lastActivity *int64) []any {
	return []any{&c.ID, (*string)(&c.Kind), &c.Title, &c.CreatedBy, createdAt, &c.LastSeq, lastActivity}
}
