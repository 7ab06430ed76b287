package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// testSearchFresh: a search right after writes, however the store
// indexes (SQLite after commit, PostgreSQL with the row), finds every
// message whose send returned, with its text as it is now: messages
// sent concurrently (several batches), half of them edited and a
// quarter deleted at once, before anything else ran. No tombstone and
// no text before its edit matches.
func testSearchFresh(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "fresha"), newUser(t, s, "freshb")
	g := newGroup(t, s, a, "fresh", b)
	old, edited, gone := word("freshold"), word("freshnew"), word("freshgone")
	const n = 40
	msgs := make([]parley.Message, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			from := a
			if i%2 == 1 {
				from = b
			}
			m, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: g.ID, SenderID: from.ID,
				ClientID: clientID(), Type: parley.Text, Text: fmt.Sprintf("%s %s number%d", old, gone, i)})
			if err != nil {
				t.Error(err)
			}
			msgs[i] = m
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var wantOld, wantNew, wantGone []string
	for i, m := range msgs {
		from := a
		if i%2 == 1 {
			from = b
		}
		switch {
		case i%4 == 0:
			if _, _, err := s.DeleteMessage(ctx(t), from.ID, g.ID, m.ID); err != nil {
				t.Fatal(err)
			}
		case i%4 == 1:
			if _, _, err := edit(t, s, from, m, clientID(), fmt.Sprintf("%s number%d", edited, i)); err != nil {
				t.Fatal(err)
			}
			wantNew = append(wantNew, m.ID)
		default:
			wantOld = append(wantOld, m.ID)
			wantGone = append(wantGone, m.ID)
		}
	}
	// Newest first: the order the messages were stored in.
	bySeq := func(ids []string) []string {
		seq := map[string]int64{}
		for _, m := range msgs {
			seq[m.ID] = m.Seq
		}
		slices.SortFunc(ids, func(x, y string) int { return int(seq[y] - seq[x]) })
		return ids
	}
	for _, c := range []struct {
		query string
		want  []string
	}{{old, bySeq(wantOld)}, {gone, bySeq(wantGone)}, {edited, bySeq(wantNew)}} {
		for _, u := range []parley.User{a, b} {
			if got := searchIDs(t, s, u, c.query, "", 7); !slices.Equal(got, c.want) {
				t.Errorf("search %q as %s: %d results %v, want %d %v", c.query, u.Name, len(got), got, len(c.want), c.want)
			}
		}
	}
}
