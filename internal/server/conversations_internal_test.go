package server

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// TestConversationsPageTies: following next over a list where many
// conversations share their last activity time returns each exactly
// once, in order (activity descending, then id descending), whatever
// order the store gave them in, for byte caps and limits that cut pages
// in the middle of a run of equal times.
func TestConversationsPageTies(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	var cs []parley.Conversation
	for i := range 60 {
		cs = append(cs, parley.Conversation{
			ID:             fmt.Sprintf("c%02d", i),
			Kind:           parley.Group,
			Title:          strings.Repeat("t", i%7*10),
			LastActivityAt: base.Add(-time.Duration(i/10) * time.Microsecond), // runs of 10 equal times
		})
	}
	for _, tt := range []struct{ limit, maxBytes int }{{0, 1}, {0, 500}, {3, 1 << 20}, {7, 700}, {0, 1 << 20}} {
		var got []parley.Conversation
		var after convCursor
		for pages := 0; ; pages++ {
			if pages > len(cs) {
				t.Fatalf("%+v: the cursor does not move on", tt)
			}
			list := append([]parley.Conversation(nil), cs...)
			rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
			p := pageConversations(list, after, tt.limit, tt.maxBytes)
			got = append(got, p.Conversations...)
			if !p.HasMore {
				break
			}
			var err error
			if after, err = parseConvCursor(p.Next); err != nil {
				t.Fatal(err)
			}
		}
		if len(got) != len(cs) {
			t.Fatalf("%+v: %d conversations, want %d", tt, len(got), len(cs))
		}
		for i := range got {
			// Within a run of equal times, ids descend: c09..c00, c19..c10, ...
			want := fmt.Sprintf("c%02d", i/10*10+9-i%10)
			if got[i].ID != want {
				t.Fatalf("%+v: position %d is %s, want %s", tt, i, got[i].ID, want)
			}
		}
	}
}
