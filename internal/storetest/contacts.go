package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// testContactsLimit: a user in more groups than parley.MaxContacts
// contacts fill has parley.MaxContacts contacts, the members of their
// most recently active conversations first (ties by id), a direct partner
// of a recent conversation among them and one of an old conversation not;
// a user who blocked them takes no place; a group member is ranked by the
// most recent conversation they share. The bound is per user, so a member
// of the oldest group left out keeps the user among their own contacts.
// The bulk read agrees with Contacts for each user.
func testContactsLimit(t *testing.T, s parley.Store) {
	const others = parley.MaxGroupMembers - 1 // a group's members besides the victim
	// Four full groups: three of distinct users, and a fourth of new users
	// plus one of the first group's, which ranks it by the fourth.
	pool := newUsers(t, s, "cl", 4*others-1)
	victim, old, recent, stranger := newUser(t, s, "clv"), newUser(t, s, "clo"), newUser(t, s, "clr"), newUser(t, s, "cls")
	groupsMembers := [][]parley.User{
		pool[:others],
		pool[others : 2*others],
		pool[2*others : 3*others],
		append([]parley.User{pool[0]}, pool[3*others:]...),
	}

	// Oldest first: a direct conversation both wrote in, the groups, and
	// the newest, another direct conversation both wrote in. A stranger's
	// direct conversation the victim never answered makes no contact.
	talked := func(a, b parley.User) parley.Conversation {
		d := newDirect(t, s, a, b)
		send(t, s, d.ID, a, "hi")
		send(t, s, d.ID, b, "hi")
		return d
	}
	convs := []parley.Conversation{talked(victim, old)}
	for i, ms := range groupsMembers {
		convs = append(convs, newGroup(t, s, victim, fmt.Sprint("G", i), ms...))
	}
	convs = append(convs, talked(recent, victim))
	sd := newDirect(t, s, stranger, victim)
	send(t, s, sd.ID, stranger, "hello?")
	// A member of the newest group blocked the victim.
	blocker := groupsMembers[3][1]
	if _, err := optional[parley.Consenter](t, s).Block(ctx(t), blocker.ID, victim.ID); err != nil {
		t.Fatal(err)
	}

	// What the rule keeps: conversations newest first, each one's new
	// members by id, until MaxContacts.
	var want []string
	seen := map[string]bool{victim.ID: true, blocker.ID: true}
	for _, c := range slices.Backward(convs) {
		members := memberIDs(must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), victim.ID, c.ID)))
		slices.Sort(members)
		for _, id := range members {
			if !seen[id] && len(want) < parley.MaxContacts {
				seen[id] = true
				want = append(want, id)
			}
		}
	}
	slices.Sort(want)
	got := must[[]string](t, "Contacts")(s.Contacts(ctx(t), victim.ID))
	if len(got) != parley.MaxContacts {
		t.Errorf("Contacts(victim) has %d users, want %d", len(got), parley.MaxContacts)
	}
	if !slices.Equal(got, want) {
		t.Errorf("Contacts(victim) differs from the members of the most recent conversations: %d extra, %d missing",
			len(diff(got, want)), len(diff(want, got)))
	}
	for _, c := range []struct {
		what string
		id   string
		in   bool
	}{
		{"the partner of the newest direct conversation", recent.ID, true},
		{"the partner of the oldest direct conversation", old.ID, false},
		{"a member of the oldest group also in the newest", pool[0].ID, true},
		{"a member of the newest group who blocked the victim", blocker.ID, false},
		{"a stranger the victim never answered", stranger.ID, false},
	} {
		if _, in := slices.BinarySearch(got, c.id); in != c.in {
			t.Errorf("Contacts(victim) holds %s: %v, want %v", c.what, in, c.in)
		}
	}

	// The last member of the oldest group (by id) is left out of the
	// victim's contacts, but has the victim among theirs.
	first := ids(groupsMembers[0][1:]...) // but pool[0], ranked by the newest group
	slices.Sort(first)
	out := first[len(first)-1]
	if slices.Contains(got, out) || !slices.Contains(must[[]string](t, "Contacts")(s.Contacts(ctx(t), out)), victim.ID) {
		t.Errorf("the oldest group's last member: in the victim's contacts %v, the victim in theirs %v; want false, true",
			slices.Contains(got, out), slices.Contains(must[[]string](t, "Contacts")(s.Contacts(ctx(t), out)), victim.ID))
	}
	checkContactsOf(t, s, victim, old, recent, stranger, pool[0], blocker, pool[len(pool)-1])
}

// testContactsWindow: contacts come from a user's
// parley.MaxContactGroups most recently active groups (and their
// parley.MaxContacts most recent direct conversations they wrote in): an
// older group's members are no contacts, even with room left, while an
// older direct conversation still counts.
func testContactsWindow(t *testing.T, s parley.Store) {
	victim, oldest, friend, partner := newUser(t, s, "cwv"), newUser(t, s, "cwo"), newUser(t, s, "cwf"), newUser(t, s, "cwp")
	d := newDirect(t, s, victim, partner)
	send(t, s, d.ID, victim, "hi")
	send(t, s, d.ID, partner, "hi")
	newGroup(t, s, victim, "oldest", oldest)
	groups := func(n int) {
		t.Helper()
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if _, _, err := s.CreateGroup(ctx(t), victim.ID, fmt.Sprint("g", i), []string{friend.ID}); err != nil {
					t.Errorf("CreateGroup: %v", err)
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	// The oldest group and parley.MaxContactGroups-1 newer ones fill the
	// window of groups.
	groups(parley.MaxContactGroups - 1)
	if got := must[[]string](t, "Contacts")(s.Contacts(ctx(t), victim.ID)); !sameSet(got, ids(oldest, friend, partner)) {
		t.Errorf("with the oldest group in the window: Contacts(victim) = %v, want %v", got, ids(oldest, friend, partner))
	}
	checkContactsOf(t, s, victim, oldest, friend, partner)
	groups(1)
	if got := must[[]string](t, "Contacts")(s.Contacts(ctx(t), victim.ID)); !sameSet(got, ids(friend, partner)) {
		t.Errorf("with the oldest group out of the window: Contacts(victim) = %v, want %v", got, ids(friend, partner))
	}
	checkContactsOf(t, s, victim, oldest, friend, partner)
}

// newUsers registers n users at once, named from prefix.
func newUsers(t *testing.T, s parley.Store, prefix string, n int) []parley.User {
	t.Helper()
	users := make([]parley.User, n)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			u, err := s.CreateUser(ctx(t), fmt.Sprintf("%s%d_%d", prefix, userCount.Add(1), i), nil)
			if err != nil {
				t.Errorf("CreateUser: %v", err)
			}
			users[i] = u
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return users
}

// diff returns the ids of a that b lacks.
func diff(a, b []string) []string {
	var out []string
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}
