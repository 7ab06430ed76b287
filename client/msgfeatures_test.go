package client_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/faultproxy"
)

// TestOfflineEditsKeepTheirOrder: sends and edits made offline wait in a
// durable outbox, survive the client closing, and are applied in the
// order they were made; an edit of a message still in the outbox names it
// by its client id. Each edit is applied once although its reply is lost
// and it is sent again.
func TestOfflineEditsKeepTheirOrder(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		device, c1 := b.device("alice")
		cv := mustGroup(t, c1)
		zero, err := c1.Send(ctx, cv.ID, "zero")
		if err != nil {
			t.Fatal(err)
		}
		stored0, err := zero.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}

		b.proxy.Refuse(true)
		b.proxy.CutAll()
		synctest.Wait()
		one, _ := c1.Send(ctx, cv.ID, "one")
		if _, err := c1.EditQueued(ctx, one, "ONE"); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.Send(ctx, cv.ID, "two"); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.Edit(ctx, cv.ID, stored0.ID, "ZERO"); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.EditQueued(ctx, one, "ONE!"); err != nil {
			t.Fatal(err)
		}
		// A text message's edit must not be blank: the SDK cannot tell a
		// caption from a text by id, the server refuses it.
		if _, err := c1.Edit(ctx, cv.ID, stored0.ID, " "); err != nil {
			t.Fatal(err)
		}
		if err := c1.Close(); err != nil {
			t.Fatal(err)
		}

		b.proxy.Heal()
		c2 := device()
		pending := c2.Pending()
		kinds := make([]bool, len(pending))
		for i, m := range pending {
			kinds[i] = m.IsEdit()
		}
		if !slices.Equal(kinds, []bool{false, true, false, true, true, true}) {
			t.Fatalf("reopened outbox holds edits at %v", kinds)
		}
		if id, cid := pending[1].EditOf(); id != "" || cid != one.ClientID() {
			t.Fatalf("queued edit names %q/%q, want the client id %s", id, cid, one.ClientID())
		}
		if err := c2.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		var failed []string
		for _, m := range pending {
			if _, err := m.Wait(ctx); err != nil {
				failed = append(failed, parley.ErrorCode(err))
			}
		}
		if !slices.Equal(failed, []string{parley.EINVALID}) {
			t.Fatalf("failed entries %v, want only the blank edit (invalid)", failed)
		}
		page, err := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var texts []string
		for _, m := range page.Messages {
			texts = append(texts, m.Text)
		}
		if !slices.Equal(texts, []string{"ZERO", "ONE!", "two"}) {
			t.Fatalf("stored %q", texts)
		}
		// An edit whose reply is lost is sent again on the next
		// connection and applied once.
		b.proxy.Blackhole(faultproxy.Downstream)
		again, err := c2.Edit(ctx, cv.ID, stored0.ID, "ZERO!")
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		b.proxy.CutAll()
		b.proxy.Heal()
		if got, err := again.Wait(ctx); err != nil || got.Text != "ZERO!" {
			t.Fatalf("edit after a lost reply = %+v, %v", got, err)
		}
		// One messageEdited per edit, in the order made.
		evs, err := b.store.EventsFor(ctx, "alice", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, e := range evs.Events {
			switch e.Type {
			case parley.EventNewMessage:
				order = append(order, "new "+e.Message.ClientID)
			case parley.EventMessageEdited:
				order = append(order, "edit "+e.Message.ClientID)
			}
		}
		want := []string{"new " + zero.ClientID(), "new " + one.ClientID(), "edit " + one.ClientID(), "new " + pending[2].ClientID(),
			"edit " + zero.ClientID(), "edit " + one.ClientID(), "edit " + zero.ClientID()}
		if !slices.Equal(order, want) {
			t.Fatalf("events %q, want %q", order, want)
		}
	})
}

// TestViewFollowsEditsReactionsReplies: a ConversationView applies edits
// and reactions in place and keeps the quotes of replies right, and the
// conversation list's last message follows an edit.
func TestViewFollowsEditsReactionsReplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, alice, bob, cv := twoInGroup(t, "alice")
		ctx := context.Background()
		parentM, _ := alice.Send(ctx, cv.ID, "what time?")
		parent, err := parentM.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		replyM, err := bob.Reply(ctx, cv.ID, parent.ID, "noon")
		if err != nil {
			t.Fatal(err)
		}
		reply, err := replyM.Wait(ctx)
		if err != nil || reply.ReplyTo == nil || reply.ReplyTo.Text != "what time?" {
			t.Fatalf("reply = %+v, %v", reply.ReplyTo, err)
		}
		mustList(t, bob)
		v := opened(t, bob, cv.ID)

		if _, err := bob.React(ctx, cv.ID, parent.ID, "👍"); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.React(ctx, cv.ID, parent.ID, "👍"); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.React(ctx, cv.ID, parent.ID, "🎉"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.React(ctx, cv.ID, parent.ID, "not an emoji"); parley.ErrorCode(err) != parley.EINVALID {
			t.Errorf("a word as reaction: %v", err)
		}
		edit, err := alice.Edit(ctx, cv.ID, parent.ID, "what time exactly?")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := edit.Wait(ctx); err != nil || got.Text != "what time exactly?" || got.EditedAt == nil {
			t.Fatalf("edit = %+v, %v", got, err)
		}
		// The last message's edit reaches the list too.
		lastEdit, _ := bob.Edit(ctx, cv.ID, reply.ID, "noon sharp")
		if _, err := lastEdit.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ms := v.Messages()
		if len(ms) != 2 || ms[0].Text != "what time exactly?" || ms[0].EditedAt == nil || ms[1].Text != "noon sharp" {
			t.Fatalf("view = %+v", ms)
		}
		wantR := []parley.Reaction{{Emoji: "👍", Count: 2, Me: true}, {Emoji: "🎉", Count: 1}}
		if !slices.Equal(ms[0].Reactions, wantR) {
			t.Errorf("view reactions = %+v, want %+v", ms[0].Reactions, wantR)
		}
		if q := ms[1].ReplyTo; q == nil || q.Text != "what time exactly?" {
			t.Errorf("view quote after the edit = %+v", q)
		}
		for _, c := range bob.CachedConversations() {
			if c.ID == cv.ID && (c.LastMessage == nil || c.LastMessage.Text != "noon sharp") {
				t.Errorf("list's last message = %+v", c.LastMessage)
			}
		}
		// Removing one's reaction clears "me"; the parent's delete reaches
		// the quote.
		if _, err := bob.Unreact(ctx, cv.ID, parent.ID, "👍"); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Delete(ctx, cv.ID, parent.ID); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		ms = v.Messages()
		if !ms[0].Deleted || len(ms[0].Reactions) != 0 {
			t.Errorf("deleted parent in view = %+v", ms[0])
		}
		if q := ms[1].ReplyTo; q == nil || !q.Deleted || q.Text != "" {
			t.Errorf("view quote after the delete = %+v", q)
		}
		// A page read now says the same as the events made of the view.
		fresh, err := bob.History(ctx, cv.ID, parley.MessageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if q := fresh.Messages[1].ReplyTo; q == nil || !q.Deleted {
			t.Errorf("history quote = %+v", q)
		}
	})
}
