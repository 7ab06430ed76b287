package tui

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/servertest"
)

// clock runs a Model's commands the way tea.Program does, inside a
// synctest bubble (so their timers run on the bubble's clock), and
// applies what they return with flush.
type clock struct {
	t    *testing.T
	m    *Model
	msgs chan tea.Msg
}

func newClock(t *testing.T, m *Model) *clock {
	c := &clock{t: t, m: m, msgs: make(chan tea.Msg, 64)}
	t.Cleanup(m.Stop)
	return c
}

func (c *clock) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	go func() {
		msg := cmd()
		if batch, ok := msg.(tea.BatchMsg); ok {
			for _, cmd := range batch {
				c.run(cmd)
			}
			return
		}
		if msg != nil {
			c.msgs <- msg
		}
	}()
}

func (c *clock) update(msg tea.Msg) {
	_, cmd := c.m.Update(msg)
	c.run(cmd)
}

// after lets d pass on the bubble's clock, then applies what the
// commands returned by then.
func (c *clock) after(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
	for {
		select {
		case msg := <-c.msgs:
			c.update(msg)
		default:
			synctest.Wait()
			if len(c.msgs) == 0 {
				return
			}
		}
	}
}

func (c *clock) enter(line string) {
	c.m.input.SetValue(line)
	c.update(key("enter"))
}

func (c *clock) shows(s string) bool { return strings.Contains(screen(c.m), s) }

// TestNoticeClears: a notice clears itself after NoticeTime (5 s by
// default), and a newer notice is not cleared by the older one's time:
// it gets its own 5 s. A long notice (/help) stays for its reading time.
func TestNoticeClears(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newClock(t, newTestModel(t))
		c.enter("/nonsense")
		const first = "unknown command /nonsense"
		if !c.shows(first) {
			t.Fatalf("no notice:\n%s", screen(c.m))
		}
		c.after(4 * time.Second)
		if !c.shows(first) {
			t.Fatalf("the notice went after 4 s, before its 5:\n%s", screen(c.m))
		}
		c.enter("/dm") // a newer notice, at 4 s
		const second = "usage: /dm username"
		c.after(1 * time.Second) // the first notice's time is up
		if !c.shows(second) {
			t.Fatalf("the first notice's expiry cleared the newer one, 1 s old:\n%s", screen(c.m))
		}
		c.after(3900 * time.Millisecond)
		if !c.shows(second) {
			t.Fatalf("the second notice went after 4.9 s:\n%s", screen(c.m))
		}
		c.after(100 * time.Millisecond)
		if c.shows(second) || c.m.notice != "" {
			t.Fatalf("the second notice still shows after 5 s:\n%s", screen(c.m))
		}

		// /help's list: at 20 characters a second.
		c.enter("/help")
		read := time.Duration(len([]rune(helpText))) * time.Second / noticeReadRate
		c.after(read - time.Second)
		if c.m.notice != helpText {
			t.Fatalf("/help went before its reading time (%v)", read)
		}
		c.after(time.Second)
		if c.m.notice != "" {
			t.Fatalf("/help still shows after its reading time (%v)", read)
		}
	})
}

// TestQuitWarningExpires: Ctrl+C's warning (messages would be lost)
// clears like any notice, and a Ctrl+C after that warns again instead
// of quitting on a warning no longer shown.
func TestQuitWarningExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newTestModel(t)
		c := newClock(t, m)
		m.outgoing = []*outItem{{conv: "c1", text: "x", status: client.Sending}}
		c.update(key("ctrl+c"))
		const warning = "1 message is still sending"
		if !c.shows(warning) {
			t.Fatalf("no warning:\n%s", screen(m))
		}
		d := m.noticeDuration(m.notice) // a long line: its reading time
		c.after(d)
		if c.shows(warning) {
			t.Fatalf("the warning still shows after %v:\n%s", d, screen(m))
		}
		_, cmd := m.Update(key("ctrl+c"))
		if !c.shows(warning) {
			t.Fatalf("Ctrl+C after the warning cleared did not warn again:\n%s", screen(m))
		}
		m.Stop() // the new warning's expiry returns at once
		if cmd != nil && cmd() == tea.Quit() {
			t.Fatal("Ctrl+C quit on a warning no longer shown")
		}
	})
}

// idle processes what comes for d, whatever the screen shows.
func (d *driver) idle(dur time.Duration) {
	deadline := time.NewTimer(dur)
	defer deadline.Stop()
	for {
		select {
		case msg := <-d.msgs:
			d.process(msg)
		case <-deadline.C:
			return
		}
	}
}

// TestNoticeWhileUnderWay: a notice that something is under way
// ("opening a conversation...", "waiting for the connection") stays
// while it is (a notice's 5 s would leave the user not knowing a command
// still waits), and its end clears it at once (it said "opening a
// conversation with carol..." over carol's open conversation until its
// 5 s were up).
func TestNoticeWhileUnderWay(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice := newDriverWith(t, "alice", srv.URL, srv.Token(t, "alice", "alice"),
		Config{LookupUser: lookup, NoticeTime: 10 * time.Millisecond, RequestTimeout: 20 * time.Second})
	alice.waitText("● connected as alice")
	connected(t, srv, "bob", "bob", lookup)
	connected(t, srv, "carol", "carol", lookup)
	alice.openDirect("bob")
	alice.enter("hello", "#1 alice: hello ✓")

	alice.typeLine("/dm carol", true)
	alice.waitFor("carol's conversation open", func(s string) bool { return strings.Contains(s, "no messages yet") })
	if s := alice.screen(); strings.Contains(s, "opening a conversation") {
		t.Fatalf("carol's conversation is open and the notice still says it is being opened:\n%s", s)
	}
	alice.openDirect("bob")
	alice.waitText("#1 alice: hello ✓")

	srv.Stop(t)
	alice.waitText("◌ reconnecting")
	alice.typeLine("/react #1 👍", true)
	const waiting = "/react: waiting for the connection to the server…"
	alice.waitText(waiting)
	d := alice.m.noticeDuration(strings.Repeat("x", len([]rune(alice.m.notice)))) // an ordinary notice as long
	alice.idle(d + 500*time.Millisecond)
	if s := alice.screen(); !strings.Contains(s, waiting) {
		t.Fatalf("the waiting notice went after %v, the time of an ordinary notice, while /react still waits:\n%s", d, s)
	}
	srv.Start(t)
	alice.press(tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl})
	alice.waitText("hello  👍 1")
	alice.waitFor("the waiting notice to clear", func(s string) bool { return !strings.Contains(s, waiting) })
}

// TestPasteTooLong: a paste longer than a message may be is cut to
// parley.MaxTextRunes, and a notice says so (the rest was dropped without
// a word: 20000 characters pasted, 4000 sent); a paste that fits says
// nothing.
func TestPasteTooLong(t *testing.T) {
	m := newTestModel(t)
	m.Update(tea.PasteMsg{Content: strings.Repeat("y", 10)})
	if s := screen(m); strings.Contains(s, "cut") {
		t.Fatalf("a short paste:\n%s", s)
	}
	m.Update(tea.PasteMsg{Content: strings.Repeat("x", 2*parley.MaxTextRunes)})
	if n := utf8.RuneCountInString(m.input.Value()); n != parley.MaxTextRunes {
		t.Fatalf("the input holds %d characters, want %d", n, parley.MaxTextRunes)
	}
	if want := fmt.Sprintf("the paste was cut at %d characters, the most a message holds", parley.MaxTextRunes); !strings.Contains(screen(m), want) {
		t.Fatalf("screen lacks %q:\n%s", want, screen(m))
	}
}
