package client_test

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// TestDeliveryReceiptsSDK: a receiving client reports what it received
// on its own, coalesced (ten messages within one interval make at most
// two reports, the last covering them all); the sender's Receipt goes
// Sent, Delivered, Read as the recipients' positions move, counting them
// in a group; a client with receipts off reports nothing.
func TestDeliveryReceiptsSDK(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		cs := bubbleUsers(t, b, "alice", "bob")
		alice, bob := cs[0], cs[1]
		carol := b.connected(client.WithToken(b.token("carol")), client.WithDeliveredInterval(-1))
		ra := record(alice)
		cv := mustGroup(t, alice, "bob", "carol")
		if _, err := alice.Conversations(ctx); err != nil {
			t.Fatal(err)
		}
		var last parley.Message
		for i := range 10 {
			m, err := alice.Send(ctx, cv.ID, "m"+string(rune('0'+i)))
			if err != nil {
				t.Fatal(err)
			}
			if last, err = m.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if r := alice.Receipt(last); r.Status != client.Sent || r.Recipients != 2 || r.Delivered > 1 || r.Read != 0 {
			t.Errorf("at once: receipt %+v", r)
		}
		time.Sleep(client.DefaultDeliveredInterval)
		synctest.Wait()
		var reports []client.MessageDelivered
		ra.mu.Lock()
		events := append([]client.Event(nil), ra.events...)
		ra.mu.Unlock()
		for _, ev := range events {
			if d, ok := ev.(client.MessageDelivered); ok {
				reports = append(reports, d)
			}
		}
		if len(reports) == 0 || len(reports) > 2 {
			t.Fatalf("bob's reports as alice heard them: %+v, want 1 or 2", reports)
		}
		for _, d := range reports {
			if d.UserID != "bob" {
				t.Errorf("a report from %s (carol's receipts are off): %+v", d.UserID, d)
			}
		}
		if got := reports[len(reports)-1].DeliveredSeq; got != last.Seq {
			t.Errorf("the last report is at %d, want %d", got, last.Seq)
		}
		if r := alice.Receipt(last); r.Status != client.Sent || r.Recipients != 2 || r.Delivered != 1 || r.Read != 0 {
			t.Errorf("delivered to bob: receipt %+v, want 1 of 2 delivered", r)
		}
		// Carol reads: delivered to both (reading implies delivery), read by one.
		if _, err := carol.MarkRead(ctx, cv.ID, last.Seq); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := alice.Receipt(last); r.Status != client.Delivered || r.Delivered != 2 || r.Read != 1 {
			t.Errorf("after carol read: receipt %+v, want delivered to 2, read by 1", r)
		}
		if _, err := bob.MarkRead(ctx, cv.ID, last.Seq); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := alice.Receipt(last); r.Status != client.Read || r.Read != 2 {
			t.Errorf("after both read: receipt %+v, want read by 2", r)
		}
		// A view shows the same.
		v, err := alice.OpenConversation(ctx, cv.ID, 20)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if r := v.Receipt(last); r.Status != client.Read {
			t.Errorf("the view's receipt %+v", r)
		}
	})
}

// TestProfilesSDK: SetProfile changes the user's profile, checks the name
// before sending, and the other member's list follows by ProfileUpdated.
func TestProfilesSDK(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		alice, bob := alicebob(t, b)
		cv := mustGroup(t, alice, "bob")
		if _, err := bob.Conversations(ctx); err != nil {
			t.Fatal(err)
		}
		name := "  Alice L.  "
		u, err := alice.SetProfile(ctx, &name, nil)
		if err != nil || u.DisplayName != "Alice L." {
			t.Fatalf("SetProfile = %+v, %v", u, err)
		}
		if got := alice.User().DisplayName; got != "Alice L." {
			t.Errorf("User().DisplayName = %q", got)
		}
		bad := "a\u202eb"
		if _, err := alice.SetProfile(ctx, &bad, nil); parley.ErrorCode(err) != parley.EINVALID {
			t.Errorf("a bidi name: %v, want invalid", err)
		}
		u, err = alice.SetAvatar(ctx, bytes.NewReader(pngBytes(t)))
		if err != nil || u.AvatarID == "" || u.DisplayName != "Alice L." {
			t.Fatalf("SetAvatar = %+v, %v", u, err)
		}
		synctest.Wait()
		for _, c := range bob.CachedConversations() {
			if c.ID != cv.ID {
				continue
			}
			for _, m := range c.Members {
				if m.UserID == "alice" && (m.DisplayName != "Alice L." || m.AvatarID != u.AvatarID) {
					t.Errorf("alice in bob's list: %+v", m)
				}
			}
		}
	})
}
