package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/internal/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// open opens a store on a fresh file in t's temp dir, closed at cleanup.
func open(t testing.TB, path string, opts ...sqlstore.Option) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, opts...)
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
	)
	storetest.SendUntilError(db, conv.ID, a.ID, 4, func(m parley.Message) {
		mu.Lock()
		sent[m.ID] = true
		n := len(sent)
		mu.Unlock()
		if n == 50 {
			go db.Close() // from a writer's side, while the others keep sending
		}
	}, func(err error) {
		if parley.ErrorCode(err) != parley.EUNAVAILABLE {
			t.Errorf("send: %v, want unavailable after close", err)
		}
	})()
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
	// SQLite's 1000 pages, so that 10k messages (~40 MB of WAL without
	// checkpoints) pass it many times; the store's own threshold is
	// ~40 MB (TestWALAutocheckpoint).
	defer sqlite.SetWALAutocheckpoint(1000)()
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

// TestWALAutocheckpoint: the writer checkpoints past 10,000 WAL pages,
// not SQLite's 1000, so that a checkpoint copies a page rewritten by many
// commits once (checkpoint.go).
func TestWALAutocheckpoint(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "ac.db"))
	n, err := sqlite.WALAutocheckpoint(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if n != 10000 {
		t.Errorf("wal_autocheckpoint = %d, want 10000", n)
	}
}

// TestCommitFsyncByBatcher: the write connection commits without an
// fsync (synchronous=NORMAL) and the batcher fsyncs the WAL after every
// batch of writes instead, on Linux as an asynchronous request it waits
// for without holding a P (walsync.go). Every acknowledged send was
// fsynced: at least one sync per committed batch, none of them fsync(2)
// on Linux.
func TestCommitFsyncByBatcher(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "sync.db"))
	ctx := t.Context()
	n, err := sqlite.Synchronous(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("write connection synchronous = %d, want 1 (NORMAL)", n)
	}
	a, _, conv := sqlite.AnnaAndBert(t, db)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID,
					ClientID: fmt.Sprint(w, "-", i), Type: parley.Text, Text: "x"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	async, plain := sqlite.WALSyncs(db)
	batches := db.Stats().Batches
	if async+plain < batches {
		t.Errorf("%d WAL fsyncs (%d asynchronous, %d plain) after %d committed batches: some batch was answered unsynced", async+plain, async, plain, batches)
	}
	if runtime.GOOS == "linux" && plain != 0 {
		t.Errorf("%d plain fsyncs of the WAL on Linux, want 0 (all %d asynchronous)", plain, async+plain)
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

// TestRolesMigration: see storetest.RolesMigration.
func TestRolesMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	storetest.RolesMigration(t, func(t *testing.T) parley.Store { return open(t, path) }, execOn(path))
}

// TestReactionMessageMigration: see storetest.ReactionMessageMigration
// (migration 00020).
func TestReactionMessageMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	storetest.ReactionMessageMigration(t, func(t *testing.T) parley.Store { return open(t, path) }, execOn(path), func(t *testing.T) {
		if err := sqlite.MigrateDownTo(t.Context(), path, 19); err != nil {
			t.Fatal(err)
		}
	})
}

// execOn runs a statement on the database file at path, on a connection
// of its own; a failure fails the test.
func execOn(path string) func(t *testing.T, stmt string) {
	return func(t *testing.T, stmt string) {
		raw, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		if _, err := raw.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
}

// TestConversationsPageTies: see storetest.ConversationsPage.
func TestConversationsPageTies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "parley.db")
	storetest.ConversationsPage(t, open(t, path), execOn(path))
}

// pageSizeOf reads the page size of the database file at path.
func pageSizeOf(t *testing.T, path string) int {
	t.Helper()
	return fileInt(t, path, "PRAGMA page_size")
}

// fileInt runs query, whose answer is one integer, on the file at path,
// read with a connection of its own (the store may be closed).
func fileInt(t *testing.T, path, query string, args ...any) int {
	t.Helper()
	c, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var n int
	if err := c.QueryRowContext(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPageSize: a new file has 8 KiB pages, so the random inserts of a
// send split a leaf half as often as with SQLite's 4 KiB (db.go, pageSize:
// each such split makes the COMMIT walk the writer's whole page cache); a
// file made with 4 KiB pages keeps them and works as before.
func TestPageSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "new.db")
	db := open(t, path)
	a, _, conv := sqlite.AnnaAndBert(t, db)
	// 2000 sends, each with its own client id: the (sender_id,
	// client_id) index grows by 2000 entries of ~60 bytes.
	for i := range 100 {
		nms := make([]parley.NewMessage, 20)
		for k := range nms {
			nms[k] = parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: fmt.Sprint("c", i, "-", k), Type: parley.Text, Text: "a message"}
		}
		db.SendMessages(t.Context(), nms, func(_ int, _ parley.Message, _ []parley.Event, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if n := pageSizeOf(t, path); n != 8192 {
		t.Errorf("page_size of a new file = %d, want 8192", n)
	}
	// Leaves of the idempotency index (dbstat counts its pages): about
	// 2000 entries x ~60 bytes over 8 KiB leaves, half of 4 KiB's 30-35.
	var leaves int
	raw, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRow(`SELECT count(*) FROM dbstat WHERE name = 'sqlite_autoindex_messages_3' AND pagetype = 'leaf'`).Scan(&leaves); err != nil {
		t.Fatal(err)
	}
	if leaves > 20 {
		t.Errorf("(sender_id, client_id) index: %d leaves for 2000 messages, want at most 20", leaves)
	}

	// A file created with 4 KiB pages (as before pageSize) keeps them.
	old := filepath.Join(dir, "old.db")
	raw4, err := sql.Open("sqlite", "file:"+old+"?_pragma=page_size(4096)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw4.Exec("PRAGMA journal_mode = WAL"); err != nil {
		t.Fatal(err)
	}
	raw4.Close()
	db4 := open(t, old)
	a4, _, conv4 := sqlite.AnnaAndBert(t, db4)
	if _, _, err := db4.SendMessage(t.Context(), parley.NewMessage{ConversationID: conv4.ID, SenderID: a4.ID, ClientID: "x", Type: parley.Text, Text: "still 4 KiB"}); err != nil {
		t.Fatal(err)
	}
	if n := pageSizeOf(t, old); n != 4096 {
		t.Errorf("page_size of a 4 KiB file after Open = %d, want 4096", n)
	}
}

// TestReadsFillThePool: as many read transactions as the read pool has
// connections, each running a query the pool has not prepared yet once
// all of them have begun, all finish. A transaction that prepared its
// query on the pool waited for a second connection while holding one:
// with the pool full of such transactions none went on (eight resumes at
// once did it, server test TestHostileResumeFlood).
func TestReadsFillThePool(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "parley.db"))
	n := sqlite.ReadConns(db)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var began sync.WaitGroup
	began.Add(n)
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- sqlite.Read(ctx, db, func(query func(string, any) error) error {
				began.Done()
				began.Wait() // every connection is held
				var v int64
				return query("SELECT 42 AS fill_the_pool", &v)
			})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("a read with the pool full: %v", err)
		}
	}
	// Prepared on the pool since: the same read runs prepared.
	if err := sqlite.Read(ctx, db, func(query func(string, any) error) error {
		var v int64
		return query("SELECT 42 AS fill_the_pool", &v)
	}); err != nil {
		t.Fatal(err)
	}
}

func TestAttachmentDataCopies(t *testing.T) {
	storetest.AttachmentDataCopies(t, open(t, filepath.Join(t.TempDir(), "parley.db")))
}
