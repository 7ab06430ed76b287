package tui

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// The screen, top to bottom:
//
//	Conversations      │ bob ● online
//	● bob            2 │ 10:02 bob: hello
//	# team             │ 10:03 alice: hi ✓
//	                   │
//	bob is typing… · notice
//	> input
//	● connected as alice   Tab switch · PgUp older · ...

// View renders the screen.
func (m *Model) View() tea.View {
	bottom := m.bottomLines()
	paneH := max(2, m.height-len(bottom)-2)
	lw, rw := m.listWidth(), m.paneWidth()

	left := m.listLines(lw, paneH)
	right := m.paneLines(rw, paneH)
	lines := make([]string, 0, m.height)
	for i := 0; i < paneH; i++ {
		if lw > 0 {
			lines = append(lines, pad(left[i], lw)+dim.Render("│")+right[i])
		} else {
			lines = append(lines, right[i])
		}
	}
	lines = append(lines, bottom...)
	inputRow := len(lines)
	lines = append(lines, ansi.Truncate(m.input.View(), m.width, ""))
	lines = append(lines, m.statusLine())

	content := strings.Join(lines, "\n")
	if !m.graphemes {
		content = plainEmoji(content) // see width.go
	}
	v := tea.NewView(content)
	v.AltScreen = true
	v.WindowTitle = "parley"
	if c := m.input.Cursor(); c != nil && !m.nav {
		c.Y = inputRow
		v.Cursor = c
	}
	return v
}

// listWidth is the conversation list's width (0: hidden on a narrow screen).
func (m *Model) listWidth() int {
	if m.width < 40 {
		return 0
	}
	return min(28, max(16, m.width/4))
}

// paneWidth is the message pane's width.
func (m *Model) paneWidth() int {
	if lw := m.listWidth(); lw > 0 {
		return max(10, m.width-lw-1)
	}
	return max(10, m.width)
}

// messageRows is how many lines of history fit.
func (m *Model) messageRows() int {
	return max(1, m.height-len(m.bottomLines())-2-1)
}

// listLines renders the conversation list, n lines of width w.
func (m *Model) listLines(w, n int) []string {
	out := []string{bold.Render(ansi.Truncate("Conversations", w, "…"))}
	switch {
	case len(m.convs) > 0:
	case !m.loaded && !m.status.Connected():
		// Not "loading…": nothing is, until there is a connection.
		out = append(out, dim.Render(ansi.Truncate("not connected yet", w, "…")))
	case !m.loaded:
		// Nothing is known yet: "none" would be a guess.
		out = append(out, dim.Render(ansi.Truncate("loading…", w, "…")))
	default:
		out = append(out, dim.Render(ansi.Truncate("none yet: /dm user", w, "…")))
	}
	// Keep the selected conversation on screen.
	first := 0
	if i := slices.IndexFunc(m.convs, func(cv parley.Conversation) bool { return cv.ID == m.open }); i >= n-1 {
		first = i - (n - 2)
	}
	for _, cv := range m.convs[min(first, len(m.convs)):] {
		if len(out) == n {
			break
		}
		dot := m.dot(cv)
		count := ""
		if cv.UnreadCount >= parley.MaxUnreadCount {
			count = fmt.Sprintf(" %d+", parley.MaxUnreadCount) // the server counts no further
		} else if cv.UnreadCount > 0 {
			count = fmt.Sprintf(" %d", cv.UnreadCount)
		}
		if cv.UnreadMentions > 0 {
			count = " @" + strings.TrimSpace(count) // someone mentioned you
		}
		title := m.title(cv)
		if cv.Muted {
			title += " (muted)"
		}
		if cv.Archived {
			// Listed while /archived shows them, or while open.
			title += " (archived)"
		}
		title += requestMark(cv)
		name := ansi.Truncate(title, max(1, w-2-len(count)), "…")
		line := dot + " " + name
		gap := max(0, w-lipgloss.Width(line)-len(count))
		line += strings.Repeat(" ", gap) + bold.Render(count)
		if cv.ID == m.open {
			line = selected.Render(ansi.Strip(line))
		}
		out = append(out, line)
	}
	for len(out) < n {
		out = append(out, "")
	}
	return out
}

// dot is a conversation's presence mark: for a direct conversation whether
// the other person is online, "#" for a group.
func (m *Model) dot(cv parley.Conversation) string {
	if cv.Kind != parley.Direct {
		return dim.Render("#")
	}
	if other := m.other(cv); other != "" && m.online[other] {
		return okStyle.Render("●")
	}
	return dim.Render("○")
}

// other is the other member of a direct conversation.
func (m *Model) other(cv parley.Conversation) string {
	for _, mb := range cv.Members {
		if mb.UserID != m.me.ID {
			return mb.UserID
		}
	}
	return ""
}

// title names a conversation: a group's title, or the other person.
func (m *Model) title(cv parley.Conversation) string {
	if cv.Kind == parley.Direct {
		for _, mb := range cv.Members {
			if mb.UserID != m.me.ID {
				return mb.Name
			}
		}
	}
	if cv.Title != "" {
		return printable(cv.Title, false)
	}
	return "(untitled)"
}

func (m *Model) openConv() (parley.Conversation, bool) {
	i := slices.IndexFunc(m.convs, func(cv parley.Conversation) bool { return cv.ID == m.open })
	if i < 0 {
		return parley.Conversation{}, false
	}
	return m.convs[i], true
}

// paneLines renders the open conversation: a header and the history,
// n lines of width w, newest at the bottom.
func (m *Model) paneLines(w, n int) []string {
	out := make([]string, 0, n)
	cv, ok := m.openConv()
	switch {
	case m.open == "":
		out = append(out, dim.Render(ansi.Truncate("no conversation open", w, "…")))
	case !ok && m.removedOpen():
		out = append(out, ansi.Truncate(bold.Render(m.title(m.lastSeen[m.open]))+" "+bad.Render("(you are no longer a member)"), w, "…"))
	case !ok:
		out = append(out, bold.Render("…"))
	default:
		head := bold.Render(m.title(cv)) + " " + m.about(cv)
		if m.below > 0 {
			head += " " + busy.Render(fmt.Sprintf("↓ %d new (PgDn)", m.below))
		}
		out = append(out, ansi.Truncate(head, w, "…"))
	}
	rows := n - 1
	lines := m.messageLines(w)
	end := max(0, len(lines)-m.scroll)
	start := max(0, end-rows)
	for i := 0; i < rows-(end-start); i++ {
		out = append(out, "")
	}
	out = append(out, lines[start:end]...)
	return out
}

// about says who is in a conversation: presence for a direct one, member
// counts for a group.
func (m *Model) about(cv parley.Conversation) string {
	if !m.status.Connected() && m.c != nil {
		if cv.Kind == parley.Direct {
			return dim.Render("(presence unknown while not connected)")
		}
		return dim.Render(fmt.Sprintf("%d %s", len(cv.Members), plural(len(cv.Members), "member", "members")))
	}
	if cv.Kind == parley.Direct {
		if m.online[m.other(cv)] {
			return okStyle.Render("● online")
		}
		return dim.Render("○ offline")
	}
	on := 0
	for _, mb := range cv.Members {
		if mb.UserID != m.me.ID && m.online[mb.UserID] {
			on++
		}
	}
	return dim.Render(fmt.Sprintf("%d %s, %d online", len(cv.Members), plural(len(cv.Members), "member", "members"), on))
}

// messageLines renders the open conversation's history wrapped to w:
// loaded messages, then this client's messages not stored yet.
func (m *Model) messageLines(w int) []string {
	lines, _ := m.historyLines(w)
	return lines
}

// historyLines is messageLines, and the index of the first line of the
// marked message (-1: not shown).
func (m *Model) historyLines(w int) ([]string, int) {
	at := -1
	if m.open == "" {
		return nil, at
	}
	var out []string
	add := func(s string) {
		for _, l := range strings.Split(ansi.Wrap(s, w, " "), "\n") {
			out = append(out, ansi.Truncate(l, w, ""))
		}
	}
	switch {
	case m.view == nil && m.msgs == nil && !m.status.Connected():
		// Not "loading…": nothing loads until there is a connection
		// (it said "loading…" for as long as the server was away).
		add(dim.Render("not loaded: waiting for the connection to the server (Ctrl+R reconnects now)"))
	case m.view == nil && m.msgs == nil:
		add(dim.Render("loading…"))
	case m.loadMore && !m.status.Connected():
		add(dim.Render("older messages: waiting for the connection to the server (Ctrl+R reconnects now)"))
	case m.loadMore:
		add(dim.Render("loading older messages…"))
	case m.hasMore && m.olderHeld:
		add(dim.Render("↑ older messages could not be loaded (PgUp tries again)"))
	case m.hasMore:
		add(dim.Render("↑ PgUp for older messages"))
	case len(m.msgs) > 0:
		add(dim.Render("— start of the conversation —"))
	case !slices.ContainsFunc(m.outgoing, func(o *outItem) bool { return o.conv == m.open }):
		// Loaded and empty: an empty pane looked like one still loading.
		add(dim.Render("no messages yet: say hello"))
	}
	// A line with the day before each day's first message: a message
	// shows only its time.
	day := ""
	newDay := func(at time.Time) {
		at = at.Local()
		if d := at.Format(time.DateOnly); d != day {
			day = d
			add(dim.Render("── " + dayLabel(at, m.cfg.Now()) + " ──"))
		}
	}
	cv, _ := m.openConv()
	m.withSystemLines(m.msgs, add, func(msg parley.Message) string {
		newDay(msg.CreatedAt)
		if m.marked(msg) {
			at = len(out)
			return selected.Render("▶") + " " + m.messageLine(msg, cv)
		}
		return m.messageLine(msg, cv)
	})
	for _, o := range m.outgoing {
		if o.conv != m.open {
			continue
		}
		newDay(o.at)
		line := dim.Render(o.at.Local().Format("15:04")) + " " + bold.Render(m.me.Name) + ": " + o.text + " "
		switch o.status {
		case client.Sending:
			line += busy.Render("… sending")
		case client.Sent:
			line += okStyle.Render("✓")
		case client.Failed:
			reason := "failed"
			if o.err != nil {
				reason = "failed: " + errText(o.err)
			}
			line += bad.Render("✗ " + reason)
			if resendHelps(o.err) {
				line += dim.Render(" (Ctrl+E resends)")
			}
		}
		add(line)
	}
	return out, at
}

// resendHelps reports whether sending a failed message again may succeed:
// after a refusal for the moment (a rate limit, an overloaded or failing
// server) or a lost link, yes; after one for the message or the
// conversation (not a member, blocked, too large, invalid), the same
// message is refused again, so the screen does not offer it (Ctrl+E
// still resends, for a user who changed what stood in the way).
func resendHelps(err error) bool {
	switch parley.ErrorCode(err) {
	case "", parley.ERATELIMITED, parley.EUNAVAILABLE, parley.EINTERNAL:
		return true
	}
	return false
}

// printable makes text from other users safe to print: a control
// character (an escape sequence's ESC, a carriage return, a bell, C1
// codes) would be run by the terminal, so another user could clear the
// screen, draw fake lines or retitle the window; each shows as "�".
// So does an explicit bidirectional override, embedding or isolate
// (U+202A-U+202E, U+2066-U+2069): it reorders the rest of the line as the
// terminal draws it, so a message could show its text reversed, or
// seem to come from another name. (The marks U+200E and U+200F, which
// only nudge neutral characters in right-to-left text, stay.) Tabs
// become spaces; line breaks stay when lines is true (a message's lines
// are wrapped one by one), else they become spaces.
func printable(s string, lines bool) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' && lines:
			return r
		case r == '\n' || r == '\t':
			return ' '
		case unsafeRune(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// unsafeRune reports whether r must not reach the terminal as it is
// (printable).
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || r >= '\u202A' && r <= '\u202E' || r >= '\u2066' && r <= '\u2069'
}

// dayLabel names the local day of t as people say it, seen at now:
// "Today", "Yesterday", "Sunday 22 November", with the year when it is
// not now's.
func dayLabel(t, now time.Time) string {
	t, now = t.Local(), now.Local()
	start := func(x time.Time) time.Time { return time.Date(x.Year(), x.Month(), x.Day(), 0, 0, 0, 0, time.Local) }
	switch days := start(now).Sub(start(t)).Round(24*time.Hour) / (24 * time.Hour); {
	case days == 0:
		return "Today"
	case days == 1:
		return "Yesterday"
	case t.Year() != now.Year():
		return t.Format("Monday 2 January 2006")
	}
	return t.Format("Monday 2 January")
}

// messageLine renders one stored message; the user's own get a receipt
// mark (receiptMark).
func (m *Model) messageLine(msg parley.Message, cv parley.Conversation) string {
	at := dim.Render(msg.CreatedAt.Local().Format("15:04"))
	name := bold.Render(shownName(cv, msg.SenderID, msg.SenderName))
	if msg.Deleted {
		// Its #seq stays: replies quote it by that number.
		return at + " " + dim.Render(fmt.Sprintf("#%d", msg.Seq)) + " " + name + ": " + dim.Render("(message deleted)")
	}
	text := printable(msg.Text, true)
	if msg.Type == parley.Image && msg.Attachment != nil {
		img := dim.Render(fmt.Sprintf("[image %dx%d]", msg.Attachment.Width, msg.Attachment.Height))
		text = strings.TrimSpace(img + " " + text)
	}
	if msg.Type == parley.File && msg.Attachment != nil {
		text = strings.TrimSpace(attachmentLabel(msg.Attachment) + " " + text)
	}
	if q := msg.ReplyTo; q != nil && q.Hidden {
		// Its parent's sender is one this user blocked: nothing of it
		// is known, not even who wrote it.
		text = dim.Render("↪ a hidden message") + " — " + text
	} else if q != nil {
		quote := "(deleted)"
		if !q.Deleted {
			quote = printable(q.Text, false)
			if q.Type == parley.Image || q.Type == parley.File {
				quote = strings.TrimSpace("[" + string(q.Type) + "] " + quote)
			}
		}
		// The quote in “quotes” and a dash before the reply: without
		// colour (or copied) the two ran together.
		text = dim.Render(fmt.Sprintf("↪ %s #%d “%s”", q.SenderName, q.Seq, ansi.Truncate(quote, 40, "…"))) + " — " + text
	}
	if msg.EditedAt != nil {
		text += " " + dim.Render("(edited)")
	}
	if mentionsMe(msg, m.me.ID) {
		name = okStyle.Render("@") + name
	}
	for _, r := range msg.Reactions {
		mark := fmt.Sprintf("%s %d", r.Emoji, r.Count)
		if r.Me {
			mark = okStyle.Render(mark)
		}
		text += "  " + mark
	}
	line := at + " " + dim.Render(fmt.Sprintf("#%d", msg.Seq)) + " " + name + ": " + text
	if m.me.ID != "" && msg.SenderID == m.me.ID {
		line += " " + receiptMark(client.ReceiptOf(cv, msg), cv.Kind)
	}
	return line
}

// bottomLines are the lines between the panes and the input: who is
// typing and the last notice (wrapped, at most half the screen), under
// the results panel of /search and /mentions (search.go).
func (m *Model) bottomLines() []string {
	var parts []string
	if t := typingText(m.shownTypists()); t != "" {
		parts = append(parts, dim.Italic(true).Render(t))
	}
	if m.notice != "" {
		parts = append(parts, busy.Render(m.notice))
	}
	s := strings.Join(parts, dim.Render(" · "))
	w := max(10, m.width)
	results := m.resultLines(w)
	if s == "" {
		if results != nil {
			return results
		}
		return []string{""}
	}
	// At most half the screen (at least 3 lines), and for /help, which
	// the user asked to read (and is long), all of it but the pane's
	// header and a line. A notice cut short ends with "…".
	lines := strings.Split(ansi.Wrap(s, w, " "), "\n")
	n := max(3, (m.height-len(results))/2-1)
	if m.notice == helpText {
		n = max(n, m.height-len(results)-4)
	}
	if len(lines) > n {
		lines = lines[:n]
		lines[n-1] = ansi.Truncate(lines[n-1], w-1, "") + "…"
	}
	return append(results, lines...)
}

// typingText is "bob is typing…", "bob and carol are typing…", "3 people
// are typing…".
func typingText(ts []client.Typist) string {
	switch len(ts) {
	case 0:
		return ""
	case 1:
		return ts[0].UserName + " is typing…"
	case 2:
		return ts[0].UserName + " and " + ts[1].UserName + " are typing…"
	}
	return fmt.Sprintf("%d people are typing…", len(ts))
}

// statusLine shows the connection: green connected, yellow connecting or
// reconnecting (with the countdown and attempt), red disconnected; then
// key hints.
func (m *Model) statusLine() string {
	st := m.status
	var s string
	switch st.State {
	case client.Connected:
		s = okStyle.Render("● connected")
		if m.me.Name != "" {
			s += " as " + m.me.Name
		}
	case client.FeatureThrottled:
		s = okStyle.Render("● connected")
		var fs []string
		for f, until := range st.Throttled {
			fs = append(fs, fmt.Sprintf("%s paused for %s", f, secs(until.Sub(m.cfg.Now()).Seconds())))
		}
		slices.Sort(fs)
		s += busy.Render(" (" + strings.Join(fs, ", ") + ")")
	case client.Connecting:
		t := "◌ connecting…"
		if st.Attempt > 1 {
			t = fmt.Sprintf("◌ connecting… (attempt %d)", st.Attempt)
		}
		s = busy.Render(t)
		if st.Err != nil {
			s += dim.Render(" last error: " + errText(st.Err))
		}
	case client.Reconnecting:
		left := st.NextRetryAt.Sub(m.cfg.Now()).Seconds()
		t := fmt.Sprintf("◌ reconnecting in %s (attempt %d)", secs(left), st.Attempt)
		if left <= 0 {
			t = fmt.Sprintf("◌ reconnecting now (attempt %d)", st.Attempt)
		}
		s = busy.Render(t) + " " + bold.Render("Ctrl+R retry now")
		if st.Err != nil {
			s += dim.Render(" · " + errText(st.Err))
		}
	default:
		t := "✗ disconnected"
		if st.Err != nil {
			t += ": " + errText(st.Err)
		}
		s = bad.Render(t) + " " + bold.Render("Ctrl+R reconnect")
	}
	hints := "Tab switch · PgUp older · Ctrl+E resend · Esc keys · Ctrl+C quit"
	if m.nav {
		hints = "j/k switch · e resend · r reconnect · i/Enter type · q quit"
	}
	if gap := m.width - lipgloss.Width(s) - lipgloss.Width(hints); gap >= 2 {
		s += strings.Repeat(" ", gap) + dim.Render(hints)
	}
	return ansi.Truncate(s, m.width, "…")
}

// secs is a whole number of seconds, rounded up ("4 s").
func secs(f float64) string {
	return fmt.Sprintf("%d s", int(math.Max(0, math.Ceil(f))))
}

// pad pads or cuts s to exactly w cells.
func pad(s string, w int) string {
	s = ansi.Truncate(s, w, "")
	return s + strings.Repeat(" ", max(0, w-lipgloss.Width(s)))
}
