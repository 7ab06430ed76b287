package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// White-box tests of the batcher: they hold a batch open with an op that
// blocks, so the ops queued behind it deterministically share the next
// batch.

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "batch.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// blockBatcher queues an op that blocks the batcher until release is
// called; release waits for that op's call to return.
func blockBatcher(t *testing.T, db *DB) (release func()) {
	t.Helper()
	running, unblock := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := db.b.do(context.Background(), func(*writeTx) error {
			close(running)
			<-unblock
			return nil
		})
		if err != nil {
			t.Errorf("blocking op: %v", err)
		}
	})
	<-running
	return func() { close(unblock); wg.Wait() }
}

// waitQueued waits until n ops are in the queue (channel length is what
// the batcher will take next).
func waitQueued(db *DB, n int) {
	for len(db.b.queue) < n {
		// The queue is filled by goroutines just started; yield until
		// they got there.
		runtime.Gosched()
	}
}

func TestCancelWhileQueued(t *testing.T) {
	db := openTest(t)
	release := blockBatcher(t, db)

	ctx, cancel := context.WithCancel(t.Context())
	ran := false
	done := make(chan error, 1)
	go func() {
		done <- db.b.do(ctx, func(*writeTx) error { ran = true; return nil })
	}()
	waitQueued(db, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("do with a context cancelled while queued = %v, want context.Canceled", err)
	}
	release()
	// One more op through the batcher: the cancelled one was taken and
	// dropped before it.
	if err := db.b.do(t.Context(), func(*writeTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("an op cancelled while queued ran anyway")
	}
}

func TestFailedOpRollsBackAlone(t *testing.T) {
	db := openTest(t)
	release := blockBatcher(t, db)

	var (
		wg             sync.WaitGroup
		failErr, okErr error
		failPos, okPos int64
		boom           = parley.Errorf(parley.EINVALID, "boom")
	)
	wg.Go(func() {
		failErr = db.b.do(t.Context(), func(w *writeTx) error {
			if _, err := w.exec(qInsertUser, "u-fail", "failing", nil, 1); err != nil {
				return err
			}
			failPos = w.nextPos()
			return boom
		})
	})
	waitQueued(db, 1)
	wg.Go(func() {
		okErr = db.b.do(t.Context(), func(w *writeTx) error {
			okPos = w.nextPos()
			_, err := w.exec(qInsertUser, "u-ok", "kept", nil, 1)
			return err
		})
	})
	waitQueued(db, 2)
	batchesBefore := db.Stats().Batches
	release()
	wg.Wait()

	if failErr != boom || okErr != nil {
		t.Fatalf("errors = %v, %v; want boom, nil", failErr, okErr)
	}
	if got := db.Stats().Batches - batchesBefore; got != 2 {
		// The blocking op's batch, then one batch with both ops.
		t.Errorf("%d batches committed, want 2", got)
	}
	// The failed op's position went back: the next op got the same one.
	if failPos != 1 || okPos != 1 {
		t.Errorf("positions: failed op %d, next op %d; want 1 and 1", failPos, okPos)
	}
	if _, err := db.User(t.Context(), "u-fail"); !errors.Is(err, parley.ErrNotFound) {
		t.Errorf("the failed op's write is visible: %v", err)
	}
	if _, err := db.User(t.Context(), "u-ok"); err != nil {
		t.Errorf("the op batched with a failed one was lost: %v", err)
	}
}

func TestDoAfterClose(t *testing.T) {
	db := openTest(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err := db.b.do(t.Context(), func(*writeTx) error { return nil })
	if parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Errorf("do after Close = %v, want unavailable", err)
	}
}

// TestAudienceCacheRollback: a membership change rolled back must not
// leave its members in the audience cache.
func TestAudienceCacheRollback(t *testing.T) {
	db := openTest(t)
	ctx := t.Context()
	var users []parley.User
	for _, name := range []string{"anna", "bert", "cleo"} {
		u, err := db.CreateUser(ctx, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
	}
	a, b, c := users[0], users[1], users[2]
	conv, _, err := db.CreateGroup(ctx, a.ID, "G", []string{b.ID})
	if err != nil {
		t.Fatal(err)
	}
	boom := parley.Errorf(parley.EINVALID, "boom")
	err = db.b.do(ctx, func(w *writeTx) error {
		if err := w.join(conv.ID, c.ID, w.nextPos()); err != nil {
			return err
		}
		if ids, err := w.audience(conv.ID); err != nil || len(ids) != 3 {
			t.Errorf("audience inside the op = %v, %v; want 3 members", ids, err)
		}
		return boom
	})
	if err != boom {
		t.Fatalf("do = %v, want boom", err)
	}
	_, events, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: "x", Type: parley.Text, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if got := events[0].Audience; len(got) != 2 || slices.Contains(got, c.ID) {
		t.Errorf("audience after a rolled-back join = %v, want a and b", got)
	}
}
