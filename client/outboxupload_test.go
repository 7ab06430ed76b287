package client_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// TestOutboxUploadOtherUser: a file message whose upload is under way when
// the link is lost, and the next welcome names another user (the token
// source changed users), is not sent on the new connection once its
// upload ends. The welcome took it out of the queue (a memory outbox
// fails it with ErrOutboxOtherUser); the outbox had taken it for the old
// connection, and sent it, as the new user's, on whatever connection the
// client had when the upload ended.
func TestOutboxUploadOtherUser(t *testing.T) {
	uploadOtherUser(t, "")
}

// TestOutboxFileUploadOtherUser is TestOutboxUploadOtherUser with an
// outbox file: the message stays in it, and the owner's next client
// uploads and sends it as theirs. The upload that ended after the other
// user's welcome (with that user's token, the token source's by then)
// is not recorded in the file: the owner's send of another user's
// attachment would be refused, and the message lost.
func TestOutboxFileUploadOtherUser(t *testing.T) {
	uploadOtherUser(t, filepath.Join(t.TempDir(), "outbox.db"))
}

// uploadOtherUser runs TestOutboxUploadOtherUser with the outbox in file
// (none: memory).
func uploadOtherUser(t *testing.T, file string) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, user := range []string{"alice", "bob"} {
		c := e.client(t, user) // a hello makes the user
		connect(t, c)
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	admin := e.client(t, "carol")
	connect(t, admin)
	cv := mustGroup(t, admin, "alice", "bob")

	aliceTok, bobTok := e.srv.Token(t, "alice", "User alice"), e.srv.Token(t, "bob", "User bob")
	var (
		mu    sync.Mutex
		tok   = aliceTok
		armed bool
	)
	held, hold := make(chan struct{}), make(chan struct{})
	src := func(ctx context.Context) (string, error) {
		mu.Lock()
		block := armed
		armed = false
		mu.Unlock()
		if block { // the upload's token: hold it until bob is welcomed
			close(held)
			select {
			case <-hold:
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return tok, nil
	}
	opts := []client.Option{client.WithTokenSource(src)}
	if file != "" {
		opts = append(opts, client.WithOutboxFile(file))
	}
	c := e.client(t, "alice", opts...)
	connect(t, c)

	mu.Lock()
	armed = true
	mu.Unlock()
	m, err := c.SendFileReader(ctx, cv.ID, "alice.txt", strings.NewReader("alice's file"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the upload never asked for a token")
	}
	// The device changes hands: the token source now gives bob's token,
	// and the link drops.
	mu.Lock()
	tok = bobTok
	mu.Unlock()
	e.proxy.CutAll()
	for c.User().ID != "bob" || c.Status().State != client.Connected {
		if ctx.Err() != nil {
			t.Fatalf("the client was not welcomed as bob: user %q, %v", c.User().ID, c.Status().State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if file == "" {
		if _, err := m.Wait(ctx); !errors.Is(err, client.ErrOutboxOtherUser) {
			t.Fatalf("alice's file message: %v, want ErrOutboxOtherUser", err)
		}
	}
	close(hold) // the upload goes on

	// Bob's own message, sent after: once it is stored, anything the
	// outbox sent before it on bob's connection is stored too.
	mine, err := c.Send(ctx, cv.ID, "from bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mine.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := admin.History(ctx, cv.ID, parley.MessageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range page.Messages {
		if msg.Attachment != nil {
			t.Fatalf("alice's file message was stored as %s's (%q)", msg.SenderID, msg.Attachment.Name)
		}
	}
	if file == "" {
		return
	}
	aliceSendsHerFile(ctx, t, e, c, file)
}

// TestOutboxUploadSourceSwitchedBeforeWelcome: the token source switches
// from alice to bob while alice's connection is up, before any welcome of
// bob. Alice's file message is not uploaded with bob's token: the upload
// took the source's token as it was, uploaded the file as bob's, and,
// with no welcome of bob yet to take the message out (adopt), recorded
// bob's attachment on alice's message and sent it on alice's connection,
// where it was refused and the message lost. Now the upload waits for a
// token of the connection's user; once bob is welcomed the outbox file
// keeps the message for alice, whose next client sends it with her file.
func TestOutboxUploadSourceSwitchedBeforeWelcome(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "outbox.db")
	aliceTok, bobTok := e.srv.Token(t, "alice", "User alice"), e.srv.Token(t, "bob", "User bob")
	admin := e.client(t, "carol")
	connect(t, admin)
	cv := mustGroup(t, admin, "alice", "bob")
	var (
		mu     sync.Mutex
		tok    = aliceTok
		asked  int // the source's calls since it switched to bob
		second = make(chan struct{})
	)
	src := func(ctx context.Context) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if tok == bobTok {
			if asked++; asked == 2 {
				close(second) // the first upload attempt is over
			}
		}
		return tok, nil
	}
	c := e.client(t, "alice", client.WithTokenSource(src), client.WithOutboxFile(file))
	connect(t, c)
	mu.Lock()
	tok = bobTok // the device changes hands; the link stays up for now
	mu.Unlock()
	m, err := c.SendFileReader(ctx, cv.ID, "alice.txt", strings.NewReader("alice's file"))
	if err != nil {
		t.Fatal(err)
	}
	settled := make(chan error, 1)
	go func() {
		_, err := m.Wait(ctx)
		settled <- err
	}()
	select {
	case err := <-settled:
		t.Fatalf("alice's file message, with bob's token in the source before his welcome: settled (%v), want it kept for alice", err)
	case <-second:
	case <-ctx.Done():
		t.Fatal("the upload never asked for a token again")
	}
	e.proxy.CutAll()
	for c.User().ID != "bob" || c.Status().State != client.Connected {
		if ctx.Err() != nil {
			t.Fatalf("the client was not welcomed as bob: user %q, %v", c.User().ID, c.Status().State)
		}
		time.Sleep(10 * time.Millisecond)
	}
	aliceSendsHerFile(ctx, t, e, c, file)
}

// aliceSendsHerFile closes c and opens alice's outbox file with a client
// of hers: it holds her file message, which her client then sends as
// hers.
func aliceSendsHerFile(ctx context.Context, t *testing.T, e *env, c *client.Client, file string) {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	a := e.client(t, "alice", client.WithOutboxFile(file))
	pending := a.Pending()
	if len(pending) != 1 || pending[0].FileName() != "alice.txt" {
		t.Fatalf("alice's reopened outbox holds %d messages, want her file", len(pending))
	}
	connect(t, a)
	stored, err := pending[0].Wait(ctx)
	if err != nil {
		t.Fatalf("alice's file message, sent by her next client: %v", err)
	}
	if stored.SenderID != "alice" || stored.Attachment == nil || stored.Attachment.Name != "alice.txt" {
		t.Fatalf("stored %+v, want alice's file", stored)
	}
}
