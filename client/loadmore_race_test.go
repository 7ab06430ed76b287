package client_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
)

// pausingStore is the SQLite store, whose reads of an older page
// (Before set) wait, once armed, after reading until the test releases
// them: the page is read, its answer not yet sent.
type pausingStore struct {
	parley.Store
	armed   *atomic.Bool
	read    chan struct{} // a paused page was read
	release chan struct{} // closed: send it
}

func (s pausingStore) Messages(ctx context.Context, userID, conversationID string, q parley.MessageQuery) (parley.MessagePage, error) {
	page, err := s.Store.Messages(ctx, userID, conversationID, q)
	if q.Before != 0 && s.armed.CompareAndSwap(true, false) {
		s.read <- struct{}{}
		<-s.release
	}
	return page, err
}

// TestLoadMoreRacingEvent: a reaction to a message of the page LoadMore
// is loading, made after the server read that page and reaching the view
// before the page does, shows once the page is merged. The view dropped
// the event (its message was not loaded) and the page, read before the
// reaction, showed the message without it until the view was reloaded.
func TestLoadMoreRacingEvent(t *testing.T) {
	ps := pausingStore{armed: new(atomic.Bool), read: make(chan struct{}), release: make(chan struct{})}
	e := newEnv(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		st, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		ps.Store = st
		return ps, err
	}))
	alice, again := e.client(t, "alice"), e.client(t, "alice")
	e.srv.Token(t, "bob", "bob")
	connect(t, alice)
	connect(t, again)
	rec := record(alice)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cv, err := alice.CreateDirect(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	tok := e.srv.Token(t, "alice", "User alice")
	for i := 1; i <= 30; i++ {
		servertest.Call(t, "POST", e.srv.URL+"/v1/conversations/"+cv.ID+"/messages", tok, fmt.Appendf(nil, `{"client_id":"m-%d","text":"message %d"}`, i, i), http.StatusCreated)
	}
	page, err := again.History(ctx, cv.ID, parley.MessageQuery{Before: 16, Limit: 1})
	if err != nil || len(page.Messages) != 1 || page.Messages[0].Seq != 15 {
		t.Fatalf("message #15: %+v, %v", page.Messages, err)
	}
	target := page.Messages[0]
	v, err := alice.OpenConversation(ctx, cv.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if msgs := v.Messages(); len(msgs) != 10 || msgs[0].Seq != 21 || !v.HasMore() {
		t.Fatalf("the first page: %d messages from #%d, more %v", len(msgs), msgs[0].Seq, v.HasMore())
	}

	ps.armed.Store(true)
	loaded := make(chan error, 1)
	go func() { _, err := v.LoadMore(ctx); loaded <- err }()
	<-ps.read // #11-#20 read, without the reaction
	if _, err := again.React(ctx, cv.ID, target.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "the reaction's event", func(evs []client.Event) bool {
		for _, ev := range evs {
			if r, ok := ev.(client.ReactionAdded); ok && r.MessageID == target.ID {
				return true
			}
		}
		return false
	})
	close(ps.release)
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	for _, m := range v.Messages() {
		if m.Seq == 15 {
			if len(m.Reactions) != 1 || m.Reactions[0].Emoji != "👍" || m.Reactions[0].Count != 1 {
				t.Fatalf("#15 after the page was merged: reactions %+v, want 👍 1", m.Reactions)
			}
			return
		}
	}
	t.Fatalf("#15 not loaded: %+v", v.Messages())
}
