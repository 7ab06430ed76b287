package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"pgregory.net/rapid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
)

// hubParts opens a SQLite store in a temporary directory, closed when the
// test ends, and a logger that drops everything: what newHub takes.
func hubParts(t *testing.T) (*sqlite.DB, *slog.Logger) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store, slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestResumeIndex checks the hub's resume index (lastEvents) against the
// store: after any sequence of group and direct creations, sends, reads,
// deletes, additions and removals, delivered through the hub as the
// writes returned them, a resume from P is "quiet" exactly when
// EventsFor(user, P) has nothing up to the delivered position, for every
// P the index covers, and never for a P below it. The same holds for an
// index warmed from the store, as after a restart, and for one that
// started over because it hit its bound.
func TestResumeIndex(t *testing.T) {
	ctx := context.Background()
	store, log := hubParts(t)
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		head0, err := store.Head(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		h := newHub(store, log, newMetrics())
		h.start([]int64{head0})
		h.last[0].max = rapid.SampledFrom([]int{3, 8, maxTrackedUsers}).Draw(rt, "max")

		var users []string
		for i := range 4 {
			u, err := store.EnsureUser(ctx, fmt.Sprintf("r%d-u%d", run, i), fmt.Sprintf("U%d-%d", run, i))
			if err != nil {
				rt.Fatal(err)
			}
			users = append(users, u.ID)
		}
		var convs, msgs []string // msgs: "conv\x00id"
		msgConv := map[string]string{}
		deliver := func(evs []parley.Event, err error) {
			if err != nil {
				return // not allowed (not a member, not the sender...): nothing written
			}
			for _, ev := range evs {
				h.deliver(ev)
			}
		}
		user := func(label string) string { return rapid.SampledFrom(users).Draw(rt, label) }
		conv := func() string { return rapid.SampledFrom(convs).Draw(rt, "conv") }

		check := func(h *hub, label string) {
			h.mu.Lock()
			delivered := h.delivered[0]
			h.mu.Unlock()
			for _, u := range users {
				from := rapid.Int64Range(max(head0-2, 0), delivered).Draw(rt, "from")
				h.mu.Lock()
				floor := h.last[0].floor
				quiet := h.last[0].quiet(u, from)
				h.mu.Unlock()
				evs, err := store.EventsFor(ctx, u, from, 1000)
				if err != nil {
					rt.Fatal(err)
				}
				n := 0
				for _, ev := range evs.Events {
					if ev.Pos <= delivered {
						n++
					}
				}
				switch {
				case from < floor && quiet:
					rt.Fatalf("%s: quiet for %s from %d below the floor %d", label, u, from, floor)
				case from >= floor && quiet != (n == 0):
					rt.Fatalf("%s: quiet=%v for %s from %d (floor %d, delivered %d), EventsFor has %d",
						label, quiet, u, from, floor, delivered, n)
				}
			}
		}

		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for range steps {
			op := rapid.IntRange(0, 7).Draw(rt, "op")
			if len(convs) == 0 {
				op = 0
			}
			switch op {
			case 0: // create a group
				members := rapid.SliceOfDistinct(rapid.SampledFrom(users), func(s string) string { return s }).Draw(rt, "members")
				c, evs, err := store.CreateGroup(ctx, user("creator"), "g", members)
				if err == nil {
					convs = append(convs, c.ID)
				}
				deliver(evs, err)
			case 1: // create a direct conversation
				a, b := user("a"), user("b")
				if a == b {
					continue
				}
				c, evs, err := store.CreateDirect(ctx, a, b)
				if err == nil {
					convs = append(convs, c.ID)
				}
				deliver(evs, err)
			case 2, 3: // send
				m, evs, err := store.SendMessage(ctx, parley.NewMessage{
					ConversationID: conv(), SenderID: user("sender"), ClientID: fmt.Sprint(rapid.Int().Draw(rt, "cid")),
					Type: parley.Text, Text: "x",
				})
				if err == nil && len(evs) > 0 {
					msgs = append(msgs, m.ID)
					msgConv[m.ID] = m.ConversationID
				}
				deliver(evs, err)
			case 4: // read
				deliver(store.MarkRead(ctx, user("reader"), conv(), rapid.Int64Range(0, 5).Draw(rt, "seq")))
			case 5: // delete
				if len(msgs) == 0 {
					continue
				}
				id := rapid.SampledFrom(msgs).Draw(rt, "msg")
				_, evs, err := store.DeleteMessage(ctx, user("deleter"), msgConv[id], id)
				deliver(evs, err)
			case 6: // add a member
				_, evs, err := store.UpdateConversation(ctx, user("actor"), conv(), parley.ConversationChange{Add: []string{user("added")}})
				deliver(evs, err)
			case 7: // remove a member (or leave)
				_, evs, err := store.UpdateConversation(ctx, user("actor"), conv(), parley.ConversationChange{Remove: []string{user("removed")}})
				deliver(evs, err)
			}
			if rapid.Bool().Draw(rt, "check") {
				check(h, "live")
			}
		}
		check(h, "live")

		// A node started now (a restart) warms its index from the store.
		h2 := newHub(store, log, newMetrics())
		head, err := store.Head(ctx)
		if err != nil {
			rt.Fatal(err)
		}
		h2.start([]int64{head})
		h2.warm(ctx, []int64{head}, rapid.IntRange(1, 60).Draw(rt, "warm"))
		check(h2, "warmed")
	})
}

// invalidatingStore invalidates a contacts cache in the middle of every
// ContactsOf, as a membership event delivered meanwhile would.
type invalidatingStore struct {
	*sqlite.DB
	cc *contactsCache
}

func (s invalidatingStore) ContactsOf(ctx context.Context, ids []string) (map[string][]string, error) {
	s.cc.invalidate(ids[:1])
	return s.DB.ContactsOf(ctx, ids)
}

// TestWarm: warming at start reads the users of the latest events and
// their contacts into the caches, exactly as the store has them, and keeps
// no contacts read that raced a membership change.
func TestWarm(t *testing.T) {
	ctx := context.Background()
	store, log := hubParts(t)
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := store.EnsureUser(ctx, id, "User "+id); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := store.CreateGroup(ctx, "a", "g", []string{"b"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := store.CreateDirect(ctx, "a", "c"); err != nil {
		t.Fatal(err)
	}
	head, err := store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}

	svc := &service{store: store}
	h := newHub(store, log, newMetrics())
	h.warmUsers = svc.warmUsers
	h.start([]int64{head})
	h.warm(ctx, []int64{head}, 100)
	for _, id := range []string{"a", "b", "c"} {
		want, err := store.User(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := svc.ensured.load(id); !ok || got != want {
			t.Errorf("ensured[%s] = %v, want %+v", id, got, want)
		}
		contacts, err := store.Contacts(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := h.contacts.m[id]; !ok || fmt.Sprint(got) != fmt.Sprint(contacts) {
			t.Errorf("contacts[%s] = %v, want %v", id, got, contacts)
		}
	}
	if _, ok := svc.ensured.load("d"); ok {
		t.Errorf("d has no event yet is warmed")
	}
	if !h.last[0].quiet("b", head) || h.last[0].quiet("b", 0) || h.last[0].floor != 0 {
		t.Errorf("index after warm: floor %d, b quiet from head %v, from 0 %v", h.last[0].floor, h.last[0].quiet("b", head), h.last[0].quiet("b", 0))
	}

	h2 := newHub(store, log, newMetrics())
	h2.store = invalidatingStore{store, h2.contacts}
	h2.contacts.store = h2.store
	h2.start([]int64{head})
	h2.warm(ctx, []int64{head}, 100)
	if len(h2.contacts.m) != 0 {
		t.Errorf("contacts kept from a read that raced an invalidation: %v", h2.contacts.m)
	}
}
