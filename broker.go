package parley

import "context"

// Broker carries events and presence between the nodes of a cluster.
//
// Implementations: internal/membroker (one process, the default) and
// internal/natsbroker. Both pass internal/brokertest.
//
// A broker is a fast path, not the source of truth: durable events are in
// the Store, and a node that sees a gap in positions (a message lost in the
// broker, a node that died between commit and publish) fetches the missing
// events with Store.Events. So a broker may drop or reorder messages between
// publishers; it must keep the order of one publisher's messages when it
// delivers them.
type Broker interface {
	// Publish sends m to every subscriber on every node, this one included.
	Publish(ctx context.Context, m BrokerMessage) error
	// Subscribe calls fn for every message published by any node, one call
	// at a time, in publish order per publisher. fn must not block: it runs
	// on the broker's delivery goroutine. stop ends the subscription and
	// waits for a call in progress to return.
	Subscribe(fn func(BrokerMessage)) (stop func(), err error)
	// Close ends every subscription and releases the broker.
	Close() error
}

// BrokerMessage is what travels between nodes.
type BrokerMessage struct {
	// Node is the id of the publishing node.
	Node string
	// Events are durable events (Pos > 0) after commit, or ephemeral ones
	// (typing), each with its Audience.
	Events []Event
	// Presence, when set, reports who is connected to the publishing node.
	Presence *NodePresence
	// Usage reports the rate-limit tokens the publishing node's clients
	// took since its previous report: every other node charges them to
	// its own buckets, so a limit holds across the cluster (approximately:
	// see docs/deploy.md, "Rate limits in a cluster").
	Usage []LimitUsage
	// Users reports users whose facts other nodes may hold cached (a
	// profile, a name, a ban) and that changed on the publishing node:
	// every node drops them from its cache of users, so their next
	// hello reads the store. A user in no conversation makes no
	// durable event when they change their profile, so this is the only
	// way the other nodes learn of it.
	Users []UserChange
}

// UserChange is one user's entry in BrokerMessage.Users.
type UserChange struct {
	// ID is the user's id.
	ID string
	// Banned: the user was banned (their tokens are refused, their
	// connections closed with 4102), on top of any profile change.
	Banned bool
}

// LimitUsage is N tokens taken on one node from one rate limit's bucket
// for one key (a user id or an IP).
type LimitUsage struct {
	// Limit is the limit's name (the parley_rate_limited_total label).
	Limit string
	Key   string
	N     int
}

// NodePresence is one node's report of who is connected to it. Nodes send
// a delta when users connect or leave (batched briefly) and a snapshot
// every few seconds as a heartbeat; a node not heard from for three
// heartbeats is taken as dead and its users as disconnected.
type NodePresence struct {
	// Snapshot marks a full report: Online is then every user connected to
	// the node, and users not in it are not connected there.
	Snapshot bool
	// Online are users with at least one connection on the node.
	Online []string
	// Offline are users whose last connection on the node closed.
	Offline []string
	// Leaving is set by a node that is shutting down: its users are
	// disconnected from now on, without waiting for the heartbeat to lapse.
	Leaving bool
}
