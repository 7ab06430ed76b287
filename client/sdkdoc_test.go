package client_test

// docs/sdk.md's snippets and names, compiled: sdkDocSnippets is never
// run; it fails the build when a name or signature the document shows
// changes. TestSDKDocPromises runs a few of the behaviours it describes.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

func sdkDocSnippets(ctx context.Context, server, password, conversationID, convID, msgID, parentID string, file *os.File, myListener client.ConnectionListener, show func([]parley.Message)) error {
	// The opening example.
	s, err := client.Login(ctx, server, "alice", password)
	_, _ = client.Register(ctx, server, "alice", password)
	// Accounts and tokens: TLS.
	var hc *http.Client = http.DefaultClient
	s, err = client.LoginWith(ctx, hc, server, "alice", password)
	s, err = client.RegisterWith(ctx, hc, server, "alice", password)
	_, _ = s.Token, s.ExpiresAt
	var _ parley.User = s.User
	c, err := client.New(server, client.WithToken(s.Token))
	defer c.Close()
	c.AddConnectionListener("ui", myListener)
	c.RemoveConnectionListener("ui")
	err = c.Connect(ctx)
	m, err := c.Send(ctx, conversationID, "hello")
	stored, err := m.Wait(ctx)
	_ = stored.Seq
	v, err := c.OpenConversation(ctx, conversationID, 50)
	v.LoadMore(ctx)
	_ = v.HasMore()

	// Connection states.
	st := c.Status()
	_, _, _, _ = st.Attempt, st.NextRetryAt, st.Err, st.Throttled
	_ = st.Connected() || c.Connected()
	for _, state := range []client.State{client.Disconnected, client.Connecting, client.Connected, client.Reconnecting, client.FeatureThrottled} {
		_ = state
	}
	var gave *client.GaveUpError
	var ce *client.CloseError
	_ = errors.As(st.Err, &gave) || errors.As(st.Err, &ce) && ce.Code == 4103
	_ = errors.Is(err, client.ErrDisconnected) || errors.Is(err, client.ErrOutboxFull) || errors.Is(err, client.ErrClosed) || errors.Is(err, client.ErrHeartbeatTimeout) || errors.Is(err, client.ErrRemoved) || errors.Is(err, client.ErrOutboxInUse)
	var _ client.ConnectionListener = client.NopListener{}
	for ch := range c.StatusChanges(ctx) {
		_, _, _, _, _, _, _ = ch.Previous, ch.Current, ch.Attempt, ch.NextRetryAt, ch.Err, ch.Throttled, ch.At
	}
	_ = client.StatusChangesBuffer
	c.Reconnect()
	_ = []client.Option{client.WithBackoff(time.Second, 30*time.Second), client.WithMaxAttempts(3), client.WithHeartbeat(4*time.Second, 9*time.Second),
		client.WithSendWindow(32), client.WithOutboxLimit(1000), client.WithOutboxFile("outbox.db"), client.WithTokenSource(func(context.Context) (string, error) { return "", nil }),
		client.WithCursor(map[int]int64{0: 1}), client.WithResumeFrom(1), client.WithProtocol(protocol.Version), client.WithDeliveredInterval(time.Second), client.WithBatching(false)}

	// Sending.
	_ = m.Status() == client.Sending
	_ = m.Err()
	_ = c.Resend(ctx, m)
	_ = c.Pending()
	err = c.Flush(ctx)

	// Edits, replies and reactions.
	m, _ = c.Send(ctx, convID, "helo")
	e1, _ := c.EditQueued(ctx, m, "hello")
	e2, _ := c.Edit(ctx, convID, msgID, "fixed")
	stored, err = e2.Wait(ctx)
	_ = stored.EditedAt
	_ = e1.IsEdit()
	_, _ = e1.EditOf()
	r, _ := c.Reply(ctx, convID, parentID, "noon")
	reply, _ := r.Wait(ctx)
	_, _, _, _, _, _ = reply.ReplyTo.MessageID, reply.ReplyTo.Seq, reply.ReplyTo.SenderName, reply.ReplyTo.Text, reply.ReplyTo.Deleted, reply.ReplyTo.Hidden
	rs, err := c.React(ctx, convID, msgID, "👍")
	var _ []parley.Reaction = rs
	_, _, _ = rs[0].Emoji, rs[0].Count, rs[0].Me
	_, err = c.Unreact(ctx, convID, msgID, "👍")
	v.OnChange(func() { show(v.Messages()) })
	_ = client.QuoteText("x")
	_ = parley.ValidateEmoji("👍")

	// Mentions and search.
	page, err := c.Mentions(ctx, "", 20)
	for err == nil {
		for _, r := range page.Results {
			fmt.Println(r.Message.ConversationID, r.Message.SenderName, r.Message.Text)
		}
		if !page.HasMore {
			break
		}
		page, err = c.Mentions(ctx, page.Next, 20)
	}
	sp, err := c.Search(ctx, "quarterly rep*", client.SearchOptions{Limit: 20})
	for _, r := range sp.Results {
		var b strings.Builder
		for _, p := range r.Highlight {
			if p.Match {
				b.WriteString("[" + p.Text + "]")
			} else {
				b.WriteString(p.Text)
			}
		}
		fmt.Println(r.Message.Seq, b.String())
	}
	_ = client.SearchOptions{Cursor: sp.Next, ConversationID: convID}
	hit := sp.Results[0]
	_, _ = c.History(ctx, hit.Message.ConversationID, parley.MessageQuery{After: hit.Message.Seq - 1})
	_ = parley.MessageQuery{FromStart: true}
	for !slices.ContainsFunc(v.Messages(), func(m parley.Message) bool { return m.Seq == hit.Message.Seq }) && v.HasMore() {
		if _, err := v.LoadMore(ctx); err != nil {
			return err
		}
	}

	// Images and files.
	data, err := client.ShrinkImage(file, 0)
	msg, err := c.SendImage(ctx, convID, bytes.NewReader(data), client.WithCaption("x"))
	_ = msg.Image()
	_, _, _ = client.MaxImageBytes, client.ImageMaxSide, client.ShrinkJPEGQuality
	msg, err = c.SendFile(ctx, convID, "/home/me/report.pdf", client.WithCaption("Q3"))
	msg, err = c.SendFileReader(ctx, convID, "report.pdf", file)
	_, _ = msg.FileName(), client.MaxFileBytes
	_, _, _, _ = client.MaxKnownConversations, client.MaxKnownUsers, client.MaxTypists, client.MaxStateIDBytes
	stored, err = msg.Wait(ctx)
	a := stored.Attachment
	fmt.Printf("📎 %s (%d bytes, %s) %s %s\n", a.Name, a.Size, a.ContentType, a.URL, a.ThumbURL)
	_ = stored.Type == parley.File

	// Receiving.
	c.AddEventHandler("app", func(ev client.Event) {
		switch e := ev.(type) {
		case client.NewMessage, client.MessageRead, client.MessageDeleted, client.MessageEdited, client.ReactionAdded, client.ReactionRemoved,
			client.ConversationUpdated, client.FlagsChanged, client.TypingStarted, client.TypingStopped, client.UserOnline, client.UserOffline,
			client.MessageStatusChanged, client.ConversationsChanged, client.Resumed, client.MessageDelivered, client.ProfileUpdated,
			client.UserBlocked, client.UserUnblocked, client.PrivacyChanged, client.RequestAnswered:
		case client.Resynced:
			_, _, _, _ = e.Head, e.From, e.Reason, e.Text
			_ = e.Reason == client.ResyncResumeLimit || e.Reason == client.ResyncAheadOfLog
		}
	})
	var _ map[int]int64 = c.Cursor()
	_, _ = c.Position()
	_ = parley.HistoryWindow + parley.MaxUnreadCount + parley.ListWindow
	_, err = c.Conversations(ctx)
	var _ []parley.Conversation = c.CachedConversations()
	_ = c.Typing(convID)
	err = c.SetTyping(ctx, convID, true)
	var _ []parley.User = c.Online()
	_ = c.IsOnline("bob")
	_, err = c.FetchPresence(ctx)
	_, err = c.CreateDirect(ctx, "bob")
	_, err = c.CreateDirectByName(ctx, "bob")

	// Groups, flags, receipts, profiles, consent.
	_, err = c.Rename(ctx, convID, "t")
	_, err = c.AddMembers(ctx, convID, "bob", "carol")
	_, err = c.RemoveMembers(ctx, convID, "bob")
	_, err = c.Promote(ctx, convID, "bob")
	_, err = c.Demote(ctx, convID, "bob")
	err = c.Leave(ctx, convID)
	_, err = c.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: convID, Title: new(string)})
	_ = parley.ErrorCode(err) == parley.EFORBIDDEN
	_ = c.IsRemoved(convID) || v.Removed()
	_ = []parley.Role{parley.RoleOwner, parley.RoleMember}
	_, err = c.SetMuted(ctx, convID, true)
	_, err = c.SetArchived(ctx, convID, true)
	rc := client.ReceiptOf(parley.Conversation{}, stored)
	_, _, _, _ = rc.Status, rc.Recipients, rc.Delivered, rc.Read
	_ = c.Receipt(stored).Status == client.Delivered || v.Receipt(stored).Status == client.Read
	_ = client.DefaultDeliveredInterval
	name := "Ada"
	_, err = c.SetProfile(ctx, &name, nil)
	_, err = c.SetAvatar(ctx, file)
	_ = c.User().DisplayName
	_, _ = parley.NormalizeProfileName(name)
	err = c.Block(ctx, "bob")
	err = c.Unblock(ctx, "bob")
	p, err := c.Privacy(ctx)
	_, _ = p.Consent, p.Blocked
	_, err = c.SetConsent(ctx, parley.ConsentContacts)
	_ = parley.ConsentEveryone
	cv, err := c.AcceptRequest(ctx, convID)
	_ = cv.Request == parley.RequestPending || cv.Request == parley.RequestDeclined
	_, err = c.DeclineRequest(ctx, convID)
	_ = errors.Is(err, parley.ErrUnreachable)
	_, err = c.Delete(ctx, convID, msgID)
	var read int64
	read, err = c.MarkRead(ctx, convID, 3)
	_ = read

	// What the calls return, the listener's methods, the message's
	// accessors and the options the table after "Other calls" names.
	var g parley.Conversation
	g, err = c.CreateGroup(ctx, "t", []string{"bob"})
	g, err = c.Conversation(ctx, g.ID)
	var hp parley.MessagePage
	hp, err = c.History(ctx, convID, parley.MessageQuery{})
	_, _, _ = hp.Messages, hp.HasMore, hp.Next
	var n int64
	n, err = c.Download(ctx, "id", &bytes.Buffer{})
	n, err = c.DownloadAttachment(ctx, parley.Attachment{ID: "id", Size: 1}, &bytes.Buffer{})
	_ = n
	var l interface {
		OnConnecting(client.StatusChange)
		OnConnected(client.StatusChange)
		OnReconnecting(client.StatusChange)
		OnDisconnected(client.StatusChange)
		OnFeatureThrottled(client.StatusChange)
		OnConnectionError(error)
	} = myListener
	_ = l
	_, _ = st.State == client.Connected, st.SessionID
	_, _, _, _, _ = m.ClientID(), m.ConversationID(), m.Text(), m.Type(), m.ReplyTo()
	_, _ = m.CreatedAt(), m.Stored()
	v.Close()
	c.RemoveEventHandler("app")
	_ = []client.Option{client.WithDialer(nil), client.WithDialTimeout(client.DefaultDialTimeout), client.WithLogger(nil)}
	return err
}

// TestSDKDocPromises: behaviours docs/sdk.md describes, as an app
// developer reads them.
func TestSDKDocPromises(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, bob := e.client(t, "alice"), e.client(t, "bob")

	// "Send is refused with EUNAVAILABLE (matching errors.Is(err,
	// client.ErrDisconnected)) here [Disconnected] and only here."
	if _, err := alice.Send(ctx, "any", "before Connect"); !errors.Is(err, client.ErrDisconnected) || parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Errorf("Send before Connect: %v", err)
	}
	// React is not queued: while Disconnected it fails at once.
	if _, err := alice.React(ctx, "any", "any", "👍"); !errors.Is(err, client.ErrDisconnected) {
		t.Errorf("React before Connect: %v", err)
	}
	connect(t, alice)
	connect(t, bob)
	g, err := alice.CreateGroup(ctx, "doc", []string{"bob"})
	if err != nil {
		t.Fatal(err)
	}
	m := sent(t, alice, g.ID, "hello")

	// Search: "parley.EINVALID for a query with no word".
	if _, err := alice.Search(ctx, " -*- ", client.SearchOptions{}); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("Search of no word: %v", err)
	}
	// Files: "refuse an empty one with invalid".
	if _, err := alice.SendFileReader(ctx, g.ID, "empty.txt", strings.NewReader("")); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("SendFileReader of an empty file: %v", err)
	}
	// Edits: Failed with forbidden for another's message, invalid for a
	// blank text.
	for _, tc := range []struct {
		c    *client.Client
		text string
		code string
	}{{bob, "mine now", parley.EFORBIDDEN}, {alice, "   ", parley.EINVALID}} {
		ed, err := tc.c.Edit(ctx, g.ID, m.ID, tc.text)
		if err == nil {
			_, err = ed.Wait(ctx)
		}
		if parley.ErrorCode(err) != tc.code {
			t.Errorf("Edit %q: %v, want %s", tc.text, err, tc.code)
		}
	}
	// Reactions: the message's reactions, Me for this user's own.
	rs, err := bob.React(ctx, g.ID, m.ID, "👍")
	if err != nil || len(rs) != 1 || rs[0].Count != 1 || !rs[0].Me {
		t.Errorf("React: %+v, %v", rs, err)
	}
	// While Reconnecting, React waits for the connection (within ctx);
	// it goes out once the link is back.
	e.proxy.Refuse(true)
	e.proxy.CutAll()
	for bob.Status().State != client.Reconnecting && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	if _, err := bob.React(short, g.ID, m.ID, "🎉"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("React while Reconnecting: %v, want it to wait until ctx ends", err)
	}
	cancelShort()
	done := make(chan error, 1)
	go func() { _, err := bob.React(ctx, g.ID, m.ID, "🎉"); done <- err }()
	time.Sleep(50 * time.Millisecond)
	e.proxy.Refuse(false)
	if err := <-done; err != nil {
		t.Errorf("React across a reconnect: %v", err)
	}
	connect(t, alice)
	// Requests: "RequestDeclined once declined (it leaves the server's
	// list; accepting takes it back)".
	carol := e.client(t, "carol")
	connect(t, carol)
	d, err := carol.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	sent(t, carol, d.ID, "hi, stranger")
	if got, err := alice.DeclineRequest(ctx, d.ID); err != nil || got.Request != parley.RequestDeclined {
		t.Fatalf("DeclineRequest: %q, %v", got.Request, err)
	}
	inList := func() bool {
		cs, err := alice.Conversations(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(cs, func(c parley.Conversation) bool { return c.ID == d.ID })
	}
	if inList() {
		t.Errorf("a declined request is in the list")
	}
	if got, err := alice.AcceptRequest(ctx, d.ID); err != nil || got.Request != "" {
		t.Fatalf("AcceptRequest: %q, %v", got.Request, err)
	}
	// Each call is idempotent (retried on the next connection).
	if _, err := alice.AcceptRequest(ctx, d.ID); err != nil {
		t.Errorf("AcceptRequest again: %v", err)
	}
	if !inList() {
		t.Errorf("an accepted request is not back in the list")
	}
	// "accepting it, or a message of this user's in it, takes it back":
	// the cached copy follows the message.
	dave := e.client(t, "dave")
	connect(t, dave)
	dd, err := dave.CreateDirect(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	sent(t, dave, dd.ID, "hi, stranger")
	inList() // caches the pending request
	if _, err := alice.DeclineRequest(ctx, dd.ID); err != nil {
		t.Fatal(err)
	}
	sent(t, alice, dd.ID, "changed my mind")
	for ctx.Err() == nil {
		if cv, ok := cached(alice, dd.ID); ok && cv.Request == "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if cv, _ := cached(alice, dd.ID); cv.Request != "" {
		t.Errorf("the cached copy after writing in a declined request: request %q", cv.Request)
	}
	sent(t, dave, dd.ID, "thanks")
	// Removed: Send fails at once with ErrRemoved (code not_found).
	if err := bob.Leave(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !bob.IsRemoved(g.ID) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := bob.Send(ctx, g.ID, "still here?"); !errors.Is(err, client.ErrRemoved) || parley.ErrorCode(err) != parley.ENOTFOUND {
		t.Errorf("Send after leaving: %v", err)
	}
}
