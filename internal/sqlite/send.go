package sqlite

import (
	"slices"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlstore"
)

// The send: the hot write, SQLite's own path (sqlstore.Engine.Send). It is
// a deferred op (batch.go): membership, the sender's name and the
// conversation's last_seq come from the batcher's cache, the only query is
// the idempotency check (and, for an image, the attachment's), and the
// rows are written with the batch's. The rules are the core's (SendRule,
// AttachmentRule).

// sendOp is one send: its deferred op and, once the op succeeded, its
// results.
type sendOp struct {
	op     *op
	msg    parley.Message
	events []parley.Event
}

// newSendOp makes the deferred op that stores nm (validated: see
// sqlstore.NewSend).
func newSendOp(nm parley.NewMessage) *sendOp {
	so := &sendOp{}
	key := [2]string{nm.SenderID, nm.ClientID}
	so.op = &op{deferred: true, key: key, fn: func(w *writeTx) error {
		return so.run(w, nm, key)
	}}
	return so
}

// run is the op of a send, run by the batcher.
func (so *sendOp) run(w *writeTx, nm parley.NewMessage, key [2]string) error {
	so.msg, so.events = parley.Message{}, nil
	msg := &so.msg
	ms, err := w.members(nm.ConversationID)
	if err != nil {
		return err
	}
	// Idempotency: a send of this batch not written yet, then the
	// table (unless the batch's probe found the pair absent).
	var old *parley.Message
	member := ms.has(nm.SenderID)
	if member {
		old = w.pending.sent[key]
		if old == nil && (!w.probed || w.known[key]) {
			m, err := sqlstore.ScanMessage(dialect{}, w.queryRow(sqlstore.QMessageByClientID, nm.SenderID, nm.ClientID))
			switch {
			case err == nil:
				old = &m
			case !dialect{}.IsNoRows(err):
				return err
			}
		}
	}
	var oldConv *string
	if old != nil {
		oldConv = &old.ConversationID
	}
	if resend, err := sqlstore.SendRule(nm, member, oldConv); resend || err != nil {
		if resend {
			*msg = *old
		}
		return err
	}
	if ms.gate.Refused[nm.SenderID] {
		return parley.ErrUnreachable
	}
	senderName, err := w.UserName(nm.SenderID)
	if err != nil {
		return err
	}
	last, err := w.lastSeq(nm.ConversationID)
	if err != nil {
		return err
	}
	*msg = parley.Message{
		ID:             sqlstore.NewID(),
		ConversationID: nm.ConversationID,
		Seq:            last + 1,
		SenderID:       nm.SenderID,
		SenderName:     senderName,
		ClientID:       nm.ClientID,
		Type:           nm.Type,
		Text:           nm.Text,
		CreatedAt:      parley.Now(),
	}
	var attachment any // NULL
	if nm.Type.HasAttachment() {
		a := parley.Attachment{ID: nm.AttachmentID}
		err := w.queryRow(sqlstore.QAttachmentOwned, nm.AttachmentID, nm.SenderID).Scan(&a.ContentType, &a.Size, &a.Width, &a.Height, &a.Name)
		if err != nil && !(dialect{}).IsNoRows(err) {
			return err
		}
		if err := sqlstore.AttachmentRule(nm, err == nil, a.Name); err != nil {
			return err
		}
		msg.Attachment, attachment = &a, nm.AttachmentID
	}
	msg.ReplyTo, err = sqlstore.ReplyRule(dialect{}, nm, func() sqlstore.Row {
		return w.queryRow(sqlstore.QReplyParent, nm.ReplyTo, nm.ConversationID)
	})
	if err != nil {
		return err
	}
	// Mentions cost a query only for a text with an '@'.
	if msg.Mentions, err = sqlstore.MentionRule(dialect{}, w, nm.ConversationID, nm.SenderID, nm.Text); err != nil {
		return err
	}
	if ms.gate.Declined[nm.SenderID] {
		// The recipient of a declined request writes in it: that accepts
		// it (rare, so at once rather than with the batch's rows), and
		// the gate, which refused the starter, is read again.
		if _, err := w.exec(sqlstore.QAcceptByWriting, nm.ConversationID, nm.SenderID); err != nil {
			return err
		}
		w.MembersChanged(nm.ConversationID)
	}
	// Nothing fails from here on: the send takes its position and
	// leaves its rows to the batch.
	shard := parley.ShardOf(msg.ConversationID, len(w.b.heads))
	e := parley.Event{
		Pos:            w.NextPos(shard),
		Shard:          shard,
		Type:           parley.EventNewMessage,
		ConversationID: msg.ConversationID,
		UserID:         msg.SenderID,
		UserName:       senderName,
		Message:        msg,
		At:             msg.CreatedAt,
		// A copy: the cached slice is shared, the event's is the
		// caller's. Who blocked the sender does not get it.
		Audience: slices.Clone(ms.ids),
	}
	if hidden := ms.gate.Hidden[nm.SenderID]; hidden != nil {
		e.Audience = sqlstore.Without(e.Audience, hidden)
	}
	if q := msg.ReplyTo; q != nil {
		// Who blocked the parent's sender gets the quote hidden: from
		// the cached gate too, no query.
		blockers := ms.gate.Hidden[q.SenderID]
		e.QuoteHidden = sqlstore.Among(e.Audience, blockers)
		e.Message = sqlstore.SplitQuote(msg, blockers)
	}
	stored := *msg // as the sender reads it: a resend in this batch answers it
	w.addSend(&stored, attachment, &e)
	so.events = []parley.Event{e}
	w.Stored(e)
	if w.noDefer {
		// The batch's second run (batch.go): write now, inside this
		// op's savepoint.
		return w.flush()
	}
	return nil
}
