package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/google/go-cmp/cmp"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// newTestModel is a model with no client, sized 100x20, its clock at t0.
func newTestModel(t *testing.T) *Model {
	t.Helper()
	m := New(nil, Config{Now: func() time.Time { return t0 }})
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 20})
	m.me = parley.User{ID: "alice", Name: "alice"}
	return m
}

// screen is the view as plain text.
func screen(m *Model) string { return ansi.Strip(m.View().Content) }

func key(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "ctrl+r":
		return tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl}
	case "ctrl+e":
		return tea.KeyPressMsg{Code: 'e', Mod: tea.ModCtrl}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

func TestStatusLine(t *testing.T) {
	tests := []struct {
		name   string
		status client.Status
		want   string // plain text
		styled string // must appear with its colour
	}{
		{"connected", client.Status{State: client.Connected}, "● connected as alice", okStyle.Render("● connected")},
		{"connecting", client.Status{State: client.Connecting, Attempt: 1}, "◌ connecting…", busy.Render("◌ connecting…")},
		{"reconnecting", client.Status{State: client.Reconnecting, Attempt: 3, NextRetryAt: t0.Add(3500 * time.Millisecond), Err: &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}},
			"◌ reconnecting in 4 s (attempt 3) Ctrl+R retry now · cannot reach the server (connection refused)", busy.Render("◌ reconnecting in 4 s (attempt 3)")},
		{"retry due", client.Status{State: client.Reconnecting, Attempt: 2, NextRetryAt: t0.Add(-time.Second)},
			"◌ reconnecting now (attempt 2)", busy.Render("◌ reconnecting now (attempt 2)")},
		{"gave up", client.Status{State: client.Disconnected, Err: parley.Errorf(parley.EUNAUTHORIZED, "token expired")},
			"✗ disconnected: token expired Ctrl+R reconnect", bad.Render("✗ disconnected: token expired")},
		{"throttled", client.Status{State: client.FeatureThrottled, Throttled: map[string]time.Time{"typing": t0.Add(2 * time.Second)}},
			"● connected (typing paused for 2 s)", okStyle.Render("● connected")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t)
			m.status = tt.status
			m.Update(tickMsg(t0))
			v := m.View().Content
			lines := strings.Split(ansi.Strip(v), "\n")
			if got := lines[len(lines)-1]; !strings.HasPrefix(got, tt.want) {
				t.Errorf("status line = %q, want it to start with %q", got, tt.want)
			}
			if !strings.Contains(v, tt.styled) {
				t.Errorf("status line %q lacks the coloured %q", v, tt.styled)
			}
		})
	}
}

// A reconnect countdown keeps a one-second tick scheduled; a connected
// client schedules none.
func TestCountdownTicks(t *testing.T) {
	m := newTestModel(t)
	m.status = client.Status{State: client.Reconnecting, Attempt: 1, NextRetryAt: t0.Add(5 * time.Second)}
	if _, cmd := m.Update(tickMsg(t0)); cmd == nil || !m.ticking {
		t.Fatal("reconnecting: no tick scheduled")
	}
	m.status = client.Status{State: client.Connected}
	if _, cmd := m.Update(tickMsg(t0)); cmd != nil || m.ticking {
		t.Fatal("connected: a tick is still scheduled")
	}
}

func conversations() []parley.Conversation {
	return []parley.Conversation{
		{ID: "c1", Kind: parley.Direct, Members: []parley.Member{{UserID: "alice", Name: "alice"}, {UserID: "bob", Name: "bob"}}, UnreadCount: 2},
		{ID: "c2", Kind: parley.Group, Title: "team", Members: []parley.Member{{UserID: "alice", Name: "alice"}, {UserID: "bob", Name: "bob"}, {UserID: "carol", Name: "carol"}}},
		{ID: "c3", Kind: parley.Direct, Members: []parley.Member{{UserID: "alice", Name: "alice"}, {UserID: "carol", Name: "carol"}}, UnreadCount: parley.MaxUnreadCount},
	}
}

func TestConversationList(t *testing.T) {
	m := newTestModel(t)
	m.status = client.Status{State: client.Connected}
	m.convs = conversations()
	m.online = map[string]bool{"bob": true}
	m.Update(clientChangedMsg{}) // opens the first conversation
	if m.open != "c1" {
		t.Fatalf("open = %q, want the most recent, c1", m.open)
	}
	lines := strings.Split(screen(m), "\n")
	var list []string
	for _, l := range lines[:4] {
		list = append(list, strings.TrimRight(strings.SplitN(l, "│", 2)[0], " "))
	}
	want := []string{"Conversations", "● bob                   2", "# team", "○ carol               99+"}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	v := m.View().Content
	if !strings.Contains(v, okStyle.Render("● online")) || !strings.Contains(v, dim.Render("○")+" carol") {
		t.Errorf("presence is not green for bob and grey for carol: %q", v)
	}
	if !strings.Contains(lines[0], "bob ● online") {
		t.Errorf("header = %q, want bob ● online", lines[0])
	}

	// Tab and arrows move through the list, wrapping around.
	for _, step := range []struct {
		key  tea.KeyPressMsg
		want string
	}{{key("tab"), "c2"}, {key("tab"), "c3"}, {key("tab"), "c1"}, {tea.KeyPressMsg{Code: tea.KeyUp}, "c3"}, {tea.KeyPressMsg{Code: tea.KeyDown}, "c1"}} {
		m.Update(step.key)
		if m.open != step.want {
			t.Fatalf("after %s open = %q, want %q", step.key, m.open, step.want)
		}
	}
	m.Update(key("tab"))
	if l := strings.Split(screen(m), "\n")[0]; !strings.Contains(l, "team 3 members, 1 online") {
		t.Errorf("group header = %q", l)
	}
}

func TestMessagesAndMarks(t *testing.T) {
	m := newTestModel(t)
	m.convs = conversations()
	m.convs[0].Members[1].ReadSeq = 1 // bob read alice's first message
	m.Update(clientChangedMsg{})
	m.msgs = []parley.Message{
		{ConversationID: "c1", Seq: 1, SenderID: "alice", SenderName: "alice", Text: "first", CreatedAt: t0},
		{ConversationID: "c1", Seq: 2, SenderID: "bob", SenderName: "bob", Text: "hi there", CreatedAt: t0},
		{ConversationID: "c1", Seq: 3, SenderID: "alice", SenderName: "alice", Text: "second", CreatedAt: t0, ClientID: "x"},
		{ConversationID: "c1", Seq: 4, SenderID: "bob", SenderName: "bob", Deleted: true, CreatedAt: t0},
		// A reply to a message of a user alice blocked (seq 0: it came
		// before this page).
		{ConversationID: "c1", Seq: 5, SenderID: "bob", SenderName: "bob", Text: "re", CreatedAt: t0,
			ReplyTo: &parley.Quote{MessageID: "m0", Seq: 0, Hidden: true}},
	}
	m.outgoing = []*outItem{
		{clientID: "p1", conv: "c1", text: "on its way", at: t0, status: client.Sending},
		{clientID: "p2", conv: "c1", text: "refused", at: t0, status: client.Failed, err: parley.Errorf(parley.EFORBIDDEN, "not a member")},
		{clientID: "p3", conv: "c2", text: "elsewhere", at: t0, status: client.Sending},
		{clientID: "p4", conv: "c1", text: "busy", at: t0, status: client.Failed, err: parley.Errorf(parley.EUNAVAILABLE, "the server is busy")},
	}
	m.typing = []client.Typist{{UserID: "bob", UserName: "bob"}}
	m.Update(clientChangedMsg{})
	s := screen(m)
	for _, want := range []string{
		"alice: first ✓✓",
		"bob: hi there\n",
		"alice: second ✓\n",
		"bob: (message deleted)",
		"bob: ↪ a hidden message — re\n",
		"alice: on its way … sending",
		// Resending helps after a refusal for the moment, not after
		// one for the message: the hint says so only then.
		"alice: refused ✗ failed: not a member\n",
		"a moment (Ctrl+E resends)",
		"bob is typing…",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "elsewhere") {
		t.Errorf("a message for another conversation is shown:\n%s", s)
	}
	// Once the view holds a sent message, the view's copy is the one shown.
	m.outgoing[0].status = client.Sent
	m.msgs = append(m.msgs, parley.Message{ConversationID: "c1", Seq: 6, SenderID: "alice", SenderName: "alice", Text: "on its way", ClientID: "p1", CreatedAt: t0})
	m.Update(clientChangedMsg{})
	if s := screen(m); strings.Count(s, "on its way") != 1 {
		t.Errorf("a sent message shows %d times:\n%s", strings.Count(s, "on its way"), s)
	}
}

func TestTypingText(t *testing.T) {
	ts := []client.Typist{{UserName: "bob"}, {UserName: "carol"}, {UserName: "dan"}}
	for n, want := range []string{"", "bob is typing…", "bob and carol are typing…", "3 people are typing…"} {
		if got := typingText(ts[:n]); got != want {
			t.Errorf("%d typists: %q, want %q", n, got, want)
		}
	}
}

// PgUp scrolls up through the loaded history and PgDn back down.
func TestScroll(t *testing.T) {
	m := newTestModel(t)
	m.convs = conversations()
	m.Update(clientChangedMsg{})
	for i := 1; i <= 60; i++ {
		m.msgs = append(m.msgs, parley.Message{ConversationID: "c1", Seq: int64(i), SenderID: "bob", SenderName: "bob", Text: fmt.Sprintf("message %d", i), CreatedAt: t0})
	}
	m.Update(clientChangedMsg{})
	s := screen(m)
	if !strings.Contains(s, "message 60\n") || strings.Contains(s, "message 40\n") {
		t.Fatalf("not at the bottom:\n%s", s)
	}
	m.Update(key("pgup"))
	s = screen(m)
	if strings.Contains(s, "message 60\n") || !strings.Contains(s, "message 44\n") {
		t.Fatalf("after PgUp:\n%s", s)
	}
	for range 5 {
		m.Update(key("pgup"))
	}
	if s = screen(m); !strings.Contains(s, "message 1\n") || !strings.Contains(s, "start of the conversation") {
		t.Fatalf("at the top:\n%s", s)
	}
	for range 6 {
		m.Update(key("pgdown"))
	}
	if s = screen(m); !strings.Contains(s, "message 60\n") {
		t.Fatalf("back at the bottom:\n%s", s)
	}
}

// Ctrl+C with messages still sending warns first; a second press quits.
func TestQuitWarnsAboutUnsent(t *testing.T) {
	m := newTestModel(t)
	if _, cmd := m.Update(key("ctrl+c")); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("Ctrl+C with nothing pending does not quit")
	}
	m.outgoing = []*outItem{{conv: "c1", text: "x", status: client.Sending}}
	m.Stop() // the warning's expiry (its command) returns at once
	if _, cmd := m.Update(key("ctrl+c")); cmd != nil && cmd() == tea.Quit() {
		t.Fatal("Ctrl+C with a message sending quit at once")
	}
	if s := screen(m); !strings.Contains(s, "1 message is still sending") {
		t.Fatalf("no warning:\n%s", s)
	}
	if _, cmd := m.Update(key("ctrl+c")); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("a second Ctrl+C does not quit")
	}
}

// TestQuitCommandWarnsAboutUnsent: /quit warns as Ctrl+C does (it quit
// at once, losing messages still sending from a memory outbox).
func TestQuitCommandWarnsAboutUnsent(t *testing.T) {
	m := newTestModel(t)
	m.outgoing = []*outItem{{conv: "c1", text: "x", status: client.Sending}}
	m.input.SetValue("/quit")
	if _, cmd := m.Update(key("enter")); cmd != nil && cmd() == tea.Quit() {
		t.Fatal("/quit with a message sending quit at once")
	}
	if s := screen(m); !strings.Contains(s, "1 message is still sending") {
		t.Fatalf("no warning:\n%s", s)
	}
	if _, cmd := m.Update(key("ctrl+c")); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("Ctrl+C after /quit's warning does not quit")
	}
}

// In navigation mode (Esc) q quits; while typing it is a letter.
func TestNavigationKeys(t *testing.T) {
	m := newTestModel(t)
	if _, cmd := m.Update(key("q")); cmd != nil || m.input.Value() != "q" {
		t.Fatalf("q while typing: input %q", m.input.Value())
	}
	m.Update(key("esc"))
	if _, cmd := m.Update(key("q")); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("q in navigation mode does not quit")
	}
}

func TestCommands(t *testing.T) {
	m := newTestModel(t)
	for _, tt := range []struct{ line, notice string }{
		{"/dm", "usage: /dm username"},
		{"/group", "usage: /group title user1 user2..."},
		{"/nope", "unknown command /nope (/help lists them)"},
		{`/group "the team bob`, `/group: a " is not closed (a title with spaces goes in "double quotes")`},
		{`/rename "new title`, `/rename: a " is not closed (a title with spaces goes in "double quotes")`},
		{"hello", "no conversation open: start one with /dm user or /group title user..."},
	} {
		m.input.SetValue(tt.line)
		m.Update(key("enter"))
		if m.notice != tt.notice {
			t.Errorf("%q: notice %q, want %q", tt.line, m.notice, tt.notice)
		}
	}
	if got, want := fields(`/group "the team" bob  carol`), []string{"/group", "the team", "bob", "carol"}; !cmp.Equal(got, want) {
		t.Errorf("fields = %q, want %q", got, want)
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":        "http://127.0.0.1:8080",
		"127.0.0.1:8080":               "http://127.0.0.1:8080",
		"ws://127.0.0.1:8080/v1/ws":    "http://127.0.0.1:8080",
		"wss://chat.example.com/v1/ws": "https://chat.example.com",
		"https://chat.example.com/":    "https://chat.example.com",
		"https://example.com/parley/":  "https://example.com/parley",
	} {
		got, err := BaseURL(in)
		if err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := BaseURL("ftp://x"); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("ftp: err %v, want EINVALID", err)
	}
}

// Before the list has loaded the sidebar says so, not "none yet"; and
// before there is a connection, that there is none, not "loading…".
func TestListBeforeLoad(t *testing.T) {
	m := newTestModel(t)
	if s := screen(m); strings.Contains(s, "loading…") || !strings.Contains(s, "not connected yet") {
		t.Fatalf("before any connection:\n%s", s)
	}
	m.status = client.Status{State: client.Connected}
	if s := screen(m); strings.Contains(s, "none yet") || !strings.Contains(s, "loading…") {
		t.Fatalf("before the list loaded:\n%s", s)
	}
	m.Update(listMsg{})
	if s := screen(m); !strings.Contains(s, "none yet: /dm user") {
		t.Fatalf("an empty list, loaded:\n%s", s)
	}
}

// With a durable outbox, Ctrl+C quits at once: nothing is lost.
func TestQuitWithDurableOutbox(t *testing.T) {
	m := New(nil, Config{Now: func() time.Time { return t0 }, DurableOutbox: true})
	m.outgoing = []*outItem{{conv: "c1", text: "x", status: client.Sending}}
	if _, cmd := m.Update(key("ctrl+c")); cmd == nil || cmd() != tea.Quit() {
		t.Fatal("Ctrl+C with a durable outbox did not quit")
	}
}

// errText never shows Go's internals: each error a user met reads as a
// sentence.
func TestErrText(t *testing.T) {
	wsErr := fmt.Errorf("failed to get reader: %w", fmt.Errorf("failed to read frame header: %w", io.EOF))
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	tests := []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "the server did not answer in time"},
		{fmt.Errorf("list: %w", context.DeadlineExceeded), "the server did not answer in time"},
		{wsErr, "the connection to the server was lost"},
		{fmt.Errorf("dial: %w", dial), "cannot reach the server (connection refused)"},
		{parley.Errorf(parley.EINTERNAL, "pq: relation does not exist"), "the server had a problem; try again later"},
		{parley.Errorf(parley.EUNSUPPORTED, "file is text/plain; charset=utf-8, not a PNG"), "that file is not an image the server accepts (PNG, JPEG, GIF or WebP)"},
		{parley.Errorf(parley.ENOTFOUND, "no user named bob"), "no user named bob"},
		{client.ErrDisconnected, "not connected (Ctrl+R reconnects)"},
		{&client.CloseError{Code: protocol.CloseShutdown, Reason: "server shutting down"}, "the server is restarting or unavailable"},
		{&client.GaveUpError{Attempts: 3, Last: &client.CloseError{Code: protocol.CloseUnauthorized}}, "the server refused the login (the token is missing, wrong or expired): start parley chat again with a new token or --username"},
		{&client.CloseError{Code: protocol.CloseAuthRevoked}, "your access to this server was revoked"},
		{&client.CloseError{Code: 4099}, "the server closed the connection"},
		{fmt.Errorf("read: %w", client.ErrHeartbeatTimeout), "the server stopped answering (the connection went silent)"},
		{errors.New("sql: database is closed"), "something went wrong (see --log-file for details)"},
	}
	for _, tt := range tests {
		if got := errText(tt.err); got != tt.want {
			t.Errorf("errText(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestDaySeparators: a line names the day before each day's first
// message, as people say it (a message shows only its time, so one from
// last week read "10:00" like one from this morning).
func TestDaySeparators(t *testing.T) {
	m := newTestModel(t)
	m.convs = conversations()
	m.Update(clientChangedMsg{})
	now := t0.Local()
	at := func(days int, hour int) time.Time {
		return time.Date(now.Year(), now.Month(), now.Day()-days, hour, 0, 0, 0, time.Local)
	}
	m.msgs = []parley.Message{
		{ConversationID: "c1", Seq: 1, SenderID: "bob", SenderName: "bob", Text: "last year", CreatedAt: at(400, 9)},
		{ConversationID: "c1", Seq: 2, SenderID: "bob", SenderName: "bob", Text: "last week", CreatedAt: at(7, 9)},
		{ConversationID: "c1", Seq: 3, SenderID: "bob", SenderName: "bob", Text: "same day", CreatedAt: at(7, 11)},
		{ConversationID: "c1", Seq: 4, SenderID: "bob", SenderName: "bob", Text: "yesterday", CreatedAt: at(1, 23)},
		{ConversationID: "c1", Seq: 5, SenderID: "bob", SenderName: "bob", Text: "today", CreatedAt: at(0, 0)},
	}
	var got []string
	for _, l := range strings.Split(screen(m), "\n") {
		if _, rest, ok := strings.Cut(l, "│"); ok && strings.TrimSpace(rest) != "" && !strings.HasPrefix(rest, "bob") {
			got = append(got, strings.TrimSpace(rest))
		}
	}
	want := []string{
		"— start of the conversation —",
		"── " + at(400, 9).Format("Monday 2 January 2006") + " ──",
		"09:00 #1 bob: last year",
		"── " + at(7, 9).Format("Monday 2 January") + " ──",
		"09:00 #2 bob: last week",
		"11:00 #3 bob: same day",
		"── Yesterday ──",
		"23:00 #4 bob: yesterday",
		"── Today ──",
		"00:00 #5 bob: today",
	}
	if !slices.Equal(got, want) {
		t.Errorf("history:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestOneMember: a group of one says "1 member" (it said "1 members").
func TestOneMember(t *testing.T) {
	m := newTestModel(t)
	m.convs = conversations()
	m.convs[1].Members = m.convs[1].Members[:1]
	m.Update(clientChangedMsg{})
	m.Update(key("tab"))
	if l := strings.Split(screen(m), "\n")[0]; !strings.Contains(l, "team 1 member, 0 online") {
		t.Errorf("group header = %q, want team 1 member, 0 online", l)
	}
}

// TestArchivedMarked: an archived conversation in the list (/archived
// shows them) is marked so; it looked like any other.
func TestArchivedMarked(t *testing.T) {
	m := newTestModel(t)
	m.convs = conversations()
	m.convs[1].Archived = true
	m.Update(clientChangedMsg{})
	if s := screen(m); !strings.Contains(s, "# team (archived)") {
		t.Errorf("no archived mark:\n%s", s)
	}
}

// TestPrintableBidi: a right-to-left override (or another explicit
// embedding or isolate) from another user shows as "�", so it cannot
// reorder the rest of the line as the terminal draws it; the marks
// U+200E and U+200F, and right-to-left text itself, stay.
func TestPrintableBidi(t *testing.T) {
	for in, want := range map[string]string{
		"invoice\u202Efdp.exe":         "invoice\uFFFDfdp.exe",
		"a\u202Ab\u202Bc\u202Cd\u202D": "a\uFFFDb\uFFFDc\uFFFDd\uFFFD",
		"\u2066x\u2067y\u2068z\u2069":  "\uFFFDx\uFFFDy\uFFFDz\uFFFD",
		"שלום \u200Fworld\u200E":       "שלום \u200Fworld\u200E",
	} {
		if got := printable(in, false); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoticePrintable: a notice carries what other users chose (a file's
// name in /save's, a title, a name), so it reaches the terminal as their
// messages do: an escape sequence or a bidirectional override shows as
// "�" instead of clearing the screen or reversing the line.
func TestNoticePrintable(t *testing.T) {
	m := newTestModel(t)
	m.say("/save: downloading a\x1b[2Jb\u202Egnp.exe (1 KiB) to ./x…")
	raw := m.View().Content
	if strings.Contains(raw, "\x1b[2J") || strings.Contains(raw, "\u202E") {
		t.Fatalf("the notice reached the terminal with its escape or override: %q", raw)
	}
	if s := screen(m); !strings.Contains(s, "downloading a�[2Jb�gnp.exe") {
		t.Fatalf("the notice does not show them as �:\n%s", s)
	}
}
