package sqlite_test

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
)

// TestEventsWithoutForeignKeys: migration 00017 rebuilds events without
// its foreign keys (to conversations, users and messages), which cost
// every stored message three seeks and its insert a statement journal,
// and keeps the rest of the table: columns, the unique (shard, pos) key,
// both indexes. A file at 00016 with data upgrades with every event and
// message still there, equal and readable, and the store writes on.
func TestEventsWithoutForeignKeys(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	a, conv := lagUsers(t, db)
	c, err := db.CreateUser(ctx, "carol", nil)
	if err != nil {
		t.Fatal(err)
	}
	group, _, err := db.CreateGroup(ctx, a.ID, "g", []string{c.ID})
	if err != nil {
		t.Fatal(err)
	}
	var sent []parley.Message
	for i := range 20 {
		sent = append(sent, lagSend(t, db, a, conv, fmt.Sprint("direct ", i)))
		sent = append(sent, lagSend(t, db, c, group, fmt.Sprint("group ", i)))
	}
	// Events of other kinds: an edit, a delete, a reaction, a read.
	if _, _, err := db.EditMessage(ctx, parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: sent[0].ID, ClientID: "e1", Text: "edited"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.DeleteMessage(ctx, c.ID, group.ID, sent[3].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.React(ctx, c.ID, group.ID, sent[1].ID, "👍", true); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fileInt(t, path, `SELECT count(*) FROM pragma_foreign_key_list('events')`); n != 0 {
		t.Fatalf("at 00017: events has %d foreign keys, want none", n)
	}

	if err := sqlite.MigrateDownTo(ctx, path, 16); err != nil {
		t.Fatal(err)
	}
	if got := fileStrings(t, path, `SELECT "table" || '.' || "to" FROM pragma_foreign_key_list('events') ORDER BY 1`); !reflect.DeepEqual(got, []string{"conversations.id", "messages.id", "users.id"}) {
		t.Fatalf("at 00016: events' foreign keys %v, want 00012's three back", got)
	}
	before := fileRows(t, path, `SELECT * FROM events ORDER BY id`)
	msgs := fileRows(t, path, `SELECT rowid, * FROM messages ORDER BY rowid`)
	schema := fileStrings(t, path, `SELECT name || ': ' || sql FROM sqlite_master WHERE tbl_name = 'events' AND type = 'index' AND sql IS NOT NULL ORDER BY name`)
	if len(before) < 45 {
		t.Fatalf("at 00016: %d events, want the sends' and the others'", len(before))
	}

	db = open(t, path) // 00017 again, from a file with data
	if n := fileInt(t, path, `SELECT count(*) FROM pragma_foreign_key_list('events')`); n != 0 {
		t.Fatalf("after the upgrade: events has %d foreign keys, want none", n)
	}
	if got := fileRows(t, path, `SELECT * FROM events ORDER BY id`); !reflect.DeepEqual(got, before) {
		t.Fatalf("after the upgrade: events differ\n got %v\nwant %v", got, before)
	}
	if got := fileRows(t, path, `SELECT rowid, * FROM messages ORDER BY rowid`); !reflect.DeepEqual(got, msgs) {
		t.Fatal("after the upgrade: messages differ")
	}
	if got := fileStrings(t, path, `SELECT name || ': ' || sql FROM sqlite_master WHERE tbl_name = 'events' AND type = 'index' AND sql IS NOT NULL ORDER BY name`); !reflect.DeepEqual(got, schema) {
		t.Fatalf("after the upgrade: events' indexes %v, want %v", got, schema)
	}
	if n := fileInt(t, path, `SELECT count(*) FROM sqlite_master WHERE tbl_name = 'events' AND name LIKE 'sqlite_autoindex_events_%'`); n != 1 {
		t.Fatalf("after the upgrade: %d automatic indexes on events, want the unique (shard, pos)", n)
	}
	// Readable through the store: the log and every message.
	log, err := db.Events(ctx, 0, len(before)+10)
	if err != nil || len(log) != len(before) {
		t.Fatalf("Events after the upgrade: %d, %v; want %d", len(log), err, len(before))
	}
	for _, u := range []struct {
		id, conv string
		n        int
	}{{a.ID, conv.ID, 20}, {c.ID, group.ID, 20}} {
		page, err := db.Messages(ctx, u.id, u.conv, parley.MessageQuery{Limit: parley.MaxPageLimit})
		if err != nil || len(page.Messages) != u.n {
			t.Fatalf("Messages after the upgrade: %d, %v; want %d", len(page.Messages), err, u.n)
		}
	}
	mine, err := db.EventsFor(ctx, c.ID, 0, len(before)+10)
	if err != nil || len(mine) == 0 {
		t.Fatalf("EventsFor after the upgrade: %d, %v", len(mine), err)
	}
	// And the log goes on where it was.
	_, events, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: "after", Type: parley.Text, Text: "after"})
	if err != nil || len(events) != 1 || events[0].Pos != log[len(log)-1].Pos+1 {
		t.Fatalf("send after the upgrade: %+v, %v; want position %d", events, err, log[len(log)-1].Pos+1)
	}
}

// fileRows reads every row of query on the file at path, each row's
// columns formatted, with a connection of its own.
func fileRows(t *testing.T, path, query string) [][]string {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = fmt.Sprintf("%T:%v", v, v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fileStrings reads the one column of query's rows on the file at path.
func fileStrings(t *testing.T, path, query string) []string {
	t.Helper()
	var out []string
	for _, r := range fileRows(t, path, query) {
		out = append(out, strings.TrimPrefix(r[0], "string:"))
	}
	return out
}
