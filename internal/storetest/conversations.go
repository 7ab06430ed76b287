package storetest

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/parleychat/parley"
)

func testDirect(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "dira"), newUser(t, s, "dirb"), newUser(t, s, "dirc")
	conv, events, err := s.CreateDirect(ctx(t), a.ID, b.ID)
	if err != nil {
		t.Fatalf("CreateDirect: %v", err)
	}
	if conv.Kind != parley.Direct || conv.ID == "" || conv.CreatedBy != a.ID || conv.LastSeq != 0 {
		t.Errorf("CreateDirect = %+v", conv)
	}
	if !sameSet(memberIDs(conv), ids(a, b)) {
		t.Errorf("members = %v, want %v", memberIDs(conv), ids(a, b))
	}
	e := oneEvent(t, "CreateDirect", events, parley.EventConversationUpdated)
	if e.Change != parley.ChangeCreated || e.ConversationID != conv.ID || e.UserID != a.ID ||
		e.Conversation == nil || e.Conversation.ID != conv.ID || !sameSet(e.Audience, ids(a, b)) {
		t.Errorf("created event = %+v", e)
	}

	// Idempotent, in both orders.
	for _, pair := range [][2]parley.User{{a, b}, {b, a}} {
		again, events, err := s.CreateDirect(ctx(t), pair[0].ID, pair[1].ID)
		if err != nil || again.ID != conv.ID || len(events) != 0 {
			t.Errorf("CreateDirect(%s, %s) again = %s, %d events, %v; want %s, none",
				pair[0].Name, pair[1].Name, again.ID, len(events), err, conv.ID)
		}
	}
	other := must[parley.Conversation](t, "CreateDirect a-c")(func() (parley.Conversation, error) {
		c, _, err := s.CreateDirect(ctx(t), a.ID, c.ID)
		return c, err
	}())
	if other.ID == conv.ID {
		t.Errorf("a-b and a-c share conversation %s", conv.ID)
	}

	_, _, err = s.CreateDirect(ctx(t), a.ID, a.ID)
	wantCode(t, "CreateDirect with oneself", err, parley.EINVALID)
	_, _, err = s.CreateDirect(ctx(t), a.ID, "nobody")
	wantCode(t, "CreateDirect with an unknown user", err, parley.ENOTFOUND)

	// A direct conversation cannot be changed.
	title := "x"
	_, _, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Title: &title})
	wantCode(t, "renaming a direct conversation", err, parley.EINVALID)
	_, _, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{c.ID}})
	wantCode(t, "adding to a direct conversation", err, parley.EINVALID)
}

func testGroup(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "grpa"), newUser(t, s, "grpb"), newUser(t, s, "grpc")
	// Duplicates and the creator among the members are ignored.
	conv, events, err := s.CreateGroup(ctx(t), a.ID, "Team", []string{b.ID, c.ID, b.ID, a.ID})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	if conv.Kind != parley.Group || conv.Title != "Team" || conv.CreatedBy != a.ID {
		t.Errorf("CreateGroup = %+v", conv)
	}
	if len(conv.Members) != 3 || !sameSet(memberIDs(conv), ids(a, b, c)) {
		t.Errorf("members = %v, want %v", memberIDs(conv), ids(a, b, c))
	}
	for _, m := range conv.Members {
		if m.Name == "" {
			t.Errorf("member %s has no name", m.UserID)
		}
	}
	e := oneEvent(t, "CreateGroup", events, parley.EventConversationUpdated)
	if e.Change != parley.ChangeCreated || !sameSet(e.Audience, ids(a, b, c)) || e.UserName != a.Name {
		t.Errorf("created event = %+v", e)
	}
	// Each member sees it.
	for _, u := range []parley.User{a, b, c} {
		got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), u.ID, conv.ID))
		if got.ID != conv.ID || got.Title != "Team" {
			t.Errorf("Conversation as %s = %+v", u.Name, got)
		}
	}
	// A group of one is allowed.
	if _, _, err := s.CreateGroup(ctx(t), a.ID, "Notes", nil); err != nil {
		t.Errorf("CreateGroup alone: %v", err)
	}

	_, _, err = s.CreateGroup(ctx(t), a.ID, strings.Repeat("t", parley.MaxTitleRunes+1), nil)
	wantCode(t, "CreateGroup with a long title", err, parley.EINVALID)
	_, _, err = s.CreateGroup(ctx(t), a.ID, "bad\xff", nil)
	wantCode(t, "CreateGroup with an invalid title", err, parley.EINVALID)
	_, _, err = s.CreateGroup(ctx(t), a.ID, "x", []string{b.ID, "nobody"})
	wantCode(t, "CreateGroup with an unknown member", err, parley.ENOTFOUND)
	many := make([]string, parley.MaxGroupMembers)
	for i := range many {
		many[i] = "u" + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
	}
	_, _, err = s.CreateGroup(ctx(t), a.ID, "big", many)
	wantCode(t, "CreateGroup over MaxGroupMembers", err, parley.EINVALID)
	// A title of exactly MaxTitleRunes multi-byte runes is fine.
	if _, _, err := s.CreateGroup(ctx(t), a.ID, strings.Repeat("é", parley.MaxTitleRunes), nil); err != nil {
		t.Errorf("CreateGroup with a %d-rune title: %v", parley.MaxTitleRunes, err)
	}
}

func testUpdateConversation(t *testing.T, s parley.Store) {
	a, b, c, d := newUser(t, s, "upa"), newUser(t, s, "upb"), newUser(t, s, "upc"), newUser(t, s, "upd")
	conv := newGroup(t, s, a, "Old", b, c)

	// Rename by an owner (the creator).
	title := "New"
	got, events, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Title: &title})
	if err != nil {
		t.Fatalf("rename: %v", err)
	}
	e := oneEvent(t, "rename", events, parley.EventConversationUpdated)
	if got.Title != "New" || e.Change != parley.ChangeRenamed || e.UserID != a.ID ||
		e.Conversation.Title != "New" || !sameSet(e.Audience, ids(a, b, c)) {
		t.Errorf("rename = %+v, event %+v", got, e)
	}
	// The same title again changes nothing.
	_, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Title: &title})
	if err != nil || len(events) != 0 {
		t.Errorf("rename to the same title: %d events, %v", len(events), err)
	}

	// Add by an owner; the new member is in the audience.
	got, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{d.ID, a.ID}})
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	e = oneEvent(t, "add", events, parley.EventConversationUpdated)
	if e.Change != parley.ChangeMembersAdded || !slices.Equal(e.UserIDs, ids(d)) ||
		!sameSet(e.Audience, ids(a, b, c, d)) || !sameSet(memberIDs(got), ids(a, b, c, d)) {
		t.Errorf("add = %v, event %+v", memberIDs(got), e)
	}

	// The creator removes b: b is in the removal's audience.
	got, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Remove: []string{b.ID}})
	if err != nil {
		t.Fatalf("remove: %v", err)
	}
	e = oneEvent(t, "remove", events, parley.EventConversationUpdated)
	if e.Change != parley.ChangeMembersRemoved || !slices.Equal(e.UserIDs, ids(b)) ||
		!sameSet(e.Audience, ids(a, b, c, d)) || !sameSet(memberIDs(got), ids(a, c, d)) {
		t.Errorf("remove = %v, event %+v", memberIDs(got), e)
	}
	_, err = s.Conversation(ctx(t), b.ID, conv.ID)
	wantCode(t, "Conversation by a removed member", err, parley.ENOTFOUND)

	// Leave: c removes itself.
	_, events, err = s.UpdateConversation(ctx(t), c.ID, conv.ID, parley.ConversationChange{Remove: []string{c.ID}})
	if err != nil {
		t.Fatalf("leave: %v", err)
	}
	e = oneEvent(t, "leave", events, parley.EventConversationUpdated)
	if !sameSet(e.Audience, ids(a, c, d)) || !slices.Equal(e.UserIDs, ids(c)) {
		t.Errorf("leave event = %+v", e)
	}
	if ids := must[[]string](t, "MemberIDs")(s.MemberIDs(ctx(t), a.ID, conv.ID)); !sameSet(ids, []string{a.ID, d.ID}) {
		t.Errorf("MemberIDs after leave = %v", ids)
	}

	// All three kinds at once: one event each, in order rename, add, remove.
	title = "Newer"
	_, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{
		Title: &title, Add: []string{b.ID}, Remove: []string{d.ID},
	})
	if err != nil {
		t.Fatalf("combined change: %v", err)
	}
	if len(events) != 3 || events[0].Change != parley.ChangeRenamed ||
		events[1].Change != parley.ChangeMembersAdded || events[2].Change != parley.ChangeMembersRemoved ||
		events[1].Pos != events[0].Pos+1 || events[2].Pos != events[1].Pos+1 {
		t.Fatalf("combined change events = %+v", events)
	}
	// b, back, reads the conversation again.
	if _, err := s.Conversation(ctx(t), b.ID, conv.ID); err != nil {
		t.Errorf("Conversation by a re-added member: %v", err)
	}
}

func testUpdateConversationRules(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "rula"), newUser(t, s, "rulb"), newUser(t, s, "rulc")
	conv := newGroup(t, s, a, "G", b, c)

	// Only an owner may remove others; nothing changes when refused.
	title := "changed"
	_, _, err := s.UpdateConversation(ctx(t), b.ID, conv.ID, parley.ConversationChange{Title: &title, Remove: []string{c.ID}})
	wantCode(t, "a member removing another", err, parley.EFORBIDDEN)
	got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, conv.ID))
	if got.Title != "G" || len(got.Members) != 3 {
		t.Errorf("a refused change changed the conversation: %+v", got)
	}

	_, _, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{"nobody"}})
	wantCode(t, "adding an unknown user", err, parley.ENOTFOUND)
	long := strings.Repeat("t", parley.MaxTitleRunes+1)
	_, _, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Title: &long})
	wantCode(t, "renaming to a long title", err, parley.EINVALID)

	// Removing a non-member or an empty change: no events.
	outsider := newUser(t, s, "rulo")
	_, events, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Remove: []string{outsider.ID}})
	if err != nil || len(events) != 0 {
		t.Errorf("removing a non-member: %d events, %v", len(events), err)
	}
	_, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{})
	if err != nil || len(events) != 0 {
		t.Errorf("empty change: %d events, %v", len(events), err)
	}
	// A non-member cannot change it.
	_, _, err = s.UpdateConversation(ctx(t), outsider.ID, conv.ID, parley.ConversationChange{Add: []string{outsider.ID}})
	wantCode(t, "a non-member adding themselves", err, parley.ENOTFOUND)
}

func testConversationsPage(t *testing.T, s parley.Store) { ConversationsPage(t, s, nil) }

// ConversationsPage: the list read a page at a time, at every page size,
// is the list Conversations reads, in its order, with the same views and
// members; a declined request is left out of both. exec, when not nil,
// runs SQL on the store's database: every conversation is then given
// the same activity time, so the order rests on the ids alone (equal
// times are rare otherwise: they are taken to the microsecond).
func ConversationsPage(t *testing.T, s parley.Store, exec func(t *testing.T, stmt string)) {
	p := optional[parley.ConversationPager](t, s)
	a, b, c := newUser(t, s, "pagea"), newUser(t, s, "pageb"), newUser(t, s, "pagec")
	newDirect(t, s, a, b)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if _, _, err := s.CreateGroup(ctx(t), b.ID, fmt.Sprint("P", i), []string{a.ID, c.ID}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	g := newGroup(t, s, a, "G", b, c)
	send(t, s, g.ID, b, "to the top")
	stranger := newUser(t, s, "pagestranger")
	declined := newDirect(t, s, stranger, a)
	if _, _, err := optional[parley.Consenter](t, s).AnswerRequest(ctx(t), a.ID, declined.ID, false); err != nil {
		t.Fatal(err)
	}
	if exec != nil {
		exec(t, `UPDATE conversations SET last_activity_at = (SELECT MIN(last_activity_at) FROM conversations)`)
	}
	full := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID))
	if len(full) != 8 {
		t.Fatalf("Conversations: %d, want 8 (the declined request left out)", len(full))
	}
	if exec != nil && !full[0].LastActivityAt.Equal(full[len(full)-1].LastActivityAt) {
		t.Fatalf("activity times not made equal: %v to %v", full[0].LastActivityAt, full[len(full)-1].LastActivityAt)
	}
	for _, limit := range []int{1, 2, 3, 7, 8, 100} {
		var got []parley.Conversation
		var at time.Time
		var after string
		for range len(full) + 1 {
			page := must[[]parley.Conversation](t, "ConversationsPage")(p.ConversationsPage(ctx(t), a.ID, at, after, limit))
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d", limit, len(page))
			}
			got = append(got, page...)
			if len(page) < limit {
				break
			}
			at, after = page[len(page)-1].LastActivityAt, page[len(page)-1].ID
		}
		if diff := cmp.Diff(full, got); diff != "" {
			t.Fatalf("limit %d: pages differ from Conversations (-full +pages):\n%s", limit, diff)
		}
	}
	_, err := p.ConversationsPage(ctx(t), a.ID, time.Time{}, "", 0)
	wantCode(t, "ConversationsPage(limit 0)", err, parley.EINVALID)
}

func testConversations(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "lista"), newUser(t, s, "listb"), newUser(t, s, "listc")
	d1 := newDirect(t, s, a, b)
	g := newGroup(t, s, a, "G", b, c)
	d2 := newDirect(t, s, a, c)

	// Newest activity first: d2 (created last), g, d1.
	list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID))
	wantOrder := func(want ...string) {
		t.Helper()
		var got []string
		for _, c := range list {
			got = append(got, c.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("Conversations order = %v, want %v", got, want)
		}
	}
	wantOrder(d2.ID, g.ID, d1.ID)

	// A message moves a conversation to the top, with its last message.
	m := send(t, s, d1.ID, b, "hi a")
	list = must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID))
	wantOrder(d1.ID, d2.ID, g.ID)
	top := list[0]
	if top.LastMessage == nil || top.LastMessage.ID != m.ID || top.LastMessage.Text != "hi a" ||
		top.LastSeq != 1 || top.UnreadCount != 1 || top.ReadSeq != 0 || !top.LastActivityAt.Equal(m.CreatedAt) {
		t.Errorf("top conversation = %+v", top)
	}
	if !sameSet(memberIDs(top), ids(a, b)) {
		t.Errorf("top members = %v", memberIDs(top))
	}
	if list[1].LastMessage != nil || list[1].UnreadCount != 0 {
		t.Errorf("conversation without messages = %+v", list[1])
	}

	send(t, s, g.ID, c, "group hi")
	list = must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID))
	wantOrder(g.ID, d1.ID, d2.ID)
	if !sameSet(memberIDs(list[0]), ids(a, b, c)) {
		t.Errorf("group members in list = %v", memberIDs(list[0]))
	}

	// A deleted last message shows as a tombstone.
	last := send(t, s, g.ID, a, "oops")
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, g.ID, last.ID); err != nil {
		t.Fatal(err)
	}
	gv := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, g.ID))
	if gv.LastMessage == nil || !gv.LastMessage.Deleted || gv.LastMessage.Text != "" {
		t.Errorf("last message after delete = %+v", gv.LastMessage)
	}

	// Another user's list holds only their conversations; a user with none
	// gets an empty list.
	list = must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), c.ID))
	if len(list) != 2 {
		t.Errorf("c has %d conversations, want 2", len(list))
	}
	lonely := newUser(t, s, "lonely")
	list = must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), lonely.ID))
	if len(list) != 0 {
		t.Errorf("a new user has %d conversations", len(list))
	}
	// After leaving a group it is no longer listed.
	if _, _, err := s.UpdateConversation(ctx(t), c.ID, g.ID, parley.ConversationChange{Remove: []string{c.ID}}); err != nil {
		t.Fatal(err)
	}
	list = must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), c.ID))
	if len(list) != 1 || list[0].ID != d2.ID {
		t.Errorf("c's conversations after leaving = %+v", list)
	}
}

func testContacts(t *testing.T, s parley.Store) {
	a, b, c, d := newUser(t, s, "cona"), newUser(t, s, "conb"), newUser(t, s, "conc"), newUser(t, s, "cond")
	newDirect(t, s, a, b)
	g := newGroup(t, s, a, "G", b, c)
	newGroup(t, s, d, "other")
	if got := must[[]string](t, "Contacts")(s.Contacts(ctx(t), a.ID)); !sameSet(got, ids(b, c)) {
		t.Errorf("Contacts(a) = %v, want %v", got, ids(b, c))
	}
	if got := must[[]string](t, "Contacts")(s.Contacts(ctx(t), d.ID)); len(got) != 0 {
		t.Errorf("Contacts(d) = %v, want none", got)
	}
	checkContactsOf(t, s, a, b, c, d)
	// Leaving ends the contact.
	if _, _, err := s.UpdateConversation(ctx(t), c.ID, g.ID, parley.ConversationChange{Remove: []string{c.ID}}); err != nil {
		t.Fatal(err)
	}
	if got := must[[]string](t, "Contacts")(s.Contacts(ctx(t), c.ID)); len(got) != 0 {
		t.Errorf("Contacts(c) after leaving = %v", got)
	}
	checkContactsOf(t, s, a, b, c, d)
}

// testContactsDirect: a direct conversation makes its users contacts only
// once both have written in it; a stranger who opens one, and even writes
// in it, is not a contact of a user who never answered. Both send paths
// (SendMessage, and SendMessages when the store has it) record it.
func testContactsDirect(t *testing.T, s parley.Store) {
	stranger, victim, friend := newUser(t, s, "stranger"), newUser(t, s, "victim"), newUser(t, s, "friend")
	contacts := func(u parley.User) []string { return must[[]string](t, "Contacts")(s.Contacts(ctx(t), u.ID)) }
	d := newDirect(t, s, stranger, victim)
	if got := contacts(victim); len(got) != 0 {
		t.Errorf("Contacts(victim) after a stranger opened a direct conversation = %v, want none", got)
	}
	for i := range 3 {
		send(t, s, d.ID, stranger, fmt.Sprintf("hello %d", i))
	}
	if got, got2 := contacts(victim), contacts(stranger); len(got) != 0 || len(got2) != 0 {
		t.Errorf("after only the stranger wrote: Contacts(victim) = %v, Contacts(stranger) = %v, want none", got, got2)
	}
	checkContactsOf(t, s, stranger, victim, friend)
	// The victim answers: now both took part.
	replyMany(t, s, d.ID, victim, "who are you?", "oh, hi")
	if got := contacts(victim); !sameSet(got, ids(stranger)) {
		t.Errorf("Contacts(victim) after both wrote = %v, want %v", got, ids(stranger))
	}
	if got := contacts(stranger); !sameSet(got, ids(victim)) {
		t.Errorf("Contacts(stranger) after both wrote = %v, want %v", got, ids(victim))
	}
	// The other order, and the other send path for the opener.
	f := newDirect(t, s, friend, victim)
	send(t, s, f.ID, victim, "you there?")
	if got := contacts(friend); len(got) != 0 {
		t.Errorf("Contacts(friend) before writing = %v, want none", got)
	}
	replyMany(t, s, f.ID, friend, "yes", "here")
	if got := contacts(victim); !sameSet(got, ids(stranger, friend)) {
		t.Errorf("Contacts(victim) = %v, want %v", got, ids(stranger, friend))
	}
	// A group counts at once, with nobody having written.
	newGroup(t, s, stranger, "G", friend)
	if got := contacts(friend); !sameSet(got, ids(victim, stranger)) {
		t.Errorf("Contacts(friend) with a common group = %v, want %v", got, ids(victim, stranger))
	}
	checkContactsOf(t, s, stranger, victim, friend)
}

// replyMany sends texts from u in order, in one SendMessages call.
func replyMany(t *testing.T, s parley.Store, convID string, u parley.User, texts ...string) {
	t.Helper()
	ms := optional[parley.MultiSender](t, s)
	nms := make([]parley.NewMessage, len(texts))
	for i, text := range texts {
		nms[i] = parley.NewMessage{ConversationID: convID, SenderID: u.ID, ClientID: clientID(), Text: text}
	}
	for i, r := range sendMany(t, ctx(t), ms, nms) {
		if r.err != nil {
			t.Fatalf("send %d: %v", i, r.err)
		}
	}
}

// checkContactsOf: reading many users at once (BulkReader) gives what
// User and Contacts give for each, an unknown user included.
func checkContactsOf(t *testing.T, s parley.Store, users ...parley.User) {
	t.Helper()
	bulk := optional[parley.BulkReader](t, s)
	all := append(ids(users...), "no-such-user")
	got0 := must[[]parley.User](t, "UsersOf")(bulk.UsersOf(ctx(t), all))
	if len(got0) != len(users) {
		t.Errorf("UsersOf(%v) = %v", all, got0)
	}
	for _, u := range got0 {
		if want := must[parley.User](t, "User")(s.User(ctx(t), u.ID)); u.ID != want.ID || u.Name != want.Name || !u.CreatedAt.Equal(want.CreatedAt) {
			t.Errorf("UsersOf gave %+v, User gives %+v", u, want)
		}
	}
	got := must[map[string][]string](t, "ContactsOf")(bulk.ContactsOf(ctx(t), all))
	if len(got) != len(all) {
		t.Errorf("ContactsOf(%v) has %d users", all, len(got))
	}
	for _, id := range all {
		want := must[[]string](t, "Contacts")(s.Contacts(ctx(t), id))
		if g, ok := got[id]; !ok || !slices.Equal(g, want) {
			t.Errorf("ContactsOf[%s] = %v, Contacts = %v", id, g, want)
		}
	}
}

// testGroupLimit: a group holds at most MaxGroupMembers, counting the
// creator, at creation and when adding.
func testGroupLimit(t *testing.T, s parley.Store) {
	users := make([]parley.User, parley.MaxGroupMembers+1)
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			u, err := s.CreateUser(ctx(t), fmt.Sprintf("lim%d_%d", userCount.Add(1), i), nil)
			if err != nil {
				t.Errorf("CreateUser: %v", err)
			}
			users[i] = u
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	creator, rest := users[0], users[1:]
	_, _, err := s.CreateGroup(ctx(t), creator.ID, "too big", ids(rest...))
	wantCode(t, "CreateGroup with MaxGroupMembers+1 members", err, parley.EINVALID)
	full := newGroup(t, s, creator, "full", rest[:parley.MaxGroupMembers-1]...)
	if len(full.Members) != parley.MaxGroupMembers {
		t.Fatalf("full group has %d members, want %d", len(full.Members), parley.MaxGroupMembers)
	}
	last := rest[len(rest)-1]
	_, _, err = s.UpdateConversation(ctx(t), creator.ID, full.ID, parley.ConversationChange{Add: []string{last.ID}})
	wantCode(t, "adding to a full group", err, parley.EINVALID)
	// Adds are counted before the removals of the same change, so a
	// change never needs an order to be valid.
	_, _, err = s.UpdateConversation(ctx(t), creator.ID, full.ID, parley.ConversationChange{Add: []string{last.ID}, Remove: []string{rest[0].ID}})
	wantCode(t, "add and remove in a full group", err, parley.EINVALID)
	got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), creator.ID, full.ID))
	if len(got.Members) != parley.MaxGroupMembers || slices.Contains(memberIDs(got), last.ID) {
		t.Errorf("after refused changes the group has %d members", len(got.Members))
	}
}

// roles returns each member's role in c.
func roles(c parley.Conversation) map[string]parley.Role {
	out := make(map[string]parley.Role, len(c.Members))
	for _, m := range c.Members {
		out[m.UserID] = m.Role
	}
	return out
}

func testRoles(t *testing.T, s parley.Store) {
	a, b, c, d := newUser(t, s, "rola"), newUser(t, s, "rolb"), newUser(t, s, "rolc"), newUser(t, s, "rold")
	conv := newGroup(t, s, a, "G", b, c)

	// The creator is the first owner, everyone else a member, in every
	// view of the group.
	want := map[string]parley.Role{a.ID: parley.RoleOwner, b.ID: parley.RoleMember, c.ID: parley.RoleMember}
	if got := roles(conv); !maps.Equal(got, want) {
		t.Errorf("CreateGroup roles = %v, want %v", got, want)
	}
	list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), b.ID))
	if len(list) != 1 || !maps.Equal(roles(list[0]), want) {
		t.Errorf("Conversations roles = %+v", list)
	}

	// A member may do nothing but leave: each of these is EFORBIDDEN and
	// changes nothing.
	title := "mine"
	for name, ch := range map[string]parley.ConversationChange{
		"rename":          {Title: &title},
		"add":             {Add: []string{d.ID}},
		"remove another":  {Remove: []string{c.ID}},
		"promote self":    {Promote: []string{b.ID}},
		"demote an owner": {Demote: []string{a.ID}},
		"leave and add":   {Remove: []string{b.ID}, Add: []string{d.ID}},
	} {
		_, events, err := s.UpdateConversation(ctx(t), b.ID, conv.ID, ch)
		wantCode(t, "a member's "+name, err, parley.EFORBIDDEN)
		if len(events) != 0 {
			t.Errorf("a member's refused %s returned events %+v", name, events)
		}
	}
	if got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, conv.ID)); got.Title != "G" || !maps.Equal(roles(got), want) {
		t.Errorf("refused changes changed the group: %+v", got)
	}
	// A non-member gets ENOTFOUND, whatever they ask.
	for name, ch := range map[string]parley.ConversationChange{
		"rename": {Title: &title}, "add self": {Add: []string{d.ID}}, "promote": {Promote: []string{d.ID}},
		"leave": {Remove: []string{d.ID}}, "demote": {Demote: []string{a.ID}},
	} {
		_, _, err := s.UpdateConversation(ctx(t), d.ID, conv.ID, ch)
		wantCode(t, "a non-member's "+name, err, parley.ENOTFOUND)
	}

	// Bad promotions: not a member, or promoted and demoted at once.
	_, _, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Promote: []string{d.ID}})
	wantCode(t, "promoting a non-member", err, parley.EINVALID)
	_, _, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Promote: []string{b.ID}, Demote: []string{b.ID}})
	wantCode(t, "promoting and demoting one user", err, parley.EINVALID)
	// The last owner cannot demote themselves.
	_, _, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Demote: []string{a.ID}})
	wantCode(t, "demoting the last owner", err, parley.EINVALID)

	// An owner promotes: one event, actor and target, new roles in the
	// snapshot; promoting an owner again changes nothing.
	got, events, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Promote: []string{b.ID}})
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	e := oneEvent(t, "promote", events, parley.EventConversationUpdated)
	if e.Change != parley.ChangeMembersPromoted || e.UserID != a.ID || !slices.Equal(e.UserIDs, ids(b)) ||
		roles(*e.Conversation)[b.ID] != parley.RoleOwner || roles(got)[b.ID] != parley.RoleOwner ||
		!sameSet(e.Audience, ids(a, b, c)) {
		t.Errorf("promote = %+v, event %+v", got, e)
	}
	if _, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Promote: []string{b.ID}}); err != nil || len(events) != 0 {
		t.Errorf("promoting an owner: %d events, %v", len(events), err)
	}

	// The new owner adds d (a member) and removes c; c, removed, gets
	// ENOTFOUND for everything, sending included.
	if _, _, err := s.UpdateConversation(ctx(t), b.ID, conv.ID, parley.ConversationChange{Add: []string{d.ID}, Remove: []string{c.ID}}); err != nil {
		t.Fatalf("owner b adds d and removes c: %v", err)
	}
	_, _, err = s.UpdateConversation(ctx(t), c.ID, conv.ID, parley.ConversationChange{Remove: []string{c.ID}})
	wantCode(t, "a removed user leaving", err, parley.ENOTFOUND)
	_, _, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: c.ID, ClientID: clientID(), Text: "still here?"})
	wantCode(t, "a removed user sending", err, parley.ENOTFOUND)

	// An owner demotes another owner; a demoted owner is a member again.
	if _, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Demote: []string{b.ID}}); err != nil {
		t.Fatalf("demote: %v", err)
	}
	if e := oneEvent(t, "demote", events, parley.EventConversationUpdated); e.Change != parley.ChangeMembersDemoted || !slices.Equal(e.UserIDs, ids(b)) {
		t.Errorf("demote event = %+v", e)
	}
	_, _, err = s.UpdateConversation(ctx(t), b.ID, conv.ID, parley.ConversationChange{Title: &title})
	wantCode(t, "a demoted owner renaming", err, parley.EFORBIDDEN)

	// The last owner leaves: removed, then the longest-standing member
	// (b, there since the start; d came later) is promoted, with the
	// leaver as actor and the remaining members as audience.
	got, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Remove: []string{a.ID}})
	if err != nil {
		t.Fatalf("last owner leaves: %v", err)
	}
	if len(events) != 2 || events[0].Change != parley.ChangeMembersRemoved || events[1].Change != parley.ChangeMembersPromoted ||
		!slices.Equal(events[1].UserIDs, ids(b)) || events[1].UserID != a.ID || !sameSet(events[1].Audience, ids(b, d)) ||
		events[1].Pos != events[0].Pos+1 {
		t.Fatalf("last owner leaving: events %+v", events)
	}
	if r := roles(got); !maps.Equal(r, map[string]parley.Role{b.ID: parley.RoleOwner, d.ID: parley.RoleMember}) {
		t.Errorf("roles after the last owner left = %v", r)
	}
	// A user added again joins as a member, whatever they were before.
	got, _, err = s.UpdateConversation(ctx(t), b.ID, conv.ID, parley.ConversationChange{Add: []string{a.ID}})
	if err != nil || roles(got)[a.ID] != parley.RoleMember {
		t.Errorf("re-added former owner: roles %v, %v", roles(got), err)
	}
	// Everyone leaves: the group is left with nobody and no error.
	for _, u := range []parley.User{b, d, a} {
		if _, _, err := s.UpdateConversation(ctx(t), u.ID, conv.ID, parley.ConversationChange{Remove: []string{u.ID}}); err != nil {
			t.Fatalf("%s leaves: %v", u.Name, err)
		}
	}

	// Direct conversations have no owners and cannot be changed.
	direct := newDirect(t, s, a, b)
	if r := roles(direct); r[a.ID] != parley.RoleMember || r[b.ID] != parley.RoleMember {
		t.Errorf("direct roles = %v", r)
	}
	_, _, err = s.UpdateConversation(ctx(t), a.ID, direct.ID, parley.ConversationChange{Promote: []string{a.ID}})
	wantCode(t, "promoting in a direct conversation", err, parley.EINVALID)
}

func testFlags(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "flga"), newUser(t, s, "flgb"), newUser(t, s, "flgc")
	conv := newGroup(t, s, a, "G", b)
	yes, no := true, false

	// Muting: one flagsChanged event for a alone; the view says so.
	got, events, err := s.SetFlags(ctx(t), a.ID, conv.ID, &yes, nil)
	if err != nil {
		t.Fatalf("mute: %v", err)
	}
	e := oneEvent(t, "mute", events, parley.EventFlagsChanged)
	if !got.Muted || got.Archived || e.UserID != a.ID || e.Flags == nil || *e.Flags != (parley.MemberFlags{Muted: true}) ||
		!slices.Equal(e.Audience, ids(a)) || e.Pos == 0 {
		t.Fatalf("mute = %+v, event %+v", got, e)
	}
	if _, events, err := s.SetFlags(ctx(t), a.ID, conv.ID, &yes, &no); err != nil || len(events) != 0 {
		t.Errorf("muting again: %d events, %v", len(events), err)
	}
	// A muted conversation keeps its unread count; b's view is unchanged.
	send(t, s, conv.ID, b, "one")
	list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID))
	if len(list) != 1 || !list[0].Muted || list[0].UnreadCount != 1 {
		t.Errorf("a's list after muting = %+v", list)
	}
	if bv := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, conv.ID)); bv.Muted || bv.Archived {
		t.Errorf("b's view changed with a's flags: %+v", bv)
	}

	// Archiving holds until a new message arrives, with no write.
	got, events, err = s.SetFlags(ctx(t), a.ID, conv.ID, nil, &yes)
	if err != nil || !got.Archived || !got.Muted || len(events) != 1 || *events[0].Flags != (parley.MemberFlags{Muted: true, Archived: true}) {
		t.Fatalf("archive: %+v, %+v, %v", got, events, err)
	}
	if list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID)); !list[0].Archived {
		t.Errorf("archived conversation listed as %+v", list[0])
	}
	send(t, s, conv.ID, b, "two")
	if got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, conv.ID)); got.Archived || !got.Muted {
		t.Errorf("after a new message: %+v, want unarchived and still muted", got)
	}
	// Archived again, then unarchived by hand.
	if _, events, err = s.SetFlags(ctx(t), a.ID, conv.ID, nil, &yes); err != nil || len(events) != 1 {
		t.Fatalf("archive again: %d events, %v", len(events), err)
	}
	got, events, err = s.SetFlags(ctx(t), a.ID, conv.ID, &no, &no)
	if err != nil || got.Archived || got.Muted || len(events) != 1 || *events[0].Flags != (parley.MemberFlags{}) {
		t.Fatalf("unarchive and unmute: %+v, %+v, %v", got, events, err)
	}

	// The events are a's alone: in a's replay, not in b's; Events gives
	// them a's audience.
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Type == parley.EventFlagsChanged {
			t.Errorf("b replays a's flags: %+v", e)
		}
	}
	n := 0
	for _, e := range allEventsFor(t, s, a.ID) {
		if e.Type == parley.EventFlagsChanged {
			n++
			if e.Flags == nil || e.Recipient != a.ID {
				t.Errorf("a's replayed flags event = %+v", e)
			}
		}
	}
	if n != 4 {
		t.Errorf("a replays %d flagsChanged events, want 4", n)
	}
	for _, e := range allEvents(t, s) {
		if e.Type == parley.EventFlagsChanged && !slices.Equal(e.Audience, ids(a)) {
			t.Errorf("Events audience of a flags event = %v", e.Audience)
		}
	}

	// A non-member and a removed member get not_found.
	_, _, err = s.SetFlags(ctx(t), c.ID, conv.ID, &yes, nil)
	wantCode(t, "a non-member muting", err, parley.ENOTFOUND)
	if _, _, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Remove: []string{b.ID}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.SetFlags(ctx(t), b.ID, conv.ID, nil, &yes)
	wantCode(t, "a removed member archiving", err, parley.ENOTFOUND)
}
