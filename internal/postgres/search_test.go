package postgres_test

import (
	"fmt"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// TestSearchManyConversations: a user in more conversations than a
// search names to the index (the dialect's SearchConvs, 256) searches
// every match and keeps theirs; a user in few finds the same message
// through their conversations' list; neither finds a message of a
// conversation they are not in.
func TestSearchManyConversations(t *testing.T) {
	ctx := t.Context()
	db := open(t, pgtest.Schema(t))
	many := mustUser(t, db, "many")
	few := mustUser(t, db, "few")
	other := mustUser(t, db, "other")
	var shared parley.Conversation
	for i := range 257 {
		g := mustGroup(t, db, many.ID, fmt.Sprint("g", i))
		if i == 100 {
			shared = g
		}
	}
	if _, _, err := db.UpdateConversation(ctx, many.ID, shared.ID, parley.ConversationChange{Add: []string{few.ID}}); err != nil {
		t.Fatal(err)
	}
	elsewhere := mustGroup(t, db, other.ID, "elsewhere")
	m, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: shared.ID, SenderID: many.ID, ClientID: "c1", Type: parley.Text, Text: "zebrafish here"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: elsewhere.ID, SenderID: other.ID, ClientID: "c2", Type: parley.Text, Text: "zebrafish there"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []parley.User{many, few} {
		p, err := db.Search(ctx, u.ID, parley.SearchQuery{Terms: []string{"zebrafish"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Results) != 1 || p.Results[0].Message.ID != m.ID {
			t.Errorf("search as %s: %+v, want only %s", u.Name, p.Results, m.ID)
		}
	}
}
