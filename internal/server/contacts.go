package server

import (
	"context"
	"sync"

	"github.com/parleychat/parley"
)

// maxCachedContacts bounds the contacts cache; past it the cache starts
// over (a connect then costs one store read, as without the cache).
const maxCachedContacts = 200_000

// contactsCache remembers Store.Contacts per user, because every connect
// (welcome.online) and every presence transition (who to tell) asks for
// it, and a reconnect storm asks for every user at once.
//
// Contacts change only with membership, and every membership change is a
// durable conversationUpdated event whose audience holds every user whose
// contacts it changes (the members, plus removed users). The hub delivers
// every durable event in position order, from every node, and calls
// invalidate for these: the cache is as fresh as the node's event stream.
// A read that raced an invalidation is not stored (gen), so a stale list
// cannot outlive the event that changed it. Safe for concurrent use; the
// returned slices are shared and must not be modified.
type contactsCache struct {
	store parley.Store

	mu  sync.Mutex
	gen uint64 // incremented by every invalidation
	m   map[string][]string
}

func newContactsCache(store parley.Store) *contactsCache {
	return &contactsCache{store: store, m: make(map[string][]string)}
}

// get returns user's contacts, from the cache or the store.
func (cc *contactsCache) get(ctx context.Context, user string) ([]string, error) {
	cc.mu.Lock()
	ids, ok := cc.m[user]
	gen := cc.gen
	cc.mu.Unlock()
	if ok {
		return ids, nil
	}
	ids, err := cc.store.Contacts(ctx, user)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if cc.gen == gen {
		if len(cc.m) >= maxCachedContacts {
			clear(cc.m)
		}
		cc.m[user] = ids
	}
	cc.mu.Unlock()
	return ids, nil
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
	cc.mu.Unlock()
	got, err := bulk.ContactsOf(ctx, users)
	if err != nil {
		return err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.gen != gen || len(cc.m)+len(got) > maxCachedContacts {
		return nil
	}
	for u, ids := range got {
		if _, ok := cc.m[u]; !ok {
			cc.m[u] = ids
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
		delete(cc.m, u)
	}
}

// announceNewContacts tells users who just became contacts (a conversation
// was created, or members were added) which of each other are online:
// userOnline goes only to contacts, so without this a new contact's dot
// would stay grey until their next transition. For an addition, the added
// users hear about every online member and the members about the added
// users; for a creation, every member hears about every other. It runs on
// the hub's run goroutine right after the event is queued, so each client
// sees the conversation before the presence that refers to it.
func (s *Server) announceNewContacts(ev parley.Event) {
	if ev.Conversation == nil {
		return
	}
	members := make([]string, 0, len(ev.Conversation.Members))
	for _, m := range ev.Conversation.Members {
		members = append(members, m.UserID)
	}
	added := members
	if ev.Change == parley.ChangeMembersAdded {
		added = ev.UserIDs
	}
	isAdded := make(map[string]bool, len(added))
	for _, id := range added {
		isAdded[id] = true
	}
	for _, subject := range members {
		if !s.pres.isOnline(subject) {
			continue
		}
		// Tell the subject's new contacts: everyone, if the subject was
		// added (or the conversation is new); otherwise only the added.
		var to []string
		for _, other := range members {
			if other != subject && (isAdded[subject] || isAdded[other]) {
				to = append(to, other)
			}
		}
		if len(to) > 0 {
			s.hub.deliverEphemeral(to, encodeEvent(parley.Event{Type: parley.EventUserOnline, UserID: subject, At: parley.Now()}))
		}
	}
}
