package server_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
)

// pagesCounting is a SQLite store that counts the pages of conversation
// lists read, and the conversations in them.
type pagesCounting struct {
	*sqlite.DB
	pages, rows atomic.Int64
}

func (s *pagesCounting) ConversationsPage(ctx context.Context, userID string, afterAt time.Time, afterID string, limit int) ([]parley.Conversation, error) {
	cs, err := s.DB.ConversationsPage(ctx, userID, afterAt, afterID, limit)
	s.pages.Add(1)
	s.rows.Add(int64(len(cs)))
	return cs, err
}

// TestHostileEraseManyConversationsReads: erasing a user with more
// conversations than an erase call reads (EraseConvPages pages of
// ConvChunk) reads at most that many a call, going on from where the
// last call stopped, and is done only once a walk of the whole list
// found no group: a group that moved above the walk's place (new
// activity) is still left. Before, each call read every page of the
// user's list (here 5 pages, 1133 conversations, in one call).
func TestHostileEraseManyConversationsReads(t *testing.T) {
	st := &pagesCounting{}
	srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		st.DB = db
		return st, err
	}))
	_, key := newAPIKey(t, srv, auth.ScopeUsers)
	ctx := t.Context()
	srv.Token(t, "mallory", "Mallory")
	srv.Token(t, "helper", "Helper")
	// The groups first: the oldest activity, at the end of the list.
	var groups []parley.Conversation
	for i := range 5 {
		g, _, err := srv.Store.CreateGroup(ctx, "mallory", fmt.Sprint("g", i), []string{"helper"})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, g)
	}
	directs := server.EraseConvPages*server.ConvChunk + 100
	var wg sync.WaitGroup
	work := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range work {
				id := fmt.Sprintf("d%04d", i)
				if _, err := srv.Store.EnsureUser(ctx, id, "User "+id); err != nil {
					t.Error(err)
					continue
				}
				if _, _, err := srv.Store.CreateDirect(ctx, "mallory", id); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range directs {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	maxRows := int64(server.EraseConvPages * (server.ConvChunk + 1))
	left, done := 0, false
	for calls := 1; !done; calls++ {
		st.pages.Store(0)
		st.rows.Store(0)
		r := httpDo(t, srv, "DELETE", "/v1/server/users/mallory", key, "")
		res := decodeJSON[struct {
			Left int  `json:"conversations_left"`
			Done bool `json:"done"`
		}](t, r.body)
		if r.status != http.StatusOK {
			t.Fatalf("erase call %d: %d %s", calls, r.status, r.body)
		}
		pages, rows := st.pages.Load(), st.rows.Load()
		t.Logf("erase call %d: %d pages, %d conversations read, %d left, done %v", calls, pages, rows, res.Left, res.Done)
		if pages > server.EraseConvPages || rows > maxRows {
			t.Fatalf("erase call %d read %d pages, %d conversations; want at most %d, %d", calls, pages, rows, server.EraseConvPages, maxRows)
		}
		left += res.Left
		done = res.Done
		if calls == 1 {
			// New activity moves the first group to the top of the
			// list, above where the walk got to.
			if _, _, err := srv.Store.SendMessage(ctx, parley.NewMessage{ConversationID: groups[0].ID, SenderID: "helper", ClientID: "bump", Text: "bump"}); err != nil {
				t.Fatal(err)
			}
		}
		if calls > 10 && !done {
			t.Fatalf("erase not done after %d calls (%d groups left)", calls, left)
		}
	}
	cl, err := srv.Store.Conversations(ctx, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	in := 0
	for _, c := range cl {
		if c.Kind == parley.Group {
			t.Errorf("after the erase mallory is still in group %s", c.Title)
		} else {
			in++
		}
	}
	if left != len(groups) || in != directs {
		t.Errorf("erase left %d groups of %d, kept %d direct conversations of %d", left, len(groups), in, directs)
	}
}
