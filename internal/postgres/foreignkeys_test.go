package postgres_test

import (
	"context"
	"slices"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// sendForeignKeys are the foreign keys migration 00017 drops: each was a
// trigger query per row of a send.
var sendForeignKeys = []string{
	"events_actor_id_fkey", "events_conversation_id_fkey", "events_message_id_fkey",
	"messages_conversation_id_fkey", "messages_sender_id_fkey",
}

// foreignKeys lists the foreign keys of messages and events in the
// schema of dsn.
func foreignKeys(t *testing.T, dsn string) []string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var names []string
	err = conn.QueryRow(t.Context(), `SELECT COALESCE(array_agg(conname::text ORDER BY conname), '{}') FROM pg_constraint
		WHERE contype = 'f' AND conrelid IN ('messages'::regclass, 'events'::regclass)`).Scan(&names)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSendForeignKeys: a send's rows carry no foreign-key checks but the
// attachment's (migrations 00017 and 00021), the attachment's key stays, a send still works
// and is refused to a non-member (the check that stands in for the
// keys), and the migration's Down puts the five keys back.
func TestSendForeignKeys(t *testing.T) {
	dsn := pgtest.Schema(t)
	db := open(t, dsn)
	ctx := t.Context()
	fks := foreignKeys(t, dsn)
	for _, name := range sendForeignKeys {
		if slices.Contains(fks, name) {
			t.Errorf("foreign key %s is there after Open: want it dropped (migration 00017)", name)
		}
	}
	if !slices.Contains(fks, "messages_attachment_id_fkey") {
		t.Error("foreign key messages_attachment_id_fkey is gone: it stops the orphan sweep deleting what a send holds")
	}
	if slices.Contains(fks, "messages_reply_to_id_fkey") {
		t.Error("foreign key messages_reply_to_id_fkey is there after Open: want it dropped (migration 00021)")
	}
	a, b := mustUser(t, db, "alice"), mustUser(t, db, "bob")
	c := mustGroup(t, db, a.ID, "room")
	if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: c.ID, SenderID: a.ID, ClientID: "1", Type: parley.Text, Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: c.ID, SenderID: b.ID, ClientID: "1", Type: parley.Text, Text: "hi"}); err == nil {
		t.Fatal("a non-member's send was stored")
	}
	if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: "no-such-room", SenderID: a.ID, ClientID: "2", Type: parley.Text, Text: "hi"}); err == nil {
		t.Fatal("a send to no conversation was stored")
	}
	// A reply's parent is the send's own check (sqlstore.ReplyRule), as
	// the key was.
	if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: c.ID, SenderID: a.ID, ClientID: "3", Type: parley.Text, Text: "re", ReplyTo: "no-such-message"}); err == nil {
		t.Fatal("a reply to no message was stored")
	}
	db.Close()
	if err := postgres.MigrateDownTo(ctx, dsn, 20); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(foreignKeys(t, dsn), "messages_reply_to_id_fkey") {
		t.Error("foreign key messages_reply_to_id_fkey is missing after migrating down to 00020")
	}
	if err := postgres.MigrateDownTo(ctx, dsn, 15); err != nil {
		t.Fatal(err)
	}
	fks = foreignKeys(t, dsn)
	for _, name := range sendForeignKeys {
		if !slices.Contains(fks, name) {
			t.Errorf("foreign key %s is missing after migrating down to 00015", name)
		}
	}
}
