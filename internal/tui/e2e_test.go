package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// driver runs a Model the way tea.Program does, without a terminal: it
// applies messages to Update one at a time and runs commands on their own
// goroutines, feeding their results back. The test reads View between
// messages.
type driver struct {
	t      *testing.T
	name   string
	c      *client.Client
	m      *Model
	msgs   chan tea.Msg
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // command goroutines
	quit   bool
}

// newDriver starts a model for a client connecting to srv with token.
// Cleanup stops the commands and closes the client.
func newDriver(t *testing.T, name, url, token string, lookup func(ctx context.Context, name string) (parley.User, error)) *driver {
	t.Helper()
	return newDriverWith(t, name, url, token, Config{LookupUser: lookup})
}

// newDriverWith is newDriver with a Config and more client options.
func newDriverWith(t *testing.T, name, url, token string, cfg Config, opts ...client.Option) *driver {
	t.Helper()
	c, err := client.New(url, append([]client.Option{client.WithToken(token), client.WithBackoff(50*time.Millisecond, 200*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &driver{t: t, name: name, c: c, msgs: make(chan tea.Msg), ctx: ctx, cancel: cancel}
	cfg.Notify, cfg.PageSize = d.send, 20
	d.m = New(c, cfg)
	Attach(c, d.send)
	t.Cleanup(func() {
		Detach(c)
		d.cancel() // unblocks callbacks waiting in send
		c.Close()
		d.m.Stop() // ends the commands waiting to clear a notice
		d.wg.Wait()
	})
	d.process(tea.WindowSizeMsg{Width: 100, Height: 24})
	d.run(d.m.Init())
	return d
}

// send is Config.Notify: it hands msg to the loop in waitFor.
func (d *driver) send(msg tea.Msg) {
	select {
	case d.msgs <- msg:
	case <-d.ctx.Done():
	}
}

func (d *driver) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if msg := cmd(); msg != nil {
			d.send(msg)
		}
	}()
}

func (d *driver) process(msg tea.Msg) {
	switch msg := msg.(type) {
	case tea.BatchMsg:
		for _, cmd := range msg {
			d.run(cmd)
		}
	case tea.QuitMsg:
		d.quit = true
	default:
		_, cmd := d.m.Update(msg)
		d.run(cmd)
	}
}

func (d *driver) screen() string { return ansi.Strip(d.m.View().Content) }

// waitFor processes messages until cond holds for the screen, failing the
// test after a deadline.
func (d *driver) waitFor(what string, cond func(screen string) bool) {
	d.t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for !cond(d.screen()) {
		select {
		case msg := <-d.msgs:
			d.process(msg)
		case <-deadline.C:
			d.t.Fatalf("%s: no %s within 15 s; screen:\n%s", d.name, what, d.screen())
		}
	}
}

func (d *driver) waitText(s string) {
	d.t.Helper()
	d.waitFor(strings.TrimSpace(s), func(screen string) bool { return strings.Contains(screen, s) })
}

// typeLine types s and, with enter, presses Enter.
func (d *driver) typeLine(s string, enter bool) {
	for _, r := range s {
		d.process(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	if enter {
		d.process(tea.KeyPressMsg{Code: tea.KeyEnter})
	}
}

func (d *driver) press(k tea.KeyPressMsg) { d.process(k) }

// enter types line, presses Enter and waits for want on the screen.
func (d *driver) enter(line, want string) {
	d.t.Helper()
	d.typeLine(line, true)
	d.waitText(want)
}

// adminLookup is a Config.LookupUser that asks srv as an admin.
func adminLookup(t *testing.T, srv *servertest.Server) func(ctx context.Context, name string) (parley.User, error) {
	return func(ctx context.Context, name string) (parley.User, error) {
		return LookupUser(ctx, srv.URL, srv.Token(t, "admin", "admin"), name)
	}
}

// connected starts a driver for user id (named name) on srv with lookup
// and waits until it is connected.
func connected(t *testing.T, srv *servertest.Server, id, name string, lookup func(ctx context.Context, name string) (parley.User, error)) *driver {
	t.Helper()
	d := newDriver(t, name, srv.URL, srv.Token(t, id, name), lookup)
	d.waitText("● connected as " + name)
	return d
}

// connectedPair starts a server and connects the terminal clients of
// alice and bob, who can look users up by name.
func connectedPair(t *testing.T) (srv *servertest.Server, alice, bob *driver) {
	t.Helper()
	srv = servertest.Start(t)
	lookup := adminLookup(t, srv)
	return srv, connected(t, srv, "alice", "alice", lookup), connected(t, srv, "bob", "bob", lookup)
}

// openDirect types /dm with name, whose pane opens showing them offline
// (a direct conversation shares presence only once both wrote in it).
func (d *driver) openDirect(name string) {
	d.t.Helper()
	d.enter("/dm "+name, name+" ○ offline")
}

// Two users on a real server: a direct conversation started with /dm,
// messages both ways with sent and read marks, typing, unread counts, a
// group, and a server restart with a message queued while it was down.
func TestTwoUsers(t *testing.T) {
	srv, alice, bob := connectedPair(t)
	srv.Token(t, "carol", "carol") // exists, never connects

	// A direct conversation shares presence only once both wrote in it
	// (docs/protocol.md): until bob answers, alice sees him offline.
	alice.openDirect("bob")
	alice.enter("hello bob", "alice: hello bob ✓")

	// Bob's list gets the conversation, a request (they are strangers);
	// it opens (the only one) and shows the message. Accepting it gives
	// alice the read mark the request hid.
	bob.waitText("alice: hello bob")
	bob.waitText("A message request")
	bob.enter("/accept", "request accepted")
	alice.waitText("alice: hello bob ✓✓ read")

	bob.typeLine("hey al", false)
	alice.waitText("bob is typing…")
	bob.typeLine("ice", true)
	alice.waitFor("bob's reply and no typing", func(s string) bool {
		return strings.Contains(s, "bob: hey alice") && !strings.Contains(s, "is typing")
	})
	// Both wrote: each sees the other online now.
	alice.waitText("bob ● online")
	bob.waitText("alice ● online")

	// A group: bob is not looking at it, so it is unread for him.
	alice.enter("/group team bob carol", "team 3 members")
	alice.enter("standup at ten", "alice: standup at ten ✓")
	bob.waitFor("team with 1 unread", func(s string) bool {
		return strings.Contains(s, "# team                  1")
	})
	bob.press(tea.KeyPressMsg{Code: tea.KeyTab})
	bob.waitText("alice: standup at ten")
	bob.waitFor("team read", func(s string) bool {
		return strings.Contains(s, "# team ") && !strings.Contains(s, "# team                  1")
	})

	// The server goes away: the status line says so, a message waits in
	// the outbox, and after the restart it is delivered once.
	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.enter("while you were out", "alice: while you were out … sending")
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl}) // retry now: fails again, still no server
	alice.waitText("◌ reconnecting")
	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("● connected as alice")
	alice.waitText("alice: while you were out ✓")
	bob.waitText("alice: while you were out")
	if n := strings.Count(bob.screen(), "while you were out"); n != 1 {
		t.Errorf("bob sees the message %d times:\n%s", n, bob.screen())
	}
}

// A message the server refuses is marked failed; once the cause is gone,
// Ctrl+E sends it again.
func TestResendFailed(t *testing.T) {
	srv := servertest.Start(t)
	alice := newDriver(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), nil)
	ctx := context.Background()
	bc := servertest.Connect(ctx, t, srv.URL, client.WithToken(srv.Token(t, "bob", "bob")))
	cv, err := bc.CreateGroup(ctx, "club", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	alice.waitText("club 2 members")
	alice.enter("first", "alice: first ✓")

	// Alice writes while the server is down; meanwhile bob removes her
	// (straight in the store, the server being down), so the server
	// refuses the queued message when she is back. (Had she heard of the
	// removal first, Send would have refused it at once: TestGroupCommands.)
	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.enter("second", "alice: second … sending")
	st, err := sqlite.Open(ctx, filepath.Join(srv.Dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.UpdateConversation(ctx, "bob", cv.ID, parley.ConversationChange{Remove: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("alice: second ✗ failed")
	alice.press(tea.KeyPressMsg{Code: 'e', Mod: tea.ModCtrl})
	alice.waitText("alice: second ✗ failed") // still not a member

	if _, err := bc.UpdateConversation(ctx, updateMembers(cv.ID, []string{"alice"}, nil)); err != nil {
		t.Fatal(err)
	}
	// Until alice's client hears she is back, it refuses the resend
	// itself ("no longer a member").
	alice.waitText("bob added alice")
	alice.press(tea.KeyPressMsg{Code: 'e', Mod: tea.ModCtrl})
	alice.waitText("alice: second ✓")
	page, err := bc.History(ctx, cv.ID, parley.MessageQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range page.Messages {
		texts = append(texts, m.Text)
	}
	if strings.Join(texts, ",") != "first,second" {
		t.Errorf("stored %q, want first,second", texts)
	}
}

func updateMembers(id string, add, remove []string) protocol.UpdateConversation {
	return protocol.UpdateConversation{ConversationID: id, Add: add, Remove: remove}
}

// leftInOutbox runs alice with a durable outbox, sends "kept on disk" to
// bob while the server is down, and quits: the message waits in the
// outbox file (path) for the next run. The server is left stopped.
func leftInOutbox(t *testing.T) (srv *servertest.Server, aliceToken, path string, cfg Config) {
	t.Helper()
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	srv = servertest.Start(t)
	aliceToken = srv.Token(t, "alice", "alice")
	path, err := OutboxFile(srv.URL, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(os.Getenv("XDG_STATE_HOME"), "parley"); filepath.Dir(path) != want {
		t.Fatalf("outbox file %s, want it in %s", path, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("outbox file: %v, mode %v, want 0600", err, fi.Mode())
	}
	cfg = Config{DurableOutbox: true}

	alice := newDriverWith(t, "alice", srv.URL, aliceToken, cfg, client.WithOutboxFile(path))
	alice.waitText("● connected as alice")
	srv.Token(t, "bob", "bob")
	alice.openDirect("bob")
	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.enter("kept on disk", "alice: kept on disk … sending")
	alice.press(key("ctrl+c"))
	alice.waitFor("quit at once", func(string) bool { return alice.quit })
	if strings.Contains(alice.screen(), "will be lost") {
		t.Errorf("warned of a loss with a durable outbox:\n%s", alice.screen())
	}
	Detach(alice.c)
	alice.cancel()
	if err := alice.c.Close(); err != nil {
		t.Fatal(err)
	}
	return srv, aliceToken, path, cfg
}

// TestDurableOutbox: the default outbox is a file in the state directory:
// a message typed while the server is down survives quitting (one Ctrl+C,
// no warning) and is sent by the next run.
func TestDurableOutbox(t *testing.T) {
	srv, aliceToken, path, cfg := leftInOutbox(t)
	srv.Start(t)
	cfg.NoticeTime = 10 * time.Millisecond // its reading time, 1.9 s, is what counts
	again := newDriverWith(t, "alice again", srv.URL, aliceToken, cfg, client.WithOutboxFile(path))
	again.waitText("1 message from last time still to send")
	again.waitText("● connected as alice")
	again.waitText("alice: kept on disk ✓")
	// The notice New left clears itself like the others (its clock
	// starts with Init or the first Update).
	again.waitFor("the notice from last time to clear", func(s string) bool { return !strings.Contains(s, "from last time") })
	bob := newDriver(t, "bob", srv.URL, srv.Token(t, "bob", "bob"), nil)
	bob.waitText("alice: kept on disk")
}

// TestDurableOutboxNoticeSent: the notice of messages from last time
// still to send changes to say they were sent as soon as none is left,
// not after its reading time (which it outlasted: it said "1 message
// from last time still to send" of a message shown sent).
func TestDurableOutboxNoticeSent(t *testing.T) {
	srv, aliceToken, path, cfg := leftInOutbox(t)
	srv.Start(t)
	cfg.NoticeTime = time.Minute // no notice ends on its own here
	again := newDriverWith(t, "alice again", srv.URL, aliceToken, cfg, client.WithOutboxFile(path))
	again.waitText("1 message from last time still to send")
	again.waitText("alice: kept on disk ✓")
	if s := again.screen(); strings.Contains(s, "still to send") || !strings.Contains(s, "1 message from last time sent") {
		t.Errorf("the message from last time is sent, the notice says otherwise:\n%s", s)
	}
}

// TestEditReplyReact: /edit, /reply and /react on messages of the open
// conversation, seen by the other user.
func TestEditReplyReact(t *testing.T) {
	_, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("lunch at noom?", "#1 alice: lunch at noom? ✓")
	alice.typeLine("/edit lunch at noon?", true)
	bob.waitText("#1 alice: lunch at noon? (edited)")
	bob.typeLine("/reply #1 yes", true)
	alice.waitText("↪ alice #1 “lunch at noon?” — yes")
	alice.typeLine("/react #2 👍", true)
	bob.waitText("yes  👍 1 ✓✓")
	alice.enter("/react #2 lol", "/react: emoji must be an emoji")
	alice.enter("/edit #9 nothing", "/edit: no such message here")
	alice.enter("/dm nobody", "/dm nobody: no user named nobody")
	alice.enter("/group quiet bob", "no messages yet: say hello")
	alice.enter("first words", "#1 alice: first words ✓")
	if s := alice.screen(); strings.Contains(s, "no messages yet") {
		t.Errorf("a conversation with a message says it has none:\n%s", s)
	}
}

// TestDelete: /delete #seq deletes the user's own message for both
// users; it asks for the #seq, and a message of someone else's is
// named as such, not as missing.
func TestDelete(t *testing.T) {
	_, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("sent to the wrong person", "#1 alice: sent to the wrong person ✓")
	bob.waitText("#1 alice: sent to the wrong person")
	bob.enter("my own words", "#2 bob: my own words ✓")
	alice.waitText("#2 bob: my own words")
	alice.enter("/delete", "usage: /delete #seq")
	alice.enter("/delete #2", "/delete: #2 is not your message")
	alice.enter("/edit #2 rewritten", "/edit: #2 is not your message")
	alice.enter("/delete #1", "#1 deleted")
	alice.waitText("#1 alice: (message deleted)")
	bob.waitText("#1 alice: (message deleted)")
	if s := bob.screen(); strings.Contains(s, "wrong person") {
		t.Fatalf("bob still sees the deleted text:\n%s", s)
	}
	alice.enter("/delete #1", "/delete: no such message here")
}

// TestCommandOffline: a command that needs the server, typed while the
// server is away, says at once that it waits for the connection, and
// when it gives up, that no connection was the reason (it had shown
// nothing until "the server did not answer in time", 30 s later). Once
// the server is back the same command works.
func TestCommandOffline(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice := newDriverWith(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), Config{LookupUser: lookup, RequestTimeout: time.Second})
	alice.waitText("● connected as alice")
	connected(t, srv, "bob", "bob", lookup)
	alice.openDirect("bob")
	alice.enter("hello", "#1 alice: hello ✓")

	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.typeLine("/react #1 👍", true)
	if s := alice.screen(); !strings.Contains(s, "/react: waiting for the connection to the server…") {
		t.Fatalf("no word that /react waits for the connection:\n%s", s)
	}
	alice.waitText("/react: not done, no connection to the server; try again once connected")

	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("● connected as alice")
	alice.typeLine("/react #1 👍", true)
	alice.waitText("hello  👍 1")
}

// TestClosedBecause: the status line says why the server closed the
// connection, by its close code (it said "something went wrong (see
// --log-file for details)"): a token the server refuses tells the user
// to log in again, a server going down that it restarts.
func TestClosedBecause(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	forged := newDriver(t, "forged", srv.URL, srv.Token(t, "mallory", "mallory")+"x", lookup)
	forged.waitText("✗ disconnected: the server refused the login (the token is missing, wrong or expired)")
	if s := forged.screen(); strings.Contains(s, "something went wrong") || strings.Contains(s, "loading…") || !strings.Contains(s, "not connected yet") {
		t.Errorf("an unexplained error, or a list said to be loading, on the screen:\n%s", s)
	}

	alice := connected(t, srv, "alice", "alice", lookup)
	srv.Stop(t)
	alice.waitText("the server is restarting or unavailable")
}

// TestEditOffline: /edit while the server is away says the edit waits
// (the line did not change and nothing said why), and once the server
// is back both users see the edited text.
func TestEditOffline(t *testing.T) {
	srv, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("see you at 9", "#1 alice: see you at 9 ✓")
	bob.waitText("#1 alice: see you at 9")

	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.typeLine("/edit #1 see you at 10", true)
	if s := alice.screen(); !strings.Contains(s, "the edit of #1 waits in the outbox: it is sent once connected") {
		t.Fatalf("no word that the edit waits:\n%s", s)
	}
	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	bob.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("#1 alice: see you at 10 (edited)")
	bob.waitText("#1 alice: see you at 10 (edited)")
}

// TestControlCharacters: what another user wrote reaches the terminal
// without control characters: an escape sequence in a message, a reply's
// quote or a group's title would be run by the terminal (clear the
// screen, retitle the window, move the cursor to overwrite a line).
func TestControlCharacters(t *testing.T) {
	srv := servertest.Start(t)
	alice := newDriver(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), nil)
	alice.waitText("● connected as alice")
	ctx := context.Background()
	bc := servertest.Connect(ctx, t, srv.URL, client.WithToken(srv.Token(t, "bob", "bob")))
	cv, err := bc.CreateGroup(ctx, "club\x1b[2J", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := bc.Send(ctx, cv.ID, "hi\x1b]0;owned\x07 there\rX\tY")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := first.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Reply(ctx, cv.ID, stored.ID, "second\x1b[1;1Hline"); err != nil {
		t.Fatal(err)
	}
	alice.waitText("#2 bob: ↪ bob #1 “hi�]0;owned� there�X Y” — second�[1;1Hline")
	alice.waitText("#1 bob: hi�]0;owned� there�X Y")
	alice.waitText("club�[2J 2 members")
	v := alice.m.View().Content
	for _, bad := range []string{"\x1b[2J", "\x1b]0;", "\a", "\r", "\x1b[1;1H"} {
		if strings.Contains(v, bad) {
			t.Errorf("the screen holds %q from another user:\n%q", bad, v)
		}
	}
}

// TestReadingUpStays: while bob reads older messages (scrolled up), new
// ones do not move the lines he reads (each pushed them up a line), and
// the header says how many came ("↓ 3 new (PgDn)") until he is back at
// the bottom.
func TestReadingUpStays(t *testing.T) {
	srv, _, bob := connectedPair(t)
	ctx := context.Background()
	ac := servertest.Connect(ctx, t, srv.URL, client.WithToken(srv.Token(t, "alice", "alice")))
	cv, err := ac.CreateDirectByName(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	var last *client.Message
	for i := 1; i <= 40; i++ {
		if last, err = ac.Send(ctx, cv.ID, fmt.Sprintf("old news %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := last.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	bob.waitText("#40 alice: old news 40")
	bob.press(tea.KeyPressMsg{Code: tea.KeyPgUp})
	top := func() string { // the pane's first history line
		_, pane, _ := strings.Cut(strings.Split(bob.screen(), "\n")[1], "│")
		return pane
	}
	bob.waitFor("older messages shown", func(string) bool { return strings.Contains(top(), "old news") })
	before := top()
	if strings.Contains(before, "old news 40") || !strings.Contains(before, "old news") {
		t.Fatalf("PgUp did not scroll up:\n%s", bob.screen())
	}
	for i := 1; i <= 3; i++ {
		if last, err = ac.Send(ctx, cv.ID, fmt.Sprintf("fresh %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	bob.waitText("↓ 3 new (PgDn)")
	if got := top(); got != before {
		t.Errorf("the line read moved: was %q, now %q", before, got)
	}
	bob.press(tea.KeyPressMsg{Code: tea.KeyPgDown})
	bob.press(tea.KeyPressMsg{Code: tea.KeyPgDown})
	bob.waitText("#43 alice: fresh 3")
	if s := bob.screen(); strings.Contains(s, "new (PgDn)") {
		t.Errorf("the new count stays at the bottom:\n%s", s)
	}
}

// TestEditRefused: an edit the server refuses when it comes out of the
// outbox (here, of a message deleted while it waited) says so; the line
// simply stayed as it was.
func TestEditRefused(t *testing.T) {
	srv, alice, _ := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("draft", "#1 alice: draft ✓")
	msg := alice.m.msgs[0]

	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.enter("/edit #1 final", "the edit of #1 waits in the outbox")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(srv.Dir, "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DeleteMessage(ctx, "alice", msg.ConversationID, msg.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("the edit of #1 was refused: ")
}

// TestPresenceWhileOffline: while alice's client is not connected it
// does not show bob online (it kept the green dot and "● online" from
// before the link went down, however long that was).
func TestPresenceWhileOffline(t *testing.T) {
	srv, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("hello", "#1 alice: hello ✓")
	bob.waitText("#1 alice: hello")
	bob.enter("hi", "#2 bob: hi ✓")
	alice.waitText("bob ● online")

	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.waitText("bob (presence unknown while not connected)")
	if s := alice.screen(); strings.Contains(s, "● online") || strings.Contains(s, "● bob") {
		t.Errorf("bob shown online while alice is not connected:\n%s", s)
	}
	srv.Start(t)
	alice.reconnectNow()
	bob.reconnectNow()
	alice.waitText("bob ● online")
}

// reconnectNow presses Ctrl+R until d's client is connected. One press
// is not always enough: client.Reconnect skips a backoff wait, not an
// attempt under way, and an attempt that began before the server was
// back fails and waits out its backoff (up to 30 s): on a loaded machine
// bob was still waiting when alice's 15 s for his presence ran out.
func (d *driver) reconnectNow() {
	d.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for d.c.Status().State != client.Connected {
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: not connected within 45 s of pressing Ctrl+R: %+v", d.name, d.c.Status())
		}
		d.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
		d.idle(100 * time.Millisecond)
	}
}

// TestOpenOffline: a conversation switched to while the server is away
// says its history waits for the connection (it said "loading…" as
// long as the server was away, then "cannot load history: the server did
// not answer in time", a server never asked), and loads once connected.
func TestOpenOffline(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice := newDriverWith(t, "alice", srv.URL, srv.Token(t, "alice", "alice"), Config{LookupUser: lookup, RequestTimeout: time.Second})
	alice.waitText("● connected as alice")
	connected(t, srv, "bob", "bob", lookup)
	connected(t, srv, "carol", "carol", lookup)
	alice.openDirect("bob")
	alice.enter("hello bob", "#1 alice: hello bob ✓")
	alice.openDirect("carol")
	alice.waitText("no messages yet")

	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.press(key("tab")) // to bob: its view was closed when carol's opened
	alice.waitText("bob (presence unknown while not connected)")
	const waiting = "not loaded: waiting for the connection to the server"
	if s := alice.screen(); !strings.Contains(s, waiting) || strings.Contains(s, "loading…") {
		t.Fatalf("bob's conversation offline:\n%s", s)
	}
	// Opening gives up after RequestTimeout (1 s) without a
	// connection: no blame on the server, the pane still waits.
	alice.idle(2 * time.Second)
	if s := alice.screen(); strings.Contains(s, "cannot load history") || !strings.Contains(s, waiting) {
		t.Fatalf("bob's conversation, offline for 2 s:\n%s", s)
	}
	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("#1 alice: hello bob ✓")
}

// TestOlderOffline: PgUp at the top of the loaded history while the
// server is away says the older messages wait for the connection (it
// said "loading older messages…", then "cannot load older messages: the
// server did not answer in time"), and they load once connected.
func TestOlderOffline(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	token := srv.Token(t, "alice", "alice")
	first := newDriverWith(t, "alice", srv.URL, token, Config{LookupUser: lookup})
	first.waitText("● connected as alice")
	connected(t, srv, "bob", "bob", lookup)
	first.openDirect("bob")
	for i := 1; i <= 25; i++ { // more than a page (20)
		first.enter(fmt.Sprintf("message %d", i), fmt.Sprintf("#%d alice: message %d ✓", i, i))
	}
	// Another terminal of alice's loads one page of them.
	alice := newDriverWith(t, "alice again", srv.URL, token, Config{LookupUser: lookup, RequestTimeout: time.Second})
	alice.waitText("#25 alice: message 25")
	if !alice.m.hasMore {
		t.Fatalf("one page loaded, no older ones:\n%s", alice.screen())
	}

	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	for range 3 {
		alice.press(key("pgup"))
	}
	const waiting = "older messages: waiting for the connection to the server"
	if s := alice.screen(); !strings.Contains(s, waiting) {
		t.Fatalf("PgUp offline at the top:\n%s", s)
	}
	alice.idle(2 * time.Second) // LoadMore gives up after 1 s
	if s := alice.screen(); strings.Contains(s, "cannot load older messages") {
		t.Fatalf("offline for 2 s:\n%s", s)
	}
	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("● connected as alice")
	for i := 0; i < 10 && !strings.Contains(alice.screen(), "— start of the conversation —"); i++ {
		alice.press(key("pgup"))
		alice.idle(200 * time.Millisecond)
	}
	alice.waitText("#1 alice: message 1 ✓")
}
