package storetest

import (
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// testUnstorableText: a read naming a conversation, user, name or cursor
// by a text no store can hold (a NUL character, bytes that are not
// UTF-8: a path's %00 or %FF, a JSON "\u0000") answers EINVALID, on every
// engine alike, and never a failure of the database (PostgreSQL refuses
// such a text with an error of its own, SQLSTATE 22021, which came back
// as internal where SQLite found no row).
func testUnstorableText(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "texta"), newUser(t, s, "textb")
	conv := newGroup(t, s, a, "unstorable", b)
	send(t, s, conv.ID, a, "hello there")
	pager := optional[parley.ConversationPager](t, s)
	cs := optional[parley.Consenter](t, s)
	ks := optional[parley.APIKeyStore](t, s)
	se := optional[parley.Searcher](t, s)
	for what, bad := range map[string]string{
		"NUL":             "\x00",
		"NUL inside":      conv.ID[:8] + "\x00" + conv.ID[9:],
		"not UTF-8":       "\xff",
		"a cut character": "\xc3",
	} {
		t.Run(what, func(t *testing.T) {
			reads := []struct {
				name string
				err  error
			}{}
			read := func(name string, err error) {
				reads = append(reads, struct {
					name string
					err  error
				}{name, err})
			}
			_, err := s.User(ctx(t), bad)
			read("User", err)
			_, err = s.UserByName(ctx(t), bad)
			read("UserByName", err)
			_, _, err = s.Credentials(ctx(t), bad)
			read("Credentials", err)
			_, err = s.Conversation(ctx(t), a.ID, bad)
			read("Conversation", err)
			_, err = s.Conversation(ctx(t), bad, conv.ID)
			read("Conversation of a bad user", err)
			_, err = s.MemberIDs(ctx(t), a.ID, bad)
			read("MemberIDs", err)
			_, err = s.Messages(ctx(t), a.ID, bad, parley.MessageQuery{})
			read("Messages", err)
			_, err = pager.ConversationsPage(ctx(t), a.ID, time.Now(), bad, 10)
			read("ConversationsPage's cursor", err)
			_, _, err = s.AttachmentData(ctx(t), a.ID, bad, false)
			read("AttachmentData", err)
			_, _, err = s.AttachmentInfo(ctx(t), a.ID, bad, false)
			read("AttachmentInfo", err)
			_, err = cs.Peers(ctx(t), a.ID, bad)
			read("Peers", err)
			_, err = ks.MessagesBySender(ctx(t), a.ID, bad, 10)
			read("MessagesBySender's after", err)
			_, err = se.Search(ctx(t), a.ID, parley.SearchQuery{Terms: []string{"hello"}, ConversationID: bad})
			read("Search in a conversation", err)
			for _, r := range reads {
				if got := parley.ErrorCode(r.err); got != parley.EINVALID {
					t.Errorf("%s: error %v (code %q), want code %q", r.name, r.err, got, parley.EINVALID)
				}
			}
		})
	}
	// The good reads still answer.
	if _, err := s.Conversation(ctx(t), a.ID, conv.ID); err != nil {
		t.Fatalf("Conversation after the bad reads: %v", err)
	}
}
