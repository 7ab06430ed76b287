package client

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// DefaultDeliveredInterval is how often, at most, a Client reports what it
// received (the delivered op): the first message after a quiet spell is
// reported at once, and those that follow within the interval are
// coalesced into one report at its end, for every conversation together.
// A busy client therefore sends at most one delivered op per second,
// however many messages and conversations it receives.
const DefaultDeliveredInterval = time.Second

// WithDeliveredInterval sets how often, at most, the client reports the
// messages it received (default DefaultDeliveredInterval). d < 0 turns
// delivery receipts off: others then see this user's messages as
// delivered only once the user reads them.
func WithDeliveredInterval(d time.Duration) Option {
	return func(o *options) { o.deliveredInterval = d }
}

// Delivered and Read extend SendStatus past Sent for a stored message:
// see Client.Receipt.
const (
	// Delivered: a client of every recipient has received the message.
	Delivered SendStatus = Failed + 1 + iota
	// Read: every recipient has read it.
	Read
)

// Receipt is what became of a stored message of this user's: how many of
// the conversation's other members (Recipients) have received it
// (Delivered) and read it (Read), derived from their positions (reading
// implies delivery, so Read <= Delivered). Status is Read when every
// recipient read it, Delivered when every recipient received it, else
// Sent. In a direct conversation Recipients is 1.
type Receipt struct {
	Status     SendStatus
	Recipients int
	Delivered  int
	Read       int
}

// Receipt returns m's receipt from the members' positions the client
// knows (the conversation list, kept current by messageDelivered and
// messageRead events). A conversation not in the list gives Sent with no
// recipients: call Conversations first.
func (c *Client) Receipt(m parley.Message) Receipt {
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	cv := s.convs[m.ConversationID]
	if cv == nil {
		return Receipt{Status: Sent}
	}
	return ReceiptOf(*cv, m)
}

// ReceiptOf is m's receipt from cv's member positions (cv as a
// Conversation or ConversationUpdated carries them).
func ReceiptOf(cv parley.Conversation, m parley.Message) Receipt {
	r := Receipt{Status: Sent}
	if m.Seq == 0 {
		return r
	}
	for _, mb := range cv.Members {
		if mb.UserID == m.SenderID {
			continue
		}
		r.Recipients++
		if max(mb.DeliveredSeq, mb.ReadSeq) >= m.Seq {
			r.Delivered++
		}
		if mb.ReadSeq >= m.Seq {
			r.Read++
		}
	}
	switch {
	case r.Recipients > 0 && r.Read == r.Recipients:
		r.Status = Read
	case r.Recipients > 0 && r.Delivered == r.Recipients:
		r.Status = Delivered
	}
	return r
}

// Receipt returns m's receipt (Client.Receipt).
func (v *ConversationView) Receipt(m parley.Message) Receipt { return v.c.Receipt(m) }

// SetProfile changes this user's display name and avatar (nil: unchanged;
// "": cleared). avatarID is the id of an image this user uploaded
// (Upload). Everyone who shares a conversation with the user gets a
// ProfileUpdated event. It returns the user as the server now has it.
func (c *Client) SetProfile(ctx context.Context, displayName, avatarID *string) (parley.User, error) {
	if displayName != nil {
		n, err := parley.NormalizeProfileName(*displayName)
		if err != nil {
			return parley.User{}, err
		}
		displayName = &n
	}
	var u parley.User
	err := c.call(ctx, protocol.OpSetProfile, protocol.SetProfile{DisplayName: displayName, AvatarID: avatarID}, &u, true)
	if err == nil {
		c.mu.Lock()
		if c.user.ID == u.ID {
			c.user = u
		}
		c.mu.Unlock()
	}
	return u, err
}

// SetAvatar uploads an image (at most MaxImageBytes; shrink a photo
// first with ShrinkImage) and makes it this user's avatar. The server
// checks it as any upload (docs/protocol.md, Images) and keeps its
// thumbnail for lists.
func (c *Client) SetAvatar(ctx context.Context, r io.Reader) (parley.User, error) {
	if c.life.Err() != nil { // closed: not even the upload goes out
		return parley.User{}, ErrClosed
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxImageBytes+1))
	if err != nil {
		return parley.User{}, fmt.Errorf("client: reading the image: %w", err)
	}
	switch {
	case len(data) == 0:
		return parley.User{}, parley.Errorf(parley.EINVALID, "the image is empty")
	case len(data) > MaxImageBytes:
		return parley.User{}, parley.Errorf(parley.ETOOLARGE, "the image is over %d bytes", MaxImageBytes)
	}
	token, err := c.opts.tokens(ctx)
	if err != nil {
		return parley.User{}, fmt.Errorf("client: token source: %w", err)
	}
	att, err := c.postImage(ctx, token, data)
	if err != nil {
		return parley.User{}, err
	}
	return c.SetProfile(ctx, nil, &att.ID)
}

// deliveredAcks coalesces what the client received into delivered ops:
// note records a conversation's highest seq; one report at a time is in
// flight, at most one per interval (DefaultDeliveredInterval). Its
// goroutines are the Client's (spawn): Close cancels and waits for them.
type deliveredAcks struct {
	c        *Client
	interval time.Duration

	mu      sync.Mutex
	pending map[string]int64 // conversation -> highest seq received, not yet reported
	busy    bool             // a report is in flight or its interval has not passed
}

func newDeliveredAcks(c *Client, interval time.Duration) *deliveredAcks {
	return &deliveredAcks{c: c, interval: interval, pending: make(map[string]int64)}
}

// note records that a message of seq in conversationID reached this
// client, and reports it at once unless a report was made within the
// interval (then at its end).
func (a *deliveredAcks) note(conversationID string, seq int64) {
	if a.interval < 0 || seq <= 0 {
		return
	}
	a.mu.Lock()
	if seq > a.pending[conversationID] && roomFor(a.pending, conversationID, a.c.opts.caps.convs) {
		a.pending[conversationID] = seq
	}
	start := !a.busy
	a.busy = true
	a.mu.Unlock()
	if start {
		a.c.spawn(a.flush)
	}
}

// flush reports what is pending (at most parley.MaxDeliveredMarks
// conversations per op), then waits out the interval before the next.
func (a *deliveredAcks) flush(ctx context.Context) {
	a.mu.Lock()
	marks := make([]parley.DeliveredMark, 0, min(len(a.pending), parley.MaxDeliveredMarks))
	for id, seq := range a.pending {
		if len(marks) == parley.MaxDeliveredMarks {
			break
		}
		marks = append(marks, parley.DeliveredMark{ConversationID: id, Seq: seq})
		delete(a.pending, id)
	}
	if len(marks) == 0 {
		a.busy = false
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	var r protocol.DeliveredResult
	if err := a.c.call(ctx, protocol.OpDelivered, protocol.Delivered{Conversations: marks}, &r, true); err != nil {
		// Positions, not counters: put them back for the next report
		// unless a newer one came meanwhile.
		a.mu.Lock()
		for _, m := range marks {
			if m.Seq > a.pending[m.ConversationID] {
				a.pending[m.ConversationID] = m.Seq
			}
		}
		a.mu.Unlock()
	}
	t := time.NewTimer(max(a.interval, time.Millisecond))
	defer t.Stop()
	select {
	case <-t.C:
		a.c.spawn(a.flush)
	case <-a.c.life.Done():
	}
}

// MessageDelivered says a client of UserID received ConversationID's
// messages up to DeliveredSeq. The Client raises the member's
// DeliveredSeq in its conversation list (Receipt counts from it).
type MessageDelivered struct {
	Pos            int64
	ConversationID string
	UserID         string
	UserName       string
	DeliveredSeq   int64
	At             time.Time
}

// ProfileUpdated says UserID changed their display name or avatar; one
// comes per conversation shared with them. The Client updates the member
// in that conversation of its list.
type ProfileUpdated struct {
	Pos            int64
	ConversationID string
	UserID         string
	Profile        parley.Profile
	At             time.Time
}

// applyReceiptLocked applies the receipt and profile events to the
// cached conversation list and reports whether it changed. Caller holds
// s.mu.
func (s *chatState) applyReceiptLocked(ev Event) bool {
	switch e := ev.(type) {
	case MessageDelivered:
		return s.memberLocked(e.ConversationID, e.UserID, func(m *parley.Member) {
			m.DeliveredSeq = max(m.DeliveredSeq, e.DeliveredSeq)
		})
	case MessageRead:
		// Reading implies delivery.
		return s.memberLocked(e.ConversationID, e.UserID, func(m *parley.Member) {
			m.DeliveredSeq = max(m.DeliveredSeq, e.ReadSeq)
		})
	case NewMessage:
		// Sending moves the sender's read (and so delivered) position.
		m := e.Message
		return s.memberLocked(m.ConversationID, m.SenderID, func(mb *parley.Member) {
			mb.ReadSeq = max(mb.ReadSeq, m.Seq)
			mb.DeliveredSeq = max(mb.DeliveredSeq, m.Seq)
		})
	case ProfileUpdated:
		return s.memberLocked(e.ConversationID, e.UserID, func(m *parley.Member) {
			m.DisplayName, m.AvatarID = e.Profile.DisplayName, e.Profile.AvatarID
		})
	}
	return false
}

// memberLocked runs f on userID's entry in a cached conversation.
func (s *chatState) memberLocked(conversationID, userID string, f func(*parley.Member)) bool {
	cv := s.convs[conversationID]
	if cv == nil {
		return false
	}
	for i := range cv.Members {
		if cv.Members[i].UserID == userID {
			f(&cv.Members[i])
			return true
		}
	}
	return false
}

// noteReceived reports, through the coalescing acks, that a message from
// someone else reached this client.
func (c *Client) noteReceived(ev Event) {
	if e, ok := ev.(NewMessage); ok && e.Message.SenderID != c.User().ID {
		c.acks.note(e.Message.ConversationID, e.Message.Seq)
	}
}

// noteListed reports the conversations of a fetched list whose newest
// message this user's delivered position does not cover (messages that
// came while no client of theirs was connected, beyond what a resume
// replays).
func (c *Client) noteListed(list []parley.Conversation) {
	me := c.User().ID
	for _, cv := range list {
		for _, m := range cv.Members {
			if m.UserID == me && max(m.DeliveredSeq, m.ReadSeq) < cv.LastSeq {
				c.acks.note(cv.ID, cv.LastSeq)
			}
		}
	}
}
