package server

import (
	"context"
	"errors"
	"sync"
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
	c.enqueue(c.replyFrame(req, v, err), false)
}

// replyFrame is the frame of the reply to req, or of its error (a rate
// limited typing or presence throttles the feature).
func (c *conn) replyFrame(req protocol.Request, v any, err error) []byte {
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
		return errorFrame(c.s, req.ID, err)
	}
	return encodeData(protocol.TypeReply, req.ID, v)
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
// send is committed and every earlier reply is queued.
//
// With a store that answers from its batcher (service.sendManyAsync) the
// replies are queued there, on the batcher goroutine, and dispatchSends
// returns true as soon as the run is queued in the store: c.sendsOut is
// set until the run's last reply is queued (sendsDone), and the worker
// must not run another request meanwhile. A commit thus wakes no worker:
// only the writers of the connections it answers. Otherwise it waits for
// the replies and returns false; the whole run then has one opTimeout,
// and the connection's close drops the sends the store has not started,
// as it does the batcher's (syncSendsCtx, service.sendMany).
// The run keeps a copy of run's requests: the caller may reuse run at
// once.
func (c *conn) dispatchSends(ctx context.Context, run []request) (queued bool) {
	svc := c.s.svc
	r, _ := sendRuns.Get().(*sendRun)
	if r == nil {
		r = new(sendRun)
		r.storedFunc = r.stored
	}
	r.c, r.now = c, time.Now()
	now := mono(r.now)
	for _, q := range run {
		r.reqs = append(r.reqs, q.req)
		if q.woke != 0 {
			c.s.metrics.obs.sendWake.Observe(float64(now-q.woke) / 1e9)
		}
	}
	for i, req := range r.reqs {
		d, err := protocol.DecodeSend(req.Data)
		if err == nil && c.gate != nil {
			err = c.gate.admit(d.ClientID, r.now)
		}
		var nm parley.NewMessage
		if err == nil {
			nm, err = svc.checkSend(c.user, c.ip, d)
			c.gate = c.gate.refused(d.ClientID, r.now, err)
		}
		r.errs = append(r.errs, err)
		if err == nil {
			r.nms = append(r.nms, nm)
			r.idx = append(r.idx, i)
		}
	}
	if len(r.nms) > 0 && svc.async() {
		c.mu.Lock()
		c.sendsOut = true
		c.mu.Unlock()
		c.wg.Add(1) // the run in the store: end waits for its replies
		r.storeStart = time.Now()
		svc.sendManyAsync(r.nms, &c.dropSends, r.storedFunc)
		return true
	}
	ctx, cancel := c.syncSendsCtx(ctx)
	svc.sendMany(ctx, r.nms, &c.dropSends, r.answer)
	cancel()
	r.replyTo(len(r.reqs))
	r.release()
	return false
}

// syncSendsCtx returns the ctx of a run of sends the worker waits for in
// the store (dispatchSends without service.async): ctx with opTimeout,
// ended too when the connection closes (closeWith, which sets dropSends
// first), so that the store does not start the run's sends it has not
// taken yet (see service.sendMany), and what ends it once the run is
// answered.
func (c *conn) syncSendsCtx(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	c.mu.Lock()
	c.endSends = cancel
	c.mu.Unlock()
	return ctx, func() {
		c.mu.Lock()
		c.endSends = nil
		c.mu.Unlock()
		cancel()
	}
}

// sendRun is a run of sends dispatchSends handed to the store: what
// answering them in order needs. Runs are pooled (sendRuns), with their
// slices and storedFunc: a run of sends allocates none of its bookkeeping.
// A run belongs to its connection's worker until handed to the store,
// then to the store's answers (one at a time, in order), the last of
// which releases it.
type sendRun struct {
	c    *conn
	reqs []protocol.Request  // the run's requests (a copy)
	errs []error             // errs[i]: why reqs[i] was refused before the store; nil if it went there
	nms  []parley.NewMessage // the sends that went to the store
	idx  []int               // nms[k] is the send of reqs[idx[k]]
	next int                 // the next request to reply to
	now  time.Time

	// storeStart is when the run went to the store (the store's wait
	// metric).
	storeStart time.Time
	// storedFunc is r.stored, bound once for the pooled run: a method
	// value made per run was an allocation.
	storedFunc func(int, parley.Message, []parley.Event, error)
}

// sendRuns pools sendRuns (see sendRun); dispatchSends makes one when
// it is empty.
var sendRuns sync.Pool

// release returns r to sendRuns, holding no request, message or
// connection. Nothing may use r after.
func (r *sendRun) release() {
	clear(r.reqs)
	clear(r.errs)
	clear(r.nms)
	*r = sendRun{reqs: r.reqs[:0], errs: r.errs[:0], nms: r.nms[:0], idx: r.idx[:0], storedFunc: r.storedFunc}
	sendRuns.Put(r)
}

// replyTo replies to the refused requests before upTo.
func (r *sendRun) replyTo(upTo int) {
	for ; r.next < upTo; r.next++ {
		r.c.reply(r.reqs[r.next], nil, r.errs[r.next])
	}
}

// answer replies to the k-th send the store answered, after the refused
// requests before it.
func (r *sendRun) answer(k int, m parley.Message, err error) {
	i := r.idx[k]
	r.replyTo(i)
	if errors.Is(err, parley.ErrSendDropped) {
		// The connection closed (conn.dropSends) before the store took
		// the send: no reply can reach the client, which sends it again.
		r.c.s.metrics.sendsDropped.Inc()
		r.next = i + 1
		return
	}
	err = r.c.overloaded(err)
	// A send the client will retry closes the gate as a refusal does: a
	// later send of the connection stored before the retry would break
	// the sender's order. (With the store's batcher answering, the worker
	// is not running: sendsDone starts it after the run's last answer.)
	r.c.gate = r.c.gate.refused(r.nms[k].ClientID, r.now, err)
	var b []byte
	if err != nil {
		b = r.c.replyFrame(r.reqs[i], nil, err)
	} else {
		b = messageReply(r.reqs[i].ID, &m)
	}
	if cf := r.c.s.svc.commits; cf != nil {
		// On the store's batcher: written with the batch's events.
		cf.queue(r.c, b)
	} else {
		r.c.enqueue(b, false)
	}
	r.c.s.metrics.obs.sendAckWS.Observe(sinceSeconds(r.now))
	r.next = i + 1
}

// stored is the store's answer to the k-th send of a run handed to it by
// sendManyAsync: on the store's batcher goroutine (or on the worker's, if
// the store refused the run at once). It finishes the send (sendStored)
// and answers it. A panic must not stop the batcher, and the last answer,
// which also replies to the refused requests after it, must restart the
// worker whatever happens, and releases the run.
func (r *sendRun) stored(k int, m parley.Message, evs []parley.Event, err error) {
	last := k == len(r.nms)-1
	if last {
		defer r.release()
		defer r.c.sendsDone()
	}
	defer r.c.recoverReply()
	r.answer(k, r.c.s.svc.sendStored(context.Background(), r.storeStart, m, evs, err), err)
	if last {
		r.replyTo(len(r.reqs))
	}
}

// sendsDone ends a run of sends dispatchSends handed to the store: its
// last reply is queued. It starts the worker again when requests wait
// (parked behind the run, or read since), and releases the run's count in
// wg. Called on the store's batcher goroutine.
func (c *conn) sendsDone() {
	c.mu.Lock()
	c.sendsOut = false
	if !c.workerOn && (len(c.parked) > 0 || len(c.reqs) > 0) {
		c.startWorkerLocked()
	}
	c.mu.Unlock()
	c.wg.Done()
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
// the sends were read, or the answers to a run of sends the store's
// batcher replies to while no worker runs (dispatchSends). A connection allocates its gate at the first
// refusal (conn.gate); nil is an open gate.
type sendGate struct {
	clientID string    // the refused send's client id; "" when open
	retryAt  time.Time // when the refused send may be retried
	// code is what the gate refuses the others with: rate_limited behind
	// a rate-limited send, unavailable behind one that failed.
	code string
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
		return &parley.Error{Code: g.code, Message: "an earlier message was not stored; send it again first",
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
	code := parley.EUNAVAILABLE
	if parley.ErrorCode(err) == parley.ERATELIMITED {
		code = parley.ERATELIMITED
	}
	*g = sendGate{clientID: clientID, retryAt: now.Add(wait), code: code}
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
