package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
)

func asError(err error, target **parley.Error) bool { return errors.As(err, target) }

// service is the one layer behind both the WebSocket ops and the HTTP
// handlers: it validates input, applies rate limits, calls the store and
// publishes the events a write returns, after the store committed them.
// It is safe for concurrent use.
type service struct {
	store   parley.Store
	broker  parley.Broker
	node    string
	log     *slog.Logger
	metrics *metrics
	limits  *limiters
	hasher  *auth.Hasher
	// accounts and logins: see accounts.go.
	accounts AccountLimits
	logins   *loginThrottle
	secret   []byte
	ttl      time.Duration
	pres     *presence
	typers   *typingTracker
	// contacts is the node's contacts cache (the hub's): presence queries
	// and welcome.online read it.
	contacts *contactsCache

	// ensured remembers the users whose token name is in the store, so a
	// connection does not cost a write.
	ensured userCache
	// checks runs the store checks of users not in ensured, at most
	// Config.UserChecks at once (usercheck.go).
	checks *turns
	// bans are the banned users (server API): their tokens are refused.
	bans banList
	// storePublishes: the store hands every committed batch's events to
	// publishCommitted (parley.CommitPublisher), so publishStored does
	// nothing. Set before serving.
	storePublishes bool
	// eventData: the broker carries parley.Event.Data (its
	// CarriesEventData says so), so publish sets it. Set before serving.
	eventData bool
	// commits, when the store calls answer hooks (SetAnswerHooks), has
	// the hub write a batch's send replies with its events (commitFlush).
	// Set before serving.
	commits *commitFlush
}

// publish hands committed events to the broker. A failed publish loses
// nothing: every node's hub polls the store and fills the gap.
func (s *service) publish(ctx context.Context, evs []parley.Event) []parley.Event {
	if len(evs) == 0 {
		return evs
	}
	if s.eventData {
		// The broker carries each event as its clients' bytes
		// (parley.Event.Data): encoded once here, written as they are
		// by every node that has a receiver, and parsed by none that
		// has not. A copy: evs may be the store's.
		evs = slices.Clone(evs)
		for i := range evs {
			if evs[i].Data == nil {
				evs[i].Data = eventData(evs[i])
			}
		}
	}
	err := s.broker.Publish(context.WithoutCancel(ctx), parley.BrokerMessage{Node: s.node, Events: evs})
	if err != nil {
		s.log.Warn("publishing events", "count", len(evs), "first", evs[0].Pos, "err", err)
	}
	return evs
}

// announceUser tells the other nodes that c.ID changed (its profile, or
// a ban), after the store committed the change: they drop the user from
// their caches (Server.usersChanged). A notice lost on the way is made
// good by the receiving node's cache starting afresh when its broker
// reconnects (userCache.lost), not by a retry here.
func (s *service) announceUser(ctx context.Context, c parley.UserChange) {
	err := s.broker.Publish(context.WithoutCancel(ctx), parley.BrokerMessage{Node: s.node, Users: []parley.UserChange{c}})
	if err != nil {
		s.log.Warn("publishing a changed user", "user", c.ID, "err", err)
	}
}

// publishStored publishes the events a store write returned, unless the
// store publishes them itself (storePublishes): then they are already on
// their way, one publish for the whole batch they were committed in.
func (s *service) publishStored(ctx context.Context, evs []parley.Event) {
	if !s.storePublishes {
		s.publish(ctx, evs)
	}
}

// publishCommitted is the store's commit hook (parley.CommitPublisher):
// it runs on the store's batcher goroutine, once per committed batch,
// before the batch's writers are answered. A broker's Publish does not
// wait for subscribers (membroker queues, NATS buffers), so it is quick.
func (s *service) publishCommitted(evs []parley.Event) {
	evs = s.publish(context.Background(), evs)
	if s.commits != nil {
		s.commits.published(evs) // for the hub, with the batch's replies
	}
}

func required(name, v string) error {
	if v == "" {
		return parley.Errorf(parley.EINVALID, "%s is required", name)
	}
	return nil
}

// limitedConversationOp is the prologue of an op on one conversation: it
// charges userID in lim, then checks that conversationID is given.
func limitedConversationOp(lim *limiterSet, userID, conversationID string) error {
	if err := lim.check(userID); err != nil {
		return err
	}
	return required("conversation_id", conversationID)
}

// MaxReplyBytes bounds the JSON of the list in one history, conversations
// or events reply (256 KiB): a page whose items would take more holds
// fewer, at least one, with has_more set, and the client pages on with
// its cursor.
// On the WebSocket the bound is at most half the send queue's budget
// (conn.replyBytes).
const MaxReplyBytes = 256 << 10

// jsonSize is the length of v's JSON encoding, as encodeData writes it.
func jsonSize(v any) int {
	e := encoderPool.Get().(*pooledEncoder)
	defer e.put()
	if err := e.enc.Encode(v); err != nil {
		panic(err) // replies hold plain data; this cannot fail
	}
	return e.buf.Len() - 1 // Encode ends with a newline
}

// fitting returns how many of items fit together in maxBytes of JSON,
// counted from the front, or from the back with fromBack; at least one
// when there is one, so a page always moves its cursor on.
func fitting[T any](items []T, maxBytes int, fromBack bool) int {
	total := 0
	for k := range items {
		i := k
		if fromBack {
			i = len(items) - 1 - k
		}
		total += jsonSize(&items[i]) + 1 // and its comma
		if total > maxBytes && k > 0 {
			return k
		}
	}
	return len(items)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
