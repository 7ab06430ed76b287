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

// TestNoForeignKeys: migration 00017 rebuilds messages and events
// without their foreign keys (to conversations, users, attachments and
// messages), which cost every stored message five seeks and the batch's
// two inserts a statement journal, and keeps the rest of both tables:
// columns, rowids, unique keys, indexes, triggers. A file at 00016 with
// data upgrades with every event and message still there, equal and
// readable (searched, edited), and the store writes on.
func TestNoForeignKeys(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	writeKeysOn(t, db, "on a new file")
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
	// A message with an attachment and a reply: keys that are not NULL.
	att := parley.Attachment{ID: "att-1", ContentType: "image/png", Size: 4, Width: 1, Height: 1}
	if err := db.PutAttachment(ctx, a.ID, att, []byte("\x89PNG"), nil, 0); err != nil {
		t.Fatal(err)
	}
	img, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: "img", Type: parley.Image, AttachmentID: att.ID, ReplyTo: sent[2].ID})
	if err != nil {
		t.Fatal(err)
	}
	sent = append(sent, img)
	// Events of other kinds: an edit, a delete, a reaction.
	if _, _, err := db.EditMessage(ctx, parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: sent[0].ID, ClientID: "e1", Text: "edited"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.DeleteMessage(ctx, c.ID, group.ID, sent[3].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.React(ctx, c.ID, group.ID, sent[1].ID, "👍", true); err != nil {
		t.Fatal(err)
	}
	pages := func() []parley.MessagePage {
		t.Helper()
		var out []parley.MessagePage
		for _, u := range [][2]string{{a.ID, conv.ID}, {c.ID, group.ID}} {
			page, err := db.Messages(ctx, u[0], u[1], parley.MessageQuery{Limit: parley.MaxPageLimit})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, page)
		}
		return out
	}
	pagesBefore := pages()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	noKeys(t, path, "at 00017")
	// The indexes and triggers of today's schema, which the upgrade below
	// must give back: 00017 keeps 00016's, and later migrations change
	// some (00023 the full-text trigger) the same on both ways.
	schema := fileStrings(t, path, qSchemaOf)

	if err := sqlite.MigrateDownTo(ctx, path, 16); err != nil {
		t.Fatal(err)
	}
	if got := fileStrings(t, path, `SELECT "table" || '.' || "to" FROM pragma_foreign_key_list('events') ORDER BY 1`); !reflect.DeepEqual(got, []string{"conversations.id", "messages.id", "users.id"}) {
		t.Fatalf("at 00016: events' foreign keys %v, want 00012's three back", got)
	}
	if got := fileStrings(t, path, `SELECT "table" || '.' || "to" FROM pragma_foreign_key_list('messages') ORDER BY 1`); !reflect.DeepEqual(got, []string{"attachments.id", "conversations.id", "messages.id", "users.id"}) {
		t.Fatalf("at 00016: messages' foreign keys %v, want four back", got)
	}
	before := fileRows(t, path, `SELECT * FROM events ORDER BY id`)
	msgs := fileRows(t, path, `SELECT rowid, * FROM messages ORDER BY rowid`)
	if len(before) < 45 {
		t.Fatalf("at 00016: %d events, want the sends' and the others'", len(before))
	}

	db = open(t, path) // 00017 again, from a file with data
	noKeys(t, path, "after the upgrade")
	writeKeysOn(t, db, "after the upgrade")
	if got := fileRows(t, path, `SELECT * FROM events ORDER BY id`); !reflect.DeepEqual(got, before) {
		t.Fatalf("after the upgrade: events differ\n got %v\nwant %v", got, before)
	}
	if got := fileRows(t, path, `SELECT rowid, * FROM messages ORDER BY rowid`); !reflect.DeepEqual(got, msgs) {
		t.Fatal("after the upgrade: messages differ")
	}
	if got := fileStrings(t, path, qSchemaOf); !reflect.DeepEqual(got, schema) {
		t.Fatalf("after the upgrade: indexes and triggers\n got %v\nwant %v", got, schema)
	}
	// Readable through the store: the log and every message.
	log, err := db.Events(ctx, 0, len(before)+10)
	if err != nil || len(log) != len(before) {
		t.Fatalf("Events after the upgrade: %d, %v; want %d", len(log), err, len(before))
	}
	if got := pages(); !reflect.DeepEqual(got, pagesBefore) {
		t.Fatalf("Messages after the upgrade:\n got %+v\nwant %+v", got, pagesBefore)
	}
	mine, err := db.EventsFor(ctx, c.ID, 0, len(before)+10)
	if err != nil || len(mine.Events) == 0 {
		t.Fatalf("EventsFor after the upgrade: %d, %v", len(mine.Events), err)
	}
	// The triggers: an edit of a message indexed before the upgrade
	// replaces its words in the index.
	if got := lagSearch(t, db, a, "direct"); len(got) != 19 {
		t.Fatalf("search after the upgrade: %d results, want 19", len(got))
	}
	if _, _, err := db.EditMessage(ctx, parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: sent[2].ID, ClientID: "e2", Text: "papa"}); err != nil {
		t.Fatal(err)
	}
	if got := lagSearch(t, db, a, "papa"); !reflect.DeepEqual(got, []string{sent[2].ID}) {
		t.Fatalf("search papa after an edit: %v", got)
	}
	if got := lagSearch(t, db, a, "direct"); len(got) != 18 {
		t.Fatalf("search after an edit: %d results, want 18", len(got))
	}
	// And the log goes on where it was.
	head, err := db.Head(ctx)
	if err != nil || head != log[len(log)-1].Pos+1 { // the edit's event
		t.Fatalf("Head after the upgrade and an edit: %d, %v; want %d", head, err, log[len(log)-1].Pos+1)
	}
	_, events, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: "after", Type: parley.Text, Text: "after"})
	if err != nil || len(events) != 1 || events[0].Pos != head+1 {
		t.Fatalf("send after the upgrade: %+v, %v; want position %d", events, err, head+1)
	}
}

// TestBatchInsertsSeekNoParent: the batch's multi-row inserts into
// messages and events look up no parent row (EXPLAIN: no Found), which they did five times a message before 00017 (a
// conversation, a user, and an attachment and a replied-to message when
// set, for the message; a conversation, a user and the message, for its
// event), each with a cursor opened and closed; what is left is the
// unique keys' seeks: three for the message, one for its event.
func TestBatchInsertsSeekNoParent(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "parley.db"))
	for _, events := range []bool{false, true} {
		ops, args, err := sqlite.InsertOpcodes(t.Context(), db, events)
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, op := range ops {
			count[op]++
		}
		want := 3 // NoConflict: id, (conversation_id, seq), (sender_id, client_id)
		vars := 2 * 11
		if events {
			want = 1 // (shard, pos)
			// The event's type and data are literals: 6 arguments
			// bound a row, not 8.
			vars = 2 * 6
		}
		if args != vars {
			t.Errorf("events %v: %d arguments for two rows, want %d", events, args, vars)
		}
		if count["Found"] != 0 || count["NoConflict"] != want {
			t.Errorf("events %v: Found %d, NoConflict %d; want 0, %d (%v)", events,
				count["Found"], count["NoConflict"], want, ops)
		}
	}
}

// qSchemaOf lists the indexes (with the automatic ones of the unique
// keys) and triggers of messages and events.
const qSchemaOf = `SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master
	WHERE tbl_name IN ('messages', 'events') AND type IN ('index', 'trigger') ORDER BY name`

// noKeys fails t unless messages and events have no foreign keys.
func noKeys(t *testing.T, path, when string) {
	t.Helper()
	for _, table := range []string{"messages", "events"} {
		if n := fileInt(t, path, `SELECT count(*) FROM pragma_foreign_key_list($1)`, table); n != 0 {
			t.Fatalf("%s: %s has %d foreign keys, want none", when, table, n)
		}
	}
}

// writeKeysOn fails t unless the write connection has its foreign keys
// on: 00017 turns them off around its rebuild, on the connection the
// batcher then keeps.
func writeKeysOn(t *testing.T, db *sqlite.DB, when string) {
	t.Helper()
	if on, err := sqlite.ForeignKeys(t.Context(), db); err != nil || !on {
		t.Fatalf("%s: the write connection's foreign_keys = %v, %v; want on", when, on, err)
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
