package searchcorpus

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/parleychat/parley"
)

// Bench runs the search benchmarks' cases on a store holding the corpus:
// each one search of one page (20 results) as a user: "common" (a word
// in about a third of the messages), "medium" (about 1%), "rare" (about
// 0.01%), "two words", "prefix" (three letters and '*'),
// "common_prefix" (the common word and '*'), as u0 (in 100 of the 1000
// groups), the same as "solo" (in a single group: the index may walk
// many matches it cannot show), and with the conversation filter; then
// a common and a rare word as a user in 1 ("solo"), 50 and 256 groups
// (users "in50" and "in256", added to the groups by Widen).
func Bench(b *testing.B, s parley.Store) {
	ss, ok := s.(parley.Searcher)
	if !ok {
		b.Fatal("the store does not search")
	}
	groups, err := s.Conversations(b.Context(), "u0")
	if err != nil || len(groups) == 0 {
		b.Fatalf("corpus: %d conversations of u0, %v", len(groups), err)
	}
	Widen(b, s)
	w := Vocabulary()
	for _, tc := range []struct {
		name, user, query string
		conv              string
	}{
		{"common_in1", "solo", w[0], ""},
		{"rare_in1", "solo", w[5000], ""},
		{"common_in50", "in50", w[0], ""},
		{"rare_in50", "in50", w[5000], ""},
		{"common_in256", "in256", w[0], ""},
		{"rare_in256", "in256", w[5000], ""},
		{"common", "u0", w[0], ""},
		{"medium", "u0", w[30], ""},
		{"rare", "u0", w[5000], ""},
		{"two_words", "u0", w[3] + " " + w[40], ""},
		{"prefix", "u0", w[100][:3] + "*", ""},
		{"common_prefix", "u0", w[0] + "*", ""},
		{"common_one_group", "solo", w[0], ""},
		{"medium_one_group", "solo", w[30], ""},
		{"medium_in_conversation", "u0", w[30], groups[0].ID},
	} {
		terms, err := parley.SearchTerms(tc.query)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			var found int
			for b.Loop() {
				p, err := ss.Search(b.Context(), tc.user, parley.SearchQuery{Terms: terms, Prefix: parley.SearchPrefix(tc.query), ConversationID: tc.conv})
				if err != nil {
					b.Fatal(err)
				}
				found = len(p.Results)
			}
			b.ReportMetric(float64(found), "results")
		})
	}
}

// Widen adds users "in50" and "in256" to 50 and 256 of the corpus's
// groups (evenly spread), through the store, unless they are there: a
// member sees the group's whole history, so they search it all.
func Widen(b *testing.B, s parley.Store) {
	ctx := b.Context()
	members := New().Members
	for _, n := range []int{50, 256} {
		id := fmt.Sprint("in", n)
		if _, err := s.EnsureUser(ctx, id, id); err != nil {
			b.Fatal(err)
		}
		have, err := s.Conversations(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if len(have) == n {
			continue
		}
		if len(have) != 0 {
			b.Fatalf("%s is in %d groups, not 0 or %d", id, len(have), n)
		}
		for i := range n {
			g := i * Groups / n
			conv, err := groupByTitle(ctx, s, members[g][0], fmt.Sprint("g", g))
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := s.UpdateConversation(ctx, members[g][0], conv, parley.ConversationChange{Add: []string{id}}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// groupByTitle finds the corpus group a member created by its title.
func groupByTitle(ctx context.Context, s parley.Store, member, title string) (string, error) {
	cs, err := s.Conversations(ctx, member)
	if err != nil {
		return "", err
	}
	for _, c := range cs {
		if c.Title == title {
			return c.ID, nil
		}
	}
	return "", fmt.Errorf("corpus: no group %q of %s", title, member)
}

// Size is the corpus's message count: 1,000,000, or
// PARLEY_SEARCH_BENCH_MESSAGES. A -short run skips the benchmark.
func Size(b *testing.B) int {
	if testing.Short() {
		b.Skip("builds a corpus of 1M messages")
	}
	n := 1_000_000
	if v := os.Getenv("PARLEY_SEARCH_BENCH_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("PARLEY_SEARCH_BENCH_MESSAGES=%q: want a count", v)
		}
	}
	return n
}

// Populate makes the corpus's users and groups in s (through the store)
// and returns the groups' ids, by group number; Message's groups index
// it.
func (c *Corpus) Populate(b *testing.B, s parley.Store) []string {
	ctx := context.Background()
	for i := range Users {
		if _, err := s.EnsureUser(ctx, fmt.Sprint("u", i), fmt.Sprint("user", i)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.EnsureUser(ctx, "solo", "solo"); err != nil {
		b.Fatal(err)
	}
	convs := make([]string, Groups)
	for g, ms := range c.Members {
		conv, _, err := s.CreateGroup(ctx, ms[0], fmt.Sprint("g", g), ms[1:])
		if err != nil {
			b.Fatal(err)
		}
		convs[g] = conv.ID
	}
	return convs
}
