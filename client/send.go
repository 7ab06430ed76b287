package client

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	_ "modernc.org/sqlite" // the durable outbox's driver

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// SendStatus is where an outgoing message is.
type SendStatus int

const (
	// Sending: in the outbox, not yet acknowledged by the server.
	Sending SendStatus = iota
	// Sent: stored by the server (Message.Stored has its id and seq).
	Sent
	// Failed: the server refused it (Message.Err says why) or the client
	// closed with it in a memory outbox. Resend retries it.
	Failed
)

func (s SendStatus) String() string {
	return enumString(int(s), "SendStatus", "sending", "sent", "failed")
}

// Message is an outgoing message as the app sees it before and after the
// server stores it: Send returns it at once with status Sending, and it
// moves to Sent or Failed (a MessageStatusChanged event says when). Its
// methods are safe for concurrent use.
type Message struct {
	clientID       string
	conversationID string
	typ            parley.MessageType
	text           string
	createdAt      time.Time
	image          []byte // the upload's bytes until it is Sent (SendImage, SendFile)
	fileName       string // a file's name (SendFile)
	replyTo        string // the id of the message this one replies to (Reply)
	// An edit (Edit, EditQueued) names its message by id or by the
	// client id it was sent with; at most one is set, and neither for a
	// send.
	editOf, editOfClient string
	// owner is the user the message was queued as (outbox.user then;
	// guarded by the outbox's mu): a client sends only its own user's.
	owner string

	mu           sync.Mutex
	attachmentID string // set by the upload (guarded by mu: the pump writes it)
	status       SendStatus
	stored       parley.Message
	err          error
	done         chan struct{} // closed when the status leaves Sending
}

// ClientID is the message's client-made id (a UUIDv7); the server dedupes
// on it, so a message is stored once however often it is sent.
func (m *Message) ClientID() string { return m.clientID }

// ConversationID is the conversation the message goes to.
func (m *Message) ConversationID() string { return m.conversationID }

// Text is the message text (an image's caption); for an edit, the new
// text.
func (m *Message) Text() string { return m.text }

// ReplyTo is the id of the message this one replies to ("" for none).
func (m *Message) ReplyTo() string { return m.replyTo }

// IsEdit reports whether this outbox entry is an edit (Edit, EditQueued)
// rather than a new message. Once Sent, Stored is the edited message.
func (m *Message) IsEdit() bool { return m.editOf != "" || m.editOfClient != "" }

// EditOf returns the message an edit changes: its id, or (for
// EditQueued) the client id of the message as it was sent. Both are ""
// for a send.
func (m *Message) EditOf() (messageID, messageClientID string) { return m.editOf, m.editOfClient }

// Type is the message type: parley.Text, parley.Image or parley.File.
func (m *Message) Type() parley.MessageType { return m.typ }

// Image returns the bytes of an image or file message as the app gave
// them, for a local preview while it is Sending (nil for text, and once Sent: then
// Stored().Attachment has the server's URLs). Do not modify them.
func (m *Message) Image() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status == Sent {
		return nil
	}
	return m.image
}

func (m *Message) attachment() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attachmentID
}

// CreatedAt is when Send was called (the client's clock).
func (m *Message) CreatedAt() time.Time { return m.createdAt }

// Status returns the message's status.
func (m *Message) Status() SendStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Err returns why the message failed (nil unless Failed).
func (m *Message) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Stored returns the message as the server stored it (id, seq, timestamp)
// once Sent; before that, an optimistic copy with only the client's fields
// (for an edit: the edited message's id or client id and the new text).
func (m *Message) Stored() parley.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status == Sent {
		return m.stored
	}
	if m.IsEdit() {
		// The message being edited, as far as the edit knows it.
		return parley.Message{ID: m.editOf, ConversationID: m.conversationID, ClientID: m.editOfClient, Type: m.typ, Text: m.text}
	}
	return parley.Message{ConversationID: m.conversationID, ClientID: m.clientID, Type: m.typ, Text: m.text, CreatedAt: m.createdAt}
}

// Wait blocks until the message is Sent or Failed, or ctx ends, and
// returns the stored message or the failure.
func (m *Message) Wait(ctx context.Context) (parley.Message, error) {
	for {
		m.mu.Lock()
		st, done, stored, err := m.status, m.done, m.stored, m.err
		m.mu.Unlock()
		switch st {
		case Sent:
			return stored, nil
		case Failed:
			return parley.Message{}, err
		}
		select {
		case <-done:
		case <-ctx.Done():
			return parley.Message{}, ctx.Err()
		}
	}
}

// settle moves the message out of Sending; false if it already was.
func (m *Message) settle(stored parley.Message, err error) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.status != Sending {
		return false
	}
	if err != nil {
		m.status, m.err = Failed, err
	} else {
		m.status, m.stored, m.image = Sent, stored, nil
	}
	close(m.done)
	return true
}

// Send queues a text message for conversationID and returns at once with
// the optimistic message (status Sending). The outbox sends messages one
// at a time, in the order Send was called, while connected, and keeps them
// across reconnects (and restarts, with WithOutboxFile); the client id
// makes the server store each exactly once. Send fails at once with
// EINVALID for bad text, ErrDisconnected (code EUNAVAILABLE) when the
// client is Disconnected (before Connect, after giving up), ErrOutboxFull
// (code EUNAVAILABLE) when the outbox is full, ErrRemoved (code
// ENOTFOUND) when this user was removed from the conversation or left it
// (IsRemoved), ErrClosed after Close.
// ctx bounds only the write to a durable outbox. Sending also stops this
// client's typing indicator in that conversation.
func (c *Client) Send(ctx context.Context, conversationID, text string) (*Message, error) {
	if conversationID == "" {
		return nil, parley.Errorf(parley.EINVALID, "conversation id is required")
	}
	if err := checkText(text, true); err != nil {
		return nil, err
	}
	return c.queue(ctx, &Message{conversationID: conversationID, typ: parley.Text, text: text})
}

// Reply is Send for a message that replies to the message replyToID of
// the same conversation: the stored message carries a quote of it
// (parley.Message.ReplyTo). The server refuses it (Failed, EINVALID) when
// replyToID names no message of the conversation or a deleted one.
func (c *Client) Reply(ctx context.Context, conversationID, replyToID, text string) (*Message, error) {
	if replyToID == "" {
		return nil, parley.Errorf(parley.EINVALID, "the id of the message replied to is required")
	}
	if err := checkText(text, true); err != nil {
		return nil, err
	}
	if conversationID == "" {
		return nil, parley.Errorf(parley.EINVALID, "conversation id is required")
	}
	return c.queue(ctx, &Message{conversationID: conversationID, typ: parley.Text, text: text, replyTo: replyToID})
}

// Edit queues an edit of this user's stored message messageID: its new
// text (an image's caption, which may be empty; parley.MessageType says
// which, and the server checks). Edits wait in the outbox with the sends
// and go out in the order they were made, across reconnects and (with
// WithOutboxFile) restarts; each has its own client id, so the server
// applies it once however often it is sent. The returned entry moves to
// Sent (Stored is the edited message) or Failed (EFORBIDDEN for another's
// message, EINVALID for a deleted one). It fails at once as Send does.
func (c *Client) Edit(ctx context.Context, conversationID, messageID, text string) (*Message, error) {
	if messageID == "" {
		return nil, parley.Errorf(parley.EINVALID, "message id is required")
	}
	return c.edit(ctx, &Message{conversationID: conversationID, typ: parley.Text, text: text, editOf: messageID})
}

// EditQueued queues an edit of m, a message this client sent (from Send,
// Reply or Pending), whether or not the server has stored it yet: the
// edit names it by its client id and the outbox sends it after m. Use it
// to edit a message still Sending (the server stores the message, then
// applies the edit); once m is Sent, Edit with m.Stored().ID is the same.
func (c *Client) EditQueued(ctx context.Context, m *Message, text string) (*Message, error) {
	if m == nil || m.IsEdit() {
		return nil, parley.Errorf(parley.EINVALID, "only a message can be edited")
	}
	return c.edit(ctx, &Message{conversationID: m.conversationID, typ: m.typ, text: text, editOfClient: m.clientID})
}

func (c *Client) edit(ctx context.Context, m *Message) (*Message, error) {
	if m.conversationID == "" {
		return nil, parley.Errorf(parley.EINVALID, "conversation id is required")
	}
	// A text's rule; a caption may be empty, which the server tells apart.
	if err := checkText(m.text, false); err != nil {
		return nil, err
	}
	return c.queue(ctx, m)
}

// checkText is a text's rule (required: not blank) before it is queued.
func checkText(text string, required bool) error {
	if !utf8.ValidString(text) {
		return parley.Errorf(parley.EINVALID, "text is not valid UTF-8")
	}
	if required && strings.TrimSpace(text) == "" {
		return parley.Errorf(parley.EINVALID, "text is required")
	}
	if n := utf8.RuneCountInString(text); n > parley.MaxTextRunes {
		return parley.Errorf(parley.EINVALID, "text is %d characters; the most is %d", n, parley.MaxTextRunes)
	}
	return nil
}

// queue gives m a client id and puts it in the outbox (Send and SendImage
// fill in what the message holds). Sending stops this client's typing in
// the conversation.
func (c *Client) queue(ctx context.Context, m *Message) (*Message, error) {
	c.mu.Lock()
	err := c.refuseLocked()
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if c.IsRemoved(m.conversationID) {
		return nil, removedError()
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	m.clientID, m.createdAt, m.done = id.String(), time.Now(), make(chan struct{})
	if err := c.out.add(ctx, m); err != nil {
		return nil, err
	}
	c.state.typingSent(m.conversationID)
	return m, nil
}

// Resend queues a Failed message again with the same client id (so the
// server still stores it at most once). It fails with EINVALID for a
// message that is not Failed.
func (c *Client) Resend(ctx context.Context, m *Message) error {
	c.mu.Lock()
	err := c.refuseLocked()
	c.mu.Unlock()
	if err != nil {
		return err
	}
	m.mu.Lock()
	if m.status != Failed {
		st := m.status
		m.mu.Unlock()
		return parley.Errorf(parley.EINVALID, "only a failed message can be resent (this one is %s)", st)
	}
	m.status, m.err, m.done = Sending, nil, make(chan struct{})
	m.mu.Unlock()
	if err := c.out.add(ctx, m); err != nil {
		m.settle(parley.Message{}, err)
		return err
	}
	c.emit(MessageStatusChanged{Message: m, ClientID: m.clientID, ConversationID: m.conversationID, Status: Sending})
	return nil
}

// Flush waits until every message in the outbox when it is called
// (Pending) has left it: Sent, or Failed (a refusal; check each message,
// or watch MessageStatusChanged). Messages queued after the call are not
// waited for. It returns nil then, ctx's error if ctx ends first (the
// messages keep waiting: the client may be offline, or have given up,
// which Status says), or ErrClosed if the client closes first or is
// closed already (as every call after Close: a memory outbox's messages
// were failed by Close, and nil would read as "all sent"). Flush sends
// nothing itself; the outbox does, while connected.
func (c *Client) Flush(ctx context.Context) error {
	if c.life.Err() != nil {
		return ErrClosed
	}
	for _, m := range c.Pending() {
		m.mu.Lock()
		st, done := m.status, m.done
		m.mu.Unlock()
		if st != Sending {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.life.Done():
			return ErrClosed
		}
	}
	return nil
}

// Pending returns the messages waiting in the outbox, in sending order.
func (c *Client) Pending() []*Message {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return append([]*Message(nil), c.out.queue...)
}

// outbox holds messages until the server acknowledges them. One pump
// goroutine (owned by the Client) sends the head, waits for its reply and
// moves on, so order holds whatever the server does with concurrent
// requests. With a file, every message is written to SQLite before Send
// returns and deleted once it is Sent or Failed.
type outbox struct {
	c     *Client
	limit int
	db    *sql.DB
	lock  *os.File // holds the file's lock (lockOutbox) until close; nil without a file
	wake  chan struct{}

	mu    sync.Mutex
	queue []*Message
	byID  map[string]*Message
	// user is who the messages added now are queued as: the user the
	// last welcome named (adopt), before that WithOutboxUser's; "" while
	// neither is known.
	user string
	// closed is set by close: add refuses then (ErrClosed), as a Send
	// that passed the client's check before Close may reach add after
	// close emptied the queue, where nothing would send or fail it.
	closed bool
}

func newOutbox(c *Client, limit int, file, user string) (_ *outbox, err error) {
	o := &outbox{c: c, limit: limit, wake: make(chan struct{}, 1), byID: make(map[string]*Message), user: user}
	if file == "" {
		return o, nil
	}
	// Locked before SQLite opens it: a second client is refused before
	// it reads (and would send) what the first one holds.
	lock, err := lockOutbox(file)
	if err != nil {
		return nil, err
	}
	o.lock = lock
	defer func() {
		if err != nil {
			o.unlock() // o itself is dropped: the next New may lock
		}
	}()
	dsn := "file:" + (&url.URL{Path: file}).EscapedPath() + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("client: outbox file: %w", err)
	}
	db.SetMaxOpenConns(1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS outbox (
		seq INTEGER PRIMARY KEY AUTOINCREMENT,
		client_id TEXT NOT NULL UNIQUE,
		conversation_id TEXT NOT NULL,
		type TEXT NOT NULL,
		text TEXT NOT NULL,
		attachment_id TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		image BLOB,
		reply_to TEXT NOT NULL DEFAULT '',
		edit_of TEXT NOT NULL DEFAULT '',
		edit_of_client TEXT NOT NULL DEFAULT '',
		file_name TEXT NOT NULL DEFAULT '',
		user_id TEXT NOT NULL DEFAULT '')`); err != nil {
		db.Close()
		return nil, fmt.Errorf("client: outbox file %s: %w", file, err)
	}
	// Files from before images, replies, edits and files: add the
	// columns (an error says one is there).
	for _, col := range []string{`image BLOB`, `reply_to TEXT NOT NULL DEFAULT ''`,
		`edit_of TEXT NOT NULL DEFAULT ''`, `edit_of_client TEXT NOT NULL DEFAULT ''`, `file_name TEXT NOT NULL DEFAULT ''`,
		`user_id TEXT NOT NULL DEFAULT ''`} {
		_, _ = db.ExecContext(ctx, `ALTER TABLE outbox ADD COLUMN `+col)
	}
	rows, err := db.QueryContext(ctx, `SELECT client_id, conversation_id, type, text, attachment_id, created_at, image,
		reply_to, edit_of, edit_of_client, file_name, user_id FROM outbox ORDER BY seq`)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("client: outbox file %s: %w", file, err)
	}
	defer rows.Close()
	for rows.Next() {
		m := &Message{done: make(chan struct{})}
		var typ string
		var at int64
		if err := rows.Scan(&m.clientID, &m.conversationID, &typ, &m.text, &m.attachmentID, &at, &m.image,
			&m.replyTo, &m.editOf, &m.editOfClient, &m.fileName, &m.owner); err != nil {
			db.Close()
			return nil, fmt.Errorf("client: outbox file %s: %w", file, err)
		}
		m.typ, m.createdAt = parley.MessageType(typ), time.UnixMicro(at)
		o.queue = append(o.queue, m)
		o.byID[m.clientID] = m
	}
	if err := rows.Err(); err != nil {
		db.Close()
		return nil, fmt.Errorf("client: outbox file %s: %w", file, err)
	}
	o.db = db
	return o, nil
}

func (o *outbox) add(ctx context.Context, m *Message) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	if len(o.queue) >= o.limit {
		return coded(ErrOutboxFull, &parley.Error{Code: parley.EUNAVAILABLE, Message: fmt.Sprintf("the outbox is full (%d messages wait to be sent)", o.limit)})
	}
	if o.db != nil {
		// Written before Send returns, under o.mu so file order is send
		// order.
		_, err := o.db.ExecContext(ctx, `INSERT OR REPLACE INTO outbox (client_id, conversation_id, type, text, attachment_id, created_at, image,
			reply_to, edit_of, edit_of_client, file_name, user_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.clientID, m.conversationID, string(m.typ), m.text, m.attachment(), m.createdAt.UnixMicro(), m.image,
			m.replyTo, m.editOf, m.editOfClient, m.fileName, o.user)
		if err != nil {
			return fmt.Errorf("client: outbox file: %w", err)
		}
	}
	m.owner = o.user
	o.queue = append(o.queue, m)
	o.byID[m.clientID] = m
	o.signal()
	return nil
}

// adopt is told the user the server welcomed (before the outbox sends on
// that connection): from now on messages are queued as that user's, the
// messages queued with no user known become theirs, and those queued as
// another user's are taken out of the queue, never sent by this client: a
// file keeps them for that user's next client, a memory outbox fails them
// (ErrOutboxOtherUser). Called from the connecting goroutine, outside the
// client's lock.
func (o *outbox) adopt(user string) {
	o.mu.Lock()
	o.user = user
	var others []*Message
	keep := o.queue[:0]
	for _, m := range o.queue {
		switch m.owner {
		case "":
			m.owner = user
		case user:
		default:
			others = append(others, m)
			delete(o.byID, m.clientID)
			continue
		}
		keep = append(keep, m)
	}
	clear(o.queue[len(keep):])
	o.queue = keep
	if o.db != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := o.db.ExecContext(ctx, `UPDATE outbox SET user_id = ? WHERE user_id = ''`, user); err != nil {
			// The rows stay anyone's: the next welcome adopts them.
			o.c.log.Warn("client: outbox file update failed", "err", err)
		}
		cancel()
	}
	db := o.db
	o.mu.Unlock()
	if len(others) == 0 {
		return
	}
	if db != nil {
		o.c.log.Warn("client: the outbox file holds messages another user queued: left in it, unsent, for that user's client",
			"messages", len(others), "user", others[0].owner)
		return
	}
	for _, m := range others {
		// Not finish: it is out of the queue already.
		err := fmt.Errorf("%w: queued as %s, and the server welcomed %s", ErrOutboxOtherUser, m.owner, user)
		if m.settle(parley.Message{}, err) {
			o.c.emit(MessageStatusChanged{Message: m, ClientID: m.clientID, ConversationID: m.conversationID, Err: err, Status: Failed})
		}
	}
}

// queued reports whether m is in the queue: adopt did not take it out.
func (o *outbox) queued(m *Message) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byID[m.clientID] == m
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// finish settles m, removes it from the outbox and its file, and tells the
// app. It is called from the pump (the reply) and the reader (the
// message's own newMessage event, which may come first).
func (o *outbox) finish(m *Message, stored parley.Message, err error) {
	// Settled and removed under o.mu, as one step: once Wait returns, the
	// message has left Pending, and a Resend (which adds under o.mu)
	// cannot be removed by the finish of the try before it.
	o.mu.Lock()
	if !m.settle(stored, err) {
		o.mu.Unlock()
		return
	}
	for i, q := range o.queue {
		if q == m {
			o.queue = append(o.queue[:i:i], o.queue[i+1:]...)
			break
		}
	}
	delete(o.byID, m.clientID)
	if o.db != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, derr := o.db.ExecContext(ctx, `DELETE FROM outbox WHERE client_id = ?`, m.clientID); derr != nil {
			// The server dedupes a resend after restart, so a stale row
			// costs a round trip, not a duplicate.
			o.c.log.Warn("client: outbox file delete failed", "err", derr)
		}
		cancel()
	}
	o.mu.Unlock()
	ev := MessageStatusChanged{Message: m, ClientID: m.clientID, ConversationID: m.conversationID, Stored: stored, Err: err, Status: Sent}
	if err != nil {
		ev.Status = Failed
	}
	o.c.emit(ev)
	o.signal()
}

// onEvent settles an outgoing message whose newMessage arrived before its
// reply (the reply may be lost with the connection).
func (o *outbox) onEvent(ev Event) {
	nm, ok := ev.(NewMessage)
	if !ok || nm.Message.ClientID == "" {
		return
	}
	o.mu.Lock()
	m := o.byID[nm.Message.ClientID]
	o.mu.Unlock()
	if m != nil && !m.IsEdit() && m.conversationID == nm.Message.ConversationID && nm.Message.SenderID == o.c.User().ID {
		o.finish(m, nm.Message, nil)
	}
}

// pump is the outbox goroutine (owned by the Client; ctx ends with Close).
// It keeps up to sendWindow sends in flight on the connection: the server
// runs a connection's requests one at a time in order, so pipelining keeps
// the order while a round trip no longer limits throughput to one message
// per commit. On a lost connection every message without a reply is sent
// again, in order, on the next one (the client id makes that harmless).
func (o *outbox) pump(ctx context.Context) {
	defer o.c.wg.Done()
	window := o.c.opts.sendWindow
	for {
		if !o.waitConn(ctx) {
			return
		}
		if !o.serve(ctx, window) {
			return
		}
	}
}

type inflight struct {
	m  *Message
	ch chan reply
}

// serve sends from the outbox on one connection until it is lost; false
// when ctx ended.
//
// Every request goes on the connection current when serve began (cn),
// or fails: the welcome of the next one may have named another user and
// taken messages out of the queue (adopt), and a message taken from it
// before then (one whose upload was under way) must not be sent there.
func (o *outbox) serve(ctx context.Context, window int) bool {
	o.c.mu.Lock()
	cn := o.c.conn
	o.c.mu.Unlock()
	if cn == nil {
		return true // lost already: wait for the next one
	}
	var flying []inflight
	sent := make(map[*Message]bool)
	for {
		// Fill the window with the oldest messages not yet in flight.
		for len(flying) < window {
			m := o.next(sent)
			if m == nil {
				break
			}
			if m.typ.HasAttachment() && m.attachment() == "" && !m.IsEdit() {
				// Upload first; later messages wait behind it, so order
				// holds. A failed upload fails the message; a lost link
				// retries it (the client id is fixed, so still one
				// message).
				if ok, alive := o.upload(ctx, cn, m); !alive {
					return false
				} else if !ok {
					return true
				}
				// No attachment: the upload failed the message. Not its
				// status: Resend may already have made it Sending again,
				// and then the next round uploads it again.
				if m.attachment() == "" {
					continue
				}
			}
			op, req := m.request()
			ch, _, err := o.c.startRequestOn(ctx, cn, op, req)
			if ctx.Err() != nil {
				return false
			}
			if err != nil {
				return true // connection lost: start over on the next one
			}
			flying = append(flying, inflight{m, ch})
			sent[m] = true
		}
		if len(flying) == 0 {
			o.c.mu.Lock()
			lost := o.c.lost
			o.c.mu.Unlock()
			select {
			case <-o.wake:
				continue
			case <-lost:
				return true
			case <-ctx.Done():
				return false
			}
		}
		var r reply
		select {
		case r = <-flying[0].ch:
		case <-ctx.Done():
			return false
		}
		m := flying[0].m
		flying = flying[1:]
		// Answered: no longer in flight on this connection. A message that
		// failed for good may come back through Resend and must be sent
		// again, not skipped as already sent.
		delete(sent, m)
		var perr *parley.Error
		switch {
		case r.err == nil:
			var stored parley.Message
			if jerr := json.Unmarshal(r.data, &stored); jerr != nil {
				o.finish(m, parley.Message{}, fmt.Errorf("client: bad send reply: %w", jerr))
				continue
			}
			o.finish(m, stored, nil)
		case errors.Is(r.err, errConnLost):
			return true
		case errors.As(r.err, &perr) && (perr.Code == parley.ERATELIMITED || perr.Code == parley.EUNAVAILABLE || perr.Code == parley.EINTERNAL):
			// Transient: wait, then send this message and everything
			// after it again, in order, one at a time until the
			// connection changes (see the package doc on ordering).
			d := perr.RetryAfter
			if d <= 0 {
				d = time.Second
			}
			// Replies come in order; drain the ones in flight before
			// resending. A server that refuses every later send on the
			// connection until the retry time (docs/sdk.md) answers
			// them all rate_limited; one that stored a later message
			// anyway has put it before m: settle it (it is stored, the
			// resend would only return it) and say so.
			for _, f := range flying {
				fr := <-f.ch
				if fr.err != nil {
					continue
				}
				var stored parley.Message
				if json.Unmarshal(fr.data, &stored) == nil {
					o.c.log.Warn("client: a message was stored before an earlier one the server rate-limited; use WithSendWindow(1) with this server",
						"client_id", f.m.clientID, "before", m.clientID)
					o.finish(f.m, stored, nil)
				}
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false
			}
			flying, sent, window = nil, make(map[*Message]bool), 1
		default:
			o.finish(m, parley.Message{}, r.err)
		}
	}
}

// request is the op that sends m: a send, or an edit.
func (m *Message) request() (string, any) {
	if m.IsEdit() {
		return protocol.OpEdit, protocol.Edit{ConversationID: m.conversationID, MessageID: m.editOf,
			MessageClientID: m.editOfClient, ClientID: m.clientID, Text: m.text}
	}
	return protocol.OpSend, protocol.Send{ConversationID: m.conversationID, ClientID: m.clientID, Type: m.typ,
		Text: m.text, AttachmentID: m.attachment(), ReplyTo: m.replyTo}
}

// next returns the oldest message still Sending and not in sent.
func (o *outbox) next(sent map[*Message]bool) *Message {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range o.queue {
		if !sent[m] && m.Status() == Sending {
			return m
		}
	}
	return nil
}

// drop removes a message already settled (by its event) from the queue.
func (o *outbox) drop(m *Message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, q := range o.queue {
		if q == m {
			o.queue = append(o.queue[:i:i], o.queue[i+1:]...)
			return
		}
	}
}

// waitConn waits for a live connection; false when ctx ends.
func (o *outbox) waitConn(ctx context.Context) bool {
	o.c.mu.Lock()
	up := o.c.connected
	o.c.mu.Unlock()
	select {
	case <-up:
		return true
	case <-ctx.Done():
		return false
	}
}

// unlock releases the outbox file's lock (closing the lock file drops
// it).
func (o *outbox) unlock() {
	if o.lock != nil {
		o.lock.Close()
		o.lock = nil
	}
}

// close fails what waits in a memory outbox (a file keeps it) and closes
// the file, then releases its lock.
func (o *outbox) close() error {
	o.mu.Lock()
	o.closed = true
	queue := o.queue
	db := o.db
	if db == nil {
		o.queue = nil
		o.byID = make(map[string]*Message)
	}
	o.mu.Unlock()
	if db != nil {
		// The lock goes after the file is closed: the next client may
		// open it then.
		err := db.Close()
		o.unlock()
		return err
	}
	for _, m := range queue {
		if m.settle(parley.Message{}, ErrClosed) {
			o.c.emit(MessageStatusChanged{Message: m, ClientID: m.clientID, ConversationID: m.conversationID, Status: Failed, Err: ErrClosed})
		}
	}
	return nil
}
