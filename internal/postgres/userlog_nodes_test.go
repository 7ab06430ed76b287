package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// TestUserChangeLogTwoNodes: two nodes' stores on one database change
// users at once (profiles, renames, bans) while they send messages,
// whose batches take the shards' positions locks, and a reader on one of
// them goes on after the last number it read: it misses no change, reads
// the numbers rising, and ends at the mark; no write waits past its
// bound (the counter row is taken under the positions locks every such
// batch holds, so it adds no lock order of its own). storetest's
// UserChangeLogConcurrent is the same with one store, whose batcher runs
// one batch at a time.
func TestUserChangeLogTwoNodes(t *testing.T) {
	dsn := pgtest.Schema(t)
	a, b := open(t, dsn), open(t, dsn)
	stores := []*postgres.DB{a, b}
	const writers, changes = 6, 6
	users := make([]parley.User, writers)
	for i := range users {
		users[i] = mustUser(t, a, fmt.Sprintf("twonodes%d", i))
	}
	conv, _, err := a.CreateDirect(t.Context(), users[0].ID, users[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	last, err := a.UserChangeMark(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	poll := func() {
		t.Helper()
		for {
			page, err := a.UserChangesAfter(t.Context(), last, 3)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page {
				if c.Seq <= last {
					t.Fatalf("read number %d after %d", c.Seq, last)
				}
				last = c.Seq
				seen[c.ID]++
			}
			if len(page) < 3 {
				return
			}
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() {
			for j := range changes {
				s := stores[(i+j)%2]
				var err error
				switch {
				case j == changes-1 && i%2 == 1:
					err = s.BanUser(t.Context(), u.ID)
				case j == changes-2:
					_, err = s.EnsureUser(t.Context(), u.ID, fmt.Sprintf("renamed%d", i))
				default:
					name := fmt.Sprintf("Two %d.%d", i, j)
					_, _, err = s.SetProfile(t.Context(), u.ID, parley.ProfileChange{DisplayName: &name})
				}
				if err != nil {
					t.Errorf("change %d.%d: %v", i, j, err)
					return
				}
			}
		})
		wg.Go(func() { // sends beside them, on the other node
			for j := range changes {
				_, _, err := stores[(i+j+1)%2].SendMessage(t.Context(), parley.NewMessage{ConversationID: conv.ID,
					SenderID: users[j%2].ID, Type: parley.Text, ClientID: fmt.Sprintf("two-%d-%d", i, j), Text: "hi"})
				if err != nil {
					t.Errorf("send %d.%d: %v", i, j, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }() // owned by the test: it waits for done
	for polling := true; polling; {
		select {
		case <-done:
			polling = false
		default:
		}
		poll()
	}
	poll()
	t.Logf("%d users x %d changes on two nodes with %d sends beside: %v", writers, changes, writers*changes, time.Since(start))
	for _, u := range users {
		if seen[u.ID] == 0 {
			t.Errorf("the reader never saw %s changed", u.Name)
		}
	}
	if m, err := b.UserChangeMark(t.Context()); err != nil || m != last {
		t.Fatalf("mark %d (%v), last number read %d", m, err, last)
	}
}
