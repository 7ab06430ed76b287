package server

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/parleychat/parley"
)

// maxCachedContactBytes bounds the contacts cache in bytes (listBytes'
// estimate); past it the cache starts over (a connect then costs one
// store read, as without the cache). A list holds at most
// parley.MaxContacts ids, some 50 KiB of UUIDs, so the budget holds at
// least 5000 full lists, and some hundred thousand users of fifty
// contacts (what the former bound of 200,000 users held of small lists).
const maxCachedContactBytes = 256 << 20

// listBytes estimates what caching user's contacts ids takes: the map
// entry (key and slice headers, map overhead) and each id (its string
// header in the slice, and its bytes).
func listBytes(user string, ids []string) int {
	n := 64 + len(user)
	for _, id := range ids {
		n += 16 + len(id)
	}
	return n
}

// contactsCache remembers Store.Contacts per user, because every connect
// (welcome.online) and every presence transition (who to tell) asks for
// it, and a reconnect storm asks for every user at once. It holds at most
// maxCachedContactBytes of lists (each at most parley.MaxContacts long).
//
// Contacts change with membership, and every membership change is a
// durable conversationUpdated event whose audience holds every user whose
// contacts it changes (the members, plus removed users). They also change
// when the second user of a direct conversation first writes in it (a
// direct conversation makes contacts only once both wrote: see
// parley.Store.Contacts); that is a newMessage whose audience is the two
// users, and the hub calls directMessage for it: when a cached list lacks
// the other user, both lists are dropped (forgetPair) unless the store,
// asked about the pair after the message (Server.announceDirectContacts),
// says they are not contacts. The hub delivers every durable
// event in position order, from every node: the cache is as fresh as the
// node's event stream.
// A read that raced an invalidation is not stored (gen), so a stale list
// cannot outlive the event that changed it. Safe for concurrent use; the
// returned slices are shared and must not be modified.
type contactsCache struct {
	store parley.Store

	mu    sync.Mutex
	gen   uint64 // incremented by every invalidation
	m     map[string][]string
	bytes int // listBytes of m's entries, at most maxCachedContactBytes
	// reading counts the store reads under way per user (get), so that
	// forgetPair of users not cached still stops such a read, begun
	// before the change, from caching the list as it was.
	reading map[string]int
}

func newContactsCache(store parley.Store) *contactsCache {
	return &contactsCache{store: store, m: make(map[string][]string), reading: make(map[string]int)}
}

// get returns user's contacts, from the cache or the store.
func (cc *contactsCache) get(ctx context.Context, user string) ([]string, error) {
	cc.mu.Lock()
	ids, ok := cc.m[user]
	gen := cc.gen
	if !ok {
		cc.reading[user]++
	}
	cc.mu.Unlock()
	if ok {
		return ids, nil
	}
	ids, err := cc.store.Contacts(ctx, user)
	cc.mu.Lock()
	if cc.reading[user]--; cc.reading[user] == 0 {
		delete(cc.reading, user)
	}
	if _, ok := cc.m[user]; err == nil && cc.gen == gen && !ok {
		cc.put(user, ids)
	}
	cc.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// put caches user's contacts, which are not cached, first starting over
// when they would not fit in maxCachedContactBytes. mu must be held.
func (cc *contactsCache) put(user string, ids []string) {
	n := listBytes(user, ids)
	if cc.bytes+n > maxCachedContactBytes {
		clear(cc.m)
		cc.bytes = 0
	}
	cc.m[user] = ids
	cc.bytes += n
}

// drop forgets user's contacts. mu must be held.
func (cc *contactsCache) drop(user string) {
	if ids, ok := cc.m[user]; ok {
		cc.bytes -= listBytes(user, ids)
		delete(cc.m, user)
	}
}

// warm reads the contacts of users at once, when the store can
// (parley.BulkReader), and caches those not cached yet; a node does it
// at start for the users of the recent events, who are the ones about to
// reconnect. Like get, it keeps nothing if an invalidation ran meanwhile.
func (cc *contactsCache) warm(ctx context.Context, users []string) error {
	bulk, ok := cc.store.(parley.BulkReader)
	if !ok || len(users) == 0 {
		return nil
	}
	cc.mu.Lock()
	gen := cc.gen
	for _, u := range users {
		cc.reading[u]++
	}
	cc.mu.Unlock()
	got, err := bulk.ContactsOf(ctx, users)
	cc.mu.Lock()
	for _, u := range users {
		if cc.reading[u]--; cc.reading[u] == 0 {
			delete(cc.reading, u)
		}
	}
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	n := 0
	for u, ids := range got {
		n += listBytes(u, ids)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen || cc.bytes+n > maxCachedContactBytes {
		return nil
	}
	for u, ids := range got {
		if _, ok := cc.m[u]; !ok {
			cc.put(u, ids)
		}
	}
	return nil
}

// invalidate forgets the contacts of users (a membership change).
func (cc *contactsCache) invalidate(users []string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cc.gen++
	for _, u := range users {
		cc.drop(u)
	}
}

// directMessage takes a newMessage between two users a and b (its
// audience: a direct conversation, or a group of two) and reports whether
// they may have just become contacts. They have not if a cached list of
// either holds the other (contacts already; the common case, a map lookup
// and a binary search). Otherwise the message may be the second user's
// first in a direct conversation, and a cached list of either, which
// lacks the other, may be stale: the caller drops them (forgetPair)
// unless the store says they are not contacts (announceDirectContacts).
// A message of a conversation only one of them wrote in thus keeps their
// lists: dropping them made the next presence change of each (their
// connect's userOnline, on the presence tick) read its whole list again.
func (cc *contactsCache) directMessage(a, b string) (maybeNew bool) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	la, okA := cc.m[a]
	lb, okB := cc.m[b]
	return !(okA && has(la, b)) && !(okB && has(lb, a))
}

// forgetPair drops the cached lists of a and b, when either is cached or
// being read (a read under way is then not kept, as after invalidate: it
// may have begun before the change), so they are read again when next
// needed.
func (cc *contactsCache) forgetPair(a, b string) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	_, okA := cc.m[a]
	_, okB := cc.m[b]
	if okA || okB || cc.reading[a] > 0 || cc.reading[b] > 0 {
		cc.gen++
		cc.drop(a)
		cc.drop(b)
	}
}

// has reports whether the sorted ids hold id (Store.Contacts sorts).
func has(ids []string, id string) bool {
	_, ok := slices.BinarySearch(ids, id)
	return ok
}

// announceDirectContacts runs on the hub's run goroutine for a newMessage
// between two users that may have made them contacts
// (contactsCache.directMessage): if both are online and at least one has
// a connection on this node, it asks the store whether their direct
// conversation makes them contacts now (both wrote in it, neither blocked
// the other) and, when it does, tells each that the other is online, as
// announceNewContacts does for a new group. Each node tells its own
// connections. The cached lists of the two are dropped (forgetPair)
// unless the store said they are not contacts: then the lists, which
// lack each other, are right (a later change of the pair, a block or
// another message, is an event of its own, after this one).
//
// The question is parley.Consenter.Tie with groups: the pair's own rows
// by their keys, and a's memberships probed for b's, whatever the size
// of either's contacts list. Groups too, because an audience of two is
// not always a direct conversation: a group of two, or a group whose
// other members blocked the writer. Asked without groups, such a pair
// never read as contacts, so the list below was never cached and every
// one of their messages asked again on this goroutine (a run of 1,000
// messages, 1,000 store calls, each writing the pending send replies
// ahead of their events). Every message of a direct conversation only
// one of them wrote in (and of no group they share) asks again (the
// message rate limit bounds that), where reading the writer's whole
// contacts list would cost up to parley.MaxContacts contacts from every
// one of their conversations, per message. Once they are contacts, the
// first user's list is read into the cache (once: it holds the other
// from then on, so their next messages find them contacts there and ask
// nothing), as their next presence change would read it anyway.
func (s *Server) announceDirectContacts(a, b string) {
	if !s.pres.isOnline(a) || !s.pres.isOnline(b) || !s.hub.local(a, b) {
		s.hub.contacts.forgetPair(a, b)
		return
	}
	t, ok := s.tie(a, b, true)
	if ok && !t.Contacts() {
		return // no contacts (one of them never wrote, or a block): nothing is revealed, and the lists are right
	}
	s.hub.contacts.forgetPair(a, b)
	if ok {
		s.announceTie(a, b)
	}
}

// announceContacts is announceDirectContacts for a pair whose cached
// lists are dropped already (an unblock or an accepted request); with
// groups, a group both are members of makes them contacts too
// (parley.Consenter.Tie then reads a's memberships). A store without
// consent (no parley.Consenter; Parley's both have it) announces nothing.
func (s *Server) announceContacts(a, b string, groups bool) {
	if !s.pres.isOnline(a) || !s.pres.isOnline(b) || !s.hub.local(a, b) {
		return
	}
	if t, ok := s.tie(a, b, groups); !ok || !t.Contacts() {
		return // no contacts (one of them never wrote, or a block): nothing is revealed
	}
	s.announceTie(a, b)
}

// announceTie tells a and b, online and contacts now, that the other is
// online, and reads a's list into the cache.
func (s *Server) announceTie(a, b string) {
	at := parley.Now()
	s.hub.deliverPresence([]string{b}, a, true, at)
	s.hub.deliverPresence([]string{a}, b, true, at)
	s.presenceContacts(a)
}

// tie reads what links users a and b (parley.Consenter.Tie), in at most
// 5 s; !ok when it could not be read (logged) or the store has no
// consent (and so no blocks, and no way to ask).
func (s *Server) tie(a, b string, groups bool) (parley.Tie, bool) {
	cs, ok := s.hub.store.(parley.Consenter)
	if !ok {
		return parley.Tie{}, false
	}
	ctx, cancel := context.WithTimeout(s.bgCtx, 5*time.Second)
	defer cancel()
	t, err := cs.Tie(ctx, a, b, groups)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("presence: what links two users", "err", err)
		}
		return parley.Tie{}, false
	}
	return t, true
}

// announceNewContacts tells users who just became contacts (a conversation
// was created, or members were added) which of each other are online:
// userOnline goes only to contacts, so without this a new contact's dot
// would stay grey until their next transition. For an addition, the added
// users hear about every online member and the members about the added
// users; for a creation, every member hears about every other. Members
// who blocked one another are no contacts and hear nothing of each other
// (their userOffline would never reach each other: the dot would stay
// green). It runs on the hub's run goroutine right after the event is
// queued, so each client sees the conversation before the presence that
// refers to it, and only when a member has a connection on this node
// (each node tells its own connections). The blocks come from one store
// read bounded by the members' blocked lists (parley.Consenter's
// BlocksAmong), not from the members' contacts lists, which would cost
// every online member's whole list, on this goroutine, per group change;
// so an addition to a group that is not among a user's recent ones
// (parley.MaxContactGroups) may announce users whose lists do not hold
// each other (docs/protocol.md, section 6).
//
// A new direct conversation makes no contacts (both users must write in
// it first: announceDirectContacts), so it announces nothing.
func (s *Server) announceNewContacts(ev parley.Event) {
	if ev.Conversation == nil || ev.Conversation.Kind == parley.Direct {
		return
	}
	members := make([]string, 0, len(ev.Conversation.Members))
	for _, m := range ev.Conversation.Members {
		members = append(members, m.UserID)
	}
	if len(members) < 2 || !s.hub.local(members...) || !slices.ContainsFunc(members, s.pres.isOnline) {
		return // nobody to tell here, or nobody to tell of
	}
	blocked, ok := s.blocksAmong(members)
	if !ok {
		return // announce nothing rather than what a block may forbid
	}
	added := members
	if ev.Change == parley.ChangeMembersAdded {
		added = ev.UserIDs
	}
	isAdded := make(map[string]bool, len(added))
	for _, id := range added {
		isAdded[id] = true
	}
	at := parley.Now()
	for _, subject := range members {
		if !s.pres.isOnline(subject) {
			continue
		}
		// Tell the subject's new contacts: everyone, if the subject was
		// added (or the conversation is new); otherwise only the added.
		var to []string
		for _, other := range members {
			if other != subject && (isAdded[subject] || isAdded[other]) && !blocked[[2]string{subject, other}] {
				to = append(to, other)
			}
		}
		if len(to) > 0 {
			s.hub.deliverPresence(to, subject, true, at)
		}
	}
}

// blocksAmong returns the blocks among users (at most
// parley.MaxGroupMembers), each pair in both orders; !ok when they could
// not be read (logged). A store without blocks has none.
func (s *Server) blocksAmong(users []string) (map[[2]string]bool, bool) {
	cs, ok := s.hub.store.(parley.Consenter)
	if !ok {
		return nil, true
	}
	ctx, cancel := context.WithTimeout(s.bgCtx, 5*time.Second)
	defer cancel()
	pairs, err := cs.BlocksAmong(ctx, users)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("presence: blocks among new contacts", "err", err)
		}
		return nil, false
	}
	m := make(map[[2]string]bool, 2*len(pairs))
	for _, p := range pairs {
		m[p] = true
		m[[2]string{p[1], p[0]}] = true
	}
	return m, true
}
