package server

import (
	"context"
	"fmt"
	"testing"

	"github.com/parleychat/parley"
)

// fullContactsStore gives every user parley.MaxContacts contacts (the same
// slice: the test counts what distinct lists would take).
type fullContactsStore struct {
	parley.Store
	ids []string
}

func (s fullContactsStore) Contacts(context.Context, string) ([]string, error) { return s.ids, nil }

// TestContactsCacheBytes: the contacts cache holds at most
// maxCachedContactBytes of lists, however long they are, starting over
// when full, and keeps its count right through invalidations.
func TestContactsCacheBytes(t *testing.T) {
	ids := make([]string, parley.MaxContacts)
	for i := range ids {
		ids[i] = fmt.Sprintf("01930000-0000-7000-8000-%012d", i)
	}
	cc := newContactsCache(fullContactsStore{ids: ids})
	full := listBytes("user-0000", ids)
	users := 2*maxCachedContactBytes/full + 1
	for i := range users {
		u := fmt.Sprintf("user-%04d", i)
		if _, err := cc.get(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			cc.invalidate([]string{u})
		}
		if i%5 == 0 {
			cc.forgetPair(u, "nobody")
		}
		if cc.bytes > maxCachedContactBytes {
			t.Fatalf("after %d users: the cache counts %d bytes, budget %d", i+1, cc.bytes, maxCachedContactBytes)
		}
		if i%101 != 0 && i != users-1 {
			continue
		}
		total := 0
		for u, ids := range cc.m {
			total += listBytes(u, ids)
		}
		if total > maxCachedContactBytes || total != cc.bytes {
			t.Fatalf("after %d users: the cache holds %d bytes (counted %d), budget %d", i+1, total, cc.bytes, maxCachedContactBytes)
		}
	}
	if len(cc.m) == 0 {
		t.Error("the cache holds nothing")
	}
}

// heldContactsStore answers Contacts with the list it holds when the read
// began, after release is closed: a read that began before a change and
// ends after it.
type heldContactsStore struct {
	parley.Store
	began   chan struct{}
	release chan struct{}
}

func (s heldContactsStore) Contacts(context.Context, string) ([]string, error) {
	close(s.began)
	<-s.release
	return []string{}, nil // as it was: no contacts yet
}

// TestForgetPairStopsReadUnderWay: a read of alice's list that began
// before her and bob became contacts, and ends after the forgetPair that
// follows, is not cached though neither list was cached at the forget:
// cached, it would answer "no contacts" until the next invalidation
// (TestConformance/checks/presence saw presence [] after userOnline in
// one CI run).
func TestForgetPairStopsReadUnderWay(t *testing.T) {
	st := heldContactsStore{began: make(chan struct{}), release: make(chan struct{})}
	cc := newContactsCache(st)
	done := make(chan error)
	go func() { // owned by the test: it waits for done below
		_, err := cc.get(context.Background(), "alice")
		done <- err
	}()
	<-st.began
	cc.forgetPair("alice", "bob") // they became contacts meanwhile
	close(st.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if ids, ok := cc.m["alice"]; ok {
		t.Fatalf("alice's list %v, read before the change, is cached", ids)
	}
	if len(cc.reading) != 0 {
		t.Fatalf("reads under way %v after they ended", cc.reading)
	}
}
