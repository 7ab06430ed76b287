package client_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
)

// TestConsentSDK: requests (a stranger's direct conversation), blocks
// and the consent setting (under contacts, a stranger can neither start a
// direct conversation nor add the user to a group) through the SDK: each change reaches the user's other device as a typed event and
// in its cached list; what a block or a declined request refuses fails
// with parley.ErrUnreachable.
func TestConsentSDK(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		cs := bubbleUsers(t, b, "alice", "alice", "bob", "carol")
		phone, laptop, bob, carol := cs[0], cs[1], cs[2], cs[3]
		var (
			mu    sync.Mutex
			heard []client.Event
		)
		laptop.AddEventHandler("consent", func(ev client.Event) {
			switch ev.(type) {
			case client.UserBlocked, client.UserUnblocked, client.PrivacyChanged, client.RequestAnswered:
				mu.Lock()
				heard = append(heard, ev)
				mu.Unlock()
			}
		})
		cv, err := bob.CreateDirect(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		hello := sent(t, bob, cv.ID, "hello, stranger")
		// Alice reads it, on a request: bob sees it merely sent.
		if _, err := phone.MarkRead(ctx, cv.ID, hello.Seq); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if _, err := bob.Conversations(ctx); err != nil {
			t.Fatal(err)
		}
		if r := bob.Receipt(hello); r.Status != client.Sent || r.Recipients != 1 {
			t.Errorf("bob's receipt across a request: %+v, want sent", r)
		}
		if _, err := laptop.Conversations(ctx); err != nil {
			t.Fatal(err)
		}
		if got, _ := cached(laptop, cv.ID); got.Request != parley.RequestPending {
			t.Fatalf("the laptop's copy: request %q", got.Request)
		}

		if got, err := phone.DeclineRequest(ctx, cv.ID); err != nil || got.Request != parley.RequestDeclined {
			t.Fatalf("DeclineRequest: %+v, %v", got, err)
		}
		synctest.Wait()
		if got, _ := cached(laptop, cv.ID); got.Request != parley.RequestDeclined {
			t.Errorf("after the decline the laptop has request %q", got.Request)
		}
		m, err := bob.Send(ctx, cv.ID, "please")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Wait(ctx); parley.ErrorCode(err) != parley.EFORBIDDEN || parley.ErrorMessage(err) != parley.ErrUnreachable.Message {
			t.Errorf("bob's send after the decline: %v", err)
		}
		if _, err := phone.AcceptRequest(ctx, cv.ID); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// The accept shows bob her read.
		if r := bob.Receipt(hello); r.Status != client.Read {
			t.Errorf("bob's receipt after the accept: %+v, want read", r)
		}
		if got, _ := cached(laptop, cv.ID); got.Request != "" {
			t.Errorf("after the accept the laptop has request %q", got.Request)
		}

		if err := phone.Block(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		p, err := laptop.Privacy(ctx)
		if err != nil || len(p.Blocked) != 1 || p.Blocked[0].UserID != "bob" {
			t.Errorf("Privacy: %+v, %v", p, err)
		}
		if _, err := bob.CreateGroup(ctx, "g", []string{"alice"}); parley.ErrorCode(err) != parley.EFORBIDDEN {
			t.Errorf("bob's group with alice: %v", err)
		}
		if err := phone.Unblock(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		if p, err := phone.SetConsent(ctx, parley.ConsentContacts); err != nil || p.Consent != parley.ConsentContacts {
			t.Fatalf("SetConsent: %+v, %v", p, err)
		}
		if _, err := carol.CreateDirect(ctx, "alice"); parley.ErrorCode(err) != parley.EFORBIDDEN || parley.ErrorMessage(err) != parley.ErrUnreachable.Message {
			t.Errorf("a stranger's direct conversation with a contacts-only alice: %v", err)
		}
		if _, err := carol.CreateGroup(ctx, "g", []string{"alice"}); parley.ErrorCode(err) != parley.EFORBIDDEN {
			t.Errorf("a stranger's group with a contacts-only alice: %v", err)
		}
		if p, err := phone.SetConsent(ctx, parley.ConsentEveryone); err != nil || p.Consent != parley.ConsentEveryone {
			t.Errorf("SetConsent: %+v, %v", p, err)
		}
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		want := []client.Event{client.RequestAnswered{}, client.RequestAnswered{Accepted: true},
			client.UserBlocked{UserID: "bob"}, client.UserUnblocked{UserID: "bob"},
			client.PrivacyChanged{Consent: parley.ConsentContacts}, client.PrivacyChanged{Consent: parley.ConsentEveryone}}
		if len(heard) != len(want) {
			t.Fatalf("the laptop heard %+v", heard)
		}
		for i, ev := range heard {
			if got := zeroPosAt(ev); got != want[i] {
				t.Errorf("event %d: %+v, want %+v", i, got, want[i])
			}
		}
	})
}

// zeroPosAt drops what the test cannot know (Pos, At, ConversationID).
func zeroPosAt(ev client.Event) client.Event {
	switch e := ev.(type) {
	case client.UserBlocked:
		return client.UserBlocked{UserID: e.UserID}
	case client.UserUnblocked:
		return client.UserUnblocked{UserID: e.UserID}
	case client.PrivacyChanged:
		return client.PrivacyChanged{Consent: e.Consent}
	case client.RequestAnswered:
		return client.RequestAnswered{Accepted: e.Accepted}
	}
	return ev
}

// aliceBlockedCarol makes alice's group "g" with bob and carol, in which
// alice blocked carol.
func aliceBlockedCarol(t *testing.T, b *bubble) (alice, bob, carol *client.Client, g parley.Conversation) {
	t.Helper()
	cs := bubbleUsers(t, b, "alice", "bob", "carol")
	alice, bob, carol = cs[0], cs[1], cs[2]
	ctx := context.Background()
	g, err := alice.CreateGroup(ctx, "g", []string{"bob", "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Block(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	return alice, bob, carol, g
}

// TestViewPastBlockedRun: a ConversationView pages past a run of more
// messages of a blocked user than the server reads for one page
// (parley.HistoryWindow): LoadMore follows the server's next through the
// pages the run leaves empty, and a live message after one hidden message
// or a run of them joins the view. (When the view fetched across such
// gaps, a fetched message after one was once buffered as a live one and
// fetched again, for ever.)
func TestViewPastBlockedRun(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		alice, bob, carol, g := aliceBlockedCarol(t, b)
		old := sent(t, bob, g.ID, "old")
		hidden := func(n int) { // in runs the outbox holds
			t.Helper()
			for n > 0 {
				ms := make([]*client.Message, min(n, 500))
				n -= len(ms)
				for i := range ms {
					var err error
					if ms[i], err = carol.Send(ctx, g.ID, "hidden"); err != nil {
						t.Fatal(err)
					}
				}
				for _, m := range ms {
					if _, err := m.Wait(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		hidden(parley.HistoryWindow + 5)
		last := sent(t, bob, g.ID, "new")

		v, err := alice.OpenConversation(ctx, g.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		for i := 0; v.HasMore() && i < 5; i++ {
			if _, err := v.LoadMore(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := v.Messages(); v.HasMore() || len(got) != 2 || got[0].ID != old.ID || got[1].ID != last.ID {
			t.Fatalf("after LoadMore: has_more %v, %d messages %v", v.HasMore(), len(got), got)
		}
		// One hidden message: the live one after it joins the view.
		hidden(1)
		after1 := sent(t, bob, g.ID, "after one")
		synctest.Wait()
		if got := v.Messages(); len(got) != 3 || got[2].ID != after1.ID || v.Err() != nil {
			t.Fatalf("after a live message past one hidden: %d messages, err %v", len(got), v.Err())
		}
		hidden(parley.HistoryWindow + 5)
		newer := sent(t, bob, g.ID, "newer")
		synctest.Wait()
		if got := v.Messages(); len(got) != 4 || got[3].ID != newer.ID || v.Err() != nil {
			t.Fatalf("after a live message past the gap: %d messages, err %v", len(got), v.Err())
		}
	})
}

// TestViewInterleavedHidden: live messages that alternate with messages
// of a user this user blocked join the view with no fetch: the event
// stream holds every message the user may see, so the seqs skipped are
// hidden ones. The server allows alice a few reads only: a view that
// fetched across every skipped seq (as it once did, one history read per
// visible message) runs out and misses messages.
func TestViewInterleavedHidden(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) {
			c.Limits.ReadsPerSecond, c.Limits.ReadBurst = 1e-6, 8
		})
		ctx := context.Background()
		alice, bob, carol, g := aliceBlockedCarol(t, b)
		first := sent(t, bob, g.ID, "first")
		v, err := alice.OpenConversation(ctx, g.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		want := []string{first.ID}
		for i := range 20 {
			sent(t, carol, g.ID, fmt.Sprint("hidden ", i))
			want = append(want, sent(t, bob, g.ID, fmt.Sprint("shown ", i)).ID)
		}
		sent(t, carol, g.ID, "hidden last")
		synctest.Wait()
		var got []string
		for _, m := range v.Messages() {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, want) || v.Err() != nil {
			t.Fatalf("view holds %d messages, want bob's %d; err %v", len(got), len(want), v.Err())
		}
	})
}

// TestViewReloadFails: a view whose reload after a resync fails (here the
// server refuses alice's reads) reports why in Err, stays empty rather
// than showing a part, and reloads on the next event.
func TestViewReloadFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) {
			c.ResumeLimit = 5
			c.Limits.ReadsPerSecond, c.Limits.ReadBurst = 1.0/60, 20
		})
		alice := bubbleUsers(t, b, "alice")[0]
		bob := b.direct("bob") // around the proxy: only alice is cut off
		ctx := context.Background()
		cv := mustGroup(t, bob, "alice")
		sent(t, bob, cv.ID, "before")
		v, err := alice.OpenConversation(ctx, cv.ID, 50)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		for { // spend alice's reads
			if _, err := alice.Conversations(ctx); parley.ErrorCode(err) == parley.ERATELIMITED {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
		b.proxy.Refuse(true)
		b.proxy.CutAll()
		synctest.Wait()
		for range 10 { // more than the resume limit: a resync
			sent(t, bob, cv.ID, "missed")
		}
		b.proxy.Heal()
		time.Sleep(2 * time.Second)
		if got := v.Messages(); len(got) != 0 || parley.ErrorCode(v.Err()) != parley.ERATELIMITED {
			t.Fatalf("after a failed reload: %d messages, err %v; want none and rate_limited", len(got), v.Err())
		}
		time.Sleep(10 * time.Minute) // reads again
		sent(t, bob, cv.ID, "after")
		time.Sleep(2 * time.Second)
		if got := v.Messages(); len(got) != 12 || got[11].Text != "after" || v.Err() != nil {
			t.Fatalf("after the next event: %d messages, err %v; want 12", len(got), v.Err())
		}
	})
}

// TestBlockReloads: a block or an unblock (on this device or another)
// changes what the server shows this user, so the client refetches its
// cached list and reloads its open views, as on a resync: the blocked
// user's messages leave the view, the list's last message and unread
// count at once, and come back on the unblock. Their typing indicator
// ends with the block.
func TestBlockReloads(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		cs := bubbleUsers(t, b, "alice", "alice", "bob", "carol")
		alice, laptop, bob := cs[0], cs[1], cs[2]
		g, err := cs[3].CreateGroup(ctx, "g", []string{"alice", "bob"})
		if err != nil {
			t.Fatal(err)
		}
		shown := sent(t, cs[3], g.ID, "carol's")
		hidden := sent(t, bob, g.ID, "bob's")
		if _, err := alice.Conversations(ctx); err != nil {
			t.Fatal(err)
		}
		v, err := alice.OpenConversation(ctx, g.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		var (
			mu      sync.Mutex
			stopped []client.TypingStopped
		)
		alice.AddEventHandler("typing", func(ev client.Event) {
			if e, ok := ev.(client.TypingStopped); ok {
				mu.Lock()
				stopped = append(stopped, e)
				mu.Unlock()
			}
		})
		if err := bob.SetTyping(ctx, g.ID, true); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := alice.Typing(g.ID); len(got) != 1 {
			t.Fatalf("alice sees %d typing, want bob", len(got))
		}
		check := func(when string, want parley.Message, unread int64) {
			t.Helper()
			synctest.Wait()
			if got := v.Messages(); len(got) == 0 || got[len(got)-1].ID != want.ID || v.Err() != nil {
				t.Errorf("%s: the view ends with %v (err %v), want %q", when, got, v.Err(), want.Text)
			}
			if cv, _ := cached(alice, g.ID); cv.LastMessage == nil || cv.LastMessage.ID != want.ID || cv.UnreadCount != unread {
				t.Errorf("%s: the cached list's last message %+v, unread %d; want %q, %d", when, cv.LastMessage, cv.UnreadCount, want.Text, unread)
			}
		}
		check("before the block", hidden, 2)

		if err := laptop.Block(ctx, "bob"); err != nil { // the other device
			t.Fatal(err)
		}
		check("after the block", shown, 1)
		if got := alice.Typing(g.ID); len(got) != 0 {
			t.Errorf("after the block, alice sees %v typing", got)
		}
		mu.Lock()
		if len(stopped) != 1 || stopped[0].UserID != "bob" {
			t.Errorf("alice heard %+v, want bob's typing stopped", stopped)
		}
		mu.Unlock()

		if err := alice.Unblock(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		check("after the unblock", hidden, 2)
	})
}

// TestBlockHidesQuotes: a view of a group shows carol's reply to bob's
// message with bob's quote; once alice blocks bob (on another device)
// the view reloads and the reply stays, its quote hidden (Hidden, its
// place, nothing of bob's message), and so is the quote of carol's next
// reply, live, and of alice's own answer to bob's message (Reply: the
// send's answer). An unblock reloads it with the quotes whole again.
func TestBlockHidesQuotes(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		cs := bubbleUsers(t, b, "alice", "alice", "bob", "carol")
		alice, laptop, bob, carol := cs[0], cs[1], cs[2], cs[3]
		g, err := carol.CreateGroup(ctx, "g", []string{"alice", "bob"})
		if err != nil {
			t.Fatal(err)
		}
		parent := sent(t, bob, g.ID, "bob's secret")
		reply := func(c *client.Client, text string) parley.Message {
			t.Helper()
			m, err := c.Reply(ctx, g.ID, parent.ID, text)
			return stored(t, m, err)
		}
		first := reply(carol, "re 1")
		v, err := alice.OpenConversation(ctx, g.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		whole := parley.Quote{MessageID: parent.ID, Seq: parent.Seq, SenderID: "bob", SenderName: parent.SenderName, Type: parley.Text, Text: parent.Text}
		hidden := parley.Quote{MessageID: parent.ID, Seq: parent.Seq, Hidden: true}
		check := func(when string, want parley.Quote, replies ...parley.Message) {
			t.Helper()
			synctest.Wait()
			msgs := v.Messages()
			for _, r := range replies {
				i := slices.IndexFunc(msgs, func(m parley.Message) bool { return m.ID == r.ID })
				if i < 0 || msgs[i].ReplyTo == nil || *msgs[i].ReplyTo != want {
					t.Errorf("%s: the view holds %+v, want %q with the quote %+v", when, msgs, r.Text, want)
					return
				}
			}
		}
		check("before the block", whole, first)

		if err := laptop.Block(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		check("after the block", hidden, first)
		second := reply(carol, "re 2")
		check("carol's reply after the block, live", hidden, first, second)
		own := reply(alice, "mine")
		if own.ReplyTo == nil || *own.ReplyTo != hidden {
			t.Errorf("alice's own reply answered with the quote %+v, want %+v", own.ReplyTo, hidden)
		}
		check("alice's own reply", hidden, first, second, own)

		if err := alice.Unblock(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		check("after the unblock", whole, first, second, own)
	})
}
