package storetest

import (
	"maps"
	"slices"
	"testing"

	"github.com/parleychat/parley"
)

// RolesMigration checks migration 00006 (group roles) on an engine: each
// group's creator becomes its owner while a member, a group whose creator
// left gets its longest-standing member as owner, and direct
// conversations get none. The groups are made with today's store, then
// the role column is dropped and the migration recorded as not applied
// (with exec, SQL run on the store's database while it is closed), as a
// database from before 00006 would be, and the store opened again.
//
// open must open the same database every time; the store it returns is
// closed by this function.
func RolesMigration(t *testing.T, open func(t *testing.T) parley.Store, exec func(t *testing.T, sql string)) {
	s := open(t)
	var u []parley.User
	for _, name := range []string{"mig-a", "mig-b", "mig-c", "mig-d"} {
		u = append(u, newUser(t, s, name))
	}
	a, b, c, d := u[0], u[1], u[2], u[3]
	kept := newGroup(t, s, a, "kept", b)
	// In left, a (the creator) is gone, d joined after c and b, and b
	// left and came back, so c is the longest-standing member.
	left := newGroup(t, s, a, "left", b, c)
	for _, ch := range []parley.ConversationChange{{Add: []string{d.ID}}, {Remove: []string{b.ID}}, {Add: []string{b.ID}}, {Remove: []string{a.ID}}} {
		if _, _, err := s.UpdateConversation(ctx(t), a.ID, left.ID, ch); err != nil {
			t.Fatal(err)
		}
	}
	direct := newDirect(t, s, a, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`DROP INDEX IF EXISTS events_of_user`, `ALTER TABLE events DROP COLUMN recipient`, `ALTER TABLE members DROP COLUMN archived_seq`,
		`ALTER TABLE members DROP COLUMN muted`, `ALTER TABLE members DROP COLUMN role`} {
		exec(t, stmt)
	}
	exec(t, `DELETE FROM goose_db_version WHERE version_id = 6`)

	s = open(t)
	defer s.Close()
	for _, tc := range []struct {
		conv parley.Conversation
		as   parley.User
		want map[string]parley.Role
	}{
		{kept, a, map[string]parley.Role{a.ID: parley.RoleOwner, b.ID: parley.RoleMember}},
		{left, b, map[string]parley.Role{b.ID: parley.RoleMember, c.ID: parley.RoleOwner, d.ID: parley.RoleMember}},
		{direct, a, map[string]parley.Role{a.ID: parley.RoleMember, b.ID: parley.RoleMember}},
	} {
		got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), tc.as.ID, tc.conv.ID))
		if r := roles(got); !maps.Equal(r, tc.want) {
			t.Errorf("%s after the migration: roles %v, want %v", tc.conv.Title, r, tc.want)
		}
	}
}

// ReactionMessageMigration checks the migration that gives reaction
// events recorded before reactions kept their message in the event's
// message_id column (PostgreSQL's 00023, SQLite's 00020) that column:
// in a group of a, b and c, c reacts to b's message (added, then
// removed) and to its own; the database is taken back to before the
// migration (downBefore) and the reactions' message_id emptied, as an
// older release wrote them; the store opened again migrates. Then a
// blocks b, and a's replay leaves out both reactions on b's message
// (the replay's filter finds the message by that column), while c's
// reaction on its own message still reaches a, and b's replay holds
// every reaction with its message.
//
// open must open the same database every time; the store it returns is
// closed by this function. exec runs SQL on the database while it is
// closed.
func ReactionMessageMigration(t *testing.T, open func(t *testing.T) parley.Store, exec func(t *testing.T, sql string), downBefore func(t *testing.T)) {
	s := open(t)
	a, b, c := newUser(t, s, "rmm-a"), newUser(t, s, "rmm-b"), newUser(t, s, "rmm-c")
	g := newGroup(t, s, a, "G", b, c)
	bm, cm := send(t, s, g.ID, b, "b's"), send(t, s, g.ID, c, "c's")
	for _, r := range []struct {
		on  string
		add bool
	}{{bm.ID, true}, {bm.ID, false}, {cm.ID, true}} {
		if _, _, err := s.React(ctx(t), c.ID, g.ID, r.on, "👍", r.add); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downBefore(t)
	exec(t, `UPDATE events SET message_id = NULL WHERE type IN ('reactionAdded', 'reactionRemoved')`)

	s = open(t)
	defer s.Close()
	if _, err := optional[parley.Consenter](t, s).Block(ctx(t), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	// reactions returns the message of each reaction event userID
	// replays, in order.
	reactions := func(userID string) []string {
		var on []string
		for _, e := range allEventsFor(t, s, userID) {
			if e.Type == parley.EventReactionAdded || e.Type == parley.EventReactionRemoved {
				on = append(on, e.MessageID)
			}
		}
		return on
	}
	if got, want := reactions(a.ID), []string{cm.ID}; !slices.Equal(got, want) {
		t.Errorf("the blocker replays reactions on %v, want only on c's message %v (b's is %s)", got, want, bm.ID)
	}
	if got, want := reactions(b.ID), []string{bm.ID, bm.ID, cm.ID}; !slices.Equal(got, want) {
		t.Errorf("b replays reactions on %v, want %v", got, want)
	}
}

// SearchWordsMigration checks the migration that re-indexes the
// messages with the words Go splits (parley.SearchIndexText: SQLite's
// 00023, PostgreSQL's 00026): messages whose words the engines' own
// tokenizers found otherwise (a word against an emoji newer than SQLite's
// Unicode 6.1, the parts of an e-mail address PostgreSQL's parser kept
// whole) are sent and indexed (index), the database is taken back to
// before the migration (downBefore: the index as the engine's tokenizer
// made it), and the store opened again migrates: every word is found.
//
// open must open the same database every time; the store it returns is
// closed by this function.
func SearchWordsMigration(t *testing.T, open func(t *testing.T) parley.Store, index func(t *testing.T, s parley.Store), downBefore func(t *testing.T)) {
	s := open(t)
	a := newUser(t, s, "srchmig")
	conv := newGroup(t, s, a, "search migration")
	flag := send(t, s, conv.ID, a, "word\U0001f3f3")
	tone := send(t, s, conv.ID, a, "\U0001f44d\U0001f3fdword")
	mail := send(t, s, conv.ID, a, "mail bob.smith@example.com")
	index(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downBefore(t)

	s = open(t)
	defer s.Close()
	for query, want := range map[string][]string{"word": msgIDs(tone, flag), "smith": msgIDs(mail), "bob": msgIDs(mail), "exam*": msgIDs(mail)} {
		if got := searchIDs(t, s, a, query, conv.ID, 50); !slices.Equal(got, want) {
			t.Errorf("after the migration: search %q finds %v, want %v", query, got, want)
		}
	}
}
