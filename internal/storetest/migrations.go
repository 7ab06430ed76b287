package storetest

import (
	"maps"
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
