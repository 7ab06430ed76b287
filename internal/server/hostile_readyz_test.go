package server_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
)

// headCountingStore counts the reads of the store's head; every other
// method is SQLite's (embedded, so the server finds all it asserts).
type headCountingStore struct {
	*sqlite.DB
	heads *atomic.Int64
}

func (s headCountingStore) Head(ctx context.Context) (int64, error) {
	s.heads.Add(1)
	return s.DB.Head(ctx)
}

// TestHostileReadyzFlood: a flood of /readyz, which needs no token,
// costs the store one read of its head a second, not one a request:
// each was a store read, so anyone could load the store (and hold
// PostgreSQL's connections) as fast as they could send requests. The
// answers stay right: 200 ready.
func TestHostileReadyzFlood(t *testing.T) {
	const requests = 400
	var heads atomic.Int64
	srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		return headCountingStore{db, &heads}, err
	}))
	before := heads.Load()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range requests / 8 {
				resp, err := http.Get(srv.URL + "/readyz")
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d /readyz not 200", n, requests)
	}
	// One read a second, and the store's own (the hub's poll): far
	// fewer than the requests however long they took.
	n := heads.Load() - before
	t.Logf("%d /readyz, %d reads of the head", requests, n)
	if n > requests/4 {
		t.Errorf("%d /readyz made %d reads of the store's head", requests, n)
	}
}
