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

// TestSendForeignKeys: a send's rows carry no foreign-key checks (the
// migration's Up), the other keys of messages stay, a send still works
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
	for _, name := range []string{"messages_attachment_id_fkey", "messages_reply_to_id_fkey"} {
		if !slices.Contains(fks, name) {
			t.Errorf("foreign key %s is gone: only the send's own checks should be", name)
		}
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
	db.Close()
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
