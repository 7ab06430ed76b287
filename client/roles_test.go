package client_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// roleIn is userID's role in the client's cached copy of a conversation.
func roleIn(c *client.Client, convID, userID string) parley.Role {
	for _, cv := range c.CachedConversations() {
		if cv.ID == convID {
			for _, m := range cv.Members {
				if m.UserID == userID {
					return m.Role
				}
			}
		}
	}
	return ""
}

// TestGroupRolesSDK: the helpers make one change each, a member is refused
// with EFORBIDDEN, and roles reach the other member's cached list by
// events.
func TestGroupRolesSDK(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		cs := bubbleUsers(t, b, "alice", "bob", "carol")
		alice, bob := cs[0], cs[1]
		cv := mustGroup(t, bob, "alice")
		settledList(t, alice)
		if r := roleIn(alice, cv.ID, "bob"); r != parley.RoleOwner {
			t.Fatalf("bob's role as alice sees it: %q, want owner", r)
		}
		for name, call := range map[string]func() error{
			"Rename":        func() error { _, err := alice.Rename(ctx, cv.ID, "mine"); return err },
			"AddMembers":    func() error { _, err := alice.AddMembers(ctx, cv.ID, "carol"); return err },
			"RemoveMembers": func() error { _, err := alice.RemoveMembers(ctx, cv.ID, "bob"); return err },
			"Promote":       func() error { _, err := alice.Promote(ctx, cv.ID, "alice"); return err },
			"Demote":        func() error { _, err := alice.Demote(ctx, cv.ID, "bob"); return err },
		} {
			if err := call(); parley.ErrorCode(err) != parley.EFORBIDDEN {
				t.Errorf("a member's %s: %v, want forbidden", name, err)
			}
		}
		if _, err := bob.Promote(ctx, cv.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Rename(ctx, cv.ID, "renamed"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if r := roleIn(alice, cv.ID, "alice"); r != parley.RoleOwner {
			t.Errorf("alice's role after the promotion: %q, want owner", r)
		}
		if _, err := alice.AddMembers(ctx, cv.ID, "carol"); err != nil {
			t.Errorf("alice, now an owner, adds carol: %v", err)
		}
	})
}

// TestRemovedFromGroup: a user removed while viewing a group hears it: the
// view reports Removed (and OnChange runs), the conversation leaves the
// list, and Send fails at once with ErrRemoved (code not_found) instead
// of queuing; added back, they send again. Leave marks it the same way.
func TestRemovedFromGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, alice, bob, cv := twoInGroup(t, "bob")
		ctx := context.Background()
		settledList(t, alice)
		v := opened(t, alice, cv.ID)
		var changed atomic.Int32
		v.OnChange(func() { changed.Add(1) })
		if v.Removed() || alice.IsRemoved(cv.ID) {
			t.Fatal("removed before anything happened")
		}

		if _, err := bob.RemoveMembers(ctx, cv.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !v.Removed() || !alice.IsRemoved(cv.ID) || changed.Load() == 0 {
			t.Fatalf("after removal: view removed %v, client %v, OnChange ran %d times", v.Removed(), alice.IsRemoved(cv.ID), changed.Load())
		}
		for _, c := range alice.CachedConversations() {
			if c.ID == cv.ID {
				t.Errorf("the group is still listed after the removal")
			}
		}
		m, err := alice.Send(ctx, cv.ID, "still here?")
		if !errors.Is(err, client.ErrRemoved) || parley.ErrorCode(err) != parley.ENOTFOUND || m != nil {
			t.Fatalf("Send after removal: %v, %v; want ErrRemoved (not_found)", m, err)
		}
		if len(alice.Pending()) != 0 {
			t.Errorf("a refused send was queued: %d pending", len(alice.Pending()))
		}

		// Added back: sending works again.
		if _, err := bob.AddMembers(ctx, cv.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if alice.IsRemoved(cv.ID) || v.Removed() {
			t.Fatal("still removed after being added back")
		}
		sent(t, alice, cv.ID, "back")

		// Leaving marks it too.
		if err := alice.Leave(ctx, cv.ID); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !alice.IsRemoved(cv.ID) {
			t.Error("not removed after Leave")
		}
		if _, err := alice.Send(ctx, cv.ID, "gone"); !errors.Is(err, client.ErrRemoved) {
			t.Errorf("Send after Leave: %v, want ErrRemoved", err)
		}
	})
}

// cached is the client's cached copy of a conversation.
func cached(c *client.Client, id string) (parley.Conversation, bool) {
	for _, cv := range c.CachedConversations() {
		if cv.ID == id {
			return cv, true
		}
	}
	return parley.Conversation{}, false
}

// TestFlagsSyncAcrossDevices: SetMuted and SetArchived on one device reach
// the user's other device as FlagsChanged and in its cached list; the
// other member sees nothing; a new message ends the archive in the cache.
func TestFlagsSyncAcrossDevices(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		cs := bubbleUsers(t, b, "alice", "alice", "bob")
		phone, laptop, bob := cs[0], cs[1], cs[2]
		cv := mustGroup(t, bob, "alice")
		synctest.Wait()
		for _, c := range cs {
			mustList(t, c)
		}
		var heard atomic.Int32
		laptop.AddEventHandler("flags", func(ev client.Event) {
			if _, ok := ev.(client.FlagsChanged); ok {
				heard.Add(1)
			}
		})
		bob.AddEventHandler("flags", func(ev client.Event) {
			if _, ok := ev.(client.FlagsChanged); ok {
				t.Errorf("bob heard alice's flags: %+v", ev)
			}
		})
		if got, err := phone.SetMuted(ctx, cv.ID, true); err != nil || !got.Muted {
			t.Fatalf("SetMuted: %+v, %v", got, err)
		}
		if _, err := phone.SetArchived(ctx, cv.ID, true); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, ok := cached(laptop, cv.ID); !ok || !got.Muted || !got.Archived || heard.Load() != 2 {
			t.Fatalf("the laptop's copy: %+v (heard %d)", got, heard.Load())
		}
		if got, _ := cached(bob, cv.ID); got.Muted || got.Archived {
			t.Errorf("bob's copy changed: %+v", got)
		}
		sent(t, bob, cv.ID, "wake up")
		synctest.Wait()
		if got, _ := cached(laptop, cv.ID); got.Archived || !got.Muted || got.UnreadCount != 1 {
			t.Errorf("after a new message the laptop has %+v, want unarchived, muted, 1 unread", got)
		}
		if got, err := laptop.Conversation(ctx, cv.ID); err != nil || got.Archived || !got.Muted {
			t.Errorf("the server says %+v, %v", got, err)
		}
	})
}
