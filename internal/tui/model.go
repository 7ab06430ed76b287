// Package tui is Parley's terminal client (`parley chat`): a bubbletea
// program on top of the Go SDK (package client). The SDK does the hard
// parts (connection state, outbox, resume, history bookkeeping); this
// package shows them: a conversation list with unread counts and presence,
// the open conversation's history with send marks, an input line, typing
// indicators and a status line with the connection state.
//
// The Model is driven only by messages: key presses, window sizes, and
// clientChangedMsg, which the SDK's callbacks deliver (through
// Config.Notify, tea.Program.Send in a real program) whenever something
// changed. Update then reads the SDK's local state (never a network call)
// so the screen always shows the newest state, whatever order messages
// arrive in. Blocking calls (connect, history, create) run as tea.Cmds.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// Config configures a Model.
type Config struct {
	// Notify delivers a message to the program from another goroutine
	// (tea.Program.Send). The model hands it to the SDK's view callbacks.
	// Required when the model has a client.
	Notify func(tea.Msg)
	// LookupUser resolves a username for /group. Nil: /group takes user
	// ids as they are.
	LookupUser func(ctx context.Context, name string) (parley.User, error)
	// PageSize is how many messages a history page holds (default
	// parley.DefaultPageLimit).
	PageSize int
	// Now is the clock the countdown is shown with (default time.Now).
	Now func() time.Time
	// DurableOutbox says the client keeps its outbox in a file
	// (client.WithOutboxFile): quitting with messages still sending loses
	// nothing, so it needs no second Ctrl+C.
	DurableOutbox bool
	// RequestTimeout bounds how long a command (/react, /dm, /search,
	// ...), the opening of a conversation or a page of older messages
	// waits for the server, a connection included (default
	// requestTimeout).
	RequestTimeout time.Duration
	// NoticeTime is how long a notice (the line a command or an event
	// leaves under the input) stays at least before it clears itself
	// (default noticeTime); a long one stays for its reading time
	// (noticeReadRate). A newer notice, or Enter, replaces it sooner.
	NoticeTime time.Duration
}

// requestTimeout bounds each blocking call a command makes.
const requestTimeout = 30 * time.Second

// noticeTime is how long a notice stays by default: a typical one (20 to
// 80 characters) is read twice in that time, and a line that says what
// happened ("saved ...", "cannot load ...") is stale soon after, where
// it would be taken for news about what came later. noticeReadRate
// keeps a long one (/help's list) up for its reading time instead.
const (
	noticeTime     = 5 * time.Second
	noticeReadRate = 20 // characters a second
)

// Model is the terminal client's state. Use it only from the bubbletea
// event loop (Update and View); it is not safe for concurrent use.
type Model struct {
	c   *client.Client // nil in tests that only render
	cfg Config

	width, height int
	// graphemes: the terminal reported grapheme clustering (mode 2027),
	// which bubbletea's renderer then measures by, as the layout does;
	// until then, joined emoji sequences are drawn plain (width.go).
	graphemes bool

	me      parley.User
	status  client.Status
	convs   []parley.Conversation // most recent activity first
	online  map[string]bool
	typing  []client.Typist // in the open conversation
	loaded  bool            // the conversation list was fetched once
	loading bool            // a list fetch is under way
	again   bool            // fetch the list again when the current fetch ends

	open     string              // id of the open (selected) conversation
	openSeen parley.Conversation // the open conversation as the list last had it (keepDeclined)
	view     *client.ConversationView
	opening  bool
	msgs     []parley.Message
	hasMore  bool
	loadMore bool // a LoadMore is under way
	// olderHeld: the last page of older messages failed while connected.
	// Nothing asks for one on its own (fill, followMark) until the
	// user's next PgUp or the error's retry_after (olderRetryMsg): each
	// redraw would ask again, in a loop as fast as the server refuses.
	olderHeld bool
	olderGen  uint64 // counts held failures: a retry_after ends only its own
	scroll    int    // lines scrolled up from the newest
	below     int    // messages that came while scrolled up (shown until back at the bottom)
	outgoing  []*outItem
	// extra are messages of the open conversation older than its loaded
	// history, fetched alone for a command that named them by #seq
	// (fetchTarget); a deleted or missing one is kept as a tombstone,
	// so it is asked for once.
	extra   []parley.Message
	edits   []editItem       // edits in the outbox, until they end (a refused one is a notice)
	readAsk map[string]int64 // the read position asked for, per conversation
	// lastTime are the messages the outbox kept from the last run while
	// the notice New said of them (noticeGen lastTimeGen) shows: once
	// none is left to send, the notice says so (lastTimeSent) rather
	// than stay for its reading time.
	lastTime    []*outItem
	lastTimeGen uint64

	system       map[string][]sysLine           // system lines per conversation (members.go)
	lastSeen     map[string]parley.Conversation // groups as their last change left them, for one this user left
	names        map[string]string              // user id -> name, from the lists (members.go)
	showArchived bool                           // /archived: list archived conversations too

	results *searchList // the results panel of /search or /mentions (search.go); nil: hidden
	mark    mark        // the message /open went to (search.go)

	input     textinput.Model
	nav       bool // keys navigate instead of typing (Esc toggles)
	notice    string
	noticeGen uint64        // counts say calls: an expiry clears only the notice it was scheduled for
	noticeDue uint64        // the noticeGen whose expiry is scheduled
	whileGen  uint64        // the noticeGen of a notice that something is under way (sayWhile)
	done      chan struct{} // closed by Stop: pending expiries end
	stopOnce  sync.Once
	ticking   bool // a one-second tick is scheduled (for the countdown)
	quitArmed bool // Ctrl+C was pressed once with messages still sending, and its warning shows

	// sends counts Enter presses that sent a message. A keystroke's
	// "typing" runs later, on a command goroutine, and may run after
	// the Enter that ended the line (keys pasted or typed quickly): it
	// reads sends and stays silent if a send came since its keystroke,
	// or the other user would see "typing…" under the message just sent.
	sends atomic.Uint64
}

// outItem is a message this client sent, shown until the open view holds
// it (then the view's copy is shown with a sent mark).
type outItem struct {
	msg      *client.Message // nil in render-only tests
	clientID string
	conv     string
	text     string
	at       time.Time
	status   client.SendStatus
	err      error
}

// editItem is an /edit in the outbox: the edit and its message's seq.
// older: the message is older than the loaded history, so no line shows
// the edit, and a notice says it was done.
type editItem struct {
	msg   *client.Message
	seq   int64
	older bool
}

// Messages the model handles besides bubbletea's own.
type (
	// clientChangedMsg says the SDK's state changed: Update reads it again.
	clientChangedMsg struct{}
	// eventMsg carries an SDK event (then the state is read again).
	eventMsg struct{ ev client.Event }
	// tickMsg redraws the reconnect countdown.
	tickMsg time.Time
	// connectedMsg is the end of the first Connect.
	connectedMsg struct{ err error }
	// listMsg is the end of a conversation list fetch.
	listMsg struct{ err error }
	// openedMsg is the end of OpenConversation.
	openedMsg struct {
		id   string
		view *client.ConversationView
		err  error
	}
	// loadedMoreMsg is the end of a LoadMore of view (conversation id):
	// one of an earlier opening of the conversation concerns a view
	// that is gone, not the open one.
	loadedMoreMsg struct {
		id   string
		view *client.ConversationView
		err  error
	}
	// createdMsg is the end of /dm or /group.
	createdMsg struct {
		conv parley.Conversation
		err  error // already worded for people (errText), shown as it is
	}
	// readMsg is the end of a MarkRead.
	readMsg struct {
		id  string
		seq int64
		err error
	}
	// noticeMsg shows a line to the user.
	noticeMsg string
	// fetchedMsg is a message fetchTarget fetched for a command, which
	// again runs once it is kept.
	fetchedMsg struct {
		conv  string
		msg   parley.Message
		again func() tea.Cmd
	}
	// olderRetryMsg ends the hold of failure number gen
	// (Model.olderGen) on loading older messages of conversation id: its
	// retry_after is over.
	olderRetryMsg struct {
		id  string
		gen uint64
	}
	// noticeExpiredMsg ends notice number gen (Model.noticeGen), if it
	// is still the one shown.
	noticeExpiredMsg struct{ gen uint64 }
	// requestDone is the end of a request: msg is its result, and gen
	// the notice that said it was under way (0: none), cleared if it
	// still shows.
	requestDone struct {
		gen uint64
		msg tea.Msg
	}
)

// New returns the model for c.
func New(c *client.Client, cfg Config) *Model {
	if cfg.PageSize <= 0 {
		cfg.PageSize = parley.DefaultPageLimit
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = requestTimeout
	}
	if cfg.NoticeTime <= 0 {
		cfg.NoticeTime = noticeTime
	}
	if cfg.Notify == nil {
		cfg.Notify = func(tea.Msg) {}
	}
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "type a message, /help for commands"
	in.CharLimit = parley.MaxTextRunes
	// The terminal's own cursor: no blink timers to run.
	in.SetVirtualCursor(false)
	in.Focus()
	m := &Model{c: c, cfg: cfg, online: map[string]bool{}, readAsk: map[string]int64{},
		system: map[string][]sysLine{}, lastSeen: map[string]parley.Conversation{}, names: map[string]string{}, input: in, width: 80, height: 24,
		done: make(chan struct{})}
	if c != nil {
		// Messages a durable outbox kept from the last run are shown (and
		// sent) like ones typed now.
		for _, msg := range c.Pending() {
			m.outgoing = append(m.outgoing, &outItem{msg: msg, clientID: msg.ClientID(), conv: msg.ConversationID(), text: msg.Text(), at: msg.CreatedAt(), status: msg.Status()})
		}
		if n := len(m.outgoing); n > 0 {
			m.say(fmt.Sprintf("%d %s from last time still to send", n, plural(n, "message", "messages")))
			m.lastTime, m.lastTimeGen = slices.Clone(m.outgoing), m.noticeGen
		}
	}
	return m
}

// Init starts connecting (and the clock of a notice New left).
func (m *Model) Init() tea.Cmd {
	if m.c == nil {
		return m.expireNotice()
	}
	c := m.c
	// Connect returns at the first welcome; when that takes longer the
	// client keeps trying in the background and the status line says so.
	return tea.Batch(timed(func(ctx context.Context) tea.Msg { return connectedMsg{err: c.Connect(ctx)} }), m.expireNotice())
}

// Stop ends the commands that wait to clear notices (Run calls it when
// the program ends). The model is not used after it. Stop is idempotent.
func (m *Model) Stop() { m.stopOnce.Do(func() { close(m.done) }) }

// say shows text as the notice ("" clears it). Its clock starts when
// the Update that said it returns (expireNotice). A new notice also
// disarms Ctrl+C's quit warning: the second press quits only while the
// warning shows.
func (m *Model) say(text string) {
	// A notice may carry what other users chose (a file's name, a
	// conversation's title, a user's name): printed as printable makes
	// it, like their messages.
	m.notice = printable(text, false)
	m.noticeGen++
	m.quitArmed = false
}

// sayWhile shows text as a notice that something is under way ("opening
// a conversation...", "waiting for the connection"): true until that
// ends, so it stays for as long as it may take (RequestTimeout) rather
// than NoticeTime, and the request's end clears it (requestDone).
func (m *Model) sayWhile(text string) {
	m.say(text)
	m.whileGen = m.noticeGen
}

// expireNotice returns the command that clears the current notice when
// its time is up, once per notice (nil when it has one already, or there
// is none). A tea.Tick-like timer on the program's command goroutine,
// which Stop ends early.
func (m *Model) expireNotice() tea.Cmd {
	if m.notice == "" || m.noticeDue == m.noticeGen {
		return nil
	}
	m.noticeDue = m.noticeGen
	gen, done := m.noticeGen, m.done
	d := m.noticeDuration(m.notice)
	return func() tea.Msg {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return noticeExpiredMsg{gen: gen}
		case <-done:
			return nil
		}
	}
}

// after returns the command that delivers msg after d, a tea.Tick-like
// timer on the program's command goroutine, which Stop ends early.
func (m *Model) after(d time.Duration, msg tea.Msg) tea.Cmd {
	done := m.done
	return func() tea.Msg {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return msg
		case <-done:
			return nil
		}
	}
}

// noticeDuration is how long notice text stays: NoticeTime, or its
// reading time when that is longer; a sayWhile notice, as long as what
// it waits for may take.
func (m *Model) noticeDuration(text string) time.Duration {
	d := max(m.cfg.NoticeTime, time.Duration(utf8.RuneCountInString(text))*time.Second/noticeReadRate)
	if m.whileGen == m.noticeGen && text == m.notice {
		d = max(d, m.cfg.RequestTimeout)
	}
	return d
}

// Update handles one message, then starts the clock of a notice it left.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := m.update(msg)
	return m, tea.Batch(cmd, m.expireNotice())
}

// timed returns a command that runs f with a context that ends after
// requestTimeout.
func timed(f func(ctx context.Context) tea.Msg) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		return f(ctx)
	}
}

// request returns a command that runs f, the server calls of command
// cmd, within Config.RequestTimeout. The SDK's calls wait for a
// connection: while there is none the notice says cmd waits for it (not
// nothing until the timeout), and a cmd that timed out unconnected says
// it was not done for want of a connection, not that "the server did
// not answer" (it was never asked).
func (m *Model) request(cmd string, f func(ctx context.Context) tea.Msg) tea.Cmd {
	c, timeout := m.c, m.cfg.RequestTimeout
	if c != nil && !m.status.Connected() {
		m.sayWhile(cmd + ": waiting for the connection to the server… (Ctrl+R reconnects now)")
	}
	var gen uint64 // the notice that says cmd is under way, cleared when it ends
	if m.whileGen == m.noticeGen {
		gen = m.noticeGen
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		msg := f(ctx)
		if ctx.Err() != nil && c != nil && !c.Status().Connected() {
			msg = noticeMsg(cmd + ": not done, no connection to the server; try again once connected")
		}
		return requestDone{gen: gen, msg: msg}
	}
}

// update handles one message (Update's work).
func (m *Model) update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.input.SetWidth(max(10, m.width-4))
		m.clampScroll()
		return m, m.fill() // a taller pane may have room for older messages
	case tea.ModeReportMsg:
		// As the program does: a terminal that knows the mode (set or
		// not) gets it set, and the renderer measures by grapheme.
		if msg.Mode == ansi.ModeUnicodeCore && (msg.Value == ansi.ModeSet || msg.Value == ansi.ModeReset || msg.Value == ansi.ModePermanentlySet) {
			m.graphemes = true
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case tea.PasteMsg:
		if !m.nav {
			before := utf8.RuneCountInString(m.input.Value())
			var cmd tea.Cmd
			m.input, cmd = m.input.Update(msg)
			if limit := m.input.CharLimit; before+utf8.RuneCountInString(msg.Content) > limit && utf8.RuneCountInString(m.input.Value()) >= limit {
				// The input drops what is past its limit without a
				// word: the message would go out cut short.
				m.say(fmt.Sprintf("the paste was cut at %d characters, the most a message holds", limit))
			}
			return m, cmd
		}
		return m, nil
	case clientChangedMsg:
		return m, m.refresh()
	case eventMsg:
		return m, m.event(msg.ev)
	case tickMsg:
		m.ticking = false
		return m, m.refresh()
	case connectedMsg:
		if msg.err != nil && !errors.Is(msg.err, context.DeadlineExceeded) {
			m.say("cannot connect: " + errText(msg.err))
		}
		return m, m.refresh()
	case listMsg:
		m.loading = false
		if msg.err != nil {
			m.say("cannot load conversations: " + errText(msg.err))
		} else {
			m.loaded = true
		}
		if m.again {
			m.again = false
			return m, tea.Batch(m.fetchList(), m.refresh())
		}
		return m, m.refresh()
	case openedMsg:
		// Another conversation's, or a second opening of this one (away
		// and back while the first was under way) once the first gave
		// the pane its view: that view stays, with the loads of older
		// messages it counts as its own (loadedMoreMsg names its view).
		if msg.id != m.open || m.view != nil {
			if msg.view != nil {
				msg.view.Close()
			}
			return m, nil
		}
		m.opening = false
		if msg.err != nil {
			// Offline, the pane says it waits for the connection and it
			// is opened again once there is one: "cannot load history:
			// the server did not answer in time" would blame a server
			// never asked.
			if m.c == nil || m.c.Status().Connected() {
				m.say("cannot load history: " + errText(msg.err))
			}
			// Opened again on the next change once connected (follow),
			// not now: a server that refuses would be asked in a loop.
			return m, nil
		}
		m.view = msg.view
		return m, m.refresh()
	case loadedMoreMsg:
		if msg.id == m.open && msg.view == m.view {
			m.loadMore = false
			// Offline, the pane said it waited for the connection; PgUp
			// asks again (no server was asked, none is to blame).
			if msg.err != nil && (m.c == nil || m.c.Status().Connected()) {
				m.say("cannot load older messages: " + errText(msg.err))
				m.olderHeld = true
				m.olderGen++
				var pe *parley.Error
				if errors.As(msg.err, &pe) && pe.RetryAfter > 0 {
					return m, tea.Batch(m.after(pe.RetryAfter, olderRetryMsg{id: msg.id, gen: m.olderGen}), m.refresh())
				}
			}
		}
		return m, m.refresh()
	case fetchedMsg:
		if msg.conv != m.open {
			return m, nil // another conversation was opened meanwhile
		}
		if !slices.ContainsFunc(m.extra, func(x parley.Message) bool { return x.Seq == msg.msg.Seq }) {
			m.extra = append(m.extra, msg.msg)
		}
		return m, msg.again()
	case olderRetryMsg:
		if msg.id == m.open && msg.gen == m.olderGen && m.olderHeld {
			m.olderHeld = false
			return m, m.refresh()
		}
		return m, nil
	case createdMsg:
		if msg.err != nil {
			m.say(msg.err.Error())
			return m, nil
		}
		if !slices.ContainsFunc(m.convs, func(cv parley.Conversation) bool { return cv.ID == msg.conv.ID }) {
			m.convs = append([]parley.Conversation{msg.conv}, m.convs...)
		}
		cmd := m.select_(msg.conv.ID)
		// A request this user declined is not in the server's list:
		// the server's answer is what it is seen as (keepDeclined).
		m.openSeen = msg.conv
		return m, tea.Batch(cmd, m.refresh())
	case readMsg:
		if msg.err != nil && m.readAsk[msg.id] == msg.seq {
			delete(m.readAsk, msg.id) // ask again on the next change
		}
		return m, nil
	case noticeMsg:
		m.say(string(msg))
		return m, nil
	case noticeExpiredMsg:
		if msg.gen == m.noticeGen {
			m.say("")
		}
		return m, nil
	case requestDone:
		if msg.gen != 0 && msg.gen == m.noticeGen {
			m.say("") // it is no longer under way; msg may say more
		}
		if msg.msg == nil {
			return m, nil
		}
		return m.update(msg.msg)
	case searchMsg:
		m.showResults(msg)
		return m, nil
	}
	return m, nil
}

// refresh reads the SDK's state and does what follows from it: fetch the
// list once connected, open the selected conversation, mark it read,
// keep the countdown ticking.
func (m *Model) refresh() tea.Cmd {
	if m.c == nil {
		return m.follow()
	}
	m.status = m.c.Status()
	if u := m.c.User(); u.ID != "" {
		m.me = u
	}
	if m.loaded {
		m.convs = m.c.CachedConversations()
		m.learnNames()
		m.convs = m.mainList(m.convs)
		m.keepDeclined()
	}
	m.online = map[string]bool{}
	for _, u := range m.c.Online() {
		// Offline, the SDK's presence is what it last heard: not
		// shown as if it were now.
		m.online[u.ID] = m.status.Connected()
	}
	m.typing = nil
	if m.open != "" {
		m.typing = m.c.Typing(m.open)
	}
	if m.view != nil {
		msgs := m.view.Messages()
		if m.scroll > 0 && len(m.msgs) > 0 && len(msgs) > 0 && msgs[0].Seq == m.msgs[0].Seq {
			// Scrolled up, reading: what came below (new messages)
			// must not move the lines being read. (A page loaded above
			// changes the first message and moves nothing.)
			w, newest := m.paneWidth(), m.msgs[len(m.msgs)-1].Seq
			before := len(m.messageLines(w))
			m.msgs = msgs
			m.scroll += max(0, len(m.messageLines(w))-before)
			for _, x := range msgs {
				if x.Seq > newest && x.SenderID != m.me.ID {
					m.below++
				}
			}
		}
		m.msgs, m.hasMore = msgs, m.view.HasMore()
	}
	for _, o := range m.outgoing {
		if o.msg != nil {
			o.status, o.err = o.msg.Status(), o.msg.Err()
		}
	}
	m.edits = slices.DeleteFunc(m.edits, func(e editItem) bool {
		switch e.msg.Status() {
		case client.Failed:
			// Its line never changed: without this, nothing would say
			// the edit did not happen.
			m.say(fmt.Sprintf("the edit of #%d was refused: %s", e.seq, errText(e.msg.Err())))
			return true
		case client.Sent:
			if e.older {
				m.say(fmt.Sprintf("#%d edited", e.seq))
			}
			return true
		}
		return false
	})
	m.lastTimeSent()
	return m.follow()
}

// lastTimeSent changes the notice of messages from last time still to
// send once none is left to send (each sent or failed), if it still shows.
func (m *Model) lastTimeSent() {
	if m.lastTime == nil {
		return
	}
	if m.lastTimeGen != m.noticeGen || m.notice == "" {
		m.lastTime = nil // another notice replaced it, or it expired
		return
	}
	sent, failed := 0, 0
	for _, o := range m.lastTime {
		if o.msg == nil {
			continue
		}
		switch o.msg.Status() {
		case client.Sent:
			sent++
		case client.Failed:
			failed++
		default:
			return // still to send
		}
	}
	m.lastTime = nil
	switch {
	case failed == 0:
		m.say(fmt.Sprintf("%d %s from last time sent", sent, plural(sent, "message", "messages")))
	default:
		m.say(fmt.Sprintf("from last time: %d sent, %d failed (Ctrl+E resends)", sent, failed))
	}
}

// follow does what the current state calls for.
func (m *Model) follow() tea.Cmd {
	var cmds []tea.Cmd
	// Drop sent messages the open view now shows (or that belong to
	// another conversation: that view will show them from the server).
	m.outgoing = slices.DeleteFunc(m.outgoing, func(o *outItem) bool {
		if o.status != client.Sent {
			return false
		}
		return o.conv != m.open || slices.ContainsFunc(m.msgs, func(x parley.Message) bool { return x.ClientID == o.clientID })
	})
	connected := m.status.Connected()
	if m.c != nil && connected && !m.loaded && !m.loading {
		cmds = append(cmds, m.fetchList())
	}
	if m.open == "" && len(m.convs) > 0 {
		cmds = append(cmds, m.select_(m.convs[0].ID))
	} else if m.c != nil && m.open != "" && m.view == nil && !m.opening && connected {
		cmds = append(cmds, m.openCmd(m.open))
	}
	cmds = append(cmds, m.followMark(), m.markRead(), m.fill())
	if !m.ticking && (m.status.State == client.Reconnecting || m.status.State == client.Connecting || m.status.State == client.FeatureThrottled) {
		m.ticking = true
		cmds = append(cmds, tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) }))
	}
	m.clampScroll()
	return tea.Batch(cmds...)
}

// event reacts to an SDK event, then reads the state again.
func (m *Model) event(ev client.Event) tea.Cmd {
	var id string
	var cmds []tea.Cmd
	switch e := ev.(type) {
	case client.ConversationUpdated:
		id = e.Conversation.ID
		m.noteChange(e)
		if e.Change == parley.ChangeCreated || e.Change == parley.ChangeMembersAdded {
			// Presence covers contacts only: new members may be new
			// contacts, and the server sends no userOnline for them.
			cmds = append(cmds, m.fetchPresence())
		}
	case client.NewMessage:
		id = e.Message.ConversationID
	case client.Resynced:
		// The SDK refetches its list and views; read them when it is done.
		return m.refresh()
	}
	if id != "" && m.loaded && m.c != nil && !slices.ContainsFunc(m.c.CachedConversations(), func(cv parley.Conversation) bool { return cv.ID == id }) {
		// The SDK fetches a conversation it does not know in the
		// background without telling the app when it is done: fetch the
		// list so the new conversation shows at once.
		cmds = append(cmds, m.fetchList())
	}
	return tea.Batch(append(cmds, m.refresh())...)
}

// fetchPresence asks the server who is online.
func (m *Model) fetchPresence() tea.Cmd {
	if m.c == nil {
		return nil
	}
	c := m.c
	return timed(func(ctx context.Context) tea.Msg {
		if _, err := c.FetchPresence(ctx); err != nil {
			return nil
		}
		return clientChangedMsg{}
	})
}

// fetchList fetches the conversation list (or asks for one more fetch
// when one is under way, so the newest state wins).
func (m *Model) fetchList() tea.Cmd {
	if m.c == nil {
		return nil
	}
	if m.loading {
		m.again = true
		return nil
	}
	m.loading = true
	c := m.c
	return timed(func(ctx context.Context) tea.Msg {
		_, err := c.Conversations(ctx)
		if err == nil {
			// Presence covers contacts only, and a new conversation may
			// have made new ones: ask again with the list.
			_, _ = c.FetchPresence(ctx)
		}
		return listMsg{err: err}
	})
}

// select_ makes id the open conversation.
func (m *Model) select_(id string) tea.Cmd {
	if id == m.open {
		return nil
	}
	if m.view != nil {
		m.view.Close()
	}
	m.open, m.view, m.msgs, m.hasMore, m.scroll, m.loadMore, m.typing = id, nil, nil, false, 0, false, nil
	m.olderHeld, m.extra = false, nil
	m.below = 0
	m.mark = mark{}
	m.opening = false
	if m.c == nil {
		return nil
	}
	m.typing = m.c.Typing(id)
	return m.openCmd(id)
}

func (m *Model) openCmd(id string) tea.Cmd {
	m.opening = true
	c, notify, size, timeout := m.c, m.cfg.Notify, m.cfg.PageSize, m.cfg.RequestTimeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		v, err := c.OpenConversation(ctx, id, size)
		if err != nil {
			return openedMsg{id: id, err: err}
		}
		// Set after the first page: Update reads the view when openedMsg
		// arrives, so a change in between is not lost.
		v.OnChange(func() { notify(clientChangedMsg{}) })
		return openedMsg{id: id, view: v}
	}
}

// markRead moves the read position to the newest message shown, while the
// user is at the bottom of the open conversation.
func (m *Model) markRead() tea.Cmd {
	if m.c == nil || m.view == nil || len(m.msgs) == 0 || m.scroll > 0 {
		return nil
	}
	last := m.msgs[len(m.msgs)-1].Seq
	i := slices.IndexFunc(m.convs, func(cv parley.Conversation) bool { return cv.ID == m.open })
	if i < 0 || (m.convs[i].ReadSeq >= last && m.convs[i].UnreadCount == 0) || m.readAsk[m.open] >= last {
		return nil
	}
	m.readAsk[m.open] = last
	c, id := m.c, m.open
	return timed(func(ctx context.Context) tea.Msg {
		_, err := c.MarkRead(ctx, id, last)
		return readMsg{id: id, seq: last, err: err}
	})
}

// fill loads older pages while the history does not fill the pane, unless
// the last one failed (olderHeld).
func (m *Model) fill() tea.Cmd {
	if m.view == nil || !m.hasMore || m.loadMore || m.olderHeld || len(m.messageLines(m.paneWidth())) >= m.messageRows() {
		return nil
	}
	return m.older()
}

func (m *Model) older() tea.Cmd {
	if m.view == nil || !m.hasMore || m.loadMore {
		return nil
	}
	m.loadMore = true
	v, id, timeout := m.view, m.open, m.cfg.RequestTimeout
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := v.LoadMore(ctx)
		return loadedMoreMsg{id: id, view: v, err: err}
	}
}

// key handles a key press.
func (m *Model) key(k tea.KeyPressMsg) tea.Cmd {
	s := k.String()
	if s != "ctrl+c" && s != "ctrl+d" {
		m.quitArmed = false
	}
	switch s {
	case "ctrl+c", "ctrl+d":
		return m.quit()
	case "ctrl+r":
		return m.reconnect()
	case "ctrl+e":
		return m.resend()
	case "tab", "down", "ctrl+n":
		return m.move(1)
	case "shift+tab", "up", "ctrl+p":
		return m.move(-1)
	case "pgup":
		return m.pageUp()
	case "pgdown":
		m.scroll -= max(1, m.messageRows()-1)
		m.clampScroll()
		return m.markRead()
	case "esc":
		m.nav = !m.nav
		if m.nav {
			m.input.Blur()
		} else {
			m.input.Focus()
		}
		return nil
	}
	if m.nav {
		switch s {
		case "q":
			return m.quit()
		case "j":
			return m.move(1)
		case "k":
			return m.move(-1)
		case "r":
			return m.reconnect()
		case "e":
			return m.resend()
		case "i", "enter":
			m.nav = false
			m.input.Focus()
		}
		return nil
	}
	if s == "enter" {
		return m.submit()
	}
	before := m.input.Value()
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	if after := m.input.Value(); after != before && m.c != nil && m.open != "" && !strings.HasPrefix(after, "/") {
		c, id, typing := m.c, m.open, after != ""
		sends, seen := &m.sends, m.sends.Load()
		// SetTyping sends at most one start per 3 s itself.
		cmd = tea.Batch(cmd, timed(func(ctx context.Context) tea.Msg {
			if typing && sends.Load() != seen {
				return nil // the line was sent since this keystroke
			}
			_ = c.SetTyping(ctx, id, typing)
			return nil
		}))
	}
	return cmd
}

func (m *Model) quit() tea.Cmd {
	n := 0
	for _, o := range m.outgoing {
		if o.status == client.Sending {
			n++
		}
	}
	if n > 0 && !m.quitArmed && !m.cfg.DurableOutbox {
		m.say(fmt.Sprintf("%d %s still sending and will be lost (the outbox is in memory only): press Ctrl+C again to quit anyway", n, plural(n, "message is", "messages are")))
		m.quitArmed = true // after say, which disarms
		return nil
	}
	return tea.Quit
}

func (m *Model) reconnect() tea.Cmd {
	if m.c == nil {
		return nil
	}
	if m.status.Connected() {
		m.say("already connected")
		return nil
	}
	m.c.Reconnect()
	m.say("")
	return m.refresh()
}

// resend queues the open conversation's failed messages again.
func (m *Model) resend() tea.Cmd {
	n := 0
	for _, o := range m.outgoing {
		if o.conv != m.open || o.status != client.Failed || o.msg == nil {
			continue
		}
		// A new Send, not Client.Resend: the SDK's outbox remembers which
		// messages it already sent on the current connection and skips a
		// resent one until the link changes. A failed message was refused,
		// so nothing is stored under the old client id and a new one
		// cannot make a duplicate.
		nm, err := m.c.Send(context.Background(), o.conv, o.text)
		if err != nil {
			m.say("cannot resend: " + errText(err))
			return m.refresh()
		}
		o.msg, o.clientID, o.status, o.err, o.at = nm, nm.ClientID(), nm.Status(), nil, nm.CreatedAt()
		n++
	}
	if n == 0 {
		m.say("no failed message to resend here")
	} else {
		m.say(fmt.Sprintf("resending %d %s", n, plural(n, "message", "messages")))
	}
	return m.refresh()
}

// move selects the next (+1) or previous (-1) conversation.
func (m *Model) move(d int) tea.Cmd {
	if len(m.convs) == 0 {
		return nil
	}
	i := slices.IndexFunc(m.convs, func(cv parley.Conversation) bool { return cv.ID == m.open })
	i = ((i+d)%len(m.convs) + len(m.convs)) % len(m.convs)
	return m.select_(m.convs[i].ID)
}

func (m *Model) pageUp() tea.Cmd {
	m.scroll += max(1, m.messageRows()-1)
	if top := m.maxScroll(); m.scroll >= top {
		m.scroll = top
		m.olderHeld = false // the user asks again
		return m.older()
	}
	return nil
}

func (m *Model) maxScroll() int {
	return max(0, len(m.messageLines(m.paneWidth()))-m.messageRows())
}

func (m *Model) clampScroll() {
	m.scroll = min(max(0, m.scroll), m.maxScroll())
	if m.scroll == 0 {
		m.below = 0
	}
}

// submit sends the input line or runs the command in it.
func (m *Model) submit() tea.Cmd {
	text := strings.TrimSpace(m.input.Value())
	if text == "" {
		return nil
	}
	m.say("")
	if strings.HasPrefix(text, "/") {
		m.input.Reset()
		return m.command(text)
	}
	if m.open == "" {
		m.say("no conversation open: start one with /dm user or /group title user...")
		return nil
	}
	if m.c == nil {
		return nil
	}
	// Send here, not in a Cmd: it returns at once, and calling it in the
	// order Enter was pressed is what keeps the messages in order.
	m.sends.Add(1)
	msg, err := m.c.Send(context.Background(), m.open, text)
	if err != nil {
		// Keep the text so nothing typed is lost.
		m.say("not sent: " + errText(err))
		return nil
	}
	m.input.Reset()
	m.scroll = 0
	m.outgoing = append(m.outgoing, &outItem{msg: msg, clientID: msg.ClientID(), conv: m.open, text: text, at: msg.CreatedAt(), status: msg.Status()})
	return m.refresh()
}

// helpText is what /help shows.
const helpText = "/dm user · /group title user1 user2... · /edit [#seq] text · /reply [#seq] text · /react [#seq] emoji · /unreact [#seq] emoji · /delete #seq · /file PATH · /save #seq [PATH] · /search words · /mentions · /next /prev /open N /close (results) · in a group: /members /rename /add /remove /promote /demote /leave · /mute /unmute /archive /unarchive /archived · /name display name|--clear · /avatar image-file|--remove · /block user /unblock user /accept /decline /privacy [everyone|contacts] · /quit   keys: Enter send, Tab/↑↓ switch, PgUp/PgDn scroll, Ctrl+E resend failed, Ctrl+R reconnect now, Esc navigation keys"

// command runs a /command.
func (m *Model) command(line string) tea.Cmd {
	f := fields(line)
	_, member := memberCommands[f[0]]
	_, consent := consentCommands[f[0]]
	if (member || consent || f[0] == "/dm" || f[0] == "/group") && strings.Count(line, `"`)%2 == 1 {
		// fields would take the rest of the line as one argument: a
		// group titled "the team bob" with nobody in it.
		m.say(f[0] + `: a " is not closed (a title with spaces goes in "double quotes")`)
		return nil
	}
	if member {
		return m.memberCommand(f)
	}
	if consent {
		return m.consentCommand(f)
	}
	if _, ok := flagCommands[f[0]]; ok {
		return m.flagCommand(f[0])
	}
	if f[0] == "/archived" {
		m.showArchived = !m.showArchived
		m.say("archived conversations hidden")
		if m.showArchived {
			m.say("archived conversations shown (/archived hides them)")
		}
		return m.refresh()
	}
	switch f[0] {
	case "/help", "/?":
		m.say(helpText)
		return nil
	case "/quit", "/q":
		// As Ctrl+C: messages still sending from a memory outbox
		// would be lost without a word.
		return m.quit()
	case "/dm":
		if len(f) != 2 {
			m.say("usage: /dm username")
			return nil
		}
		if m.c == nil {
			return nil
		}
		c, name := m.c, f[1]
		m.sayWhile("opening a conversation with " + name + "...")
		return m.request("/dm", func(ctx context.Context) tea.Msg {
			cv, err := c.CreateDirectByName(ctx, name)
			if parley.ErrorCode(err) == parley.ENOTFOUND {
				return createdMsg{err: fmt.Errorf("/dm %s: no user named %s", name, name)}
			}
			if err != nil {
				return createdMsg{err: fmt.Errorf("/dm %s: %s", name, errText(err))}
			}
			// The SDK's list learns of it in the background; fetch it
			// now so the list shows it at once, and presence, as bob may
			// be a new contact.
			_, _ = c.Conversations(ctx)
			_, _ = c.FetchPresence(ctx)
			return createdMsg{conv: cv}
		})
	case "/group":
		if len(f) < 2 {
			m.say("usage: /group title user1 user2...")
			return nil
		}
		if m.c == nil {
			return nil
		}
		c, lookup, title, names := m.c, m.cfg.LookupUser, f[1], f[2:]
		m.sayWhile("creating group " + title + "...")
		return m.request("/group", func(ctx context.Context) tea.Msg {
			ids, err := userIDs(ctx, lookup, names)
			if err != nil {
				return createdMsg{err: fmt.Errorf("/group: %w", err)}
			}
			cv, err := c.CreateGroup(ctx, title, ids)
			if err != nil {
				return createdMsg{err: fmt.Errorf("/group %s: %s", title, errText(err))}
			}
			_, _ = c.Conversations(ctx)
			_, _ = c.FetchPresence(ctx)
			return createdMsg{conv: cv}
		})
	case "/edit", "/reply", "/react", "/unreact", "/delete":
		return m.messageCommand(f[0], strings.TrimSpace(strings.TrimPrefix(line, f[0])))
	}
	if _, ok := searchCommands[f[0]]; ok {
		return m.searchCommand(f[0], strings.TrimSpace(strings.TrimPrefix(line, f[0])))
	}
	switch f[0] {
	case "/file":
		m.fileCommand(strings.TrimPrefix(line, f[0]))
		return m.refresh()
	case "/save":
		return m.saveCommand(strings.TrimPrefix(line, f[0]))
	case "/name", "/avatar":
		return m.profileCommand(f[0], strings.TrimSpace(strings.TrimPrefix(line, f[0])))
	}
	m.say("unknown command " + f[0] + " (/help lists them)")
	return nil
}

// messageCommand runs /edit, /reply, /react and /unreact on a message of
// the open conversation: "#seq" first names it; without it, /edit takes
// the user's newest message and the others the newest message.
func (m *Model) messageCommand(cmd, rest string) tea.Cmd {
	usage := map[string]string{"/edit": "usage: /edit [#seq] new text", "/reply": "usage: /reply [#seq] text",
		"/react": "usage: /react [#seq] emoji", "/unreact": "usage: /unreact [#seq] emoji",
		"/delete": "usage: /delete #seq (the number shown before your message)"}[cmd]
	if m.open == "" {
		m.say("no conversation open")
		return nil
	}
	var seq int64
	restAll := rest // for running the command again (fetchTarget)
	if tag, after, _ := strings.Cut(rest, " "); strings.HasPrefix(tag, "#") {
		n, err := strconv.ParseInt(tag[1:], 10, 64)
		if err != nil || n < 1 {
			m.say(usage)
			return nil
		}
		seq, rest = n, strings.TrimSpace(after)
	}
	// /delete takes nothing but the #seq, and asks for it: a deleted
	// message cannot come back, so it never picks one by default.
	if (cmd == "/delete") != (rest == "") || (cmd == "/delete" && seq == 0) {
		m.say(usage)
		return nil
	}
	mine := cmd == "/edit" || cmd == "/delete"
	target, ok := m.target(seq, mine)
	if !ok {
		if _, theirs := m.target(seq, false); theirs && mine && seq != 0 {
			m.say(fmt.Sprintf("%s: #%d is not your message (only your own can be changed)", cmd, seq))
			return nil
		}
		if c := m.fetchTarget(cmd, seq, func() tea.Cmd { return m.messageCommand(cmd, restAll) }); c != nil {
			return c
		}
		m.say(cmd + ": no such message here")
		return nil
	}
	if m.c == nil {
		return nil
	}
	ctx := context.Background()
	switch cmd {
	case "/edit":
		e, err := m.c.Edit(ctx, m.open, target.ID, rest)
		if err != nil {
			m.say("not edited: " + errText(err))
			return nil
		}
		m.edits = append(m.edits, editItem{msg: e, seq: target.Seq,
			older: !slices.ContainsFunc(m.msgs, func(x parley.Message) bool { return x.Seq == target.Seq })})
		if !m.status.Connected() {
			// Its line changes only once the server has it: say why
			// nothing changed yet.
			m.say(fmt.Sprintf("the edit of #%d waits in the outbox: it is sent once connected", target.Seq))
		}
		return nil
	case "/delete":
		c, conv := m.c, m.open
		return m.request(cmd, func(ctx context.Context) tea.Msg {
			if _, err := c.Delete(ctx, conv, target.ID); err != nil {
				return noticeMsg("/delete: " + errText(err))
			}
			return noticeMsg(fmt.Sprintf("#%d deleted", target.Seq))
		})
	case "/reply":
		msg, err := m.c.Reply(ctx, m.open, target.ID, rest)
		if err != nil {
			m.say("not sent: " + errText(err))
			return nil
		}
		m.scroll = 0
		m.outgoing = append(m.outgoing, &outItem{msg: msg, clientID: msg.ClientID(), conv: m.open, text: rest, at: msg.CreatedAt(), status: msg.Status()})
		return m.refresh()
	}
	c, conv, emoji, remove := m.c, m.open, rest, cmd == "/unreact"
	// A message older than the loaded history shows no line the
	// reaction could appear on: the notice says it was done.
	done := ""
	if !slices.ContainsFunc(m.msgs, func(x parley.Message) bool { return x.Seq == target.Seq }) {
		done = fmt.Sprintf("%s added to #%d", emoji, target.Seq)
		if remove {
			done = fmt.Sprintf("%s removed from #%d", emoji, target.Seq)
		}
	}
	return m.request(cmd, func(ctx context.Context) tea.Msg {
		var err error
		if remove {
			_, err = c.Unreact(ctx, conv, target.ID, emoji)
		} else {
			_, err = c.React(ctx, conv, target.ID, emoji)
		}
		if err != nil {
			return noticeMsg(cmd + ": " + errText(err))
		}
		return noticeMsg(done)
	})
}

// target finds the loaded message with seq (0: the newest; mine: the
// user's own newest), not deleted; with seq, one fetched alone too.
func (m *Model) target(seq int64, mine bool) (parley.Message, bool) {
	for i := len(m.msgs) - 1; i >= 0; i-- {
		x := m.msgs[i]
		switch {
		case x.Deleted, mine && x.SenderID != m.me.ID, seq != 0 && x.Seq != seq:
			continue
		}
		return x, true
	}
	if seq != 0 {
		if i := slices.IndexFunc(m.extra, func(x parley.Message) bool { return x.Seq == seq }); i >= 0 {
			if x := m.extra[i]; !x.Deleted && (!mine || x.SenderID == m.me.ID) {
				return x, true
			}
		}
	}
	return parley.Message{}, false
}

// fetchTarget returns the command that fetches message #seq of the open
// conversation when it is older than the loaded history and was not
// fetched yet, then runs again (the command that named it); nil when
// there is nothing to fetch. Without it, a command on a message not
// loaded (PgUp would load it) said it did not exist.
func (m *Model) fetchTarget(cmd string, seq int64, again func() tea.Cmd) tea.Cmd {
	if seq == 0 || m.c == nil || m.view == nil || !m.hasMore || (len(m.msgs) > 0 && seq >= m.msgs[0].Seq) ||
		slices.ContainsFunc(m.extra, func(x parley.Message) bool { return x.Seq == seq }) {
		return nil
	}
	c, conv := m.c, m.open
	return m.request(cmd, func(ctx context.Context) tea.Msg {
		page, err := c.History(ctx, conv, parley.MessageQuery{Before: seq + 1, Limit: 1})
		if err != nil {
			return noticeMsg(cmd + ": " + errText(err))
		}
		msg := parley.Message{Seq: seq, Deleted: true} // none: asked for once
		if len(page.Messages) == 1 && page.Messages[0].Seq == seq {
			msg = page.Messages[0]
		}
		return fetchedMsg{conv: conv, msg: msg, again: again}
	})
}

// fields splits a command line on spaces; "double quotes" keep spaces.
func fields(s string) []string {
	var out []string
	var b strings.Builder
	quoted, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, have = !quoted, true
		case r == ' ' && !quoted:
			if have {
				out = append(out, b.String())
				b.Reset()
				have = false
			}
		default:
			b.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, b.String())
	}
	return out
}

// ErrorText is err as the user should read it (errText): for what the
// command line says before the client starts, such as a failed login.
func ErrorText(err error) string { return errText(err) }

// errText is an error as the user should read it: what happened and,
// where it helps, what to do, never the layers of a Go error
// ("failed to get reader: failed to read frame header: EOF", "context
// deadline exceeded"). A *parley.Error keeps its message when the server
// wrote it for people (invalid, not_found, conflict, ...); codes that only
// say the server had trouble get a sentence of ours.
func errText(err error) string {
	var pe *parley.Error
	var ce *client.CloseError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ce):
		return closeText(ce.Code)
	case errors.Is(err, client.ErrHeartbeatTimeout):
		return "the server stopped answering (the connection went silent)"
	case errors.Is(err, client.ErrDisconnected):
		return "not connected (Ctrl+R reconnects)"
	case errors.Is(err, client.ErrOutboxFull):
		return "too many messages are waiting to be sent; wait for some to go out"
	case errors.As(err, &pe):
		switch pe.Code {
		case parley.EINTERNAL, parley.EBADJSON, parley.EUNKNOWNOP:
			return "the server had a problem; try again later"
		case parley.EUNAVAILABLE:
			return "the server is busy or restarting; try again in a moment"
		case parley.ERATELIMITED:
			return "too many requests; wait a moment and try again"
		case parley.EUNSUPPORTED:
			return "that file is not an image the server accepts (PNG, JPEG, GIF or WebP)"
		}
		return pe.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "the server did not answer in time"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "cannot find the server (" + dnsErr.Name + ")"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return "cannot reach the server (connection refused)"
		}
		return "cannot reach the server"
	}
	if websocket.CloseStatus(err) != -1 {
		return "the server closed the connection"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		return "the connection to the server was lost"
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return "the server did not answer in time"
		}
		return "the connection to the server was lost"
	}
	// Anything else is not ours to explain: a generic sentence (the log,
	// --log-file, has the detail).
	return "something went wrong (see --log-file for details)"
}

// closeText is why the server closed the connection, by its close code
// (docs/protocol.md section 8), and what the user can do about it.
func closeText(code int) string {
	switch code {
	case protocol.CloseShutdown:
		return "the server is restarting or unavailable"
	case protocol.CloseUnauthorized:
		return "the server refused the login (the token is missing, wrong or expired): start parley chat again with a new token or --username"
	case protocol.CloseAuthRevoked:
		return "your access to this server was revoked"
	case protocol.CloseTooManyConnections:
		return "closed because you opened too many connections elsewhere (Ctrl+R takes it back)"
	case protocol.CloseProtocolError, protocol.CloseTooLarge:
		return "the server refused this client (a protocol error): update parley"
	case protocol.CloseSlowConsumer:
		return "the connection fell behind the server"
	case protocol.CloseHeartbeatTimeout, protocol.CloseHelloTimeout:
		return "the connection went silent"
	}
	return "the server closed the connection"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

var _ tea.Model = (*Model)(nil)

// Styles.
var (
	green    = lipgloss.Color("2")
	yellow   = lipgloss.Color("3")
	red      = lipgloss.Color("1")
	grey     = lipgloss.Color("8")
	okStyle  = lipgloss.NewStyle().Foreground(green)
	busy     = lipgloss.NewStyle().Foreground(yellow)
	bad      = lipgloss.NewStyle().Foreground(red)
	dim      = lipgloss.NewStyle().Foreground(grey)
	bold     = lipgloss.NewStyle().Bold(true)
	selected = lipgloss.NewStyle().Reverse(true)
)
