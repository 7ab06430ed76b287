package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
)

// closingStore is SQLite seen as a parley.Store only, as a store an
// integrator plugs in may be: no parley.MultiSender nor AsyncSender, so a
// run of sends goes to it one SendMessage after the other. Its
// closeAt-th SendMessage sets drop, as the connection's close does while
// that send is in the store (0: drop is set before the first).
type closingStore struct {
	parley.Store
	drop    *atomic.Bool
	closeAt int
	calls   int
}

func (s *closingStore) SendMessage(ctx context.Context, nm parley.NewMessage) (parley.Message, []parley.Event, error) {
	s.calls++
	if s.calls == s.closeAt {
		s.drop.Store(true)
	}
	return s.Store.SendMessage(ctx, nm)
}

// TestSyncSendsDroppedOnceClosed: on the synchronous path (a store
// without parley.AsyncSender), a run's sends after the one in the store
// when the connection closes are not handed to the store but answered
// parley.ErrSendDropped, in order, as the batcher answers the sends it
// has not taken; the send in the store is run and answered as stored.
// Before, sendMany stored every send of the run (the store was called 5
// times and all 5 answered stored).
func TestSyncSendsDroppedOnceClosed(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	alice, err := db.CreateUser(ctx, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := db.CreateUser(ctx, "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	conv, _, err := db.CreateDirect(ctx, alice.ID, bob.ID)
	if err != nil {
		t.Fatal(err)
	}

	const n = 5
	for _, closeAt := range []int{0, 2} {
		t.Run(fmt.Sprint("closed at send ", closeAt), func(t *testing.T) {
			var drop atomic.Bool
			if closeAt == 0 {
				drop.Store(true)
			}
			st := &closingStore{Store: db, drop: &drop, closeAt: closeAt}
			mt := newMetrics()
			svc := &service{store: st, metrics: mt, storePublishes: true, typers: newTypingTracker()}
			var nms []parley.NewMessage
			for i := range n {
				nms = append(nms, parley.NewMessage{ConversationID: conv.ID, SenderID: alice.ID, Type: parley.Text,
					ClientID: fmt.Sprintf("at%d-%d", closeAt, i), Text: fmt.Sprint("m", i)})
			}
			var got []error
			svc.sendMany(ctx, nms, &drop, func(i int, m parley.Message, err error) {
				if i != len(got) {
					t.Fatalf("send %d answered after %d answers", i, len(got))
				}
				got = append(got, err)
			})
			if len(got) != n {
				t.Fatalf("%d sends answered, want %d", len(got), n)
			}
			if st.calls != closeAt {
				t.Errorf("the store was called for %d sends, want %d: none after the close", st.calls, closeAt)
			}
			for i, err := range got {
				if want := i >= closeAt; errors.Is(err, parley.ErrSendDropped) != want || (!want && err != nil) {
					t.Errorf("send %d answered %v, dropped want %v", i, err, want)
				}
			}
			page, err := db.Messages(ctx, alice.ID, conv.ID, parley.MessageQuery{Limit: parley.MaxPageLimit})
			if err != nil {
				t.Fatal(err)
			}
			stored := 0
			for _, m := range page.Messages {
				if strings.HasPrefix(m.ClientID, fmt.Sprintf("at%d-", closeAt)) {
					stored++
				}
			}
			if stored != closeAt {
				t.Errorf("%d of the run's messages stored, want %d", stored, closeAt)
			}
		})
	}
}
