package server

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

func (s *service) send(ctx context.Context, u parley.User, ip string, d protocol.Send) (parley.Message, bool, error) {
	nm, err := s.checkSend(u, ip, d)
	if err != nil {
		return parley.Message{}, false, err
	}
	s.metrics.obs.storeSendRun.Observe(1)
	start := time.Now()
	m, evs, err := s.store.SendMessage(ctx, nm)
	s.metrics.obs.storeSendWait.Observe(sinceSeconds(start))
	if err != nil {
		return parley.Message{}, false, err
	}
	m, created := s.sent(ctx, m, evs)
	return m, created, nil
}

// checkSend makes the store's NewMessage of a send, validates it and takes
// it from the sender's rate limits: the part of a send before the store.
func (s *service) checkSend(u parley.User, ip string, d protocol.Send) (parley.NewMessage, error) {
	nm := parley.NewMessage{
		ConversationID: d.ConversationID, SenderID: u.ID, ClientID: d.ClientID,
		Type: d.Type, Text: d.Text, AttachmentID: d.AttachmentID, ReplyTo: d.ReplyTo,
	}
	if nm.Type == "" {
		nm.Type = parley.Text
	}
	// The store checks again; checking first keeps bad input from using
	// up the sender's rate limit.
	if err := nm.Validate(); err != nil {
		return nm, err
	}
	if err := s.limits.messages.check(u.ID); err != nil {
		return nm, err
	}
	if err := s.limits.ipMessages.check(ip); err != nil {
		return nm, err
	}
	return nm, nil
}

// sent finishes a stored send: it publishes the events and stops the
// sender's typing, and returns the message as the client sees it and
// whether it was new (not a resend).
func (s *service) sent(ctx context.Context, m parley.Message, evs []parley.Event) (parley.Message, bool) {
	created := len(evs) > 0
	if created {
		s.metrics.messages.Inc()
	}
	s.publishStored(ctx, evs)
	s.typers.stop(m.SenderID, m.ConversationID)
	return *messageURLs(&m), created
}

// sendMany stores sends checked by checkSend, in order: in one call to a
// store that takes runs (parley.MultiSender, so they can share a batch),
// else one after the other. done is called for each send, in order, as
// soon as it is stored (its events published) or failed.
//
// drop (nil: never) is the connection's conn.dropSends, set when it
// closes, which also ends ctx (conn.syncSendsCtx): as with
// parley.AsyncSender's drop, the sends the store has not started then
// are not run but answered parley.ErrSendDropped. Those are the ones not
// yet handed to the store, and the ones it answers context.Canceled: a
// MultiSender fails with ctx's error the sends no batch has taken yet,
// and the stores of this module do so for SendMessage too.
func (s *service) sendMany(ctx context.Context, nms []parley.NewMessage, drop *atomic.Bool, done func(i int, m parley.Message, err error)) {
	finish := s.sendRun(ctx, len(nms), drop, done)
	dropped := func() bool { return drop != nil && drop.Load() }
	if ms, ok := s.store.(parley.MultiSender); ok && len(nms) > 1 && !dropped() {
		ms.SendMessages(ctx, nms, finish)
		return
	}
	for i, nm := range nms {
		if dropped() {
			finish(i, parley.Message{}, nil, parley.ErrSendDropped)
			continue
		}
		m, evs, err := s.store.SendMessage(ctx, nm)
		finish(i, m, evs, err)
	}
}

// async reports whether sends can go through sendManyAsync: the store
// answers them from its batcher and publishes their events itself (so
// sent, run on the batcher, publishes nothing and does not block).
func (s *service) async() bool {
	_, ok := s.store.(parley.AsyncSender)
	return ok && s.storePublishes
}

// sendManyAsync is sendMany through the store's parley.AsyncSender: it
// returns once the sends are queued, and the store calls done on its
// batcher goroutine (see AsyncSender for its rules: it must be quick and
// must not block), with the store's results: done must finish each send
// with sendStored before answering it. Only when async reports true. A
// connection's run passes a done it made once (sendRun.stored), not a
// closure per run, and its conn.dropSends as drop: the sends the store
// has not taken into a batch when the connection closes are not run.
func (s *service) sendManyAsync(nms []parley.NewMessage, drop *atomic.Bool, done func(i int, m parley.Message, evs []parley.Event, err error)) {
	s.metrics.obs.storeSendRun.Observe(float64(len(nms)))
	s.store.(parley.AsyncSender).SendMessagesAsync(nms, drop, done)
}

// sendRun counts a run of n sends handed to the store and returns what
// finishes each of them (sendStored) before done: a send the store
// answers context.Canceled once drop is set is answered
// parley.ErrSendDropped (see sendMany).
func (s *service) sendRun(ctx context.Context, n int, drop *atomic.Bool, done func(i int, m parley.Message, err error)) func(int, parley.Message, []parley.Event, error) {
	s.metrics.obs.storeSendRun.Observe(float64(n))
	start := time.Now()
	return func(i int, m parley.Message, evs []parley.Event, err error) {
		if err != nil && drop != nil && drop.Load() && errors.Is(err, context.Canceled) {
			err = parley.ErrSendDropped
		}
		done(i, s.sendStored(ctx, start, m, evs, err), err)
	}
}

// sendStored finishes a send of a run handed to the store at start, which
// the store answered with m, evs and err: it counts the store's time and,
// when stored, finishes it (sent) and returns the message as the client
// sees it.
func (s *service) sendStored(ctx context.Context, start time.Time, m parley.Message, evs []parley.Event, err error) parley.Message {
	s.metrics.obs.storeSendWait.Observe(sinceSeconds(start))
	if err == nil {
		m, _ = s.sent(ctx, m, evs)
	}
	return m
}

// historyQuery checks a history request's cursors and limit and turns
// them into the store's query. A cursor given as 0 differs from one not
// given: after 0 is "from the start" (FromStart), and before 0 is refused,
// as no message has a seq below 1 (a client following has_more never
// sends it).
func historyQuery(d protocol.History) (parley.MessageQuery, error) {
	q := parley.MessageQuery{Limit: d.Limit}
	switch {
	case d.Before != nil && d.After != nil:
		return q, parley.Errorf(parley.EINVALID, "give before or after, not both")
	case d.Before != nil && *d.Before < 1:
		return q, parley.Errorf(parley.EINVALID, "before must be at least 1 (no message has a seq below 1)")
	case d.After != nil && *d.After < 0:
		return q, parley.Errorf(parley.EINVALID, "after must not be negative")
	case d.Limit < 0 || d.Limit > parley.MaxPageLimit:
		return q, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", parley.MaxPageLimit)
	case d.Before != nil:
		q.Before = *d.Before
	case d.After != nil:
		q.After, q.FromStart = *d.After, *d.After == 0
	}
	return q, nil
}

// history returns a page of messages, at most maxBytes of them in JSON
// (see MaxReplyBytes). A page cut short keeps the messages next to the
// cursor the query started from (the newest for a newest or before page,
// the oldest for an after page) and says has_more with next, so a client
// following next gets every message once.
func (s *service) history(ctx context.Context, u parley.User, d protocol.History, maxBytes int) (parley.MessagePage, error) {
	if err := limitedConversationOp(s.limits.reads, u.ID, d.ConversationID); err != nil {
		return parley.MessagePage{}, err
	}
	q, err := historyQuery(d)
	if err != nil {
		return parley.MessagePage{}, err
	}
	p, err := s.store.Messages(ctx, u.ID, d.ConversationID, q)
	if err != nil {
		return parley.MessagePage{}, err
	}
	if p.Messages == nil {
		p.Messages = []parley.Message{}
	}
	for i := range p.Messages {
		p.Messages[i] = *messageURLs(&p.Messages[i])
	}
	fromBack := d.After == nil // the page ends at the cursor: keep its end
	if n := fitting(p.Messages, maxBytes, fromBack); n < len(p.Messages) {
		if fromBack {
			p.Messages = p.Messages[len(p.Messages)-n:]
			p.Next = p.Messages[0].Seq
		} else {
			p.Messages = p.Messages[:n]
			p.Next = p.Messages[n-1].Seq
		}
		p.HasMore = true
	}
	return p, nil
}

func (s *service) deleteMessage(ctx context.Context, u parley.User, d protocol.Delete) (parley.Message, error) {
	if err := limitedConversationOp(s.limits.deletes, u.ID, d.ConversationID); err != nil {
		return parley.Message{}, err
	}
	if err := required("message_id", d.MessageID); err != nil {
		return parley.Message{}, err
	}
	m, evs, err := s.store.DeleteMessage(ctx, u.ID, d.ConversationID, d.MessageID)
	if err != nil {
		return parley.Message{}, err
	}
	s.publishStored(ctx, evs)
	return m, nil
}

// edit changes the text of u's message. It takes from the messages
// limits, as a send does: an edit is a write every member receives.
func (s *service) edit(ctx context.Context, u parley.User, ip string, d protocol.Edit) (parley.Message, error) {
	ed := parley.MessageEdit{UserID: u.ID, ConversationID: d.ConversationID, MessageID: d.MessageID,
		MessageClientID: d.MessageClientID, ClientID: d.ClientID, Text: d.Text}
	// Checked first so bad input does not use up the limits (the store
	// checks again).
	if err := ed.Validate(); err != nil {
		return parley.Message{}, err
	}
	if err := s.limits.messages.check(u.ID); err != nil {
		return parley.Message{}, err
	}
	if err := s.limits.ipMessages.check(ip); err != nil {
		return parley.Message{}, err
	}
	m, evs, err := s.store.EditMessage(ctx, ed)
	if err != nil {
		return parley.Message{}, err
	}
	s.publishStored(ctx, evs)
	return *messageURLs(&m), nil
}

// react adds or removes u's reaction on a message.
func (s *service) react(ctx context.Context, u parley.User, d protocol.React) (protocol.ReactResult, error) {
	if err := required("conversation_id", d.ConversationID); err != nil {
		return protocol.ReactResult{}, err
	}
	if err := required("message_id", d.MessageID); err != nil {
		return protocol.ReactResult{}, err
	}
	if err := parley.ValidateEmoji(d.Emoji); err != nil {
		return protocol.ReactResult{}, err
	}
	if err := s.limits.reactions.check(u.ID); err != nil {
		return protocol.ReactResult{}, err
	}
	rs, evs, err := s.store.React(ctx, u.ID, d.ConversationID, d.MessageID, d.Emoji, !d.Remove)
	if err != nil {
		return protocol.ReactResult{}, err
	}
	s.publishStored(ctx, evs)
	return protocol.ReactResult{MessageID: d.MessageID, Reactions: nonNil(rs)}, nil
}

func (s *service) read(ctx context.Context, u parley.User, d protocol.Read) (protocol.ReadResult, error) {
	if err := limitedConversationOp(s.limits.readMarks, u.ID, d.ConversationID); err != nil {
		return protocol.ReadResult{}, err
	}
	if d.Seq < 0 {
		return protocol.ReadResult{}, parley.Errorf(parley.EINVALID, "seq must not be negative")
	}
	evs, err := s.store.MarkRead(ctx, u.ID, d.ConversationID, d.Seq)
	if err != nil {
		return protocol.ReadResult{}, err
	}
	s.publishStored(ctx, evs)
	for _, ev := range evs {
		if ev.Type == parley.EventMessageRead {
			return protocol.ReadResult{ConversationID: d.ConversationID, ReadSeq: ev.ReadSeq}, nil
		}
	}
	c, err := s.store.Conversation(ctx, u.ID, d.ConversationID)
	if err != nil {
		return protocol.ReadResult{}, err
	}
	return protocol.ReadResult{ConversationID: d.ConversationID, ReadSeq: c.ReadSeq}, nil
}
