package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// /search and /mentions: results are shown as the notice (at most three
// lines), each as "title #seq sender: text" with the matched words in
// [brackets]; #seq names the message for /reply and /react once its
// conversation is open.

// searchShown is how many results a notice lists.
const searchShown = 5

// searchCommand runs "/search [words]" (all conversations) or
// "/mentions".
func (m *Model) searchCommand(cmd, rest string) tea.Cmd {
	if cmd == "/search" && strings.TrimSpace(rest) == "" {
		m.notice = "usage: /search words (end with * to match the start of a word)"
		return nil
	}
	if m.c == nil {
		return nil
	}
	c := m.c
	titles := map[string]string{}
	for _, cv := range m.convs {
		titles[cv.ID] = m.title(cv)
	}
	me := m.me.ID
	return timed(func(ctx context.Context) tea.Msg {
		var (
			page parley.SearchPage
			err  error
		)
		if cmd == "/search" {
			page, err = c.Search(ctx, rest, client.SearchOptions{Limit: searchShown})
		} else {
			page, err = c.Mentions(ctx, "", searchShown)
		}
		if err != nil {
			return noticeMsg(cmd + ": " + errText(err))
		}
		return noticeMsg(resultsNotice(cmd, page, titles, me))
	})
}

// resultsNotice is the notice listing a page of results.
func resultsNotice(cmd string, page parley.SearchPage, titles map[string]string, me string) string {
	if len(page.Results) == 0 {
		if cmd == "/search" {
			return "nothing found"
		}
		return "no mentions of you"
	}
	parts := make([]string, 0, len(page.Results))
	for _, r := range page.Results {
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
		title := titles[msg.ConversationID]
		if title == "" {
			title = "?"
		}
		text = strings.Join(strings.Fields(text), " ") // one line each
		parts = append(parts, fmt.Sprintf("%s #%d %s: %s", title, msg.Seq, msg.SenderName, ansi.Truncate(text, 60, "…")))
	}
	more := ""
	if page.HasMore {
		more = " (more: refine the words)"
	}
	if cmd == "/mentions" {
		return "mentions: " + strings.Join(parts, " · ") + more
	}
	return strings.Join(parts, " · ") + more
}

// mentionsMe reports whether msg mentions the user.
func mentionsMe(msg parley.Message, me string) bool { return slices.Contains(msg.Mentions, me) }
