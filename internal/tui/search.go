package tui

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// /search and /mentions show a page of results in a panel above the
// input, one numbered line each: "N) title #seq sender: text" with the
// matched words in [brackets]. /next and /prev page through older and
// newer results with the server's cursor, /open N opens result N in its
// conversation (loading older history up to it and marking it with ▶),
// /close hides the panel.

// searchShown is how many results a page lists.
const searchShown = 5

// searchList is the results panel: one page of a search or of the
// mentions, and the cursors that led to it (so /prev can go back).
type searchList struct {
	cmd     string   // "/search" or "/mentions"
	query   string   // the words of a /search
	cursors []string // the cursor of each page up to this one ("" first)
	page    parley.SearchPage
}

// mark is the message /open went to: shown with ▶ while its conversation
// is open; jumping while older history is still being loaded up to it.
type mark struct {
	conv    string
	seq     int64
	jumping bool
}

// searchMsg is the end of a search page fetch.
type searchMsg struct {
	list *searchList
	err  error
}

// searchCommands are the commands of this file.
var searchCommands = map[string]struct{}{"/search": {}, "/mentions": {}, "/next": {}, "/prev": {}, "/open": {}, "/close": {}}

// searchCommand runs "/search words", "/mentions", "/next", "/prev",
// "/open N" and "/close".
func (m *Model) searchCommand(cmd, rest string) tea.Cmd {
	switch cmd {
	case "/search":
		if strings.TrimSpace(rest) == "" {
			m.say("usage: /search words (end with * to match the start of a word)")
			return nil
		}
		return m.fetchResults(&searchList{cmd: cmd, query: rest, cursors: []string{""}})
	case "/mentions":
		return m.fetchResults(&searchList{cmd: cmd, cursors: []string{""}})
	case "/close":
		m.results = nil
		return nil
	}
	if m.results == nil {
		m.say(cmd + ": no results shown; /search words or /mentions first")
		return nil
	}
	s := m.results
	switch cmd {
	case "/next":
		if !s.page.HasMore {
			m.say("no older results")
			return nil
		}
		return m.fetchResults(&searchList{cmd: s.cmd, query: s.query, cursors: append(slices.Clip(s.cursors), s.page.Next)})
	case "/prev":
		if len(s.cursors) < 2 {
			m.say("these are the newest results")
			return nil
		}
		return m.fetchResults(&searchList{cmd: s.cmd, query: s.query, cursors: s.cursors[:len(s.cursors)-1]})
	}
	// /open N
	n, err := strconv.Atoi(strings.TrimSpace(rest))
	if err != nil || n < 1 || n > len(s.page.Results) {
		m.say(fmt.Sprintf("usage: /open N (1 to %d, a result's number)", len(s.page.Results)))
		return nil
	}
	msg := s.page.Results[n-1].Message
	open := m.select_(msg.ConversationID)
	m.mark = mark{conv: msg.ConversationID, seq: msg.Seq, jumping: true}
	return tea.Batch(open, m.refresh())
}

// fetchResults fetches the page of s named by its last cursor.
func (m *Model) fetchResults(s *searchList) tea.Cmd {
	if m.c == nil {
		return nil
	}
	c := m.c
	return m.request(s.cmd, func(ctx context.Context) tea.Msg {
		cursor := s.cursors[len(s.cursors)-1]
		var err error
		if s.cmd == "/search" {
			s.page, err = c.Search(ctx, s.query, client.SearchOptions{Cursor: cursor, Limit: searchShown})
		} else {
			s.page, err = c.Mentions(ctx, cursor, searchShown)
		}
		if err != nil {
			return searchMsg{err: fmt.Errorf("%s: %s", s.cmd, errText(err))}
		}
		return searchMsg{list: s}
	})
}

// showResults handles the end of a fetch: an empty first page is a
// notice, anything else the panel.
func (m *Model) showResults(msg searchMsg) {
	switch {
	case msg.err != nil:
		m.say(msg.err.Error())
	case len(msg.list.page.Results) == 0 && len(msg.list.cursors) == 1:
		m.results = nil
		m.say("nothing found")
		if msg.list.cmd == "/mentions" {
			m.say("no mentions of you")
		}
	default:
		m.results = msg.list
	}
}

// resultLines renders the results panel, each line at most w wide.
func (m *Model) resultLines(w int) []string {
	s := m.results
	if s == nil {
		return nil
	}
	// Not %q: it wrote a ZWJ emoji's joiner as \u200d.
	head := `search "` + printable(s.query, false) + `"`
	if s.cmd == "/mentions" {
		head = "mentions of you"
	}
	head += fmt.Sprintf(" · page %d · /open N goes to a result", len(s.cursors))
	if s.page.HasMore {
		head += " · /next older"
	}
	if len(s.cursors) > 1 {
		head += " · /prev newer"
	}
	head += " · /close"
	out := []string{ansi.Truncate(bold.Render(head), w, "…")}
	if len(s.page.Results) == 0 {
		out = append(out, dim.Render("no more results"))
	}
	for i, r := range s.page.Results {
		out = append(out, ansi.Truncate(fmt.Sprintf("%d) %s", i+1, m.resultText(r)), w, "…"))
	}
	return out
}

// resultText is one result: "title #seq sender: text", the matched words
// in [brackets], on one line.
func (m *Model) resultText(r parley.SearchResult) string {
	msg := r.Message
	text := msg.Text
	if len(r.Highlight) > 0 {
		var b strings.Builder
		for _, p := range r.Highlight {
			if p.Match {
				b.WriteString("[" + p.Text + "]")
			} else {
				b.WriteString(p.Text)
			}
		}
		text = b.String()
	}
	title := "?"
	if cv, ok := m.convByID(msg.ConversationID); ok {
		title = m.title(cv)
	}
	text = strings.Join(strings.Fields(printable(text, false)), " ") // one line each
	return fmt.Sprintf("%s #%d %s: %s", title, msg.Seq, msg.SenderName, text)
}

// followMark loads older history of the open conversation until it holds
// the marked message, then scrolls to it.
func (m *Model) followMark() tea.Cmd {
	if !m.mark.jumping || m.mark.conv != m.open || m.view == nil {
		return nil
	}
	if slices.ContainsFunc(m.msgs, func(x parley.Message) bool { return x.Seq == m.mark.seq }) {
		m.mark.jumping = false
		lines, at := m.historyLines(m.paneWidth())
		if at >= 0 {
			// The marked message in the middle of the pane.
			end := min(len(lines), at+max(1, m.messageRows()/2))
			m.scroll = len(lines) - end
		}
		return nil
	}
	if m.hasMore && (len(m.msgs) == 0 || m.msgs[0].Seq > m.mark.seq) {
		if m.olderHeld {
			return nil // a page failed: PgUp, or its retry_after, goes on
		}
		return m.older()
	}
	m.mark.jumping = false
	m.say(fmt.Sprintf("message #%d is not in this conversation's history", m.mark.seq))
	return nil
}

// marked reports whether msg is the message /open went to.
func (m *Model) marked(msg parley.Message) bool {
	return m.mark.conv != "" && m.mark.conv == m.open && m.mark.seq == msg.Seq
}

// mentionsMe reports whether msg mentions the user.
func mentionsMe(msg parley.Message, me string) bool { return slices.Contains(msg.Mentions, me) }
