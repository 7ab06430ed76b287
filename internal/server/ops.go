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

// dispatch runs one request and queues its reply or error. The worker
// (conn.work) calls it for one request at a time, in the order they were
// sent, so a client's sends are stored in its order. Pings never get here:
// the reader answers them at once.
func (c *conn) dispatch(ctx context.Context, req protocol.Request) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	var v any
	var err error
	if req.Op == protocol.OpSend {
		v, err = c.gatedSend(ctx, req)
	} else {
		v, err = c.op(ctx, req)
	}
	if errors.Is(err, context.DeadlineExceeded) && c.ctx.Err() == nil {
		// The request waited past opTimeout: the server is overloaded,
		// not broken. The client may retry (a send is idempotent).
		err = &parley.Error{Code: parley.EUNAVAILABLE, Message: "the server is overloaded; retry", RetryAfter: time.Second}
	}
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

// sendGate keeps a connection's sends in the order they were sent when a
// rate limit refuses one. A client keeps several sends in flight; if send k
// is refused and k+1, right behind it, were accepted because the limiter
// refilled in between, k+1 would be stored before k's retry. So after a
// refusal, every other send on the connection is refused too until the
// refused message is sent again (or the client has clearly given up on it:
// gateGiveUp after its retry time).
type sendGate struct {
	clientID string    // the refused send's client id; "" when open
	retryAt  time.Time // when the refused send may be retried
}

// gateGiveUp is how long past its retry time the gate waits for the
// refused message before opening for the others.
const gateGiveUp = 10 * time.Second

// gatedSend runs a send through the connection's sendGate. The client id
// is decoded a second time only while the gate matters, so the common path
// costs nothing extra.
func (c *conn) gatedSend(ctx context.Context, req protocol.Request) (any, error) {
	g := &c.gate
	clientID := func() string {
		d, _ := decode[protocol.Send](req)
		return d.ClientID
	}
	now := time.Now()
	if g.clientID != "" {
		if id := clientID(); id != g.clientID && now.Before(g.retryAt.Add(gateGiveUp)) {
			return nil, &parley.Error{Code: parley.ERATELIMITED, Message: "an earlier message was refused as too fast; send it again first",
				RetryAfter: max(g.retryAt.Sub(now), time.Millisecond)}
		}
		*g = sendGate{}
	}
	v, err := c.op(ctx, req)
	var pe *parley.Error
	if parley.ErrorCode(err) == parley.ERATELIMITED && asError(err, &pe) {
		if id := clientID(); id != "" {
			*g = sendGate{clientID: id, retryAt: now.Add(pe.RetryAfter)}
		}
	}
	return v, err
}

func decode[T any](req protocol.Request) (T, error) {
	var v T
	err := protocol.DecodeData(req.Data, &v)
	return v, err
}

// op runs one request through the service layer.
func (c *conn) op(ctx context.Context, req protocol.Request) (any, error) {
	svc, u := c.s.svc, c.user
	switch req.Op {
	case protocol.OpHello:
		return nil, parley.Errorf(parley.EINVALID, "hello was already sent on this connection")
	case protocol.OpSend:
		d, err := decode[protocol.Send](req)
		if err != nil {
			return nil, err
		}
		m, _, err := svc.send(ctx, u, c.ip, d)
		return m, err
	case protocol.OpHistory:
		d, err := decode[protocol.History](req)
		if err != nil {
			return nil, err
		}
		return svc.history(ctx, u, d)
	case protocol.OpDelete:
		d, err := decode[protocol.Delete](req)
		if err != nil {
			return nil, err
		}
		return svc.deleteMessage(ctx, u, d)
	case protocol.OpRead:
		d, err := decode[protocol.Read](req)
		if err != nil {
			return nil, err
		}
		return svc.read(ctx, u, d)
	case protocol.OpTyping:
		d, err := decode[protocol.Typing](req)
		if err != nil {
			return nil, err
		}
		return struct{}{}, svc.typing(ctx, u, d)
	case protocol.OpConversations:
		return svc.conversations(ctx, u)
	case protocol.OpConversation:
		d, err := decode[protocol.ConversationRef](req)
		if err != nil {
			return nil, err
		}
		return svc.conversation(ctx, u, d.ConversationID)
	case protocol.OpCreateDirect:
		d, err := decode[protocol.CreateDirect](req)
		if err != nil {
			return nil, err
		}
		return svc.createDirect(ctx, u, d)
	case protocol.OpCreateGroup:
		d, err := decode[protocol.CreateGroup](req)
		if err != nil {
			return nil, err
		}
		return svc.createGroup(ctx, u, d)
	case protocol.OpUpdateConversation:
		d, err := decode[protocol.UpdateConversation](req)
		if err != nil {
			return nil, err
		}
		return svc.updateConversation(ctx, u, d)
	case protocol.OpPresence:
		return svc.presence(ctx, u)
	}
	return nil, parley.Errorf(parley.EUNKNOWNOP, "unknown op %q", req.Op)
}
