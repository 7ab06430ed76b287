package postgres

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlstore"
)

// Bulk sends.
//
// Sending messages is most of what a chat server writes, and every node's
// batches take turns on one cluster-wide lock, so the time a batch holds
// the lock is the cluster's write capacity. Run one by one, each send costs
// two round trips and a dozen statement executions under the lock. The
// batcher therefore runs all the sends of a batch together: one statement
// reads what every check needs, the checks run here, and one statement
// writes every message, conversation counter, read position and event.
// The sends need no savepoints: a send that fails a check writes nothing.
// If the bulk statement itself fails (it should not), the batch is rolled
// back and run again one op at a time, with savepoints: each send then
// runs this same path alone. The rules are the core's (sqlstore.SendRule,
// AttachmentRule).

// sendOp is a SendMessage waiting in a batch, with its results.
type sendOp struct {
	nm     parley.NewMessage // validated (sqlstore.NewSend)
	msg    parley.Message
	events []parley.Event
	err    error    // the send's own failure
	hidden []string // who blocked the sender: left out of the audience
	// quoteHidden: for a reply, who blocked the parent's sender (its
	// audience among them receive the quote hidden).
	quoteHidden []string
	// event is the array of events (a new message has one): in the
	// op's allocation, not one of its own per send. The caller that
	// gets events may keep them: the op is not reused.
	event [1]parley.Event
}

// sendAlloc is a send's op and sendOp in one allocation.
type sendAlloc struct {
	o  op
	so sendOp
}

// newSendOp makes the op of a send, in one allocation (a send is most of
// what a node writes: three allocations a send were ~5% of a node's).
// Its results are in op.send once the batch committed; run runs it alone.
func newSendOp(nm parley.NewMessage, shards int) *op {
	a := &sendAlloc{so: sendOp{nm: nm}}
	a.o.send, a.o.shard = &a.so, parley.ShardOf(nm.ConversationID, shards)
	return &a.o
}

// sendAlone runs the send so alone (in its op's savepoint).
func sendAlone(w *writeTx, so *sendOp) error {
	if err := bulkSend(w, []*sendOp{so}); err != nil {
		return err
	}
	return so.err
}

// qBulkSendCheck: for each send, in order, membership, the conversation's
// last Seq, the sender's name, an earlier message with the same client id
// and the attachment when the sender owns it. What depends only on the
// conversation and the sender (p) is read once per pair, not once per
// send: a batch often holds several sends of one sender in one
// conversation. The conversation is a lookup (kept one by OFFSET 0: never
// a join that could scan every conversation); the refusal rule runs only
// for a direct conversation (SendRefusedSQL: in a group it would read
// every member). A send without an attachment (an empty id) reads no
// attachment: the test on r.att is the lateral scan's one-time filter, so
// no index is entered, where the join on the empty id cost a descent of
// an index of attachments per text message (2 buffer reads of the ~35 a
// message costs in the indexes; docs/benchmarks.md, "PostgreSQL
// acknowledged writes, one node: what a send writes"). OFFSET 0 keeps the
// subquery a scan of its own, the filter with it.
var qBulkSendCheck = `WITH r AS MATERIALIZED (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS r(conv, sender, client, att, i)
	), p AS MATERIALIZED (
		SELECT p.conv, p.sender,
			EXISTS (SELECT 1 FROM members mb WHERE mb.conversation_id = p.conv AND mb.user_id = p.sender AND mb.left_pos IS NULL) AS member,
			COALESCE(c.last_seq, 0) AS last,
			COALESCE((SELECT u.name FROM users u WHERE u.id = p.sender), '') AS name,
			CASE WHEN c.kind = 'direct' THEN ` + bulkRefused + ` ELSE false END AS refused,
			NULLIF(ARRAY(` + bulkHidden + `), '{}') AS hidden
		FROM (SELECT DISTINCT conv, sender FROM r) p
		LEFT JOIN LATERAL (SELECT c.last_seq, c.kind FROM conversations c WHERE c.id = p.conv OFFSET 0) c ON true
	)
	SELECT p.member, p.last, p.name, old.id, old.conversation_id,
		att.id IS NOT NULL, att.content_type, att.size, att.width, att.height, att.name, p.refused, p.hidden
	FROM r JOIN p ON p.conv = r.conv AND p.sender = r.sender
	LEFT JOIN messages old ON old.sender_id = r.sender AND old.client_id = r.client
	LEFT JOIN LATERAL (SELECT * FROM attachments att WHERE r.att <> '' AND att.id = r.att AND att.owner_id = r.sender OFFSET 0) att ON true
	ORDER BY r.i`

// qBulkSendCheckNew is qBulkSendCheck for sends assumed new (no resend
// seen lately, batcher.probeUntil): no lookup of an earlier message with
// the same client id. If one is there after all, the write's INSERT
// breaks messages' unique (sender_id, client_id) and the batch runs again
// with qBulkSendCheck; nothing is decided without the lookup or the key.
var qBulkSendCheckNew = mustReplace(qBulkSendCheck,
	"p.name, old.id, old.conversation_id,", "p.name, NULL::text, NULL::text,",
	"\n\tLEFT JOIN messages old ON old.sender_id = r.sender AND old.client_id = r.client", "")

// mustReplace replaces each old with its new in s, each exactly once.
func mustReplace(s string, oldnew ...string) string {
	for i := 0; i < len(oldnew); i += 2 {
		if strings.Count(s, oldnew[i]) != 1 {
			panic("postgres: mustReplace: not once: " + oldnew[i])
		}
		s = strings.Replace(s, oldnew[i], oldnew[i+1], 1)
	}
	return s
}

// bulkRefused and bulkHidden are the core's SendRefusedSQL and
// HiddenFromSQL for the pair p of qBulkSendCheck.
var (
	bulkRefused = strings.NewReplacer("$1", "p.conv", "$2", "p.sender").Replace(sqlstore.SendRefusedSQL)
	bulkHidden  = strings.NewReplacer("$1", "p.sender").Replace(sqlstore.HiddenFromSQL)
	oneHidden   = strings.NewReplacer("$1", "$2").Replace(sqlstore.HiddenFromSQL)
)

// qReplyParent is the core's QReplyParent with one more column: who
// blocked the parent's sender (NULL for nobody), in the same round trip.
var qReplyParent = mustReplace(sqlstore.QReplyParent, ", p.deleted_at\n",
	", p.deleted_at, NULLIF(ARRAY("+strings.NewReplacer("$1", "p.sender_id").Replace(sqlstore.HiddenFromSQL)+"), '{}')\n")

// qSendCheck is qBulkSendCheck for one send.
var qSendCheck = `SELECT
		EXISTS (SELECT 1 FROM members WHERE conversation_id = $1 AND user_id = $2 AND left_pos IS NULL),
		COALESCE(c.last_seq, 0),
		COALESCE((SELECT name FROM users WHERE id = $2), ''),
		old.id, old.conversation_id,
		att.id IS NOT NULL, att.content_type, att.size, att.width, att.height, att.name,
		CASE WHEN c.kind = 'direct' THEN ` + sqlstore.SendRefusedSQL + ` ELSE false END, NULLIF(ARRAY(` + oneHidden + `), '{}')
	FROM (SELECT 1) one
	LEFT JOIN LATERAL (SELECT last_seq, kind FROM conversations WHERE id = $1 OFFSET 0) c ON true
	LEFT JOIN messages old ON old.sender_id = $2 AND old.client_id = $3
	LEFT JOIN LATERAL (SELECT * FROM attachments att WHERE $4 <> '' AND att.id = $4 AND att.owner_id = $2 OFFSET 0) att ON true`

// qSendBlocked is the core's SendRefusedSQL without its declined
// request: whether a send of $2 in the direct conversation $1 is refused
// by a block (bulkSend: a decline may be lifted within a batch).
var qSendBlocked = `SELECT ` + mustReplace(sqlstore.SendRefusedSQL, "o.request = 2 OR ", "")

// acceptByWriting is the core's QAcceptByWriting inside the senders'
// read-position update: a declined request whose recipient writes in it
// goes back to a request's row, answered by the write (members.wrote).
const acceptByWriting = `request = CASE WHEN request = 2 THEN 1 ELSE request END`

// qSendWrite is qBulkSendWrite for one send: it stores the message
// ($1..$9, $11 the parent) and its event ($10 pos), moves the conversation and the
// sender's read position to it, and returns the audience.
const qSendWrite = `WITH msg AS (
		INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, type, text, attachment_id, created_at, reply_to_id, mentions)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12)
	), conv AS (
		UPDATE conversations SET last_seq = $3, last_activity_at = $9 WHERE id = $2
	), rd AS (
		UPDATE members SET read_seq = GREATEST(read_seq, $3), wrote = true, ` + acceptByWriting + `
		WHERE conversation_id = $2 AND user_id = $4 AND left_pos IS NULL AND (read_seq < $3 OR NOT wrote)
	), ev AS (
		INSERT INTO events (pos, conversation_id, type, actor_id, message_id, data, at, shard)
		VALUES ($10, $2, 'newMessage', $4, $1, '{}', $9, $13)
	)
	SELECT COALESCE(array_agg(user_id ORDER BY joined_pos, user_id), '{}') FROM members
	WHERE conversation_id = $2 AND left_pos IS NULL`

// qBulkSendWrite stores the messages ($1..$9 and $17 the parents, one array element each) and
// their events ($10 positions), moves each conversation's counters ($11..
// $13) and each sender's read position ($14..$16; the sender has
// written: members.wrote, see the core's contactsWith), and returns each
// conversation's members: the events' audience. The parts of one WITH
// share a snapshot, so the members are read as they were before it, which
// the writes do not change.
const qBulkSendWrite = `WITH msg AS (
		INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, type, text, attachment_id, created_at, reply_to_id, mentions)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::timestamptz[], $17::text[], $18::text[])
	), ev AS (
		INSERT INTO events (pos, conversation_id, type, actor_id, message_id, data, at, shard)
		SELECT e.pos, e.conv, 'newMessage', e.actor, e.mid, '{}', e.at, e.shard
		FROM unnest($10::bigint[], $2::text[], $4::text[], $1::text[], $9::timestamptz[], $19::int[]) AS e(pos, conv, actor, mid, at, shard)
	), conv AS (
		UPDATE conversations c SET last_seq = u.seq, last_activity_at = u.at
		FROM unnest($11::text[], $12::bigint[], $13::timestamptz[]) AS u(id, seq, at)
		WHERE c.id = u.id
	), rd AS (
		UPDATE members mb SET read_seq = GREATEST(mb.read_seq, u.seq), wrote = true, ` + acceptByWriting + `
		FROM unnest($14::text[], $15::text[], $16::bigint[]) AS u(conv, usr, seq)
		WHERE mb.conversation_id = u.conv AND mb.user_id = u.usr AND mb.left_pos IS NULL AND (mb.read_seq < u.seq OR NOT mb.wrote)
	)
	SELECT mb.conversation_id, array_agg(mb.user_id ORDER BY mb.joined_pos, mb.user_id)
	FROM members mb WHERE mb.conversation_id = ANY($11) AND mb.left_pos IS NULL
	GROUP BY mb.conversation_id`

// qSendWriteHeads and qBulkSendWriteHeads are qSendWrite and
// qBulkSendWrite that also move the heads of the positions they took
// (qSetHeads: $20 the shards, $21 their heads; one send's is its own
// position, $10 in shard $13), for a batch whose sends are its only ops
// (writeTx.foldHeads): no position is taken after them, and the batch
// goes from its write straight to COMMIT, a round trip fewer.
var (
	qSendWriteHeads     = withHeads(qSendWrite, `UPDATE positions SET head = $10 WHERE shard = $13`)
	qBulkSendWriteHeads = withHeads(qBulkSendWrite, `UPDATE positions p SET head = v.head
		FROM unnest($20::int[], $21::bigint[]) AS v(shard, head) WHERE p.shard = v.shard`)
)

// withHeads adds update, as one more part of its WITH, to a send write.
func withHeads(write, update string) string {
	return mustReplace(write, "\n\t)\n\tSELECT ", "\n\t), hd AS (\n\t\t"+update+"\n\t)\n\tSELECT ")
}

type sendCheck struct {
	member              bool
	last                int64
	name                string
	oldID, oldConv      *string
	owned               bool
	attType, attName    pgtype.Text
	attSize             pgtype.Int8
	attWidth, attHeight pgtype.Int4
	refused             bool     // sqlstore.SendRefusedSQL
	hidden              []string // who blocked the sender
}

// bulkSend runs sends, setting each one's results or its error. An error
// return means the transaction is aborted: the caller rolls back (to the
// op's savepoint, or the whole batch to run it again one op at a time).
// A lone send (a batch of one, or a send run alone) takes the one-row
// statements, which cost it fewer allocations than arrays of one.
func bulkSend(w *writeTx, sends []*sendOp) error {
	if len(sends) == 0 {
		return nil
	}
	checks, err := sendChecks(w, sends)
	if err != nil {
		return err
	}
	type readKey struct{ conv, user string }
	var (
		lastSeq = map[string]int64{}
		readTo  = map[readKey]int64{}
		created = map[[2]string]*sendOp{} // (sender, client id) -> the send of this batch that made it
		pending []*sendOp                 // new messages, waiting for their audience
		again   []int                     // resends of stored messages
	)
	now := parley.Now()
	for j, so := range sends {
		c := checks[j]
		so.msg, so.events, so.err = parley.Message{}, nil, nil
		nm := so.nm
		key := [2]string{nm.SenderID, nm.ClientID}
		// The stored message with this client id, or a send of this
		// batch that made it.
		oldConv := c.oldConv
		first, dup := created[key]
		if oldConv == nil && dup {
			oldConv = &first.nm.ConversationID
		}
		resend, err := sqlstore.SendRule(nm, c.member, oldConv)
		switch {
		case err != nil:
			so.err = err
			continue
		case resend && c.oldID != nil:
			again = append(again, j)
			w.resent = true
			continue
		case resend:
			// The same send twice in one batch: the second is a resend.
			so.msg = first.msg
			continue
		}
		if c.refused {
			// The check read the gate as it was before the batch, but
			// a message stored by this batch before this send, in the
			// same (direct: the only kind that refuses) conversation,
			// is the other member's (or one of the sender's allowed
			// after it), and accepts a request its writer declined
			// (acceptByWriting). Then only a block still refuses: one
			// more round trip, paid only by a refused send in a
			// conversation this batch already wrote in.
			refused := true
			if _, wrote := lastSeq[nm.ConversationID]; wrote {
				if err := w.queryRow(bg, qSendBlocked, nm.ConversationID, nm.SenderID).Scan(&refused); err != nil {
					return err
				}
			}
			if refused {
				so.err = parley.ErrUnreachable
				continue
			}
		}
		if err := sqlstore.AttachmentRule(nm, c.owned, c.attName.String); err != nil {
			so.err = err
			continue
		}
		// A reply reads its parent: one more round trip, for replies only.
		var quoteHidden []string
		quote, err := sqlstore.ReplyRule(dialect{}, nm, func() sqlstore.Row {
			return w.queryRow(bg, qReplyParent, nm.ReplyTo, nm.ConversationID)
		}, &quoteHidden)
		var pe *parley.Error
		switch {
		case errors.As(err, &pe):
			so.err = err
			continue
		case err != nil:
			return err
		}
		// Mentions cost a query only for a text with an '@'.
		mentions, err := sqlstore.MentionRule(dialect{}, w, nm.ConversationID, nm.SenderID, nm.Text)
		if err != nil {
			return err
		}
		if _, ok := lastSeq[nm.ConversationID]; !ok {
			lastSeq[nm.ConversationID] = c.last
		}
		lastSeq[nm.ConversationID]++
		seq := lastSeq[nm.ConversationID]
		rk := readKey{nm.ConversationID, nm.SenderID}
		readTo[rk] = max(readTo[rk], seq)

		so.msg = parley.Message{
			ID: sqlstore.NewID(), ConversationID: nm.ConversationID, Seq: seq,
			SenderID: nm.SenderID, SenderName: c.name, ClientID: nm.ClientID,
			Type: nm.Type, Text: nm.Text, CreatedAt: now, ReplyTo: quote, Mentions: mentions,
		}
		if nm.Type.HasAttachment() {
			so.msg.Attachment = &parley.Attachment{ID: nm.AttachmentID, ContentType: c.attType.String,
				Size: c.attSize.Int64, Width: int(c.attWidth.Int32), Height: int(c.attHeight.Int32), Name: c.attName.String}
		}
		shard := parley.ShardOf(nm.ConversationID, w.shards)
		so.event[0] = parley.Event{
			Pos: w.NextPos(shard), Shard: shard, Type: parley.EventNewMessage, ConversationID: nm.ConversationID,
			UserID: nm.SenderID, UserName: c.name, Message: &so.msg, At: now,
		}
		so.events = so.event[:]
		so.hidden = c.hidden
		if quote != nil {
			so.quoteHidden = quoteHidden
			so.event[0].Message = sqlstore.SplitQuote(&so.msg, quoteHidden)
		}
		created[key] = so
		pending = append(pending, so)
	}

	switch {
	case len(pending) == 1:
		so := pending[0]
		m := &so.msg
		w.writing()
		q := qSendWrite
		if w.foldHeads {
			q, w.headsWritten = qSendWriteHeads, true
		}
		err := w.queryRow(bg, q, m.ID, m.ConversationID, m.Seq, m.SenderID, m.ClientID,
			string(m.Type), m.Text, attachmentArg(m), m.CreatedAt, so.events[0].Pos, sqlstore.ReplyArg(m), sqlstore.MentionsArg(m), so.events[0].Shard).Scan(&so.events[0].Audience)
		if err != nil {
			return err
		}
		if len(so.hidden) > 0 {
			so.events[0].Audience = sqlstore.Without(so.events[0].Audience, so.hidden)
		}
	case len(pending) > 1:
		n := len(pending)
		var (
			mIDs, mConvs, mSenders, mClients, mTypes, mTexts = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
			mSeqs, mPos                                      = make([]int64, n), make([]int64, n)
			mShards                                          = make([]int32, n)
			mAtts, mReplies, mMentions                       = make([]*string, n), make([]*string, n), make([]*string, n)
			mAts                                             = make([]time.Time, n)
		)
		for j, so := range pending {
			m := &so.msg
			mIDs[j], mConvs[j], mSenders[j], mClients[j], mTypes[j], mTexts[j] = m.ID, m.ConversationID, m.SenderID, m.ClientID, string(m.Type), m.Text
			mSeqs[j], mPos[j], mAtts[j], mAts[j], mReplies[j] = m.Seq, so.events[0].Pos, attachmentArg(m), m.CreatedAt, sqlstore.ReplyArg(m)
			mMentions[j], mShards[j] = sqlstore.MentionsArg(m), int32(so.events[0].Shard)
		}
		cIDs, cSeqs, cAts := make([]string, 0, len(lastSeq)), make([]int64, 0, len(lastSeq)), make([]time.Time, 0, len(lastSeq))
		for id, seq := range lastSeq {
			cIDs, cSeqs, cAts = append(cIDs, id), append(cSeqs, seq), append(cAts, now)
		}
		rConvs, rUsers, rSeqs := make([]string, 0, len(readTo)), make([]string, 0, len(readTo)), make([]int64, 0, len(readTo))
		for k, seq := range readTo {
			rConvs, rUsers, rSeqs = append(rConvs, k.conv), append(rUsers, k.user), append(rSeqs, seq)
		}
		args := []any{textArray(mIDs), textArray(mConvs), int64Array(mSeqs), textArray(mSenders), textArray(mClients), textArray(mTypes), textArray(mTexts), mAtts, timeArray(mAts),
			int64Array(mPos), textArray(cIDs), int64Array(cSeqs), timeArray(cAts), textArray(rConvs), textArray(rUsers), int64Array(rSeqs), mReplies, mMentions, mShards}
		q := qBulkSendWrite
		if w.foldHeads {
			shards, heads := w.pos.Changed()
			q, w.headsWritten, args = qBulkSendWriteHeads, true, append(args, shards, int64Array(heads))
		}
		w.writing()
		rows, err := w.query(bg, q, args...)
		if err != nil {
			return err
		}
		at, audiences, err := scanAudiences(rows, cIDs)
		if err != nil {
			return err
		}
		// Every event gets an audience slice of its own: the first send
		// of a conversation takes the one scanned, the others a copy.
		taken := make([]bool, len(cIDs))
		for _, so := range pending {
			i := at[so.nm.ConversationID]
			aud := audiences[i]
			if taken[i] {
				aud = slices.Clone(aud)
			}
			taken[i] = true
			if len(so.hidden) > 0 {
				aud = sqlstore.Without(aud, so.hidden)
			}
			so.events[0].Audience = aud
		}
	}
	for _, so := range pending {
		so.events[0].QuoteHidden = sqlstore.Among(so.events[0].Audience, so.quoteHidden)
		w.Stored(so.events[0]) // complete now: its audience is read
	}
	for _, j := range again {
		so := sends[j]
		so.msg, err = sqlstore.ScanMessage(dialect{}, w.queryRow(bg, sqlstore.QMessageByClientID, so.nm.SenderID, so.nm.ClientID))
		if err != nil {
			return err
		}
	}
	return nil
}

// scanAudiences reads the rows of qBulkSendWrite, a conversation of convs
// and its members each, into audiences, indexed as convs (at maps each
// conversation to its index; a conversation without members has none).
// Each members array is scanned into a slice of its own, and the
// conversation is matched from the row's raw bytes: no string per row,
// no copy of the array (before, two allocations a row more).
func scanAudiences(rows pgx.Rows, convs []string) (at map[string]int, audiences [][]string, err error) {
	defer rows.Close()
	at = make(map[string]int, len(convs))
	for i, c := range convs {
		at[c] = i
	}
	audiences = make([][]string, len(convs))
	dest := []any{nil, nil} // the conversation id is read raw, not scanned
	for rows.Next() {
		i, ok := at[string(rows.RawValues()[0])]
		if !ok {
			return nil, nil, internalf("send write: members of conversation %q, not written", rows.RawValues()[0])
		}
		dest[1] = &audiences[i]
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
	}
	return at, audiences, rows.Err()
}

// attachmentArg is a message's attachment_id: NULL for a text.
func attachmentArg(m *parley.Message) *string {
	if m.Attachment == nil {
		return nil
	}
	return &m.Attachment.ID
}

// sendChecks reads what the checks of sends need, one row each, in order.
func sendChecks(w *writeTx, sends []*sendOp) ([]sendCheck, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if n := len(sends); n == 1 {
		nm := sends[0].nm
		rows, err = w.query(bg, qSendCheck, nm.ConversationID, nm.SenderID, nm.ClientID, nm.AttachmentID)
	} else {
		convs, senders, clients, atts := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for j, so := range sends {
			nm := so.nm
			convs[j], senders[j], clients[j], atts[j] = nm.ConversationID, nm.SenderID, nm.ClientID, nm.AttachmentID
		}
		q := qBulkSendCheck
		if w.noProbe {
			q = qBulkSendCheckNew
		} else {
			w.probes++
		}
		rows, err = w.query(bg, q, textArray(convs), textArray(senders), textArray(clients), textArray(atts))
	}
	if err != nil {
		return nil, err
	}
	// Each row is scanned into its place in checks (no copy of it to
	// escape per row), and hidden is NULL when nobody blocked the sender
	// (an empty array to decode): with both, one allocation per row (the
	// name) instead of three.
	checks := make([]sendCheck, 0, len(sends))
	dest := make([]any, 13)
	for rows.Next() {
		checks = append(checks, sendCheck{})
		c := &checks[len(checks)-1]
		dest[0], dest[1], dest[2], dest[3], dest[4], dest[5], dest[6] = &c.member, &c.last, &c.name, &c.oldID, &c.oldConv, &c.owned, &c.attType
		dest[7], dest[8], dest[9], dest[10], dest[11], dest[12] = &c.attSize, &c.attWidth, &c.attHeight, &c.attName, &c.refused, &c.hidden
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(checks) != len(sends) {
		return nil, internalf("send check: %d rows for %d sends", len(checks), len(sends))
	}
	return checks, nil
}
