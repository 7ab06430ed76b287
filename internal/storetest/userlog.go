package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// testUserChangeLog: a rename (EnsureUser), a profile change and a new
// ban each log the user with the next number, in the order they
// committed, one entry per user (their last change); creating a user, an
// EnsureUser that changes nothing, a second ban of the same user and a
// write that fails log nothing; pages are bounded and go on after the
// last number; the mark is the last number.
func testUserChangeLog(t *testing.T, s parley.Store) {
	l := optional[parley.UserChangeLog](t, s)
	p := optional[parley.Profiles](t, s)
	ks := optional[parley.APIKeyStore](t, s)
	mark := func() int64 { return must[int64](t, "UserChangeMark")(l.UserChangeMark(ctx(t))) }
	after := func(seq int64, limit int) []parley.LoggedUserChange {
		t.Helper()
		return must[[]parley.LoggedUserChange](t, "UserChangesAfter")(l.UserChangesAfter(ctx(t), seq, limit))
	}
	str := func(v string) *string { return &v }

	m0 := mark()
	a, b, c := newUser(t, s, "loga"), newUser(t, s, "logb"), newUser(t, s, "logc")
	if _, err := s.EnsureUser(ctx(t), "logd", "Log D"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureUser(ctx(t), "logd", "Log D"); err != nil {
		t.Fatal(err)
	}
	if got := after(m0, 10); len(got) != 0 || mark() != m0 {
		t.Fatalf("after creating users: changes %+v, mark %d; want none, %d", got, mark(), m0)
	}

	if _, err := s.EnsureUser(ctx(t), a.ID, a.Name+" renamed"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.SetProfile(ctx(t), b.ID, parley.ProfileChange{DisplayName: str("Log B")}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := ks.BanUser(ctx(t), c.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A write that fails takes no number (its transaction's rollback
	// gives it back).
	_, _, err := p.SetProfile(ctx(t), a.ID, parley.ProfileChange{DisplayName: str("x"), AvatarID: str("no-such-upload")})
	wantCode(t, "SetProfile with an avatar that is no upload", err, parley.EINVALID)
	if _, _, err := p.SetProfile(ctx(t), a.ID, parley.ProfileChange{DisplayName: str("Log A")}); err != nil {
		t.Fatal(err)
	}

	got := after(m0, 10)
	want := []parley.UserChange{{ID: b.ID}, {ID: c.ID, Banned: true}, {ID: a.ID}}
	if len(got) != len(want) {
		t.Fatalf("changes after %d = %+v, want %+v", m0, got, want)
	}
	for i, g := range got {
		if g.UserChange != want[i] || g.Seq != m0+int64(i)+2 {
			// a's rename took m0+1; its profile change, the last, m0+4.
			t.Fatalf("changes after %d = %+v, want %+v numbered %d on", m0, got, want, m0+2)
		}
	}
	if m := mark(); m != got[2].Seq {
		t.Fatalf("mark = %d, want the last change's %d", m, got[2].Seq)
	}
	if page := after(m0, 2); len(page) != 2 || page[1].ID != c.ID {
		t.Fatalf("a page of 2 = %+v, want b's and c's", page)
	}
	if rest := after(got[1].Seq, 2); len(rest) != 1 || rest[0].ID != a.ID {
		t.Fatalf("after c's number = %+v, want a's", rest)
	}
	if none := after(mark(), parley.MaxUserChangesPage); len(none) != 0 {
		t.Fatalf("after the mark = %+v, want none", none)
	}
	for _, limit := range []int{0, -1, parley.MaxUserChangesPage + 1} {
		_, err := l.UserChangesAfter(ctx(t), m0, limit)
		wantCode(t, fmt.Sprintf("UserChangesAfter with limit %d", limit), err, parley.EINVALID)
	}
}

// testUserChangeLogConcurrent: a reader that polls while users are being
// changed concurrently, each poll going on after the last number it
// read, sees numbers only rising and, once the writers are done, every
// user changed: no number became visible before a lower one.
func testUserChangeLogConcurrent(t *testing.T, s parley.Store) {
	l := optional[parley.UserChangeLog](t, s)
	p := optional[parley.Profiles](t, s)
	const writers, changes = 8, 5
	users := make([]parley.User, writers)
	for i := range users {
		users[i] = newUser(t, s, "logconc")
	}
	last := must[int64](t, "UserChangeMark")(l.UserChangeMark(ctx(t)))
	seen := map[string]int{}
	poll := func() {
		t.Helper()
		for {
			page := must[[]parley.LoggedUserChange](t, "UserChangesAfter")(l.UserChangesAfter(ctx(t), last, 3))
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
	var wg sync.WaitGroup
	done := make(chan struct{})
	for i, u := range users {
		wg.Go(func() {
			for j := range changes {
				name := fmt.Sprintf("Conc %d.%d", i, j)
				if _, _, err := p.SetProfile(ctx(t), u.ID, parley.ProfileChange{DisplayName: &name}); err != nil {
					t.Errorf("SetProfile: %v", err)
					return
				}
			}
		})
	}
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
	var missed []string
	for _, u := range users {
		if seen[u.ID] == 0 {
			missed = append(missed, u.ID)
		}
	}
	if len(missed) > 0 {
		t.Fatalf("the reader never saw %v changed", missed)
	}
	if m := must[int64](t, "UserChangeMark")(l.UserChangeMark(ctx(t))); m != last {
		t.Fatalf("mark %d, last number read %d", m, last)
	}
}
