package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
)

// markFailingStore is SQLite whose log of changed users cannot tell its
// mark while failMark is set, as a store unreachable at a node's start.
type markFailingStore struct {
	*sqlite.DB
	failMark atomic.Bool
}

func (s *markFailingStore) UserChangeMark(ctx context.Context) (int64, error) {
	if s.failMark.Load() {
		return 0, errors.New("store unreachable")
	}
	return s.DB.UserChangeMark(ctx)
}

// TestUserSyncLateMarkReadsBans: a node whose start could not read the
// store's mark of user changes reads it at a later interval; a ban made
// on another node between the start's read of the bans and that mark,
// whose notice was lost, is in neither the log after the mark nor the
// start's read of the bans. The node applies it at the interval that
// reads the mark, as it would had the mark been read at the start (the
// bans are read after it). Before, it waited for the next read of the
// whole list, banListTicks intervals later (a minute by default).
func TestUserSyncLateMarkReadsBans(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bob, err := db.CreateUser(ctx, "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	st := &markFailingStore{DB: db}
	st.failMark.Store(true)
	s := &Server{log: slog.New(slog.DiscardHandler), svc: &service{}}
	s.hub = newHub(st, s.log, newMetrics())
	var log parley.UserChangeLog = st
	us := &userSync{ks: st, log: log}
	s.startUserSync(ctx, us) // the mark fails; the bans (none) are read
	if us.marked {
		t.Fatal("the mark was read: the test does not fail it")
	}

	if err := db.BanUser(ctx, bob.ID); err != nil { // on another node; its notice lost
		t.Fatal(err)
	}
	st.failMark.Store(false)
	for tick := 1; tick < banListTicks; tick++ {
		s.userSyncTick(ctx, us, tick)
		if tick == 1 && !us.marked {
			t.Fatal("the first interval after the store came back read no mark")
		}
	}
	if !s.svc.bans.has(bob.ID) {
		t.Fatalf("bob, banned before the mark the node read late, is not banned here after %d intervals", banListTicks-1)
	}
}
