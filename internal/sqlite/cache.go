package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strings"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlstore"
)

// What the batcher keeps in memory, and the rows deferred ops leave for
// the end of the batch.

// cache holds what only the batcher changes, so that a send can be decided
// without reading it again: each conversation's current members and
// last_seq, and users' names. Entries are loaded on first use (inside the
// batch transaction, so they see what the batch wrote so far) and updated
// by the ops that change them. Any rollback (an op's or a batch's) drops
// the whole cache, so it never holds what was rolled back. Only the batcher
// goroutine touches it.
type cache struct {
	members map[string]*memberSet // conversation id -> current members
	lastSeq map[string]int64      // conversation id -> last_seq
	names   map[string]string     // user id -> name
}

// maxCache bounds each map of the cache (entries are conversations or
// users); trim empties a map that grew past it.
const maxCache = 10000

func (c *cache) reset() {
	c.members = map[string]*memberSet{}
	c.lastSeq = map[string]int64{}
	c.names = map[string]string{}
}

// trim runs between batches, when nothing depends on the cache.
func (c *cache) trim() {
	if len(c.members) > maxCache {
		clear(c.members)
	}
	if len(c.lastSeq) > maxCache {
		clear(c.lastSeq)
	}
	if len(c.names) > maxCache {
		clear(c.names)
	}
}

// memberSet is a conversation's current members. ids is never changed in
// place (a change drops the entry), so events may copy from it.
type memberSet struct {
	ids []string
	set map[string]struct{} // for large groups; nil for small ones
	// gate is what blocks and declined requests refuse or hide (a block
	// or an answer to a request drops the entry).
	gate sqlstore.SendGate
}

func newMemberSet(ids []string) *memberSet {
	ms := &memberSet{ids: ids}
	if len(ids) > 16 {
		ms.set = make(map[string]struct{}, len(ids))
		for _, id := range ids {
			ms.set[id] = struct{}{}
		}
	}
	return ms
}

func (ms *memberSet) has(id string) bool {
	if ms.set != nil {
		_, ok := ms.set[id]
		return ok
	}
	for _, x := range ms.ids {
		if x == id {
			return true
		}
	}
	return false
}

// members returns the current members of a conversation (none for a
// conversation that does not exist).
func (w *writeTx) members(conversationID string) (*memberSet, error) {
	if ms, ok := w.b.cache.members[conversationID]; ok {
		return ms, nil
	}
	ids, err := sqlstore.MemberIDs(context.Background(), w, conversationID)
	if err != nil {
		return nil, err
	}
	ms := newMemberSet(ids)
	if ms.gate, err = sqlstore.ReadSendGate(context.Background(), w, conversationID); err != nil {
		return nil, err
	}
	w.b.cache.members[conversationID] = ms
	return ms, nil
}

// Audience implements sqlstore.Tx from the cache: the slice is shared
// with it.
func (w *writeTx) Audience(conversationID string) ([]string, error) {
	ms, err := w.members(conversationID)
	if err != nil {
		return nil, err
	}
	return ms.ids, nil
}

// MembersChanged implements sqlstore.Tx: the conversation's entry is
// read again when next needed.
func (w *writeTx) MembersChanged(conversationID string) { delete(w.b.cache.members, conversationID) }

// UserRenamed implements sqlstore.Tx.
func (w *writeTx) UserRenamed(userID string) { delete(w.b.cache.names, userID) }

// lastSeq returns a conversation's last_seq, counting the batch's sends.
func (w *writeTx) lastSeq(conversationID string) (int64, error) {
	if seq, ok := w.b.cache.lastSeq[conversationID]; ok {
		return seq, nil
	}
	var seq int64
	if err := w.queryRow(sqlstore.QLastSeq, conversationID).Scan(&seq); err != nil {
		return 0, notFound(err)
	}
	w.b.cache.lastSeq[conversationID] = seq
	return seq, nil
}

// UserName implements sqlstore.Tx from the cache.
func (w *writeTx) UserName(userID string) (string, error) {
	if name, ok := w.b.cache.names[userID]; ok {
		return name, nil
	}
	var name string
	if err := w.queryRow(qUserName, userID).Scan(&name); err != nil {
		return "", notFound(err)
	}
	w.b.cache.names[userID] = name
	return name, nil
}

// qUserName reads a user's name for the cache.
const qUserName = `SELECT name FROM users WHERE id = $1`

// notFound maps "no rows" to parley.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return parley.ErrNotFound
	}
	return err
}

// pending holds the rows of the batch's deferred sends, not yet written.
// Rows are appended in position order.
type pending struct {
	msgs   []any // msgArgs values per message
	events []any // eventArgs values per event
	// bumps: conversation id -> its newest message in the batch.
	bumps map[string]bump
	// reads: (conversation, sender) -> the sender's new read position.
	reads map[[2]string]int64
	// sent: (sender, client id) -> the message a send of this batch
	// stored, for idempotency before the row is written.
	sent map[[2]string]*parley.Message
	// mentions: mentionArgs values per mentions row (mentions.go).
	mentions []any
	// scratch holds the arguments of one statement at a time (the
	// batch's probe, its conversations' and read positions' updates).
	scratch []any
}

// reset empties p and keeps its buffers. The batcher's one pending
// (batcher.pend) is reused by every batch, so a batch of n sends does
// not grow its slices from nothing and allocate its maps again: the
// appends of addSend were ~3% of the pinned server's CPU in `parley bench
// write` (docs/benchmarks.md, h-sqlw). The values are cleared so that
// the buffers keep no message alive. Bounded by maxBatch sends' rows
// (and the rows of a batch's mentions).
func (p *pending) reset() {
	for _, s := range []*[]any{&p.msgs, &p.events, &p.mentions, &p.scratch} {
		clear(*s)
		*s = (*s)[:0]
	}
	clear(p.bumps)
	clear(p.reads)
	clear(p.sent)
}

type bump struct{ seq, at int64 }

func (p *pending) empty() bool { return len(p.msgs) == 0 }

// Column counts of the multi-row statements' rows.
const (
	msgArgs   = 11
	eventArgs = 6 // type and data are the statement's (multiSQL)
	bumpArgs  = 3
	readArgs  = 3
)

// addSend appends what a send writes: the message, its newMessage event,
// the conversation's last_seq and the sender's read position. It cannot
// fail: the op has checked everything before. e is a newMessage event
// with no data (multiSQL writes its type and data as literals).
func (w *writeTx) addSend(m *parley.Message, attachmentID any, e *parley.Event) {
	p := w.pending
	if p.bumps == nil {
		p.bumps = map[string]bump{}
		p.reads = map[[2]string]int64{}
		p.sent = map[[2]string]*parley.Message{}
	}
	at := toMicros(m.CreatedAt)
	// The driver's types (raw.go): int64, string or nil, not a *string.
	var reply, mentions any
	if r := sqlstore.ReplyArg(m); r != nil {
		reply = *r
	}
	if ms := sqlstore.MentionsArg(m); ms != nil {
		mentions = *ms
	}
	// A string or int64 in an any is an allocation: the values the
	// message's row and its event's share (the event of a send has the
	// message's conversation, sender and time) are boxed once.
	id, conv, sender, atv := any(m.ID), any(m.ConversationID), any(m.SenderID), any(at)
	evConv, evUser, evAt := conv, sender, atv
	if e.ConversationID != m.ConversationID {
		evConv = e.ConversationID
	}
	if e.UserID != m.SenderID {
		evUser = e.UserID
	}
	if eat := toMicros(e.At); eat != at {
		evAt = eat
	}
	p.msgs = append(p.msgs, id, conv, m.Seq, sender, m.ClientID, string(m.Type), m.Text, attachmentID, atv, reply, mentions)
	p.events = append(p.events, e.Pos, evConv, evUser, id, evAt, int64(e.Shard))
	p.bumps[m.ConversationID] = bump{m.Seq, at}
	p.reads[[2]string{m.ConversationID, m.SenderID}] = m.Seq
	p.sent[[2]string{m.SenderID, m.ClientID}] = m
	p.addMentions(m, at)
	w.b.cache.lastSeq[m.ConversationID] = m.Seq
}

// flush writes the pending rows with multi-row statements: messages
// first (events refer to them), then events, conversations, read
// positions. Pending is empty afterwards, written or not. An error wraps
// errFlush.
func (w *writeTx) flush() error {
	p := w.pending
	if p.empty() {
		return nil
	}
	defer func() {
		// The sends' rows are in the table now (or the batch is failing):
		// the probe's answer for their pairs is "stored".
		if w.known != nil {
			for k := range p.sent {
				w.known[k] = true
			}
		}
		p.reset()
	}()
	if err := w.execMulti(multiMessages, p.msgs, msgArgs); err != nil {
		return fmt.Errorf("%w: messages: %w", errFlush, err)
	}
	w.b.ix.waiting += len(p.msgs) / msgArgs // for the search indexer
	w.b.ix.behind.Store(true)
	if err := w.flushMentions(); err != nil {
		return err
	}
	if err := w.execMulti(multiEvents, p.events, eventArgs); err != nil {
		return fmt.Errorf("%w: events: %w", errFlush, err)
	}
	args := p.scratch[:0]
	for id, b := range p.bumps {
		args = append(args, id, b.seq, b.at)
	}
	if err := w.execMulti(multiBumps, args, bumpArgs); err != nil {
		return fmt.Errorf("%w: conversations: %w", errFlush, err)
	}
	args = args[:0]
	for k, seq := range p.reads {
		args = append(args, k[0], k[1], seq)
	}
	p.scratch = args // the longer of the two, kept for the next flush
	if err := w.execMulti(multiReads, args, readArgs); err != nil {
		return fmt.Errorf("%w: read positions: %w", errFlush, err)
	}
	return nil
}

// The multi-row statements, by kind; each is prepared for 1, 2, 4, ...
// maxMultiRows rows, and a flush writes n rows as a sum of those sizes.
const (
	multiMessages = iota
	multiEvents
	multiBumps
	multiReads
	multiProbe
	nMulti
)

// maxMultiRows keeps a statement's variables (11 a message row) well under
// SQLite's limit of 32766.
const maxMultiRows = 256

// multiSQL returns the statement of a kind for rows rows. With
// orRollback a failing statement rolls back the whole transaction
// (INSERT OR ROLLBACK), which spares SQLite the statement journal it
// otherwise keeps to undo one multi-row statement alone: the batch is
// retried without deferral then anyway. Without it (the batch's second
// run, inside an op's savepoint) a failure undoes the statement alone.
func multiSQL(kind, rows int, orRollback bool) string {
	var head, row, tail string
	verb := ""
	if orRollback {
		verb = " OR ROLLBACK"
	}
	switch kind {
	case multiMessages:
		head, row = `INSERT`+verb+` INTO messages
			(id, conversation_id, seq, sender_id, client_id, type, text, attachment_id, created_at, reply_to_id, mentions) VALUES `, `(?,?,?,?,?,?,?,?,?,?,?)`
	case multiEvents:
		// Every deferred event is a send's newMessage with no data: its
		// type and data are literals, not bound (each text argument is
		// copied to C memory and back once a row).
		head, row = `INSERT`+verb+` INTO events (pos, conversation_id, type, actor_id, message_id, data, at, shard) VALUES `,
			`(?,?,'`+string(parley.EventNewMessage)+`',?,?,'`+sqlstore.EmptyEventData+`',?,?)`
	case multiBumps:
		// last_seq only grows: the batch's value is the newest.
		head, row = `UPDATE`+verb+` conversations SET last_seq = v.column2, last_activity_at = v.column3
			FROM (VALUES `, `(?,?,?)`
		tail = `) AS v WHERE conversations.id = v.column1`
	case multiReads:
		// As the core's qSetReadSeq: the read position never moves back. The
		// sender has written in the conversation (wrote: see the core's contactsWith).
		head, row = `UPDATE`+verb+` members SET read_seq = max(members.read_seq, v.column3), wrote = 1 FROM (VALUES `, `(?,?,?)`
		tail = `) AS v WHERE members.conversation_id = v.column1 AND members.user_id = v.column2
			AND members.left_pos IS NULL AND (members.read_seq < v.column3 OR members.wrote = 0)`
	case multiProbe:
		// Which (sender, client id) pairs are stored already.
		head, row = `SELECT m.sender_id, m.client_id FROM (VALUES `, `(?,?)`
		tail = `) AS v JOIN messages m ON m.sender_id = v.column1 AND m.client_id = v.column2`
	}
	return head + strings.Repeat(row+",", rows-1) + row + tail
}

// execMulti runs the kind's statement over args (cols values a row), in
// chunks of a power of two rows: on the driver's statements (raw.go), or,
// in the batch's second run (without OR ROLLBACK), on database/sql's.
func (w *writeTx) execMulti(kind int, args []any, cols int) error {
	for len(args) > 0 {
		n := min(len(args)/cols, maxMultiRows)
		k := bits.Len(uint(n)) - 1 // the largest power of two <= n
		rows := 1 << k
		if w.noDefer {
			st, err := w.b.multiStmt(kind, k, false)
			if err != nil {
				return err
			}
			if _, err := st.Exec(args[:rows*cols]...); err != nil {
				return err
			}
		} else if err := w.b.execRaw(kind, k, args[:rows*cols]); err != nil {
			return err
		}
		args = args[rows*cols:]
	}
	return nil
}

// multiStmt returns the kind's statement for 1<<k rows, preparing it on
// first use.
func (b *batcher) multiStmt(kind, k int, orRollback bool) (*sql.Stmt, error) {
	if !orRollback {
		// Rare (a batch's second run): no need to keep it.
		return b.stmt(multiSQL(kind, 1<<k, false))
	}
	if len(b.multi[kind]) <= k {
		b.multi[kind] = append(b.multi[kind], make([]*sql.Stmt, k+1-len(b.multi[kind]))...)
	}
	if st := b.multi[kind][k]; st != nil {
		return st, nil
	}
	st, err := b.conn.PrepareContext(context.Background(), multiSQL(kind, 1<<k, true))
	if err != nil {
		return nil, err
	}
	b.multi[kind][k] = st
	return st, nil
}

// probeArgs is the column count of a probe row (sender, client id).
const probeArgs = 2

// probe looks up, for the batch's sends, which (sender, client id) pairs
// the messages table holds already, with one query per chunk instead of
// one per send: a send whose pair is not among them is new (sends of the
// batch itself are in pending.sent). keys are the sends' pairs.
func (w *writeTx) probe(keys []any) error {
	w.known = map[[2]string]bool{}
	for len(keys) > 0 {
		n := min(len(keys)/probeArgs, maxMultiRows)
		k := bits.Len(uint(n)) - 1
		st, err := w.b.multiStmt(multiProbe, k, true)
		if err != nil {
			return err
		}
		rows := 1 << k
		if err := w.scanKnown(st, keys[:rows*probeArgs]); err != nil {
			return err
		}
		keys = keys[rows*probeArgs:]
	}
	w.probed = true
	if len(w.known) > 0 {
		// A resend: the next batches probe too (batch.go).
		w.b.probeFor = probeAfterResend
	}
	return nil
}

func (w *writeTx) scanKnown(st *sql.Stmt, args []any) error {
	rows, err := st.Query(args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return err
		}
		w.known[k] = true
	}
	return rows.Err()
}
