package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open opens a store on a fresh file in t's temp dir, closed at cleanup.
func open(t testing.TB, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) parley.Store {
		return open(t, filepath.Join(t.TempDir(), "parley.db"))
	})
}

// TestReopen: what was committed, and the head, survive closing and
// opening the file again; migrations run again without harm.
func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	a, err := db.CreateUser(ctx, "alice", []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := db.CreateUser(ctx, "bob", []byte("h"))
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := db.CreateDirect(ctx, a.ID, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Writers still at work when Close is called: every send that
	// returned success must be in the file afterwards.
	var (
		mu   sync.Mutex
		sent = map[string]bool{}
		wg   sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				m, _, err := db.SendMessage(context.Background(), parley.NewMessage{
					ConversationID: conv.ID, SenderID: a.ID, ClientID: fmt.Sprintf("w%d-%d", w, i), Type: parley.Text, Text: "x",
				})
				if err != nil {
					if parley.ErrorCode(err) != parley.EUNAVAILABLE {
						t.Errorf("send: %v, want unavailable after close", err)
					}
					return
				}
				mu.Lock()
				sent[m.ID] = true
				n := len(sent)
				mu.Unlock()
				if n == 50 {
					go db.Close() // from a writer's side, while the others keep sending
				}
			}
		})
	}
	wg.Wait()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	head := int64(1 + len(sent)) // the created event, then one per message

	for range 2 {
		db = open(t, path)
		if h, err := db.Head(ctx); err != nil || h != head {
			t.Fatalf("Head after reopening = %d, %v; want %d", h, err, head)
		}
		page, err := db.Messages(ctx, b.ID, conv.ID, parley.MessageQuery{Limit: parley.MaxPageLimit})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for page.Messages != nil {
			for _, m := range page.Messages {
				if !sent[m.ID] {
					t.Errorf("message %s in the file was never acknowledged", m.ID)
				}
				got++
			}
			if !page.HasMore {
				break
			}
			page, err = db.Messages(ctx, b.ID, conv.ID, parley.MessageQuery{Before: page.Messages[0].Seq, Limit: parley.MaxPageLimit})
			if err != nil {
				t.Fatal(err)
			}
		}
		if got != len(sent) {
			t.Errorf("after reopening: %d messages, %d acknowledged", got, len(sent))
		}
		// New writes continue the positions.
		m, events, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: b.ID, ClientID: fmt.Sprint("after-", head), Type: parley.Text, Text: "y"})
		if err != nil || len(events) != 1 || events[0].Pos != head+1 {
			t.Fatalf("send after reopening: %+v, %v; want position %d", events, err, head+1)
		}
		sent[m.ID] = true
		head++
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWALStaysBounded: under a steady stream of writes the WAL file must
// start over now and then, not grow with everything ever written (the
// checkpoints beside the writer alone do not achieve that; see
// checkpoint.go).
func TestWALStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wal.db")
	db := open(t, path)
	ctx := t.Context()
	a, _, conv := sqlite.AnnaAndBert(t, db)
	const senders, each = 100, 100
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			for i := range each {
				_, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID,
					ClientID: fmt.Sprint(w, "-", i), Type: parley.Text, Text: "a message of some length to fill pages"})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	wal, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// About 1000 pages of 4 KiB and a batch are expected; the WAL of
	// these 10k messages without checkpoints would be ~40 MB.
	if wal.Size() > 16<<20 {
		t.Errorf("WAL is %d bytes after %d messages: it does not start over", wal.Size(), senders*each)
	}
}

// TestNameKeyFill: users from before migration 00003 get their name_key
// at open, oldest first; a user whose look-alike name an older user holds
// keeps no key but keeps its account (found by its exact name), and a new
// look-alike of either is refused.
func TestNameKeyFill(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	// As before 00003: no key. The Cyrillic one is younger.
	for i, name := range []string{"admin", "\u0430dmin", "carol"} {
		if _, err := raw.ExecContext(ctx, `INSERT INTO users (id, name, password_hash, created_at) VALUES (?, ?, ?, ?)`,
			fmt.Sprintf("u%d", i), name, []byte("h-"+name), i+1); err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()
	for range 2 { // the second open finds the keyless look-alike again and leaves it
		db = open(t, path)
		for name, id := range map[string]string{"admin": "u0", "ADMIN": "u0", "\u0430dmin": "u1", "\u0430DMIN": "u1", "adm\u0131n": "u0", "Carol": "u2"} {
			if u, err := db.UserByName(ctx, name); err != nil || u.ID != id {
				t.Errorf("UserByName(%q) = %+v, %v; want %s", name, u, err, id)
			}
			if u, _, err := db.Credentials(ctx, name); err != nil || u.ID != id {
				t.Errorf("Credentials(%q) = %+v, %v; want %s", name, u, err, id)
			}
		}
		for _, name := range []string{"adm\u0131n", "c\u0430rol"} {
			if _, err := db.CreateUser(ctx, name, []byte("h")); parley.ErrorCode(err) != parley.ECONFLICT {
				t.Errorf("CreateUser(%q): %v, want conflict", name, err)
			}
		}
		db.Close()
	}
}

// TestRolesMigration: 00006 makes each group's creator its owner while a
// member, and a group whose creator left gets its longest-standing
// member as owner; direct conversations get none. The groups are made
// with today's store, then the role column is dropped and the migration
// recorded as not applied, as a database from before 00006 would be.
func TestRolesMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	var u []parley.User
	for _, name := range []string{"mig-a", "mig-b", "mig-c", "mig-d"} {
		x, err := db.CreateUser(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		u = append(u, x)
	}
	a, b, c, d := u[0], u[1], u[2], u[3]
	kept, _, err := db.CreateGroup(ctx, a.ID, "kept", []string{b.ID})
	if err != nil {
		t.Fatal(err)
	}
	// In left, a (the creator) is gone, d joined after c and b, and b
	// left and came back, so c is the longest-standing member.
	left, _, err := db.CreateGroup(ctx, a.ID, "left", []string{b.ID, c.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []parley.ConversationChange{{Add: []string{d.ID}}, {Remove: []string{b.ID}}, {Add: []string{b.ID}}, {Remove: []string{a.ID}}} {
		if _, _, err := db.UpdateConversation(ctx, a.ID, left.ID, ch); err != nil {
			t.Fatal(err)
		}
	}
	direct, _, err := db.CreateDirect(ctx, a.ID, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`ALTER TABLE members DROP COLUMN role`, `DELETE FROM goose_db_version WHERE version_id = 6`} {
		if _, err := raw.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()

	db = open(t, path)
	for _, tc := range []struct {
		conv parley.Conversation
		as   parley.User
		want map[string]parley.Role
	}{
		{kept, a, map[string]parley.Role{a.ID: parley.RoleOwner, b.ID: parley.RoleMember}},
		{left, b, map[string]parley.Role{b.ID: parley.RoleMember, c.ID: parley.RoleOwner, d.ID: parley.RoleMember}},
		{direct, a, map[string]parley.Role{a.ID: parley.RoleMember, b.ID: parley.RoleMember}},
	} {
		got, err := db.Conversation(ctx, tc.as.ID, tc.conv.ID)
		if err != nil {
			t.Fatal(err)
		}
		roles := map[string]parley.Role{}
		for _, m := range got.Members {
			roles[m.UserID] = m.Role
		}
		if !maps.Equal(roles, tc.want) {
			t.Errorf("%s after the migration: roles %v, want %v", tc.conv.Title, roles, tc.want)
		}
	}
}
