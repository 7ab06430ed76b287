package client_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
)

// bubbleUsers connects one client per id in the bubble.
func bubbleUsers(t *testing.T, b *bubble, ids ...string) []*client.Client {
	t.Helper()
	out := make([]*client.Client, len(ids))
	for i, id := range ids {
		out[i] = b.connected(client.WithToken(b.token(id)), client.WithBackoff(100*time.Millisecond, time.Second))
	}
	return out
}

// cachedUnread is what the client's list says about one conversation.
func cachedUnread(t *testing.T, c *client.Client, id string) (unread, read int64) {
	t.Helper()
	for _, cv := range c.CachedConversations() {
		if cv.ID == id {
			return cv.UnreadCount, cv.ReadSeq
		}
	}
	t.Fatalf("conversation %s is not in the cached list", id)
	return 0, 0
}

// settled waits for the bubble to settle and returns the server's view
// of a conversation.
func settled(t *testing.T, b *bubble, user, id string) parley.Conversation {
	t.Helper()
	synctest.Wait()
	truth, err := b.store.Conversation(context.Background(), user, id)
	if err != nil {
		t.Fatal(err)
	}
	return truth
}

// checkUnread compares the client's cached count with the server's.
func checkUnread(t *testing.T, b *bubble, c *client.Client, user, id string, want int64) {
	t.Helper()
	truth := settled(t, b, user, id)
	got, read := cachedUnread(t, c, id)
	if truth.UnreadCount != want && want >= 0 {
		t.Fatalf("server says %d unread, the test expected %d", truth.UnreadCount, want)
	}
	if got != truth.UnreadCount || read != truth.ReadSeq {
		t.Fatalf("cached unread %d (read %d), server %d (read %d)", got, read, truth.UnreadCount, truth.ReadSeq)
	}
}

// TestUnreadCountsFollowEvents: the cached list's unread count follows new
// messages, deletes, partial and full reads and own sends, both for
// messages seen as events and for ones counted by the server's list (a
// partial read or a delete there asks the server again).
func TestUnreadCountsFollowEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice, bob, cv := twoInGroup(t, "bob")
		ctx := context.Background()
		settledList(t, alice)
		changed := record(alice)
		var ids []string
		for i := range 5 {
			ids = append(ids, sent(t, bob, cv.ID, fmt.Sprint("m", i)).ID)
		}
		checkUnread(t, b, alice, "alice", cv.ID, 5)
		if _, err := alice.MarkRead(ctx, cv.ID, 2); err != nil {
			t.Fatal(err)
		}
		checkUnread(t, b, alice, "alice", cv.ID, 3)
		if _, err := bob.Delete(ctx, cv.ID, ids[3]); err != nil { // seq 4
			t.Fatal(err)
		}
		checkUnread(t, b, alice, "alice", cv.ID, 2)
		if _, err := bob.Delete(ctx, cv.ID, ids[0]); err != nil { // seq 1: read already
			t.Fatal(err)
		}
		checkUnread(t, b, alice, "alice", cv.ID, 2)
		m, _ := alice.Send(ctx, cv.ID, "mine")
		m.Wait(ctx)
		checkUnread(t, b, alice, "alice", cv.ID, 0)
		for range 4 {
			m, _ := bob.Send(ctx, cv.ID, "more")
			m.Wait(ctx)
		}
		checkUnread(t, b, alice, "alice", cv.ID, 4)
		if len(recorded[client.ConversationsChanged](changed)) == 0 {
			t.Fatal("no ConversationsChanged event")
		}

		// A second device of alice's fetches the list now: the count comes
		// from the server, so a partial read and a delete inside it are
		// asked for again.
		alice2 := bubbleUsers(t, b, "alice")[0]
		mustList(t, alice2)
		checkUnread(t, b, alice2, "alice", cv.ID, 4)
		page, _ := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		last := page.Messages[len(page.Messages)-1].Seq
		if _, err := alice.MarkRead(ctx, cv.ID, last-2); err != nil {
			t.Fatal(err)
		}
		checkUnread(t, b, alice2, "alice", cv.ID, 2)
		if _, err := bob.Delete(ctx, cv.ID, page.Messages[len(page.Messages)-1].ID); err != nil {
			t.Fatal(err)
		}
		checkUnread(t, b, alice2, "alice", cv.ID, 1)
		checkUnread(t, b, alice, "alice", cv.ID, 1)
	})
}

// TestUnreadCountsStopAtMax: past parley.MaxUnreadCount unread messages
// the cached count stays at it, as the server's does, whether it came
// from events or from the server's list, and counts exactly again once
// reading brings it below.
func TestUnreadCountsStopAtMax(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice, bob, cv := twoInGroup(t, "bob")
		ctx := context.Background()
		settledList(t, alice)
		for i := range parley.MaxUnreadCount + 2 {
			m, _ := bob.Send(ctx, cv.ID, fmt.Sprint("m", i))
			if _, err := m.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		checkUnread(t, b, alice, "alice", cv.ID, parley.MaxUnreadCount)
		alice2 := bubbleUsers(t, b, "alice")[0]
		mustList(t, alice2)
		checkUnread(t, b, alice2, "alice", cv.ID, parley.MaxUnreadCount)
		m, _ := bob.Send(ctx, cv.ID, "one more")
		m.Wait(ctx)
		checkUnread(t, b, alice2, "alice", cv.ID, parley.MaxUnreadCount)
		truth := settled(t, b, "alice", cv.ID)
		if _, err := alice.MarkRead(ctx, cv.ID, truth.LastSeq-3); err != nil {
			t.Fatal(err)
		}
		checkUnread(t, b, alice, "alice", cv.ID, 3)
		checkUnread(t, b, alice2, "alice", cv.ID, 3)
	})
}

// TestUnreadCountsUnderConcurrentChanges: rounds of sends, deletes,
// partial reads and refetches racing each other; after each round the
// cached count equals the server's, whichever way replies and events
// interleaved.
func TestUnreadCountsUnderConcurrentChanges(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		cs := bubbleUsers(t, b, "alice", "bob", "carol")
		alice, bob, carol := cs[0], cs[1], cs[2]
		cv := mustGroup(t, bob, "alice", "carol")
		for range 6 {
			m, _ := bob.Send(ctx, cv.ID, "early")
			m.Wait(ctx)
		}
		settledList(t, alice)
		rng := rand.New(rand.NewPCG(1, 2))
		var mu sync.Mutex
		var sent []parley.Message
		for round := range 25 {
			var wg sync.WaitGroup
			for _, sender := range []*client.Client{bob, carol} {
				wg.Go(func() {
					m, err := sender.Send(ctx, cv.ID, "x")
					if err != nil {
						t.Error(err)
						return
					}
					st, err := m.Wait(ctx)
					if err == nil {
						mu.Lock()
						sent = append(sent, st)
						mu.Unlock()
					}
				})
			}
			mu.Lock()
			var victim parley.Message
			if len(sent) > 0 {
				victim = sent[rng.IntN(len(sent))]
			}
			mu.Unlock()
			if victim.ID != "" {
				owner := bob
				if victim.SenderID == "carol" {
					owner = carol
				}
				wg.Go(func() { owner.Delete(ctx, cv.ID, victim.ID) })
			}
			truth, _ := b.store.Conversation(ctx, "alice", cv.ID)
			if truth.LastSeq > 0 {
				seq := rng.Int64N(truth.LastSeq + 1)
				wg.Go(func() { alice.MarkRead(ctx, cv.ID, seq) })
			}
			if round%5 == 4 {
				wg.Go(func() { alice.Conversations(ctx) })
			}
			wg.Wait()
			checkUnread(t, b, alice, "alice", cv.ID, -1)
		}
	})
}

// TestTyping: who is typing, by user id with display name; starts are
// throttled to one per 3 s; a typist expires 5 s after the last start;
// Send stops one's typing.
func TestTyping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, alice, bob, cv := twoInGroup(t, "bob")
		ctx := context.Background()
		rec := record(alice)
		synctest.Wait()
		starts := func() int { return len(recorded[client.TypingStarted](rec)) }
		// Keystrokes every 500 ms for 2.5 s: one start goes out.
		for range 6 {
			if err := bob.SetTyping(ctx, cv.ID, true); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			time.Sleep(500 * time.Millisecond)
		}
		if n := starts(); n != 1 {
			t.Fatalf("%d typing starts reached alice in 3 s, want 1", n)
		}
		typ := alice.Typing(cv.ID)
		if len(typ) != 1 || typ[0].UserID != "bob" || typ[0].UserName != "User bob" {
			t.Fatalf("typing %+v, want bob by id with his name", typ)
		}
		// At 3 s a keystroke sends the next start; it extends the expiry.
		time.Sleep(500 * time.Millisecond)
		bob.SetTyping(ctx, cv.ID, true)
		synctest.Wait()
		if n := starts(); n != 2 {
			t.Fatalf("%d starts after 3 s, want 2", n)
		}
		last := time.Now()
		time.Sleep(TypingExpiryMinus())
		synctest.Wait()
		if len(alice.Typing(cv.ID)) != 1 {
			t.Fatal("bob stopped counting as typing before 5 s after his last start")
		}
		time.Sleep(time.Until(last.Add(client.TypingExpiry)) + time.Millisecond)
		synctest.Wait()
		if typ := alice.Typing(cv.ID); len(typ) != 0 {
			t.Fatalf("still typing 5 s after the last start: %+v", typ)
		}
		stops := recorded[client.TypingStopped](rec)
		if len(stops) == 0 || !stops[len(stops)-1].Expired || stops[len(stops)-1].UserID != "bob" {
			t.Fatalf("stops %+v, want the last an expiry for bob", stops)
		}

		// Typing, then Send: the stop goes out with the message.
		bob.SetTyping(ctx, cv.ID, true)
		synctest.Wait()
		if len(alice.Typing(cv.ID)) != 1 {
			t.Fatal("bob typing again is not shown")
		}
		m, _ := bob.Send(ctx, cv.ID, "done typing")
		m.Wait(ctx)
		synctest.Wait()
		if typ := alice.Typing(cv.ID); len(typ) != 0 {
			t.Fatalf("still typing after his message: %+v", typ)
		}
		stops = recorded[client.TypingStopped](rec)
		if len(stops) == 0 || stops[len(stops)-1].Expired || stops[len(stops)-1].UserID != "bob" {
			t.Fatalf("stops %+v, want the last bob's, not an expiry", stops)
		}
	})
}

// TypingExpiryMinus is a little less than the typing expiry.
func TypingExpiryMinus() time.Duration { return client.TypingExpiry - 100*time.Millisecond }

// TestPresenceOfContacts: a contact's coming online and (after the
// server's grace period) going offline show in Online and IsOnline; a user
// sharing no conversation is never shown.
func TestPresenceOfContacts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice := aliceAlone(t)
		ctx := context.Background()
		b.token("bob")
		b.token("mallory")
		if _, err := alice.CreateGroup(ctx, "g", []string{"bob"}); err != nil {
			t.Fatal(err)
		}
		rec := record(alice)
		bob := bubbleUsers(t, b, "bob")[0]
		bubbleUsers(t, b, "mallory")
		time.Sleep(time.Second) // the server batches presence changes
		synctest.Wait()
		if !alice.IsOnline("bob") || alice.IsOnline("mallory") {
			t.Fatalf("online %v, want bob only", alice.Online())
		}
		// The server sends ids only; the name comes from the group's
		// members.
		if got := alice.Online(); len(got) != 1 || got[0].ID != "bob" || got[0].Name != "User bob" {
			t.Fatalf("online %+v, want bob with his name", got)
		}
		bob.Close()
		synctest.Wait()
		if !alice.IsOnline("bob") {
			t.Fatal("bob went offline at once; the server's grace period should hide a quick reconnect")
		}
		time.Sleep(server.DefaultPresenceGrace + time.Second)
		synctest.Wait()
		if alice.IsOnline("bob") || len(alice.Online()) != 0 {
			t.Fatalf("online %v after bob left", alice.Online())
		}
		rec.mu.Lock()
		var on, off int
		for _, ev := range rec.events {
			switch e := ev.(type) {
			case client.UserOnline:
				if e.UserID == "bob" && e.UserName == "User bob" {
					on++
				}
			case client.UserOffline:
				if e.UserID == "bob" && e.UserName == "User bob" {
					off++
				}
			}
		}
		rec.mu.Unlock()
		if on != 1 || off != 1 {
			t.Fatalf("bob online %d times, offline %d times; want 1 and 1", on, off)
		}
		// A fresh client learns presence from the welcome and FetchPresence.
		online, err := alice.FetchPresence(ctx)
		if err != nil || len(online) != 0 {
			t.Fatalf("FetchPresence %v %v", online, err)
		}
	})
}

// TestFeatureThrottled: over the typing rate limit the server throttles
// typing; the status says which feature and until when, and goes back to
// Connected when the server lifts it. StatusChanges carries each step.
func TestFeatureThrottled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) {
			c.Limits.TypingPerSecond, c.Limits.TypingBurst = 0.5, 1
		})
		cs := bubbleUsers(t, b, "alice", "bob")
		alice := cs[0]
		ctx := context.Background()
		var convs []string
		for i := range 3 {
			cv, err := alice.CreateGroup(ctx, fmt.Sprint("g", i), []string{"bob"})
			if err != nil {
				t.Fatal(err)
			}
			convs = append(convs, cv.ID)
		}
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		changes := alice.StatusChanges(sctx)
		synctest.Wait()
		alice.SetTyping(ctx, convs[0], true) // the burst
		err := alice.SetTyping(ctx, convs[1], true)
		if parley.ErrorCode(err) != parley.ERATELIMITED {
			t.Fatalf("second typing: %v, want rate_limited", err)
		}
		synctest.Wait()
		st := alice.Status()
		until, ok := st.Throttled["typing"]
		if st.State != client.FeatureThrottled || !ok {
			t.Fatalf("status %+v, want FeatureThrottled for typing", st)
		}
		if d := time.Until(until); d <= 0 || d > 2*time.Second {
			t.Fatalf("throttled until %v from now, want within the 2 s refill", d)
		}
		// While throttled, SetTyping is dropped without a request.
		if err := alice.SetTyping(ctx, convs[2], true); err != nil {
			t.Fatalf("SetTyping while throttled: %v", err)
		}
		ch := <-changes
		if ch.Previous != client.Connected || ch.Current != client.FeatureThrottled || !ch.Throttled["typing"].Equal(until) {
			t.Fatalf("change %+v", ch)
		}
		time.Sleep(time.Until(until) + 10*time.Millisecond)
		synctest.Wait()
		if st := alice.Status(); st.State != client.Connected || len(st.Throttled) != 0 {
			t.Fatalf("after the time is up: %+v", st)
		}
		ch = <-changes
		if ch.Previous != client.FeatureThrottled || ch.Current != client.Connected {
			t.Fatalf("change %+v", ch)
		}
	})
}

// TestStatusChangesStream: a cut link shows as Reconnecting (attempt 1,
// when, why), then Connecting and Connected; failed attempts count up.
func TestStatusChangesStream(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		c := b.client(client.WithToken(b.token("alice")))
		ctx, cancel := context.WithCancel(context.Background())
		ch := c.StatusChanges(ctx)
		if err := c.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		next := func() client.StatusChange {
			synctest.Wait()
			select {
			case x := <-ch:
				return x
			default:
				t.Fatal("no status change")
				return client.StatusChange{}
			}
		}
		if x := next(); x.Previous != client.Disconnected || x.Current != client.Connecting || x.Attempt != 1 {
			t.Fatalf("first %+v", x)
		}
		if x := next(); x.Previous != client.Connecting || x.Current != client.Connected || x.Err != nil {
			t.Fatalf("second %+v", x)
		}
		b.proxy.Refuse(true)
		b.proxy.CutAll()
		x := next()
		if x.Previous != client.Connected || x.Current != client.Reconnecting || x.Attempt != 1 || x.Err == nil ||
			x.NextRetryAt.Before(x.At) || x.NextRetryAt.After(x.At.Add(client.DefaultBackoffBase)) {
			t.Fatalf("after a cut %+v", x)
		}
		time.Sleep(time.Until(x.NextRetryAt) + time.Millisecond)
		if y := next(); y.Current != client.Connecting || y.Attempt != 1 {
			t.Fatalf("retry %+v", y)
		}
		y := next()
		if y.Current != client.Reconnecting || y.Attempt != 2 || y.Err == nil || y.NextRetryAt.After(y.At.Add(2*client.DefaultBackoffBase)) {
			t.Fatalf("after a failed attempt %+v", y)
		}
		b.proxy.Heal()
		now := time.Now()
		c.Reconnect()
		// Retry now: the second attempt since the link was lost, at once.
		if z := next(); z.Current != client.Connecting || z.Attempt != 2 || !z.At.Equal(now) || !z.At.Before(y.NextRetryAt) {
			t.Fatalf("after Reconnect %+v", z)
		}
		if z := next(); z.Current != client.Connected {
			t.Fatalf("%+v", z)
		}
		cancel()
		synctest.Wait()
		if _, open := <-ch; open {
			t.Fatal("StatusChanges still open after its ctx ended")
		}
		c.Close()
	})
}

// TestViewResumeAndResync: a few missed messages are replayed (in batched
// frames) into an open view; more than the server's ResumeLimit makes it
// resync, and the view refetches to the same contiguous list, with
// messages sent during the refetch applied once.
func TestViewResumeAndResync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) { c.ResumeLimit = 5 })
		alice := bubbleUsers(t, b, "alice")[0]
		// bob goes around the proxy: only alice is cut off.
		bob := b.direct("bob")
		ctx := context.Background()
		cv := mustGroup(t, bob, "alice")
		send := func(n int) {
			for range n {
				sent(t, bob, cv.ID, "x")
			}
		}
		send(3)
		v, err := alice.OpenConversation(ctx, cv.ID, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		rec := record(alice)
		contiguous := func(want int) {
			t.Helper()
			synctest.Wait()
			for v.HasMore() {
				if _, err := v.LoadMore(ctx); err != nil {
					t.Fatal(err)
				}
			}
			ms := v.Messages()
			if len(ms) != want {
				t.Fatalf("view holds %d messages, want %d", len(ms), want)
			}
			for i, m := range ms {
				if m.Seq != int64(i+1) {
					t.Fatalf("view message %d has seq %d", i, m.Seq)
				}
			}
		}
		contiguous(3)

		// Offline for 4 events: replayed.
		b.proxy.Refuse(true)
		b.proxy.CutAll()
		synctest.Wait()
		send(4)
		b.proxy.Heal()
		time.Sleep(2 * time.Second)
		contiguous(7)
		resumed := recorded[client.Resumed](rec)
		if len(resumed) == 0 || resumed[len(resumed)-1].Count != 4 {
			t.Fatalf("resumed %+v, want 4 replayed events", resumed)
		}

		// Offline for 10: resync; bob keeps sending while alice refetches.
		b.proxy.Refuse(true)
		b.proxy.CutAll()
		synctest.Wait()
		send(10)
		b.proxy.Heal()
		late := make(chan error, 1)
		go func() {
			for range 3 {
				m, err := bob.Send(ctx, cv.ID, "late")
				if err == nil {
					_, err = m.Wait(ctx)
				}
				if err != nil {
					late <- err
					return
				}
			}
			late <- nil
		}()
		time.Sleep(2 * time.Second)
		if err := <-late; err != nil {
			t.Fatal(err)
		}
		contiguous(20)
		resyncs := recorded[client.Resynced](rec)
		for _, r := range resyncs {
			if r.Reason != client.ResyncResumeLimit || r.Text == "" {
				t.Errorf("resync %+v, want reason resumeLimit and the server's text", r)
			}
		}
		if len(resyncs) == 0 {
			t.Fatal("no Resynced event after missing more than ResumeLimit events")
		}
		if err := v.Err(); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("view error %v", err)
		}
	})
}

// TestConversationsFollowsPages: a user in more conversations than fit in
// one reply (a small send queue makes the server cut pages of 8 KiB) gets
// all of them from Conversations and in CachedConversations, once each.
func TestConversationsFollowsPages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) { c.Limits.SendQueueBytes = 16 << 10 })
		alice := bubbleUsers(t, b, "alice", "bob")[0]
		ctx := context.Background()
		want := make(map[string]bool)
		for i := range 60 {
			title := fmt.Sprintf("%03d %s", i, strings.Repeat("t", parley.MaxTitleRunes-4))
			cv, _, err := b.store.CreateGroup(ctx, "alice", title, []string{"bob"})
			if err != nil {
				t.Fatal(err)
			}
			want[cv.ID] = true
		}
		list, err := alice.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for name, got := range map[string][]parley.Conversation{"Conversations": list, "CachedConversations": alice.CachedConversations()} {
			seen := make(map[string]bool)
			for _, cv := range got {
				if seen[cv.ID] || !want[cv.ID] {
					t.Fatalf("%s: conversation %s twice or unknown", name, cv.ID)
				}
				seen[cv.ID] = true
			}
			if len(seen) != len(want) {
				t.Fatalf("%s: %d conversations, want %d", name, len(seen), len(want))
			}
		}
	})
}

// alicebob connects alice and bob in the bubble.
func alicebob(t *testing.T, b *bubble) (alice, bob *client.Client) {
	t.Helper()
	cs := bubbleUsers(t, b, "alice", "bob")
	return cs[0], cs[1]
}

// aliceAlone connects alice in a new bubble.
func aliceAlone(t *testing.T) (*bubble, *client.Client) {
	t.Helper()
	b := newBubble(t, nil)
	return b, bubbleUsers(t, b, "alice")[0]
}

// twoInGroup connects alice and bob in a new bubble; owner, one of them,
// creates a group "g" with the other.
func twoInGroup(t *testing.T, owner string) (b *bubble, alice, bob *client.Client, cv parley.Conversation) {
	t.Helper()
	b = newBubble(t, nil)
	alice, bob = alicebob(t, b)
	if owner == "alice" {
		return b, alice, bob, mustGroup(t, alice, "bob")
	}
	return b, alice, bob, mustGroup(t, bob, "alice")
}

// settledList waits for the bubble to settle (the events under way
// delivered) and fetches c's conversation list.
func settledList(t *testing.T, c *client.Client) {
	t.Helper()
	synctest.Wait()
	mustList(t, c)
}

// aliceInGroup connects alice in a new bubble, in a group "g" of her own.
func aliceInGroup(t *testing.T) (*bubble, *client.Client, parley.Conversation) {
	t.Helper()
	b, alice := aliceAlone(t)
	return b, alice, mustGroup(t, alice)
}

// mustList fetches c's conversation list.
func mustList(t *testing.T, c *client.Client) {
	t.Helper()
	if _, err := c.Conversations(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// opened opens conversation id for c; the view is closed when the test
// ends.
func opened(t *testing.T, c *client.Client, id string) *client.ConversationView {
	t.Helper()
	v, err := c.OpenConversation(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// sent sends text from c to conversation id and returns the message as
// stored.
func sent(t *testing.T, c *client.Client, id, text string) parley.Message {
	t.Helper()
	m, err := c.Send(context.Background(), id, text)
	return stored(t, m, err)
}

// stored waits for m, a send (or reply) that returned err, to be stored.
func stored(t *testing.T, m *client.Message, err error) parley.Message {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// mustGroup has c create a group "g" with the given members.
func mustGroup(t *testing.T, c *client.Client, members ...string) parley.Conversation {
	t.Helper()
	cv, err := c.CreateGroup(context.Background(), "g", members)
	if err != nil {
		t.Fatal(err)
	}
	return cv
}
