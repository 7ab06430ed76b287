package server

import (
	"context"
	"errors"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// opTimeout bounds one request's work.
const opTimeout = 15 * time.Second

// dispatch runs one request other than a send and queues its reply or
// error. The worker (conn.work) calls it for one request at a time, in the
// order they were sent; sends go through dispatchSends. Pings never get
// here: the reader answers them at once.
func (c *conn) dispatch(ctx context.Context, req protocol.Request) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	v, err := c.op(ctx, req)
	c.reply(req, v, err)
}

// reply queues the reply to req, or its error.
func (c *conn) reply(req protocol.Request, v any, err error) {
	err = c.overloaded(err)
	if err != nil {
		var pe *parley.Error
		if parley.ErrorCode(err) == parley.ERATELIMITED && asError(err, &pe) {
			switch req.Op {
			case protocol.OpTyping:
				c.throttle("typing", pe.RetryAfter)
			case protocol.OpPresence:
				c.throttle("presence", pe.RetryAfter)
			}
		}
		c.enqueue(errorFrame(c.s, req.ID, err), false)
		return
	}
	c.enqueue(encodeData(protocol.TypeReply, req.ID, v), false)
}

// overloaded turns err into `unavailable` when it is a request that waited
// past opTimeout while the server runs: the server is overloaded, not
// broken, and the client may retry (a send is idempotent).
func (c *conn) overloaded(err error) error {
	if errors.Is(err, context.DeadlineExceeded) && c.s.connCtx.Err() == nil {
		return &parley.Error{Code: parley.EUNAVAILABLE, Message: "the server is overloaded; retry", RetryAfter: time.Second}
	}
	return err
}

// replyBytes bounds a history or conversations reply's list on this connection:
// MaxReplyBytes, or half the send queue's budget when that is smaller, so
// a reply queued behind half a budget (the worker waits for that much to
// drain, see work) fits in it.
func (c *conn) replyBytes() int {
	return min(MaxReplyBytes, c.s.cfg.Limits.SendQueueBytes/2)
}

// maxSendRun bounds the consecutive sends of a connection the worker hands
// to the store at once (dispatchSends). The request queue holds at most
// requestQueue anyway.
const maxSendRun = requestQueue

// dispatchSends runs a run of consecutive sends of the connection, in the
// order they were read, and queues their replies in that order. Each send
// goes through the sendGate and the service's checks in order; the ones
// that pass go to the store together (service.sendMany), so they can share
// a store batch instead of each waiting for the commit of the one before:
// per conversation they are stored in the order read, a client_id repeated
// within the run is stored once, and each reply is queued as soon as its
// send is committed and every earlier reply is queued. The whole run has
// one opTimeout.
func (c *conn) dispatchSends(ctx context.Context, reqs []protocol.Request) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	svc := c.s.svc
	errs := make([]error, len(reqs))
	nms := make([]parley.NewMessage, 0, len(reqs))
	idx := make([]int, 0, len(reqs)) // nms[k] is the send of reqs[idx[k]]
	now := time.Now()
	for i, req := range reqs {
		d, err := protocol.DecodeSend(req.Data)
		if err == nil && c.gate != nil {
			err = c.gate.admit(d.ClientID, now)
		}
		var nm parley.NewMessage
		if err == nil {
			nm, err = svc.checkSend(c.user, c.ip, d)
			c.gate = c.gate.refused(d.ClientID, now, err)
		}
		if err != nil {
			errs[i] = err
			continue
		}
		nms = append(nms, nm)
		idx = append(idx, i)
	}
	next := 0                   // the next request to reply to
	replyTo := func(upTo int) { // the refused requests before upTo
		for ; next < upTo; next++ {
			c.reply(reqs[next], nil, errs[next])
		}
	}
	svc.sendMany(ctx, nms, func(k int, m parley.Message, err error) {
		i := idx[k]
		replyTo(i)
		err = c.overloaded(err)
		// A send the client will retry closes the gate as a refusal
		// does: a later send of the connection stored before the retry
		// would break the sender's order.
		c.gate = c.gate.refused(nms[k].ClientID, now, err)
		c.reply(reqs[i], m, err)
		c.s.metrics.obs.sendAckWS.Observe(sinceSeconds(now))
		next = i + 1
	})
	replyTo(len(reqs))
}

// sendGate keeps a connection's sends in the order they were sent when a
// rate limit refuses one, or one fails for a reason a retry can fix
// (unavailable, internal: see retryable). A client keeps several sends in
// flight; if send k is refused and k+1, right behind it, were accepted
// because the limiter refilled in between (or the store answered again),
// k+1 would be stored before k's retry. So after a refusal or such a
// failure, every other send on the connection is refused too until the
// refused message is sent again (or the client has clearly given up on it:
// gateGiveUp after its retry time). Only the worker uses it, in the order
// the sends were read. A connection allocates its gate at the first
// refusal (conn.gate); nil is an open gate.
type sendGate struct {
	clientID string    // the refused send's client id; "" when open
	retryAt  time.Time // when the refused send may be retried
}

// gateGiveUp is how long past its retry time the gate waits for the
// refused message before opening for the others.
const gateGiveUp = 10 * time.Second

// admit refuses a send while the gate is closed for another client id,
// and opens the gate otherwise.
func (g *sendGate) admit(clientID string, now time.Time) error {
	if g.clientID == "" {
		return nil
	}
	if clientID != g.clientID && now.Before(g.retryAt.Add(gateGiveUp)) {
		return &parley.Error{Code: parley.ERATELIMITED, Message: "an earlier message was not stored; send it again first",
			RetryAfter: max(g.retryAt.Sub(now), time.Millisecond)}
	}
	*g = sendGate{}
	return nil
}

// refused closes the gate behind a send that failed with err when the
// client will retry it (retryable), and returns the gate: g, or a new one
// when g is nil and a gate is needed.
func (g *sendGate) refused(clientID string, now time.Time, err error) *sendGate {
	if clientID == "" || !retryable(err) {
		return g
	}
	if g == nil {
		g = new(sendGate)
	}
	// A failure without a retry time is retried after a second by the
	// SDKs (docs/sdk.md); the gate waits for it that long plus gateGiveUp.
	wait := time.Second
	var pe *parley.Error
	if asError(err, &pe) && pe.RetryAfter > 0 {
		wait = pe.RetryAfter
	}
	*g = sendGate{clientID: clientID, retryAt: now.Add(wait)}
	return g
}

// retryable reports whether a send's error is one clients retry, in
// order, from the failed message on: rate_limited, unavailable and
// internal (docs/protocol.md, section 9).
func retryable(err error) bool {
	switch parley.ErrorCode(err) {
	case parley.ERATELIMITED, parley.EUNAVAILABLE, parley.EINTERNAL:
		return true
	}
	return false
}

func decode[T any](req protocol.Request) (T, error) {
	var v T
	err := protocol.DecodeData(req.Data, &v)
	return v, err
}

// runOp decodes req's data into a T and runs op (a service method) on it.
func runOp[T, R any](ctx context.Context, u parley.User, req protocol.Request, op func(context.Context, parley.User, T) (R, error)) (any, error) {
	d, err := decode[T](req)
	if err != nil {
		return nil, err
	}
	return op(ctx, u, d)
}

// capped binds maxBytes, the connection's reply cap, to an op that cuts
// its reply to fit (history, lists, search), for runOp.
func capped[T, R any](op func(context.Context, parley.User, T, int) (R, error), maxBytes int) func(context.Context, parley.User, T) (R, error) {
	return func(ctx context.Context, u parley.User, d T) (R, error) { return op(ctx, u, d, maxBytes) }
}

// op runs one request through the service layer.
func (c *conn) op(ctx context.Context, req protocol.Request) (any, error) {
	svc, u := c.s.svc, c.user
	switch req.Op {
	case protocol.OpHello:
		return nil, parley.Errorf(parley.EINVALID, "hello was already sent on this connection")
	case protocol.OpHistory:
		return runOp(ctx, u, req, capped(svc.history, c.replyBytes()))
	case protocol.OpDelete:
		return runOp(ctx, u, req, svc.deleteMessage)
	case protocol.OpRead:
		return runOp(ctx, u, req, svc.read)
	case protocol.OpTyping:
		d, err := decode[protocol.Typing](req)
		if err != nil {
			return nil, err
		}
		return struct{}{}, svc.typing(ctx, u, d)
	case protocol.OpConversations:
		return runOp(ctx, u, req, capped(svc.conversations, c.replyBytes()))
	case protocol.OpConversation:
		d, err := decode[protocol.ConversationRef](req)
		if err != nil {
			return nil, err
		}
		return svc.conversation(ctx, u, d.ConversationID)
	case protocol.OpCreateDirect:
		return runOp(ctx, u, req, svc.createDirect)
	case protocol.OpCreateGroup:
		return runOp(ctx, u, req, svc.createGroup)
	case protocol.OpUpdateConversation:
		return runOp(ctx, u, req, svc.updateConversation)
	case protocol.OpPresence:
		return svc.presence(ctx, u)
	case protocol.OpEdit:
		d, err := decode[protocol.Edit](req)
		if err != nil {
			return nil, err
		}
		// An edit passes the send gate as a send does, so a client's
		// edits and sends keep their order when a rate limit refuses one.
		now := time.Now()
		if c.gate != nil {
			if err := c.gate.admit(d.ClientID, now); err != nil {
				return nil, err
			}
		}
		m, err := svc.edit(ctx, u, c.ip, d)
		c.gate = c.gate.refused(d.ClientID, now, c.overloaded(err))
		return m, err
	case protocol.OpReact:
		return runOp(ctx, u, req, svc.react)
	case protocol.OpSetFlags:
		return runOp(ctx, u, req, svc.setFlags)
	case protocol.OpSearch:
		return runOp(ctx, u, req, capped(svc.search, c.replyBytes()))
	case protocol.OpMentions:
		return runOp(ctx, u, req, capped(svc.mentions, c.replyBytes()))
	case protocol.OpDelivered:
		return runOp(ctx, u, req, svc.delivered)
	case protocol.OpSetProfile:
		return runOp(ctx, u, req, svc.setProfile)
	}
	if v, err, ok := c.consentOp(ctx, req); ok {
		return v, err
	}
	return nil, parley.Errorf(parley.EUNKNOWNOP, "unknown op %q", req.Op)
}
