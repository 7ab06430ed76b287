package client_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// TestResendOnSameConnection: a message refused for good (Failed) and
// resent on the same connection is sent again, not skipped as "already
// sent on this connection".
func TestResendOnSameConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, nil)
		alice, bob := alicebob(t, b)
		ctx := context.Background()
		cv := mustGroup(t, bob, "alice")
		if _, err := bob.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: cv.ID, Remove: []string{"alice"}}); err != nil {
			t.Fatal(err)
		}
		m, err := alice.Send(ctx, cv.ID, "hello")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Wait(ctx); parley.ErrorCode(err) != parley.ENOTFOUND || m.Status() != client.Failed {
			t.Fatalf("send while removed: status %v, err %v; want failed, not_found", m.Status(), err)
		}
		if _, err := bob.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: cv.ID, Add: []string{"alice"}}); err != nil {
			t.Fatal(err)
		}
		if err := alice.Resend(ctx, m); err != nil {
			t.Fatal(err)
		}
		stored, err := m.Wait(ctx)
		if err != nil || m.Status() != client.Sent {
			t.Fatalf("resend: status %v, err %v; want sent", m.Status(), err)
		}
		page, err := b.store.Messages(ctx, "bob", cv.ID, parley.MessageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) != 1 || page.Messages[0].ID != stored.ID || page.Messages[0].ClientID != m.ClientID() {
			t.Fatalf("stored %+v, want the one resent message", page.Messages)
		}
	})
}
