package server

import (
	"context"
	"sync"
	"time"

	"github.com/parleychat/parley"
)

// Presence timings. Deltas are batched for presenceBatch so a burst of
// connects costs one broker message; a snapshot goes out every
// presenceSnapshot (or a third of the node timeout, when that is
// shorter) as the node's heartbeat, and a node not heard from for the
// node timeout (Config.NodeTimeout, default presenceDeadAfter) is taken
// as dead.
const (
	presenceBatch     = 50 * time.Millisecond
	presenceSnapshot  = 2 * time.Second
	presenceDeadAfter = 3 * presenceSnapshot
)

// presence tracks who is online across the cluster as this node sees it.
//
// A user is online while any live node (this one included) reports a
// connection for them. When that stops, the user stays visible for the
// grace period and goes offline only if nobody reconnected meanwhile, so a
// quick reconnect does not flap. Each node computes the same transitions
// from the same reports and tells its own connections (notify), so every
// contact hears each transition once.
//
// Methods are safe for concurrent use; run is the one goroutine, owned by
// the Server. publish and notify are called from run, outside the lock.
type presence struct {
	node      string
	grace     time.Duration
	deadAfter time.Duration // a node not heard from this long is dead
	snapshot  time.Duration // how often this node sends its snapshot
	publish   func(parley.NodePresence)
	notify    func(userID string, online bool)

	mu       sync.Mutex
	local    map[string]int            // user -> connections on this node
	delta    map[string]bool           // user -> online, to publish
	remote   map[string]*remoteNode    // node id -> what it reported
	state    map[string]*presenceState // users seen online (visible or in grace)
	changed  map[string]struct{}       // users to look at on the next tick
	inGrace  map[string]struct{}       // users whose grace is running
	announce map[string]struct{}       // users made visible by connect, to announce online
	lastSnap time.Time
}

type remoteNode struct {
	users map[string]struct{}
	heard time.Time
}

type presenceState struct {
	visible   bool
	offlineAt time.Time // set while in grace
}

func newPresence(node string, grace, deadAfter time.Duration, publish func(parley.NodePresence), notify func(string, bool)) *presence {
	return &presence{
		node: node, grace: grace, publish: publish, notify: notify,
		deadAfter: deadAfter, snapshot: min(presenceSnapshot, deadAfter/3),
		local:    make(map[string]int),
		delta:    make(map[string]bool),
		remote:   make(map[string]*remoteNode),
		state:    make(map[string]*presenceState),
		changed:  make(map[string]struct{}),
		inGrace:  make(map[string]struct{}),
		announce: make(map[string]struct{}),
	}
}

// connect records a new local connection of user. A user not yet seen
// online becomes visible at once (so welcome.online and the new-contacts
// announcement, which read isOnline, can list them) and their userOnline
// goes out on the next tick. Being visible from here on is what guarantees
// a userOffline later, even if the connection closes before that tick:
// nobody is ever told a user is online without the state that will tell
// them when the user is gone.
func (p *presence) connect(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.local[user]++
	if p.local[user] == 1 {
		p.delta[user] = true
		p.changed[user] = struct{}{}
		if p.state[user] == nil {
			p.state[user] = &presenceState{visible: true}
			p.announce[user] = struct{}{}
		}
	}
}

// disconnect records that a local connection of user closed.
func (p *presence) disconnect(user string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.local[user] <= 1 {
		delete(p.local, user)
		p.delta[user] = false
		p.changed[user] = struct{}{}
		return
	}
	p.local[user]--
}

// remoteReport takes another node's report from the broker.
func (p *presence) remoteReport(node string, np parley.NodePresence) {
	if node == p.node {
		return // this node's own view is p.local
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.remote[node]
	if np.Leaving {
		if r != nil {
			p.dropNode(node, r)
		}
		return
	}
	if r == nil {
		r = &remoteNode{users: make(map[string]struct{})}
		p.remote[node] = r
	}
	r.heard = time.Now()
	if np.Snapshot {
		next := make(map[string]struct{}, len(np.Online))
		for _, u := range np.Online {
			next[u] = struct{}{}
			if _, ok := r.users[u]; !ok {
				p.changed[u] = struct{}{}
			}
		}
		for u := range r.users {
			if _, ok := next[u]; !ok {
				p.changed[u] = struct{}{}
			}
		}
		r.users = next
		return
	}
	for _, u := range np.Online {
		r.users[u] = struct{}{}
		p.changed[u] = struct{}{}
	}
	for _, u := range np.Offline {
		delete(r.users, u)
		p.changed[u] = struct{}{}
	}
}

func (p *presence) dropNode(node string, r *remoteNode) {
	delete(p.remote, node)
	for u := range r.users {
		p.changed[u] = struct{}{}
	}
}

// isOnline reports whether user is online, or offline for less than the
// grace period.
func (p *presence) isOnline(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.state[user]
	return st != nil && st.visible
}

// run publishes this node's reports and turns reports into transitions
// until ctx ends.
func (p *presence) run(ctx context.Context) {
	every(ctx, presenceBatch, func(time.Time) { p.tick() })
}

type transition struct {
	user   string
	online bool
}

func (p *presence) tick() {
	now := time.Now()
	var reports []parley.NodePresence
	var out []transition

	p.mu.Lock()
	if len(p.delta) > 0 {
		var d parley.NodePresence
		for u, on := range p.delta {
			if on {
				d.Online = append(d.Online, u)
			} else {
				d.Offline = append(d.Offline, u)
			}
		}
		clear(p.delta)
		reports = append(reports, d)
	}
	if now.Sub(p.lastSnap) >= p.snapshot {
		p.lastSnap = now
		s := parley.NodePresence{Snapshot: true, Online: make([]string, 0, len(p.local))}
		for u := range p.local {
			s.Online = append(s.Online, u)
		}
		reports = append(reports, s)
	}
	for node, r := range p.remote {
		if now.Sub(r.heard) >= p.deadAfter {
			p.dropNode(node, r)
		}
	}
	for u := range p.inGrace {
		if st := p.state[u]; st == nil || !now.Before(st.offlineAt) {
			p.changed[u] = struct{}{}
		}
	}
	for u := range p.announce {
		out = append(out, transition{u, true})
	}
	clear(p.announce)
	for u := range p.changed {
		if tr, ok := p.evaluate(u, now); ok {
			out = append(out, tr)
		}
	}
	clear(p.changed)
	p.mu.Unlock()

	for _, r := range reports {
		p.publish(r)
	}
	for _, tr := range out {
		p.notify(tr.user, tr.online)
	}
}

// evaluate moves user's state on and returns a transition to announce.
func (p *presence) evaluate(u string, now time.Time) (transition, bool) {
	on := p.local[u] > 0
	for _, r := range p.remote {
		if _, ok := r.users[u]; ok {
			on = true
			break
		}
	}
	st := p.state[u]
	switch {
	case on && st == nil:
		p.state[u] = &presenceState{visible: true}
		return transition{u, true}, true
	case on:
		st.offlineAt = time.Time{}
		delete(p.inGrace, u)
	case st == nil:
	case st.offlineAt.IsZero():
		st.offlineAt = now.Add(p.grace)
		p.inGrace[u] = struct{}{}
	case !now.Before(st.offlineAt):
		delete(p.state, u)
		delete(p.inGrace, u)
		return transition{u, false}, true
	}
	return transition{}, false
}

// leaving is the report a node sends as it shuts down.
func leaving() parley.NodePresence { return parley.NodePresence{Leaving: true} }

// connected reports whether user has a live connection on any node, as
// this node last heard (no grace: a user who just left is not connected).
// Webhooks use it to list the members to push to.
func (p *presence) connected(user string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.local[user] > 0 {
		return true
	}
	for _, r := range p.remote {
		if _, ok := r.users[user]; ok {
			return true
		}
	}
	return false
}

func (s *Server) publishPresence(np parley.NodePresence) {
	ctx, cancel := context.WithTimeout(s.bgCtx, 2*time.Second)
	defer cancel()
	if err := s.broker.Publish(ctx, parley.BrokerMessage{Node: s.cfg.NodeID, Presence: &np}); err != nil && ctx.Err() == nil {
		s.log.Warn("publishing presence", "err", err)
	}
}

// notifyPresence tells the local connections of user's contacts that user
// came online or went offline: of the users user's list holds (at most
// parley.MaxContacts), whether or not their own lists hold user (the
// lists are bounded per user, so they need not; docs/protocol.md,
// section 6, Contacts limit). Checking theirs would cost a read of each
// list not cached, on this goroutine, for every transition.
func (s *Server) notifyPresence(user string, online bool) {
	contacts, ok := s.presenceContacts(user)
	if !ok {
		return
	}
	s.hub.deliverPresence(contacts, user, online, parley.Now())
}

// presenceContacts returns user's contacts for a presence notification,
// from the contacts cache (a store read at most 5 s long); a failure is
// logged and reported as !ok: the notification is skipped.
func (s *Server) presenceContacts(user string) ([]string, bool) {
	ctx, cancel := context.WithTimeout(s.bgCtx, 5*time.Second)
	defer cancel()
	ids, err := s.hub.contacts.get(ctx, user)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("presence: contacts", "user", user, "err", err)
		}
		return nil, false
	}
	return ids, true
}
