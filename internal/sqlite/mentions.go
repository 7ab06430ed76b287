package sqlite

import (
	"fmt"

	"github.com/parleychat/parley"
)

// A send's mentions rows (migration 00008's mentions table) are written
// with the batch's rows, for the messages that have any: migration 00013
// dropped the insert trigger that did it for every row, which cost every
// send a trigger program (about 14k instructions, most sends naming no
// one). Edits and deletes still keep the table by trigger.

// qInsertMention is one mentions row, as the trigger wrote it.
const qInsertMention = `INSERT OR IGNORE INTO mentions (user_id, message_id, conversation_id, seq, created_at) VALUES ($1, $2, $3, $4, $5)`

// mentionArgs is the column count of a mentions row.
const mentionArgs = 5

// addMentions appends the mentions rows of a message sent in the batch.
func (p *pending) addMentions(m *parley.Message, at int64) {
	for _, id := range m.Mentions {
		p.mentions = append(p.mentions, id, m.ID, m.ConversationID, m.Seq, at)
	}
}

// flushMentions writes the pending mentions rows (after their messages).
func (w *writeTx) flushMentions() error {
	p := w.pending
	for i := 0; i+mentionArgs <= len(p.mentions); i += mentionArgs {
		if _, err := w.exec(qInsertMention, p.mentions[i:i+mentionArgs]...); err != nil {
			return fmt.Errorf("%w: mentions: %w", errFlush, err)
		}
	}
	return nil
}
