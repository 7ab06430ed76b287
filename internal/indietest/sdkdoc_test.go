package indietest

// The Go SDK (package client) checked against docs/sdk.md from the
// outside: a program written from that document alone (nothing of
// client/'s code was read to write it) drives a real `parley serve`
// process, through internal/faultproxy where the document promises
// behaviour across a cut, a half-open link or a server that refuses
// connections. Each check names the part of docs/sdk.md it holds the SDK
// to.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/png"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/protocol"
)

// TestSDKDoc starts one `parley serve` (one shard, rate limits off,
// resume limit 20) and checks docs/sdk.md's promises, each in its own
// parallel subtest with its own users and, where it cuts links, its own
// proxy.
func TestSDKDoc(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parley binary")
	}
	bin := buildParley(t)
	// Presence keeps its default limit (burst 5) for the throttling check.
	// At most 5 connections per user, for the 4103 check (no other check
	// opens more than 4 of one user's at once).
	srv := startServer(t, bin, t.TempDir(), 0, "--connections-per-user=5", "--resume-limit=20", "--uploads-per-second=-1",
		"--typing-per-second=-1", "--searches-per-second=-1",
		"--reactions-per-second=-1", "--read-marks-per-second=-1")
	e := &sdkEnv{addr: srv.Addr(), bin: bin}
	t.Run("checks", func(t *testing.T) {
		for _, c := range []struct {
			name string
			fn   func(*testing.T, *sdkEnv)
		}{
			{"accounts", sdkAccounts},
			{"send receive view", sdkSendReceiveView},
			{"edits replies reactions", sdkEditsRepliesReactions},
			{"states backoff give up", sdkStatesBackoff},
			{"connect deadline keeps retrying", sdkConnectDeadline},
			{"reconnect cuts the wait", sdkReconnectCutsWait},
			{"heartbeat on a half-open link", sdkHeartbeat},
			{"exactly once across cuts", sdkCuts},
			{"outbox bounds and close", sdkOutboxBounds},
			{"file outbox lock and order", sdkFileOutbox},
			{"file outbox owner", sdkOutboxOwner},
			{"resume and resync", sdkResync},
			{"typing expiry", sdkTyping},
			{"presence", sdkPresence},
			{"images files downloads", sdkUploads},
			{"profiles", sdkProfiles},
			{"receipts", sdkReceipts},
			{"groups and removal", sdkGroups},
			{"mentions and search", sdkMentionsSearch},
			{"mute and archive", sdkFlags},
			{"blocks and consent", sdkBlocks},
			{"token source and 4100", sdkTokenSource},
			{"status changes of a lagging reader", sdkLaggingReader},
			{"feature throttled", sdkThrottled},
			{"delete resend requests", sdkDeleteResendRequest},
			{"typing ends when the link drops", sdkTypingLinkDrop},
			{"too many connections", sdkTooManyConns},
			{"rate limits and goaway", sdkRateLimitGoaway},
			{"resync reloads open views", sdkResyncView},
			{"default heartbeat from the welcome", sdkDefaultHeartbeat},
			{"protocol 1", sdkProtocol1},
			{"uploads queued offline", sdkUploadsOffline},
			{"unread counts stop at 99", sdkUnreadCap},
			{"late own pings, server pings answered", sdkServerPings},
			{"a blocked listener holds up no sends", sdkBlockedListener},
		} {
			t.Run(c.name, func(t *testing.T) { t.Parallel(); c.fn(t, e) })
		}
	})
}

// sdkEnv is the server under test.
type sdkEnv struct {
	addr string
	bin  string // the parley binary, for checks that need servers of their own
	n    atomic.Int64
}

func (e *sdkEnv) url() string { return "http://" + e.addr }

// proxy puts a faultproxy of the test's own in front of the server and
// returns it with the URL that reaches the server through it.
func (e *sdkEnv) proxy(t *testing.T) (*faultproxy.Proxy, string) {
	t.Helper()
	p, err := faultproxy.Listen("127.0.0.1:0", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, "http://" + p.Addr()
}

// account registers a user (sdk.md, "Accounts and tokens").
func (e *sdkEnv) account(t *testing.T, prefix string) client.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := fmt.Sprintf("%s%d", prefix, e.n.Add(1))
	s, err := retryBusy(ctx, func() (client.Session, error) {
		return client.Register(ctx, e.url(), name, "correct horse battery "+name)
	})
	if err != nil {
		t.Fatalf("Register %s: %v", name, err)
	}
	if s.Token == "" || s.User.ID == "" || s.User.Name != name || time.Until(s.ExpiresAt) < 23*time.Hour {
		t.Fatalf("Register %s: %+v, want {Token, User, ExpiresAt in 24 h}", name, s)
	}
	return s
}

// retryBusy runs a password check (Register, Login) again while the
// server answers unavailable: they run one at a time per IP
// (docs/protocol.md section 1), and the checks' registrations, all from
// one address, may wait past 5 s and be told to retry.
func retryBusy(ctx context.Context, f func() (client.Session, error)) (client.Session, error) {
	for {
		s, err := f()
		var pe *parley.Error
		if !errors.As(err, &pe) || pe.Code != parley.EUNAVAILABLE || ctx.Err() != nil {
			return s, err
		}
		time.Sleep(max(pe.RetryAfter, 100*time.Millisecond))
	}
}

// sc is one SDK client and what it reported: its events, listener calls
// and status changes, in order.
type sc struct {
	t  *testing.T
	c  *client.Client
	s  client.Session
	mu sync.Mutex
	ev []client.Event
	ls []string // listener calls, by name
	le []error  // OnConnectionError's errors

	inCallback atomic.Int32
}

// recListener records its calls; it embeds client.NopListener as sdk.md
// says a listener implementing only some methods does.
type recListener struct {
	client.NopListener
	s *sc
}

func (l recListener) OnConnected(client.StatusChange) { l.s.note("connected") }

func (l recListener) OnReconnecting(client.StatusChange) { l.s.note("reconnecting") }

func (l recListener) OnConnectionError(err error) {
	l.s.enter()
	defer l.s.leave()
	l.s.mu.Lock()
	l.s.le = append(l.s.le, err)
	l.s.mu.Unlock()
}

// enter and leave bracket a callback: sdk.md runs callbacks on one
// goroutine, never two at once.
func (s *sc) enter() {
	if s.inCallback.Add(1) != 1 {
		s.t.Errorf("two callbacks at once")
	}
	time.Sleep(time.Millisecond) // widen the window a second one would hit
}

func (s *sc) leave() { s.inCallback.Add(-1) }

func (s *sc) note(what string) {
	s.enter()
	defer s.leave()
	s.mu.Lock()
	s.ls = append(s.ls, what)
	s.mu.Unlock()
}

// newClient makes a client of s at url with opts, with an event handler
// and a listener recording what they get; it is closed when the test
// ends.
func (e *sdkEnv) newClient(t *testing.T, url string, s client.Session, opts ...client.Option) *sc {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(s.Token)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	x := &sc{t: t, c: c, s: s}
	t.Cleanup(func() { c.Close() })
	c.AddEventHandler("rec", func(ev client.Event) {
		x.enter()
		defer x.leave()
		// Callbacks may call the client.
		_, _ = c.Status(), c.Pending()
		x.mu.Lock()
		x.ev = append(x.ev, ev)
		x.mu.Unlock()
	})
	c.AddConnectionListener("rec", recListener{s: x})
	return x
}

// connected is newClient and Connect.
func (e *sdkEnv) connected(t *testing.T, url string, s client.Session, opts ...client.Option) *sc {
	t.Helper()
	x := e.newClient(t, url, s, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.c.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return x
}

// events returns a copy of the events recorded so far.
func (s *sc) events() []client.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ev)
}

// waitEvent waits until an event matching match was recorded and
// returns it.
func waitEvent[T client.Event](t *testing.T, s *sc, what string, match func(T) bool) T {
	t.Helper()
	var got T
	waitFor(t, 20*time.Second, what, func() bool {
		for _, ev := range s.events() {
			if x, ok := ev.(T); ok && (match == nil || match(x)) {
				got = x
				return true
			}
		}
		return false
	})
	return got
}

// waitFor polls cond every 20 ms for d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newMessages returns the texts of the NewMessage events s got in conv,
// in order.
func (s *sc) newMessages(conv string) []string {
	var out []string
	for _, ev := range s.events() {
		if nm, ok := ev.(client.NewMessage); ok && nm.Message.ConversationID == conv {
			out = append(out, nm.Message.Text)
		}
	}
	return out
}

// sdkAccounts: Register and Login, and their refusals as *parley.Error.
func sdkAccounts(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	s := e.account(t, "acc")
	l, err := retryBusy(ctx, func() (client.Session, error) {
		return client.Login(ctx, e.url(), s.User.Name, "correct horse battery "+s.User.Name)
	})
	if err != nil || l.Token == "" || l.User.ID != s.User.ID {
		t.Fatalf("Login: %+v, %v", l, err)
	}
	_, err = retryBusy(ctx, func() (client.Session, error) {
		return client.Login(ctx, e.url(), s.User.Name, "wrong password here")
	})
	var pe *parley.Error
	if !errors.As(err, &pe) || pe.Code != parley.EUNAUTHORIZED {
		t.Errorf("Login with a wrong password: %v, want a *parley.Error unauthorized", err)
	}
	_, err = retryBusy(ctx, func() (client.Session, error) {
		return client.Register(ctx, e.url(), s.User.Name, "another long password")
	})
	if parley.ErrorCode(err) != parley.ECONFLICT {
		t.Errorf("Register of a taken name: %v, want conflict", err)
	}
	// A TokenSource runs before every connection attempt.
	var asked atomic.Int64
	c, err := client.New(e.url(), client.WithTokenSource(func(ctx context.Context) (string, error) {
		asked.Add(1)
		return l.Token, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if asked.Load() < 1 {
		t.Errorf("the TokenSource was asked %d times before the first welcome", asked.Load())
	}
	if !c.Connected() || !c.Status().Connected() {
		t.Errorf("after Connect: Connected() %v, Status %+v", c.Connected(), c.Status())
	}
}

// sdkSendReceiveView: Send's optimistic message and its
// MessageStatusChanged events, the other user's NewMessage, the view and
// its pages, the cached list's unread count, MarkRead.
func sdkSendReceiveView(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "sra")), e.connected(t, e.url(), e.account(t, "srb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	conv2, err := b.c.CreateDirectByName(ctx, strings.ToUpper(a.s.User.Name)) // any form of the name
	if err != nil || conv2.ID != conv.ID {
		t.Fatalf("CreateDirectByName: %v, %v; want the conversation CreateDirect made (%s)", conv2.ID, err, conv.ID)
	}
	if _, err := a.c.Send(ctx, conv.ID, ""); err == nil {
		t.Errorf("Send of an empty text: no error")
	}
	if _, err := a.c.Send(ctx, conv.ID, strings.Repeat("é", 4001)); err == nil {
		t.Errorf("Send of 4001 code points: no error")
	}
	const n = 7
	var ms []*client.Message
	for i := range n {
		m, err := a.c.Send(ctx, conv.ID, fmt.Sprintf("hello %d", i))
		if err != nil {
			t.Fatal(err)
		}
		ms = append(ms, m)
	}
	var seqs []int64
	for i, m := range ms {
		stored, err := m.Wait(ctx)
		if err != nil {
			t.Fatalf("Wait %d: %v", i, err)
		}
		if m.Status() != client.Sent || stored.Text != fmt.Sprintf("hello %d", i) || stored.ID == "" || stored.Seq == 0 {
			t.Errorf("message %d: status %v, stored %+v", i, m.Status(), stored)
		}
		seqs = append(seqs, stored.Seq)
	}
	if !slices.IsSorted(seqs) {
		t.Errorf("seqs %v not in Send order", seqs)
	}
	// MessageStatusChanged carries the *Message Send returned.
	for i, m := range ms {
		waitEvent(t, a, fmt.Sprintf("MessageStatusChanged Sent of message %d", i), func(ev client.MessageStatusChanged) bool {
			return ev.Message == m && ev.Status == client.Sent && ev.Stored.Seq == seqs[i]
		})
	}
	waitFor(t, 20*time.Second, "b gets the 7 messages", func() bool { return len(b.newMessages(conv.ID)) == n })
	if got := b.newMessages(conv.ID); !slices.Equal(got, []string{"hello 0", "hello 1", "hello 2", "hello 3", "hello 4", "hello 5", "hello 6"}) {
		t.Errorf("b's NewMessage texts %q", got)
	}
	if len(a.c.Pending()) != 0 {
		t.Errorf("Pending after every message was Sent: %d", len(a.c.Pending()))
	}

	// The cached list and its unread count.
	if _, err := b.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	unread := func() int64 {
		for _, c := range b.c.CachedConversations() {
			if c.ID == conv.ID {
				return c.UnreadCount
			}
		}
		return -1
	}
	if u := unread(); u != n {
		t.Errorf("b's unread count %d, want %d", u, n)
	}
	if _, err := b.c.MarkRead(ctx, conv.ID, seqs[n-1]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the unread count 0 after MarkRead", func() bool { return unread() == 0 })
	waitEvent[client.ConversationsChanged](t, b, "ConversationsChanged", nil)

	// A view: newest page first, LoadMore for older ones, live messages.
	v, err := b.c.OpenConversation(ctx, conv.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int64
	v.OnChange(func() { changes.Add(1) })
	if got := texts(v.Messages()); !slices.Equal(got, []string{"hello 4", "hello 5", "hello 6"}) || !v.HasMore() {
		t.Fatalf("the view's first page: %q (HasMore %v)", got, v.HasMore())
	}
	for v.HasMore() {
		if _, err := v.LoadMore(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(v.Messages()); got != n {
		t.Errorf("the view after LoadMore: %d messages, want %d", got, n)
	}
	if _, err := a.c.Send(ctx, conv.ID, "live"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the live message in the view", func() bool {
		m := v.Messages()
		return len(m) == n+1 && m[n].Text == "live"
	})
	if changes.Load() == 0 {
		t.Errorf("OnChange did not run for a live message")
	}
	// History: the page starting at a message.
	page, err := b.c.History(ctx, conv.ID, parley.MessageQuery{After: seqs[2] - 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) == 0 || page.Messages[0].Seq != seqs[2] {
		t.Errorf("History after seq %d: %+v", seqs[2]-1, page)
	}
}

func texts(ms []parley.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

// sdkEditsRepliesReactions: Edit, EditQueued, Reply, React, Unreact and
// the view applying them.
func sdkEditsRepliesReactions(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "era")), e.connected(t, e.url(), e.account(t, "erb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.c.Send(ctx, conv.ID, "helo")
	if err != nil {
		t.Fatal(err)
	}
	e1, err := a.c.EditQueued(ctx, m, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if !e1.IsEdit() {
		t.Errorf("EditQueued's entry: IsEdit false")
	}
	ed, err := e1.Wait(ctx)
	if err != nil || ed.Text != "hello" || ed.EditedAt == nil {
		t.Fatalf("EditQueued: %+v, %v", ed, err)
	}
	stored, _ := m.Wait(ctx)
	if _, err := b.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := b.c.OpenConversation(ctx, conv.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := a.c.Edit(ctx, conv.ID, stored.ID, "fixed")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e2.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// Another's message: forbidden.
	bm, _ := b.c.Send(ctx, conv.ID, "b's")
	bs, err := bm.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e3, _ := a.c.Edit(ctx, conv.ID, bs.ID, "not mine")
	if _, err := e3.Wait(ctx); parley.ErrorCode(err) != parley.EFORBIDDEN || e3.Status() != client.Failed {
		t.Errorf("an edit of another's message: %v (status %v), want Failed forbidden", err, e3.Status())
	}
	r, err := a.c.Reply(ctx, conv.ID, bs.ID, "noon")
	if err != nil {
		t.Fatal(err)
	}
	reply, err := r.Wait(ctx)
	if err != nil || reply.ReplyTo == nil || reply.ReplyTo.MessageID != bs.ID || reply.ReplyTo.Text != "b's" {
		t.Fatalf("Reply: %+v, %v", reply.ReplyTo, err)
	}
	rs, err := b.c.React(ctx, conv.ID, stored.ID, "👍")
	if err != nil || !slices.Equal(rs, []parley.Reaction{{Emoji: "👍", Count: 1, Me: true}}) {
		t.Fatalf("React: %+v, %v", rs, err)
	}
	if _, err := b.c.React(ctx, conv.ID, stored.ID, "not an emoji"); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("React with a text: %v, want invalid", err)
	}
	waitFor(t, 10*time.Second, "the view shows the edit and the reaction", func() bool {
		for _, m := range v.Messages() {
			if m.ID == stored.ID {
				return m.Text == "fixed" && m.EditedAt != nil && len(m.Reactions) == 1 && m.Reactions[0].Me
			}
		}
		return false
	})
	if _, err := b.c.Unreact(ctx, conv.ID, stored.ID, "👍"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the view drops the reaction", func() bool {
		for _, m := range v.Messages() {
			if m.ID == stored.ID {
				return len(m.Reactions) == 0
			}
		}
		return false
	})
	waitEvent(t, b, "MessageEdited", func(ev client.MessageEdited) bool { return ev.Message.Text == "fixed" })
	// The cached list's LastMessage follows an edit (here of the reply,
	// the newest message).
	e4, _ := a.c.Edit(ctx, conv.ID, reply.ID, "noon, edited")
	if _, err := e4.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b's cached LastMessage follows the edit", func() bool {
		for _, c := range b.c.CachedConversations() {
			if c.ID == conv.ID {
				return c.LastMessage != nil && c.LastMessage.Text == "noon, edited"
			}
		}
		return false
	})
	waitEvent(t, a, "ReactionAdded", func(ev client.ReactionAdded) bool {
		return ev.MessageID == stored.ID && ev.Emoji == "👍" && ev.Count == 1 && ev.UserID == b.s.User.ID
	})
	waitEvent(t, a, "ReactionRemoved", func(ev client.ReactionRemoved) bool { return ev.MessageID == stored.ID && ev.Count == 0 })
}

// sdkStatesBackoff: a server that refuses: Connecting, Reconnecting with
// Attempt and NextRetryAt, then Disconnected after WithMaxAttempts with a
// *GaveUpError; Send refused with ErrDisconnected; Reconnect starts over.
func sdkStatesBackoff(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	s := e.account(t, "st")
	p.Refuse(true)
	x := e.newClient(t, url, s, client.WithBackoff(50*time.Millisecond, 200*time.Millisecond), client.WithMaxAttempts(3))
	changes := x.c.StatusChanges(ctx)
	err := x.c.Connect(ctx)
	var gu *client.GaveUpError
	if !errors.As(err, &gu) {
		t.Fatalf("Connect to a refusing server with WithMaxAttempts(3): %v, want a *GaveUpError", err)
	}
	st := x.c.Status()
	if st.State != client.Disconnected || !errors.As(st.Err, &gu) || x.c.Connected() {
		t.Errorf("after giving up: %+v", st)
	}
	_, err = x.c.Send(ctx, "any", "hi")
	if !errors.Is(err, client.ErrDisconnected) || parley.ErrorCode(err) != parley.EUNAVAILABLE {
		t.Errorf("Send while Disconnected: %v, want ErrDisconnected (unavailable)", err)
	}
	// Other calls fail at once while Disconnected.
	start := time.Now()
	if _, err := x.c.React(ctx, "any", "m", "👍"); !errors.Is(err, client.ErrDisconnected) || time.Since(start) > 2*time.Second {
		t.Errorf("React while Disconnected: %v after %v, want ErrDisconnected at once", err, time.Since(start))
	}
	if _, err := x.c.History(ctx, "any", parley.MessageQuery{}); !errors.Is(err, client.ErrDisconnected) {
		t.Errorf("History while Disconnected: %v, want ErrDisconnected", err)
	}
	// The changes so far, in order: Connecting (attempt 1), Reconnecting,
	// Connecting (2), Reconnecting, Connecting (3), Disconnected.
	var seen []client.State
	attempts := map[client.State][]int{}
	func() {
		for {
			select {
			case ch := <-changes:
				seen = append(seen, ch.Current)
				attempts[ch.Current] = append(attempts[ch.Current], ch.Attempt)
				if ch.Current == client.Reconnecting && (ch.NextRetryAt.IsZero() || ch.Err == nil) {
					t.Errorf("a Reconnecting change without NextRetryAt or Err: %+v", ch)
				}
			case <-time.After(500 * time.Millisecond):
				return
			}
		}
	}()
	want := []client.State{client.Connecting, client.Reconnecting, client.Connecting, client.Reconnecting, client.Connecting, client.Disconnected}
	if !slices.Equal(seen, want) {
		t.Errorf("status changes %v, want %v", seen, want)
	}
	if !slices.Equal(attempts[client.Connecting], []int{1, 2, 3}) {
		t.Errorf("Connecting's attempts %v, want 1, 2, 3", attempts[client.Connecting])
	}
	p.Refuse(false)
	x.c.Reconnect()
	waitFor(t, 10*time.Second, "Connected after Reconnect()", x.c.Connected)
	// While connected, Reconnect does nothing, now or later.
	quiet := x.c.StatusChanges(ctx)
	x.c.Reconnect()
	select {
	case ch := <-quiet:
		t.Errorf("Reconnect() while Connected changed the status: %+v", ch)
	case <-time.After(500 * time.Millisecond):
	}
	waitFor(t, 5*time.Second, "the listener's OnConnected", func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		return slices.Contains(x.ls, "connected")
	})
	x.mu.Lock()
	ls := slices.Clone(x.ls)
	x.mu.Unlock()
	if !slices.Contains(ls, "reconnecting") {
		t.Errorf("listener calls %v: no OnReconnecting", ls)
	}
	// A listener removed by id gets nothing more; one that panics is
	// reported to the others as a *ListenerPanicError.
	x.c.RemoveConnectionListener("rec")
	x.c.AddConnectionListener("panics", panicListener{})
	got := &errBox{}
	x.c.AddConnectionListener("sees", errListener{got: got})
	before := len(ls)
	p.CutAll()
	waitFor(t, 10*time.Second, "a *ListenerPanicError reported", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		var lp *client.ListenerPanicError
		return errors.As(got.err, &lp)
	})
	x.mu.Lock()
	after := len(x.ls)
	x.mu.Unlock()
	if after != before {
		t.Errorf("a removed listener was called: %v", x.ls[before:])
	}
	// The listener that panicked stays registered: it panics again.
	waitFor(t, 10*time.Second, "reconnected", x.c.Connected)
	got.mu.Lock()
	got.err = nil
	got.mu.Unlock()
	p.CutAll()
	waitFor(t, 10*time.Second, "a second *ListenerPanicError", func() bool {
		got.mu.Lock()
		defer got.mu.Unlock()
		var lp *client.ListenerPanicError
		return errors.As(got.err, &lp)
	})
}

type panicListener struct{ client.NopListener }

func (panicListener) OnReconnecting(client.StatusChange) { panic("listener panics") }

type errBox struct {
	mu  sync.Mutex
	err error
}

type errListener struct {
	client.NopListener
	got *errBox
}

func (l errListener) OnConnectionError(err error) {
	l.got.mu.Lock()
	defer l.got.mu.Unlock()
	var lp *client.ListenerPanicError
	if l.got.err == nil || !errors.As(l.got.err, &lp) {
		l.got.err = err
	}
}

// sdkConnectDeadline: ctx bounds only Connect's wait; the client keeps
// retrying and connects by itself.
func sdkConnectDeadline(t *testing.T, e *sdkEnv) {
	p, url := e.proxy(t)
	s := e.account(t, "cd")
	p.Refuse(true)
	x := e.newClient(t, url, s, client.WithBackoff(50*time.Millisecond, 200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := x.c.Connect(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect with a 300 ms ctx to a refusing server: %v, want ctx's error", err)
	}
	// Queued while reconnecting, not refused.
	m, err := x.c.Send(context.Background(), "nowhere", "queued")
	if err != nil {
		t.Errorf("Send while Reconnecting: %v, want queued", err)
	} else if m.Status() != client.Sending {
		t.Errorf("a message queued while Reconnecting: %v, want Sending", m.Status())
	}
	// Calls wait for the connection as long as ctx allows.
	hctx, hcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err = x.c.Conversations(hctx)
	hcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Conversations while Reconnecting with a 200 ms ctx: %v, want ctx's error", err)
	}
	listed := make(chan error, 1)
	go func() {
		_, err := x.c.Conversations(context.Background())
		listed <- err
	}()
	time.Sleep(200 * time.Millisecond)
	p.Refuse(false)
	waitFor(t, 10*time.Second, "connected by itself after the deadline", x.c.Connected)
	select {
	case err := <-listed:
		if err != nil {
			t.Errorf("Conversations called while Reconnecting: %v, want the list once connected", err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("Conversations called while Reconnecting still waits 10 s after the connection")
	}
}

// sdkReconnectCutsWait: Reconnect() during the backoff wait starts an
// attempt at once.
func sdkReconnectCutsWait(t *testing.T, e *sdkEnv) {
	p, url := e.proxy(t)
	s := e.account(t, "rc")
	// Ceilings of 30 s: the wait is uniform in [0, 30 s].
	x := e.connected(t, url, s, client.WithBackoff(30*time.Second, 30*time.Second))
	p.Refuse(true)
	p.CutAll()
	waitFor(t, 10*time.Second, "Reconnecting after a cut", func() bool {
		st := x.c.Status()
		return st.State == client.Reconnecting && st.Attempt >= 1
	})
	st := x.c.Status()
	if d := time.Until(st.NextRetryAt); d > 30*time.Second+time.Second {
		t.Errorf("NextRetryAt %v away, beyond the 30 s ceiling", d)
	}
	p.Refuse(false)
	start := time.Now()
	x.c.Reconnect()
	waitFor(t, 5*time.Second, "Connected after Reconnect()", x.c.Connected)
	t.Logf("connected %v after Reconnect() (the wait was %v)", time.Since(start), time.Until(st.NextRetryAt))
}

// sdkHeartbeat: a half-open link is noticed after the heartbeat timeout;
// the status says ErrHeartbeatTimeout and the client reconnects.
func sdkHeartbeat(t *testing.T, e *sdkEnv) {
	p, url := e.proxy(t)
	s := e.account(t, "hb")
	x := e.connected(t, url, s, client.WithHeartbeat(300*time.Millisecond, time.Second), client.WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	ctx := tctx(t)
	changes := x.c.StatusChanges(ctx)
	start := time.Now()
	p.Blackhole(faultproxy.Both)
	ch := awaitState(t, changes, client.Reconnecting, 10*time.Second, func() string { return "no Reconnecting 10 s into a half-open link" })
	took := time.Since(start)
	if !errors.Is(ch.Err, client.ErrHeartbeatTimeout) {
		t.Errorf("Reconnecting after a half-open link: Err %v, want ErrHeartbeatTimeout", ch.Err)
	}
	if took < 900*time.Millisecond || took > 3*time.Second {
		t.Errorf("the half-open link noticed after %v, want about the 1 s timeout", took)
	}
	p.Heal()
	waitFor(t, 10*time.Second, "reconnected after Heal", x.c.Connected)
	// A healthy link stays up: its pings are answered.
	time.Sleep(2500 * time.Millisecond)
	if !x.c.Connected() {
		t.Errorf("a healthy link with a 1 s heartbeat timeout dropped: %+v", x.c.Status())
	}
}

// sdkCuts: sends from a client whose link is cut every 150 ms are stored
// once each, in Send order, and reach the other user (whose link is cut
// too) once each, in order, through resumes.
func sdkCuts(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	pa, ua := e.proxy(t)
	pb, ub := e.proxy(t)
	sa, sb := e.account(t, "cua"), e.account(t, "cub")
	back := client.WithBackoff(20*time.Millisecond, 100*time.Millisecond)
	a, b := e.connected(t, ua, sa, back), e.connected(t, ub, sb, back)
	conv, err := a.c.CreateDirect(ctx, sb.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	const n = 60
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			if i%2 == 0 {
				pa.CutAll()
			} else {
				pb.CutAll()
			}
		}
	}()
	var ms []*client.Message
	var want []string
	for i := range n {
		text := fmt.Sprintf("cut %02d", i)
		m, err := a.c.Send(ctx, conv.ID, text)
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		ms, want = append(ms, m), append(want, text)
		if i%10 == 9 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 45*time.Second)
	err = a.c.Flush(fctx)
	fcancel()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Flush: %v (%d pending)", err, len(a.c.Pending()))
	}
	for i, m := range ms {
		if m.Status() != client.Sent {
			t.Errorf("message %d: %v %v", i, m.Status(), m.Err())
		}
	}
	waitFor(t, 20*time.Second, "b got every message", func() bool { return len(b.newMessages(conv.ID)) >= n })
	if got := b.newMessages(conv.ID); !slices.Equal(got, want) {
		t.Errorf("b's NewMessage events (%d): %q, want each of %d once in order", len(got), got, n)
	}
	page, err := b.c.History(ctx, conv.ID, parley.MessageQuery{FromStart: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(page.Messages); !slices.Equal(got, want) {
		t.Errorf("the stored messages (%d): %q, want each once in Send order", len(got), got)
	}
	acc, cut := pa.Stats()
	t.Logf("a's proxy: %d connections, %d cut", acc, cut)
	resumed := 0
	for _, ev := range b.events() {
		if _, ok := ev.(client.Resumed); ok {
			resumed++
		}
	}
	if resumed == 0 {
		t.Errorf("b reconnected (its link cut) but got no Resumed event")
	}
}

// sdkOutboxBounds: WithOutboxLimit's ErrOutboxFull, Flush's ctx, Close
// failing what waits in a memory outbox, ErrClosed after Close.
func sdkOutboxBounds(t *testing.T, e *sdkEnv) {
	p, url := e.proxy(t)
	s := e.account(t, "ob")
	p.Refuse(true)
	x := e.newClient(t, url, s, client.WithOutboxLimit(2), client.WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	cctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	x.c.Connect(cctx)
	cancel()
	ctx := tctx(t)
	m1, err1 := x.c.Send(ctx, "c", "one")
	_, err2 := x.c.Send(ctx, "c", "two")
	_, err3 := x.c.Send(ctx, "c", "three")
	if err1 != nil || err2 != nil {
		t.Fatalf("Send offline: %v, %v", err1, err2)
	}
	if !errors.Is(err3, client.ErrOutboxFull) || parley.ErrorCode(err3) != parley.EUNAVAILABLE || errors.Is(err3, client.ErrDisconnected) {
		t.Errorf("a third Send with WithOutboxLimit(2): %v, want ErrOutboxFull (unavailable)", err3)
	}
	if got := len(x.c.Pending()); got != 2 {
		t.Errorf("Pending: %d, want 2", got)
	}
	fctx, fcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	if err := x.c.Flush(fctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush offline: %v, want ctx's error", err)
	}
	fcancel()
	// A Flush under way when the client closes returns ErrClosed; the
	// StatusChanges channel is closed.
	flushed := make(chan error, 1)
	go func() { flushed <- x.c.Flush(ctx) }()
	changes := x.c.StatusChanges(ctx)
	time.Sleep(100 * time.Millisecond)
	x.c.Close()
	select {
	case err := <-flushed:
		if !errors.Is(err, client.ErrClosed) {
			t.Errorf("Flush when the client closes: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("Flush still waiting 10 s after Close")
	}
	closed := false
	for !closed {
		select {
		case _, ok := <-changes:
			closed = !ok
		case <-time.After(5 * time.Second):
			t.Fatalf("the StatusChanges channel is not closed after Close")
		}
	}
	for name, err := range map[string]error{
		"Connect":   x.c.Connect(ctx),
		"Flush":     x.c.Flush(ctx),
		"SetTyping": x.c.SetTyping(ctx, "c", true),
	} {
		if !errors.Is(err, client.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	after := map[string]func() error{
		"History":  func() error { _, err := x.c.History(ctx, "c", parley.MessageQuery{}); return err },
		"Search":   func() error { _, err := x.c.Search(ctx, "x", client.SearchOptions{}); return err },
		"Mentions": func() error { _, err := x.c.Mentions(ctx, "", 1); return err },
		"Download": func() error { _, err := x.c.Download(ctx, "a", &bytes.Buffer{}); return err },
		"SendImage": func() error {
			_, err := x.c.SendImage(ctx, "c", bytes.NewReader(pngOf(t, 2, 2)))
			return err
		},
		"SendFileReader": func() error {
			_, err := x.c.SendFileReader(ctx, "c", "f.txt", strings.NewReader("x"))
			return err
		},
		"EditQueued":    func() error { _, err := x.c.EditQueued(ctx, m1, "x"); return err },
		"Edit":          func() error { _, err := x.c.Edit(ctx, "c", "m", "x"); return err },
		"Conversations": func() error { _, err := x.c.Conversations(ctx); return err },
		"CreateDirect":  func() error { _, err := x.c.CreateDirect(ctx, "u"); return err },
		"MarkRead":      func() error { _, err := x.c.MarkRead(ctx, "c", 1); return err },
		"SetAvatar":     func() error { _, err := x.c.SetAvatar(ctx, bytes.NewReader(pngOf(t, 2, 2))); return err },
		"Resend":        func() error { return x.c.Resend(ctx, m1) },
	}
	for name, call := range after {
		if err := call(); !errors.Is(err, client.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if m1.Status() != client.Failed || !errors.Is(m1.Err(), client.ErrClosed) {
		t.Errorf("a message waiting in a memory outbox at Close: %v %v, want Failed ErrClosed", m1.Status(), m1.Err())
	}
	if _, err := x.c.Send(ctx, "c", "after"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
}

// sdkFileOutbox: WithOutboxFile keeps sends and edits made offline; a
// second client on the file is refused with ErrOutboxInUse; the next
// client sends them in the order made, a blank edit failing alone.
func sdkFileOutbox(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	sa, sb := e.account(t, "foa"), e.account(t, "fob")
	conv := func() parley.Conversation {
		x := e.connected(t, e.url(), sa)
		c, err := x.c.CreateDirect(ctx, sb.User.ID)
		if err != nil {
			t.Fatal(err)
		}
		x.c.Close()
		return c
	}()
	file := filepath.Join(t.TempDir(), "outbox.db")
	p.Refuse(true)
	x := e.newClient(t, url, sa, client.WithOutboxFile(file), client.WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	x.c.Connect(cctx)
	cancel()
	m1, err := x.c.Send(ctx, conv.ID, "first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.c.EditQueued(ctx, m1, "first, edited"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.c.Send(ctx, conv.ID, "second"); err != nil {
		t.Fatal(err)
	}
	if _, err := x.c.EditQueued(ctx, m1, " "); err == nil {
		// A blank text may be refused at once or fail alone later.
		t.Log("a blank edit was queued")
	}
	if _, err := x.c.Send(ctx, conv.ID, "third"); err != nil {
		t.Fatal(err)
	}
	pending := x.c.Pending()
	edits := 0
	for _, m := range pending {
		if m.IsEdit() {
			edits++
		}
	}
	if len(pending) < 4 || edits < 1 {
		t.Errorf("Pending: %d entries, %d edits", len(pending), edits)
	}
	// One client per file.
	if _, err := client.New(url, client.WithToken(sa.Token), client.WithOutboxFile(file)); !errors.Is(err, client.ErrOutboxInUse) || parley.ErrorCode(err) != parley.ECONFLICT || !strings.Contains(err.Error(), file) {
		t.Errorf("a second client on the file: %v, want ErrOutboxInUse (conflict) naming the file", err)
	}
	x.c.Close()
	p.Refuse(false)
	y := e.connected(t, url, sa, client.WithOutboxFile(file))
	if err := y.c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := y.c.History(ctx, conv.ID, parley.MessageQuery{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(page.Messages); !slices.Equal(got, []string{"first, edited", "second", "third"}) {
		t.Errorf("after the next client on the file: %q, want first (edited), second, third once each", got)
	}
}

// sdkOutboxOwner: a file's messages are its user's: another user's
// client leaves them; their own user's next client sends them.
func sdkOutboxOwner(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	sa, sb := e.account(t, "owa"), e.account(t, "owb")
	b := e.connected(t, e.url(), sb)
	conv, err := b.c.CreateDirect(ctx, sa.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "outbox.db")
	p.Refuse(true)
	x := e.newClient(t, url, sa, client.WithOutboxFile(file), client.WithOutboxUser(sa.User.ID))
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	x.c.Connect(cctx)
	cancel()
	if _, err := x.c.Send(ctx, conv.ID, "alice's"); err != nil {
		t.Fatal(err)
	}
	x.c.Close()
	p.Refuse(false)
	// Bob's client on alice's file sends nothing of hers.
	bx := e.connected(t, url, sb, client.WithOutboxFile(file))
	fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
	bx.c.Flush(fctx)
	fcancel()
	time.Sleep(500 * time.Millisecond)
	bx.c.Close()
	page, err := b.c.History(ctx, conv.ID, parley.MessageQuery{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 0 {
		t.Errorf("bob's client on alice's outbox file stored %+v", page.Messages)
	}
	y := e.connected(t, url, sa, client.WithOutboxFile(file))
	if err := y.c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A memory outbox: a message queued as another user than the one
	// welcomed fails with ErrOutboxOtherUser.
	p.Refuse(true)
	z := e.newClient(t, url, sa, client.WithOutboxUser(sb.User.ID), client.WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	cctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
	z.c.Connect(cctx)
	cancel()
	zm, err := z.c.Send(ctx, conv.ID, "queued as bob, welcomed as alice")
	if err != nil {
		t.Fatal(err)
	}
	p.Refuse(false)
	if _, err := zm.Wait(ctx); !errors.Is(err, client.ErrOutboxOtherUser) || zm.Status() != client.Failed {
		t.Errorf("a memory-outbox message queued as another user: %v (%v), want Failed ErrOutboxOtherUser", err, zm.Status())
	}
	waitFor(t, 10*time.Second, "alice's queued message stored as hers", func() bool {
		page, err := b.c.History(ctx, conv.ID, parley.MessageQuery{FromStart: true})
		return err == nil && len(page.Messages) == 1 && page.Messages[0].SenderID == sa.User.ID && page.Messages[0].Text == "alice's"
	})
}

// sdkResync: Cursor and WithCursor resume without replaying; a cursor
// too far behind gets Resynced ResyncResumeLimit; one beyond the log
// gets ResyncAheadOfLog and moves back to Head.
func sdkResync(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	sa, sb := e.account(t, "rsa"), e.account(t, "rsb")
	a := e.connected(t, e.url(), sa)
	conv, err := a.c.CreateDirect(ctx, sb.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := e.connected(t, e.url(), sb)
	for i := range 5 {
		m, _ := a.c.Send(ctx, conv.ID, fmt.Sprint("r", i))
		if _, err := m.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "b got 5", func() bool { return len(b.newMessages(conv.ID)) == 5 })
	cur := b.c.Cursor()
	pos, ok := b.c.Position()
	if !ok || pos == 0 || cur[0] != pos {
		t.Errorf("Cursor %v, Position %d", cur, pos)
	}
	b.c.Close()
	// Two more while b is away; a client from b's cursor gets only those.
	for i := 5; i < 7; i++ {
		m, _ := a.c.Send(ctx, conv.ID, fmt.Sprint("r", i))
		m.Wait(ctx)
	}
	b2 := e.connected(t, e.url(), sb, client.WithCursor(cur))
	waitEvent[client.Resumed](t, b2, "Resumed", nil)
	waitFor(t, 10*time.Second, "b2 got r5 and r6", func() bool { return len(b2.newMessages(conv.ID)) == 2 })
	time.Sleep(300 * time.Millisecond)
	if got := b2.newMessages(conv.ID); !slices.Equal(got, []string{"r5", "r6"}) {
		t.Errorf("resumed from b's cursor: %q, want r5, r6", got)
	}
	// More than the resume limit (20) behind.
	for i := 7; i < 30; i++ {
		a.c.Send(ctx, conv.ID, fmt.Sprint("r", i))
	}
	if err := a.c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b3 := e.connected(t, e.url(), sb, client.WithResumeFrom(pos))
	rs := waitEvent[client.Resynced](t, b3, "Resynced after more than the resume limit", nil)
	if rs.Reason != client.ResyncResumeLimit || rs.Head < rs.From {
		t.Errorf("Resynced %+v, want ResyncResumeLimit", rs)
	}
	// Beyond the log.
	b4 := e.connected(t, e.url(), sb, client.WithResumeFrom(1<<40))
	rs = waitEvent[client.Resynced](t, b4, "Resynced of a position beyond the log", nil)
	if rs.Reason != client.ResyncAheadOfLog || rs.From != 1<<40 {
		t.Errorf("Resynced %+v, want ResyncAheadOfLog from 1<<40", rs)
	}
	waitFor(t, 5*time.Second, "the position back at the head", func() bool { p, _ := b4.c.Position(); return p == rs.Head })
	m, _ := a.c.Send(ctx, conv.ID, "after the lost log")
	m.Wait(ctx)
	waitFor(t, 10*time.Second, "b4 gets a live message after a lost log", func() bool {
		return slices.Contains(b4.newMessages(conv.ID), "after the lost log")
	})
}

// sdkTyping: Typing lists a typist, who expires 5 s after their start
// with a synthetic TypingStopped{Expired: true}; Send ends it.
func sdkTyping(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "tya")), e.connected(t, e.url(), e.account(t, "tyb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A start per keystroke: at most one goes out per 3 s.
	for range 5 {
		if err := a.c.SetTyping(ctx, conv.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	waitEvent(t, b, "TypingStarted", func(ev client.TypingStarted) bool { return ev.UserID == a.s.User.ID })
	time.Sleep(500 * time.Millisecond)
	starts := 0
	for _, ev := range b.events() {
		if _, ok := ev.(client.TypingStarted); ok {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("5 SetTyping(true) in a row: b got %d TypingStarted, want 1", starts)
	}
	if len(b.c.Typing(conv.ID)) != 1 {
		t.Errorf("Typing: %+v, want a", b.c.Typing(conv.ID))
	}
	st := waitEvent(t, b, "TypingStopped", func(ev client.TypingStopped) bool { return ev.UserID == a.s.User.ID })
	if took := time.Since(start); !st.Expired || took < 4*time.Second || took > 7*time.Second {
		t.Errorf("TypingStopped %+v after %v, want Expired 5 s after the start", st, took)
	}
	if len(b.c.Typing(conv.ID)) != 0 {
		t.Errorf("Typing after the expiry: %+v", b.c.Typing(conv.ID))
	}
	// Send ends it at once.
	a.c.SetTyping(ctx, conv.ID, true)
	m, _ := a.c.Send(ctx, conv.ID, "typed")
	m.Wait(ctx)
	waitFor(t, 3*time.Second, "typing ended by the message", func() bool { return len(b.c.Typing(conv.ID)) == 0 && len(b.newMessages(conv.ID)) == 1 })
}

// sdkPresence: Online and IsOnline from the welcome and events, names
// filled in after Conversations.
func sdkPresence(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	sa, sb := e.account(t, "pra"), e.account(t, "prb")
	a := e.connected(t, e.url(), sa)
	// Members of a group are contacts at once (a direct conversation
	// makes contacts only once both wrote in it: protocol section 6).
	if _, err := a.c.CreateGroup(ctx, "presence", []string{sb.User.ID}); err != nil {
		t.Fatal(err)
	}
	b := e.connected(t, e.url(), sb)
	if _, err := b.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b sees a online", func() bool {
		if b.c.IsOnline(sa.User.ID) {
			return true
		}
		return false
	})
	on := b.c.Online()
	if len(on) != 1 || on[0].ID != sa.User.ID || on[0].Name != sa.User.Name {
		t.Errorf("Online: %+v, want a with its name", on)
	}
	waitFor(t, 10*time.Second, "a sees b online", func() bool { return a.c.IsOnline(sb.User.ID) })
	// A second connection of a's changes nothing b's IsOnline says: no
	// UserOnline reaches b's handlers.
	a2 := e.connected(t, e.url(), sa)
	time.Sleep(time.Second)
	for _, ev := range b.events() {
		if on, ok := ev.(client.UserOnline); ok && on.UserID == sa.User.ID {
			t.Errorf("b got UserOnline of a, whom the welcome listed: %+v", on)
		}
	}
	a2.c.Close()
	a.c.Close()
	ev := waitEvent(t, b, "UserOffline", func(ev client.UserOffline) bool { return ev.UserID == sa.User.ID })
	if ev.UserName != sa.User.Name || b.c.IsOnline(sa.User.ID) {
		t.Errorf("UserOffline %+v; IsOnline %v", ev, b.c.IsOnline(sa.User.ID))
	}
	if _, err := b.c.FetchPresence(ctx); err != nil {
		t.Fatal(err)
	}
}

// zeros reads zero bytes forever.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// pngHeaderOnly is a PNG whose header claims w x h and which holds no
// pixels: what an image's size costs is known before decoding it.
func pngHeaderOnly(t *testing.T, w, h int) []byte {
	b := pngOf(t, 1, 1)
	// The IHDR chunk: length (4), "IHDR" (4), width, height, ..., CRC.
	binary.BigEndian.PutUint32(b[16:], uint32(w))
	binary.BigEndian.PutUint32(b[20:], uint32(h))
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	if c, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || c.Width != w || c.Height != h {
		t.Fatalf("pngHeaderOnly: %+v, %v", c, err)
	}
	return b
}

func pngOf(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 100, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sdkUploads: SendImage, SendFileReader, Download, ShrinkImage.
func sdkUploads(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "upa")), e.connected(t, e.url(), e.account(t, "upb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	pic := pngOf(t, 300, 20)
	small, err := client.ShrinkImage(bytes.NewReader(pic), 100)
	if err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(small))
	if err != nil || format != "png" || cfg.Width != 100 {
		t.Errorf("ShrinkImage(300x20 PNG, 100): %s %dx%d %v, want a PNG 100 wide", format, cfg.Width, cfg.Height, err)
	}
	same, _ := client.ShrinkImage(bytes.NewReader(small), 0)
	if !bytes.Equal(same, small) {
		t.Errorf("ShrinkImage of an image that fits changed it")
	}
	if _, err := client.ShrinkImage(strings.NewReader("not an image"), 0); parley.ErrorCode(err) != parley.EUNSUPPORTED {
		t.Errorf("ShrinkImage of text: %v, want unsupported", err)
	}
	// Anything but a PNG becomes a JPEG.
	var gb bytes.Buffer
	gimg := image.NewPaletted(image.Rect(0, 0, 300, 20), []color.Color{color.Black, color.White})
	if err := gif.Encode(&gb, gimg, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := client.ShrinkImage(&gb, 100); err != nil {
		t.Errorf("ShrinkImage of a GIF: %v", err)
	} else if _, f, _ := image.DecodeConfig(bytes.NewReader(out)); f != "jpeg" {
		t.Errorf("ShrinkImage of a 300x20 GIF to 100: %s, want a JPEG", f)
	}
	if _, err := client.ShrinkImage(bytes.NewReader(pngHeaderOnly(t, 9000, 8000)), 0); parley.ErrorCode(err) != parley.ETOOLARGE {
		t.Errorf("ShrinkImage of a 72 megapixel PNG: %v, want too_large", err)
	}
	if _, err := a.c.SendImage(ctx, conv.ID, io.LimitReader(zeros{}, client.MaxImageBytes+1)); parley.ErrorCode(err) != parley.ETOOLARGE {
		t.Errorf("SendImage of MaxImageBytes+1: %v, want too_large", err)
	}
	bad, err := a.c.SendImage(ctx, conv.ID, strings.NewReader("not an image at all"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Wait(ctx); parley.ErrorCode(err) != parley.EUNSUPPORTED || bad.Status() != client.Failed {
		t.Errorf("SendImage of text: %v (%v), want Failed unsupported", err, bad.Status())
	}
	if err := a.c.Resend(ctx, bad); err != nil {
		t.Errorf("Resend of a Failed image: %v", err)
	} else if _, err := bad.Wait(ctx); parley.ErrorCode(err) != parley.EUNSUPPORTED {
		t.Errorf("the resent image: %v, want unsupported again", err)
	}
	im, err := a.c.SendImage(ctx, conv.ID, bytes.NewReader(small), client.WithCaption("a picture"))
	if err != nil {
		t.Fatal(err)
	}
	if im.Status() != client.Sending || !bytes.Equal(im.Image(), small) {
		t.Errorf("SendImage's message: %v, Image() %d bytes", im.Status(), len(im.Image()))
	}
	stored, err := im.Wait(ctx)
	if err != nil || stored.Type != parley.Image || stored.Attachment == nil || stored.Attachment.URL == "" {
		t.Fatalf("SendImage stored %+v, %v", stored, err)
	}
	body := []byte("some notes\n")
	fm, err := a.c.SendFileReader(ctx, conv.ID, "notes.txt", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if fm.FileName() != "notes.txt" {
		t.Errorf("FileName %q", fm.FileName())
	}
	fs, err := fm.Wait(ctx)
	if err != nil || fs.Type != parley.File || fs.Attachment == nil || fs.Attachment.Name != "notes.txt" || fs.Attachment.Size != int64(len(body)) || fs.Attachment.ThumbURL != "" {
		t.Fatalf("SendFileReader stored %+v, %v", fs.Attachment, err)
	}
	if _, err := a.c.SendFileReader(ctx, conv.ID, "empty", bytes.NewReader(nil)); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("SendFileReader of an empty file: %v, want invalid", err)
	}
	var got bytes.Buffer
	n, err := b.c.Download(ctx, fs.Attachment.ID, &got)
	if err != nil || n != int64(len(body)) || !bytes.Equal(got.Bytes(), body) {
		t.Errorf("Download: %d bytes %q, %v", n, got.Bytes(), err)
	}
	outsider := e.connected(t, e.url(), e.account(t, "upc"))
	if _, err := outsider.c.Download(ctx, fs.Attachment.ID, &got); parley.ErrorCode(err) != parley.ENOTFOUND {
		t.Errorf("Download by a non-member: %v, want not_found", err)
	}
	waitEvent(t, b, "b's NewMessage of the file", func(ev client.NewMessage) bool {
		return ev.Message.Attachment != nil && ev.Message.Attachment.ID == fs.Attachment.ID
	})
}

// sdkProfiles: SetProfile, User(), ProfileUpdated and the cached list.
func sdkProfiles(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "pfa")), e.connected(t, e.url(), e.account(t, "pfb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	name := "Bee Bop"
	if _, err := b.c.SetProfile(ctx, &name, nil); err != nil {
		t.Fatal(err)
	}
	if b.c.User().DisplayName != name {
		t.Errorf("User() after SetProfile: %+v", b.c.User())
	}
	waitEvent(t, a, "ProfileUpdated", func(ev client.ProfileUpdated) bool {
		return ev.UserID == b.s.User.ID && ev.ConversationID == conv.ID && ev.Profile.DisplayName == name
	})
	waitFor(t, 5*time.Second, "a's cached member entry follows", func() bool {
		for _, c := range a.c.CachedConversations() {
			if c.ID == conv.ID {
				for _, m := range c.Members {
					if m.UserID == b.s.User.ID {
						return m.DisplayName == name
					}
				}
			}
		}
		return false
	})
	bad := "bad\x00name"
	if _, err := b.c.SetProfile(ctx, &bad, nil); err == nil {
		t.Errorf("SetProfile with a NUL in the name: no error")
	}
	if _, err := b.c.SetAvatar(ctx, bytes.NewReader(pngOf(t, 32, 32))); err != nil {
		t.Fatal(err)
	}
	if b.c.User().AvatarID == "" {
		t.Errorf("User() after SetAvatar has no AvatarID")
	}
}

// sdkReceipts: the client reports delivery by itself; Receipt goes
// Sent, Delivered, Read.
func sdkReceipts(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "rca")), e.connected(t, e.url(), e.account(t, "rcb"))
	// A group: a direct conversation a stranger starts is a request,
	// which hides the recipient's positions until accepted.
	conv, err := a.c.CreateGroup(ctx, "receipts", []string{b.s.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	m, _ := a.c.Send(ctx, conv.ID, "did you get it")
	stored, err := m.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Delivered", func() bool {
		if a.c.Receipt(stored).Status == client.Delivered {
			return true
		}
		return false
	})
	r := a.c.Receipt(stored)
	if r.Recipients != 1 || r.Delivered != 1 || r.Read != 0 {
		t.Errorf("Receipt once delivered: %+v", r)
	}
	waitEvent(t, a, "MessageDelivered", func(ev client.MessageDelivered) bool {
		return ev.UserID == b.s.User.ID && ev.DeliveredSeq >= stored.Seq
	})
	if _, err := b.c.MarkRead(ctx, conv.ID, stored.Seq); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Read", func() bool { return a.c.Receipt(stored).Status == client.Read })

	// WithDeliveredInterval(d < 0): no reports.
	quiet := e.connected(t, e.url(), e.account(t, "rcq"), client.WithDeliveredInterval(-1))
	g, err := a.c.CreateGroup(ctx, "quiet", []string{quiet.s.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	m2, _ := a.c.Send(ctx, g.ID, "unreported")
	s2, err := m2.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "quiet got it", func() bool { return len(quiet.newMessages(g.ID)) == 1 })
	time.Sleep(2 * time.Second) // two report intervals
	if r := a.c.Receipt(s2); r.Status != client.Sent || r.Delivered != 0 {
		t.Errorf("a recipient WithDeliveredInterval(-1): %+v, want Sent, none delivered", r)
	}
}

// sdkGroups: CreateGroup, roles, Rename, AddMembers, RemoveMembers and
// the removed mark.
func sdkGroups(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b, c := e.connected(t, e.url(), e.account(t, "gra")), e.connected(t, e.url(), e.account(t, "grb")), e.account(t, "grc")
	g, err := a.c.CreateGroup(ctx, "team", []string{b.s.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.AddMembers(ctx, g.ID, c.User.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Rename(ctx, g.ID, "mine"); parley.ErrorCode(err) != parley.EFORBIDDEN {
		t.Errorf("Rename by a member: %v, want forbidden", err)
	}
	if _, err := a.c.Rename(ctx, g.ID, "renamed"); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, "ConversationUpdated of the rename", func(ev client.ConversationUpdated) bool {
		return ev.UserID == a.s.User.ID && ev.Conversation.Title == "renamed"
	})
	if _, err := a.c.RemoveMembers(ctx, g.ID, b.s.User.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b marked removed", func() bool { return b.c.IsRemoved(g.ID) })
	if _, err := b.c.Send(ctx, g.ID, "still here?"); !errors.Is(err, client.ErrRemoved) || parley.ErrorCode(err) != parley.ENOTFOUND {
		t.Errorf("Send after removal: %v, want ErrRemoved (not_found)", err)
	}
	if _, err := a.c.AddMembers(ctx, g.ID, b.s.User.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b's removed mark cleared when added back", func() bool { return !b.c.IsRemoved(g.ID) })
	m, err := b.c.Send(ctx, g.ID, "back")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Wait(ctx); err != nil {
		t.Errorf("a send after being added back: %v", err)
	}
	if err := a.c.Leave(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
}

// sdkMentionsSearch: Mentions and Search with Highlight.
func sdkMentionsSearch(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "msa")), e.connected(t, e.url(), e.account(t, "msb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := a.c.Send(ctx, conv.ID, "@"+b.s.User.Name+" the quarterly report")
	stored, err := m.Wait(ctx)
	if err != nil || !slices.Equal(stored.Mentions, []string{b.s.User.ID}) {
		t.Fatalf("a mention: %+v, %v", stored.Mentions, err)
	}
	bl, err := b.c.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(bl, func(c parley.Conversation) bool { return c.ID == conv.ID }); i < 0 || bl[i].UnreadMentions != 1 {
		t.Errorf("b's list: UnreadMentions of %+v, want 1", bl)
	}
	page, err := b.c.Mentions(ctx, "", 20)
	if err != nil || len(page.Results) != 1 || page.Results[0].Message.ID != stored.ID {
		t.Errorf("Mentions: %+v, %v", page, err)
	}
	waitFor(t, 10*time.Second, "the search finds it", func() bool {
		sp, err := b.c.Search(ctx, "quarterly rep*", client.SearchOptions{Limit: 20})
		if err != nil || len(sp.Results) != 1 {
			return false
		}
		var marked []string
		for _, p := range sp.Results[0].Highlight {
			if p.Match {
				marked = append(marked, p.Text)
			}
		}
		return slices.Equal(marked, []string{"quarterly", "report"})
	})
	if _, err := b.c.Search(ctx, "  ", client.SearchOptions{}); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("Search of a blank query: %v, want invalid", err)
	}
}

// sdkFlags: SetMuted and SetArchived reach the user's other device as
// FlagsChanged, and its cached list follows.
func sdkFlags(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	sa, sb := e.account(t, "fla"), e.account(t, "flb")
	a1, a2 := e.connected(t, e.url(), sa), e.connected(t, e.url(), sa)
	b := e.connected(t, e.url(), sb)
	conv, err := a1.c.CreateDirect(ctx, sb.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a2.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a1.c.SetMuted(ctx, conv.ID, true); err != nil {
		t.Fatal(err)
	}
	if _, err := a1.c.SetArchived(ctx, conv.ID, true); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, a2, "FlagsChanged", func(ev client.FlagsChanged) bool {
		return ev.ConversationID == conv.ID && ev.Flags.Muted && ev.Flags.Archived
	})
	cached := func() parley.Conversation {
		for _, c := range a2.c.CachedConversations() {
			if c.ID == conv.ID {
				return c
			}
		}
		return parley.Conversation{}
	}
	waitFor(t, 5*time.Second, "a2's cached list muted and archived", func() bool { c := cached(); return c.Muted && c.Archived })
	m, _ := b.c.Send(ctx, conv.ID, "wake up")
	m.Wait(ctx)
	waitFor(t, 5*time.Second, "a new message clears Archived in the cache", func() bool { c := cached(); return c.Muted && !c.Archived })
	for _, ev := range b.events() {
		if _, ok := ev.(client.FlagsChanged); ok {
			t.Errorf("the other member got FlagsChanged")
		}
	}
}

// sdkBlocks: Block, Privacy, a refused send, Unblock; SetConsent.
func sdkBlocks(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "bla")), e.connected(t, e.url(), e.account(t, "blb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.c.Block(ctx, a.s.User.ID); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, "UserBlocked", func(ev client.UserBlocked) bool { return ev.UserID == a.s.User.ID })
	p, err := b.c.Privacy(ctx)
	if err != nil || len(p.Blocked) != 1 {
		t.Errorf("Privacy: %+v, %v", p, err)
	}
	m, _ := a.c.Send(ctx, conv.ID, "hello?")
	if _, err := m.Wait(ctx); parley.ErrorCode(err) != parley.EFORBIDDEN || err.Error() != parley.ErrUnreachable.Error() || m.Status() != client.Failed {
		t.Errorf("a send to a user who blocked the sender: %v (%v), want Failed ErrUnreachable", err, m.Status())
	}
	if err := b.c.Unblock(ctx, a.s.User.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.SetConsent(ctx, parley.ConsentContacts); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, "PrivacyChanged", func(ev client.PrivacyChanged) bool { return ev.Consent == parley.ConsentContacts })
	stranger := e.connected(t, e.url(), e.account(t, "blc"))
	if _, err := stranger.c.CreateDirect(ctx, b.s.User.ID); parley.ErrorCode(err) != parley.EFORBIDDEN {
		t.Errorf("a stranger's CreateDirect under ConsentContacts: %v, want forbidden", err)
	}
}

// sdkTokenSource: a TokenSource is asked before every attempt; after a
// 4100 the client retries once at once with a fresh token, and a second
// 4100 is terminal (*CloseError 4100, Disconnected).
func sdkTokenSource(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	s := e.account(t, "ts")
	var asked atomic.Int64
	c, err := client.New(e.url(), client.WithBackoff(10*time.Second, 10*time.Second), client.WithTokenSource(func(ctx context.Context) (string, error) {
		if asked.Add(1) == 1 {
			return "forged", nil
		}
		return s.Token, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("Connect with a refused first token: %v", err)
	}
	// At once: not after a 10 s backoff's wait.
	if took := time.Since(start); asked.Load() != 2 || took > 5*time.Second {
		t.Errorf("after a 4100: asked %d times, connected in %v; want 2, at once", asked.Load(), took)
	}
	// And again before each reconnect.
	c.Close()
	p, url := e.proxy(t)
	var asked2 atomic.Int64
	c2, err := client.New(url, client.WithBackoff(10*time.Millisecond, 20*time.Millisecond), client.WithTokenSource(func(ctx context.Context) (string, error) {
		asked2.Add(1)
		return s.Token, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		p.CutAll()
		waitFor(t, 10*time.Second, "reconnected", func() bool { return asked2.Load() == int64(i+2) && c2.Connected() })
	}
	bad, err := client.New(e.url(), client.WithTokenSource(func(ctx context.Context) (string, error) { return "forged", nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	err = bad.Connect(ctx)
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != 4100 {
		t.Errorf("Connect with a refused token, twice: %v, want a *CloseError 4100", err)
	}
	if st := bad.Status(); st.State != client.Disconnected || !errors.As(st.Err, &ce) {
		t.Errorf("after two 4100s: %+v, want Disconnected with the *CloseError", st)
	}
}

// sdkLaggingReader: a StatusChanges reader that does not read keeps the
// newest StatusChangesBuffer changes; the last it reads is the current
// state, and it holds up nothing.
func sdkLaggingReader(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	s := e.account(t, "lr")
	p.Refuse(true)
	x := e.newClient(t, url, s, client.WithBackoff(time.Millisecond, 2*time.Millisecond), client.WithMaxAttempts(client.StatusChangesBuffer+5))
	changes := x.c.StatusChanges(ctx)
	var gu *client.GaveUpError
	if err := x.c.Connect(ctx); !errors.As(err, &gu) {
		t.Fatalf("Connect: %v, want a *GaveUpError", err)
	}
	// Twice as many changes as the buffer holds happened (Connecting and
	// Reconnecting per attempt, then Disconnected). The changes reach the
	// channel from the callback goroutine: give it time to pass them all.
	time.Sleep(500 * time.Millisecond)
	total := 2*(client.StatusChangesBuffer+5) - 1
	var got []client.StatusChange
	for len(got) < 100 {
		select {
		case ch := <-changes:
			got = append(got, ch)
			continue
		case <-time.After(300 * time.Millisecond):
		}
		break
	}
	if len(got) == 0 || len(got) > client.StatusChangesBuffer+1 {
		t.Fatalf("a reader that read nothing during %d changes then read %d, want the newest %d", total, len(got), client.StatusChangesBuffer)
	}
	if last := got[len(got)-1]; last.Current != client.Disconnected {
		t.Errorf("the last change read: %+v, want Disconnected (the newest is never lost)", last)
	}
	// The newest, in order: attempts count up to the last.
	for i := 1; i < len(got)-1; i++ {
		if got[i].Attempt < got[i-1].Attempt {
			t.Errorf("changes out of order: %+v then %+v", got[i-1], got[i])
		}
	}
}

// sdkThrottled: a feature the server switches off puts the client in
// FeatureThrottled, with Throttled naming it, still Connected.
func sdkThrottled(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	x := e.connected(t, e.url(), e.account(t, "th"))
	changes := x.c.StatusChanges(ctx)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = x.c.FetchPresence(ctx)
	}
	if parley.ErrorCode(err) != parley.ERATELIMITED {
		t.Fatalf("10 FetchPresence calls: %v, want rate_limited (burst 5)", err)
	}
	awaitState(t, changes, client.FeatureThrottled, 10*time.Second, func() string { return fmt.Sprintf("no FeatureThrottled; status %+v", x.c.Status()) })
	st := x.c.Status()
	if !x.c.Connected() || !st.Connected() || len(st.Throttled) == 0 {
		t.Errorf("FeatureThrottled: Connected %v, %+v", x.c.Connected(), st)
	}
	waitFor(t, 20*time.Second, "Connected again when unthrottled", func() bool { return x.c.Status().State == client.Connected })
}

// sdkDeleteResendRequest: a request a stranger starts, accepted; Delete
// applied to a view; a Failed message resent with Resend.
func sdkDeleteResendRequest(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "dra")), e.connected(t, e.url(), e.account(t, "drb"))
	conv, err := a.c.CreateDirect(ctx, b.s.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := a.c.Send(ctx, conv.ID, "hi stranger")
	stored, err := m.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bc, err := b.c.Conversations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(bc, func(c parley.Conversation) bool { return c.ID == conv.ID }); i < 0 || bc[i].Request != parley.RequestPending {
		t.Errorf("b's list: %+v, want the conversation as a pending request", bc)
	}
	if _, err := b.c.AcceptRequest(ctx, conv.ID); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, b, "RequestAnswered", func(ev client.RequestAnswered) bool { return ev.ConversationID == conv.ID && ev.Accepted })
	if _, err := b.c.AcceptRequest(ctx, conv.ID); err != nil {
		t.Errorf("accepting an accepted request: %v, want success", err)
	}
	v, err := b.c.OpenConversation(ctx, conv.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Delete(ctx, conv.ID, stored.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the view applies the delete", func() bool {
		ms := v.Messages()
		return len(ms) == 1 && ms[0].Deleted
	})
	ed, _ := a.c.Edit(ctx, conv.ID, stored.ID, "too late")
	if _, err := ed.Wait(ctx); parley.ErrorCode(err) != parley.EINVALID || ed.Status() != client.Failed {
		t.Errorf("an edit of a deleted message: %v (%v), want Failed invalid", err, ed.Status())
	}
	// Failed, then resent with the same client id once the cause is gone.
	if err := b.c.Block(ctx, a.s.User.ID); err != nil {
		t.Fatal(err)
	}
	f, _ := a.c.Send(ctx, conv.ID, "again")
	if _, err := f.Wait(ctx); err == nil || f.Status() != client.Failed {
		t.Fatalf("a send to a user who blocked the sender: %v", err)
	}
	if err := b.c.Unblock(ctx, a.s.User.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.c.Resend(ctx, f); err != nil {
		t.Fatal(err)
	}
	rs, err := f.Wait(ctx)
	if err != nil || f.Status() != client.Sent || rs.Text != "again" {
		t.Errorf("Resend: %v %v %+v", f.Status(), err, rs)
	}
}

// sdkTypingLinkDrop: every typing indicator ends when the link drops.
func sdkTypingLinkDrop(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	sa, sb := e.account(t, "tla"), e.account(t, "tlb")
	a := e.connected(t, e.url(), sa)
	b := e.connected(t, url, sb, client.WithBackoff(20*time.Millisecond, 50*time.Millisecond))
	conv, err := a.c.CreateDirect(ctx, sb.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.c.SetTyping(ctx, conv.ID, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b sees a typing", func() bool { return len(b.c.Typing(conv.ID)) == 1 })
	p.Refuse(true)
	p.CutAll()
	waitFor(t, 2*time.Second, "typing ended by the lost link", func() bool { return len(b.c.Typing(conv.ID)) == 0 })
}

// sdkTooManyConns: the oldest of one user's connections past the cap is
// closed with 4103: Disconnected, a *CloseError 4103, no reconnect.
func sdkTooManyConns(t *testing.T, e *sdkEnv) {
	s := e.account(t, "tm")
	back := client.WithBackoff(20*time.Millisecond, 50*time.Millisecond)
	first := e.connected(t, e.url(), s, back)
	for range 5 {
		e.connected(t, e.url(), s, back)
	}
	waitFor(t, 10*time.Second, "the oldest connection Disconnected", func() bool { return first.c.Status().State == client.Disconnected })
	var ce *client.CloseError
	if st := first.c.Status(); !errors.As(st.Err, &ce) || ce.Code != 4103 {
		t.Errorf("the oldest of 6 connections: %+v, want a *CloseError 4103", st)
	}
	time.Sleep(500 * time.Millisecond)
	if st := first.c.Status(); st.State != client.Disconnected {
		t.Errorf("after a 4103 the client reconnected by itself: %+v", st)
	}
}

// sdkRateLimitGoaway runs on two servers of its own that share a token
// secret, behind one proxy whose upstream the check moves from the first
// to the second. On the first (messages 5/s, burst 3): sends refused as
// rate_limited are resent in Send order, each stored once. Then the first
// shuts down: its goaway's reconnect_after_ms (1 to 2 s) replaces the
// client's backoff (30 s ceilings), and the client reconnects, to the
// second, that soon.
func sdkRateLimitGoaway(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	limited := startServer(t, e.bin, t.TempDir(), 0, "--secret="+confSecret, "--messages-per-second=5", "--message-burst=3")
	next := startServer(t, e.bin, t.TempDir(), 0, "--secret="+confSecret)
	var upstream atomic.Value
	upstream.Store(limited.Addr())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := faultproxy.New(ln, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", upstream.Load().(string))
	})
	defer p.Close()
	name := fmt.Sprintf("gw%d", e.n.Add(1))
	// A token minted with the servers' secret: the hello makes the user
	// on each (docs/protocol.md section 1).
	s := client.Session{Token: mint(name, name)}
	s.User.ID, s.User.Name = name, name
	x := e.connected(t, "http://"+p.Addr(), s, client.WithBackoff(30*time.Second, 30*time.Second))
	other := fmt.Sprintf("gw%d", e.n.Add(1))
	oc, err := client.New("http://"+limited.Addr(), client.WithToken(mint(other, other)))
	if err != nil {
		t.Fatal(err)
	}
	if err := oc.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	oc.Close()
	conv, err := x.c.CreateDirect(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 12 {
		text := fmt.Sprint("limited ", i)
		if _, err := x.c.Send(ctx, conv.ID, text); err != nil {
			t.Fatal(err)
		}
		want = append(want, text)
	}
	if err := x.c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := x.c.History(ctx, conv.ID, parley.MessageQuery{FromStart: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if got := texts(page.Messages); !slices.Equal(got, want) {
		t.Errorf("12 sends at 5/s (burst 3): stored %q, want each once in Send order", got)
	}

	changes := x.c.StatusChanges(ctx)
	upstream.Store(next.Addr())
	limited.mu.Lock()
	limited.cmd.Process.Signal(syscall.SIGTERM)
	limited.mu.Unlock()
	var lost, back time.Time
	var retryAt time.Time
	for back.IsZero() {
		select {
		case ch := <-changes:
			switch {
			case ch.Current == client.Reconnecting && lost.IsZero():
				lost, retryAt = ch.At, ch.NextRetryAt
			case ch.Current == client.Connected:
				back = ch.At
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("not reconnected 15 s after the server's goaway; status %+v", x.c.Status())
		}
	}
	wait := retryAt.Sub(lost)
	if wait < 900*time.Millisecond || wait > 2100*time.Millisecond {
		t.Errorf("after a goaway the next attempt was set %v away, want the goaway's reconnect_after_ms (1 to 2 s)", wait)
	}
	if took := back.Sub(lost); took > wait+slack+time.Second {
		t.Errorf("reconnected %v after the goaway, want about its reconnect_after_ms (%v)", took, wait)
	}
}

// sdkResyncView: a client away for more than the resume limit gets
// Resynced on its return and reloads its open view, which then holds
// what was sent meanwhile.
func sdkResyncView(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	sa, sb := e.account(t, "rva"), e.account(t, "rvb")
	a := e.connected(t, e.url(), sa)
	conv, err := a.c.CreateDirect(ctx, sb.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := e.connected(t, url, sb, client.WithBackoff(20*time.Millisecond, 50*time.Millisecond))
	v, err := b.c.OpenConversation(ctx, conv.ID, 50)
	if err != nil {
		t.Fatal(err)
	}
	p.Refuse(true)
	p.CutAll()
	waitFor(t, 10*time.Second, "b offline", func() bool { return !b.c.Connected() })
	for i := range 25 { // more than the resume limit (20)
		a.c.Send(ctx, conv.ID, fmt.Sprint("away ", i))
	}
	if err := a.c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.Refuse(false)
	rs := waitEvent[client.Resynced](t, b, "Resynced on return", nil)
	if rs.Reason != client.ResyncResumeLimit {
		t.Errorf("Resynced %+v, want ResyncResumeLimit", rs)
	}
	waitFor(t, 10*time.Second, "the view reloaded with the 25 messages", func() bool {
		ms := v.Messages()
		return len(ms) == 25 && ms[24].Text == "away 24" && v.Err() == nil
	})
}

// sdkDefaultHeartbeat: without WithHeartbeat the client takes the
// welcome's interval and timeout (4 s, 9 s): a half-open link is noticed
// 9 s after the last frame.
func sdkDefaultHeartbeat(t *testing.T, e *sdkEnv) {
	p, url := e.proxy(t)
	x := e.connected(t, url, e.account(t, "dh"), client.WithBackoff(20*time.Millisecond, 50*time.Millisecond))
	changes := x.c.StatusChanges(tctx(t))
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	p.Blackhole(faultproxy.Both)
	ch := awaitState(t, changes, client.Reconnecting, 20*time.Second, func() string { return "no Reconnecting 20 s into a half-open link" })
	took := time.Since(start)
	// The last frame was heard at most one interval before the cut.
	if !errors.Is(ch.Err, client.ErrHeartbeatTimeout) || took < 5*time.Second || took > 9*time.Second+slack {
		t.Errorf("a half-open link noticed after %v (%v), want ErrHeartbeatTimeout 9 s after the last frame", took, ch.Err)
	}
}

// sdkProtocol1: WithProtocol(protocol.Version) speaks protocol 1 to a
// server whose log has one shard: sends, events and a resume work.
func sdkProtocol1(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	sa, sb := e.account(t, "p1a"), e.account(t, "p1b")
	a := e.connected(t, e.url(), sa)
	conv, err := a.c.CreateDirect(ctx, sb.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	b := e.connected(t, url, sb, client.WithProtocol(protocol.Version), client.WithBackoff(20*time.Millisecond, 50*time.Millisecond))
	m, _ := a.c.Send(ctx, conv.ID, "one")
	m.Wait(ctx)
	waitFor(t, 10*time.Second, "b got one", func() bool { return len(b.newMessages(conv.ID)) == 1 })
	p.Refuse(true)
	p.CutAll()
	waitFor(t, 10*time.Second, "b offline", func() bool { return !b.c.Connected() })
	m, _ = a.c.Send(ctx, conv.ID, "two")
	m.Wait(ctx)
	p.Refuse(false)
	waitFor(t, 10*time.Second, "b got two after the resume", func() bool { return len(b.newMessages(conv.ID)) == 2 })
	time.Sleep(300 * time.Millisecond)
	if got := b.newMessages(conv.ID); !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("protocol 1 across a cut: %q", got)
	}
}

// sdkUploadsOffline: an image and a file sent while the server cannot be
// reached wait in the outbox (the uploads too) and, once it can, reach
// the conversation once each, in Send order with a text between them.
func sdkUploadsOffline(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	p, url := e.proxy(t)
	sa, sb := e.account(t, "uoa"), e.account(t, "uob")
	b := e.connected(t, e.url(), sb)
	conv, err := b.c.CreateGroup(ctx, "offline uploads", []string{sa.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	a := e.connected(t, url, sa, client.WithBackoff(50*time.Millisecond, 100*time.Millisecond))
	p.Refuse(true)
	p.CutAll()
	waitFor(t, 10*time.Second, "a offline", func() bool { return !a.c.Connected() })
	im, err := a.c.SendImage(ctx, conv.ID, bytes.NewReader(pngOf(t, 40, 30)), client.WithCaption("offline picture"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Send(ctx, conv.ID, "between"); err != nil {
		t.Fatal(err)
	}
	fm, err := a.c.SendFileReader(ctx, conv.ID, "offline.txt", strings.NewReader("written offline"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if im.Status() != client.Sending || fm.Status() != client.Sending {
		t.Errorf("offline: image %v, file %v; want both Sending", im.Status(), fm.Status())
	}
	p.Refuse(false)
	if err := a.c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := b.c.History(ctx, conv.ID, parley.MessageQuery{FromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Messages {
		got = append(got, string(m.Type)+":"+m.Text)
	}
	if want := []string{"image:offline picture", "text:between", "file:"}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || !strings.HasPrefix(got[2], "file:") {
		t.Errorf("after the link came back: %q, want an image, a text and a file, once each", got)
	}
}

// sdkUnreadCap: unread counts stop at parley.MaxUnreadCount, the
// server's and the cached list's as events come.
func sdkUnreadCap(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	a, b := e.connected(t, e.url(), e.account(t, "uca")), e.connected(t, e.url(), e.account(t, "ucb"))
	g, err := a.c.CreateGroup(ctx, "many", []string{b.s.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	for i := range parley.MaxUnreadCount + 1 {
		a.c.Send(ctx, g.ID, fmt.Sprint("n", i))
	}
	if err := a.c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	unread := func() int64 {
		for _, c := range b.c.CachedConversations() {
			if c.ID == g.ID {
				return c.UnreadCount
			}
		}
		return -1
	}
	waitFor(t, 10*time.Second, "b got them all", func() bool { return len(b.newMessages(g.ID)) == parley.MaxUnreadCount+1 })
	if _, err := b.c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
	if u := unread(); u != parley.MaxUnreadCount {
		t.Errorf("the server's count of %d unread: %d, want %d", parley.MaxUnreadCount+1, u, parley.MaxUnreadCount)
	}
	m, _ := a.c.Send(ctx, g.ID, "one more")
	m.Wait(ctx)
	waitFor(t, 10*time.Second, "b got one more", func() bool { return len(b.newMessages(g.ID)) == parley.MaxUnreadCount+2 })
	time.Sleep(200 * time.Millisecond)
	if u := unread(); u != parley.MaxUnreadCount {
		t.Errorf("after one more live message: %d, want it to stay at %d", u, parley.MaxUnreadCount)
	}
}

// sdkServerPings: a client whose own pings are late (here: every 30 s,
// beyond the server's 9 s timeout) is not closed while its network
// works: it reads continuously, so its WebSocket library answers the
// server's pings (docs/protocol.md section 4).
func sdkServerPings(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	x := e.connected(t, e.url(), e.account(t, "sp"), client.WithHeartbeat(30*time.Second, 60*time.Second))
	changes := x.c.StatusChanges(ctx)
	select {
	case ch := <-changes:
		t.Errorf("a client pinging every 30 s changed state within 12 s (the server's timeout is 9 s): %+v", ch)
	case <-time.After(12 * time.Second):
	}
	if !x.c.Connected() {
		t.Errorf("not connected: %+v", x.c.Status())
	}
}

// heldListener blocks the callback goroutine in its first OnConnected
// until release is closed.
type heldListener struct {
	client.NopListener
	once    sync.Once
	release chan struct{}
}

func (l *heldListener) OnConnected(client.StatusChange) { l.once.Do(func() { <-l.release }) }

// sdkBlockedListener: a listener that blocks holds up later callbacks
// but never the connection or the outbox: sends go out and are stored
// meanwhile, and the events wait for it.
func sdkBlockedListener(t *testing.T, e *sdkEnv) {
	ctx := tctx(t)
	sa, sb := e.account(t, "bka"), e.account(t, "bkb")
	b := e.connected(t, e.url(), sb)
	conv, err := b.c.CreateGroup(ctx, "held", []string{sa.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	l := &heldListener{release: make(chan struct{})}
	c, err := client.New(e.url(), client.WithToken(sa.Token))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.AddConnectionListener("held", l)
	released := false
	defer func() {
		if !released {
			close(l.release)
		}
	}()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := c.Send(ctx, conv.ID, "while a listener blocks")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := m.Wait(wctx); err != nil {
		t.Errorf("a send while a listener blocks: %v", err)
	}
	close(l.release)
	released = true
	waitFor(t, 10*time.Second, "b got the message", func() bool { return len(b.newMessages(conv.ID)) == 1 })
}

// awaitState reads changes until one to state arrives and returns it,
// failing the test with what() after d without one.
func awaitState(t *testing.T, changes <-chan client.StatusChange, state client.State, d time.Duration, what func() string) client.StatusChange {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ch := <-changes:
			if ch.Current == state {
				return ch
			}
		case <-timeout:
			t.Fatal(what())
		}
	}
}
