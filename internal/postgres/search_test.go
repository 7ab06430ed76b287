package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/storetest"
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

// TestSearchWordsIndexed: storetest.SearchWords with its messages in
// search_docs (the conformance suite's searches match them in the tail).
func TestSearchWordsIndexed(t *testing.T) {
	db := open(t, pgtest.Schema(t))
	storetest.SearchWords(t, db, func(t *testing.T) { postgres.IndexAll(t.Context(), db) })
}

// TestSearchWordsMigration: see storetest.SearchWordsMigration (migration
// 00026). Before it, search_docs held to_tsvector's words: the address
// as one lexeme.
func TestSearchWordsMigration(t *testing.T) {
	dsn := pgtest.Schema(t)
	storetest.SearchWordsMigration(t, func(t *testing.T) parley.Store { return open(t, dsn) },
		func(t *testing.T, s parley.Store) { postgres.IndexAll(t.Context(), s.(*postgres.DB)) },
		func(t *testing.T) {
			if err := postgres.MigrateDownTo(t.Context(), dsn, 25); err != nil {
				t.Fatal(err)
			}
			var n int
			if err := queryRow(t, dsn, `SELECT count(*) FROM search_docs WHERE words @@ 'smith'::tsquery`).Scan(&n); err != nil || n != 0 {
				t.Fatalf("at 00025: %d rows hold the word smith (%v), want 0 (to_tsvector's words)", n, err)
			}
		})
}

// TestSearchDocWords: the lexemes search_docs holds for a message are
// exactly the distinct keys of parley.SearchIndexText of its text, for
// texts made of what splits words differently (storetest.SearchTexts):
// array_to_tsvector takes each key as it is.
func TestSearchDocWords(t *testing.T) {
	dsn := pgtest.Schema(t)
	db := open(t, dsn)
	texts, ids := storetest.SendSearchTexts(t, db, 200)
	postgres.IndexAll(t.Context(), db)
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for i, id := range ids {
		var got []string
		if err := conn.QueryRow(t.Context(), `SELECT tsvector_to_array(words) FROM search_docs WHERE message_id = $1`, id).Scan(&got); err != nil {
			t.Fatalf("%q: %v", texts[i], err)
		}
		want := storetest.IndexKeys(texts[i])
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%q: lexemes %q, want %q", texts[i], got, want)
		}
	}
}
