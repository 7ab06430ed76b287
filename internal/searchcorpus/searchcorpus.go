// Package searchcorpus makes the message texts of the search benchmarks
// (internal/sqlite and internal/postgres BenchmarkSearch1M), the same
// for both stores: a Zipf vocabulary of made-up words, groups of members,
// and a deterministic stream of messages.
package searchcorpus

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// The corpus's shape: Users users u0..u199, Groups groups of PerGroup
// members each; u0 is in every tenth group, "solo" in one.
const (
	Users    = 200
	Groups   = 1000
	PerGroup = 10
)

// Vocabulary is the corpus's words, most frequent first: made-up words of
// 3 to 9 letters, the same on every run.
func Vocabulary() []string {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var out []string
	for len(out) < 20000 {
		var b strings.Builder
		for range 3 + r.IntN(7) {
			b.WriteByte(byte('a' + r.IntN(26)))
		}
		if w := b.String(); !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out
}

// Corpus draws the groups' members and the messages.
type Corpus struct {
	r     *rand.Rand
	words []string
	zipf  *rand.Zipf
	text  strings.Builder
	// Members are each group's member ids (users u<i> and "solo"), the
	// first its creator.
	Members [][]string
}

// New draws the groups' members; Message then draws the messages.
func New() *Corpus {
	r := rand.New(rand.NewPCG(3, 4))
	c := &Corpus{r: r, words: Vocabulary(), Members: make([][]string, Groups)}
	for g := range Groups {
		ms := []string{}
		if g%10 == 0 {
			ms = append(ms, "u0")
		}
		if g == 1 {
			ms = append(ms, "solo")
		}
		for len(ms) < PerGroup {
			id := fmt.Sprint("u", 1+r.IntN(Users-1))
			dup := false
			for _, m := range ms {
				dup = dup || m == id
			}
			if !dup {
				ms = append(ms, id)
			}
		}
		c.Members[g] = ms
	}
	c.zipf = rand.NewZipf(r, 1.1, 2, uint64(len(c.words)-1))
	return c
}

// Message draws the next message: its group, sender and text (6 to 20
// words).
func (c *Corpus) Message() (group int, sender, text string) {
	group = c.r.IntN(Groups)
	c.text.Reset()
	for k := range 6 + c.r.IntN(15) {
		if k > 0 {
			c.text.WriteByte(' ')
		}
		c.text.WriteString(c.words[c.zipf.Uint64()])
	}
	return group, c.Members[group][c.r.IntN(PerGroup)], c.text.String()
}
