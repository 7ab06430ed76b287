package client_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// checkMentions compares the client's cached unread mentions of a
// conversation with the server's, and both with want.
func checkMentions(t *testing.T, b *bubble, c *client.Client, user, id string, want int64) {
	t.Helper()
	truth := settled(t, b, user, id)
	if truth.UnreadMentions != want {
		t.Fatalf("server says %d unread mentions, the test expected %d", truth.UnreadMentions, want)
	}
	for _, cv := range c.CachedConversations() {
		if cv.ID == id {
			if cv.UnreadMentions != want {
				t.Fatalf("cached unread mentions %d, server %d", cv.UnreadMentions, want)
			}
			return
		}
	}
	t.Fatalf("conversation %s is not in the cached list", id)
}

// TestMentionsAndSearch: the cached list's unread mentions follow
// mentions sent and edited and the read position; Mentions and Search
// page through what the server finds.
func TestMentionsAndSearch(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		alice, bob := alicebob(t, b)
		// The bubble's users are named "User <id>", which no @name can
		// spell (a mention names a username): alice takes one.
		if _, err := b.store.EnsureUser(ctx, "alice", "alice"); err != nil {
			t.Fatal(err)
		}
		cv := mustGroup(t, bob, "alice")
		synctest.Wait()
		if _, err := alice.Conversations(ctx); err != nil {
			t.Fatal(err)
		}
		m1 := sent(t, bob, cv.ID, "hello @alice, a quokka")
		if !slices.Equal(m1.Mentions, []string{"alice"}) {
			t.Fatalf("mentions = %v", m1.Mentions)
		}
		sent(t, bob, cv.ID, "no mention, another quokka")
		checkMentions(t, b, alice, "alice", cv.ID, 1)
		// An edit that drops the mention.
		if _, err := bob.Edit(ctx, cv.ID, m1.ID, "hello all, a quokka"); err != nil {
			t.Fatal(err)
		}
		checkMentions(t, b, alice, "alice", cv.ID, 0)
		m3 := sent(t, bob, cv.ID, "@alice again")
		checkMentions(t, b, alice, "alice", cv.ID, 1)
		if _, err := alice.MarkRead(ctx, cv.ID, m3.Seq); err != nil {
			t.Fatal(err)
		}
		checkMentions(t, b, alice, "alice", cv.ID, 0)

		page, err := alice.Mentions(ctx, "", 10)
		if err != nil || len(page.Results) != 1 || page.Results[0].Message.ID != m3.ID {
			t.Fatalf("Mentions = %+v, %v", page, err)
		}
		var found []string
		opts := client.SearchOptions{Limit: 1}
		for {
			page, err := alice.Search(ctx, "QUOKKA", opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page.Results {
				found = append(found, r.Message.Text)
			}
			if !page.HasMore {
				break
			}
			opts.Cursor = page.Next
		}
		if want := []string{"no mention, another quokka", "hello all, a quokka"}; !slices.Equal(found, want) {
			t.Fatalf("search found %q, want %q", found, want)
		}
		if _, err := alice.Search(ctx, "?!", client.SearchOptions{}); parley.ErrorCode(err) != parley.EINVALID {
			t.Fatalf("a query with no word: %v", err)
		}
	})
}
