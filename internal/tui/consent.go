package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley"
)

// Requests, blocks and consent in the terminal client: /block and
// /unblock a user, /accept and /decline the open request, /privacy to
// show or set who may reach this user. A request is marked "(request)"
// in the list and its pane says how to answer it.

// consentCommands are the commands this file runs, with their usage.
var consentCommands = map[string]string{
	"/block":   "/block user",
	"/unblock": "/unblock user",
	"/accept":  "/accept",
	"/decline": "/decline",
	"/privacy": "/privacy [everyone|contacts]",
}

// consentCommand runs one of consentCommands (f[0]).
func (m *Model) consentCommand(f []string) tea.Cmd {
	cmd, args := f[0], f[1:]
	want := 0
	switch cmd {
	case "/block", "/unblock":
		want = 1
	case "/privacy":
		want = len(args) // zero or one
		if want > 1 {
			want = -1
		}
	}
	if len(args) != want {
		m.say("usage: " + consentCommands[cmd])
		return nil
	}
	if (cmd == "/accept" || cmd == "/decline") && m.open == "" {
		m.say("no conversation open")
		return nil
	}
	if m.c == nil {
		return nil
	}
	c, lookup, open := m.c, m.cfg.LookupUser, m.open
	return m.request(cmd, func(ctx context.Context) tea.Msg {
		switch cmd {
		case "/block", "/unblock":
			ids, err := userIDs(ctx, lookup, args)
			if err != nil {
				return noticeMsg(cmd + ": " + err.Error())
			}
			// Blocking is idempotent on the server: say when it
			// changes nothing ("carol unblocked" of someone never
			// blocked read as if she had been).
			if p, err := c.Privacy(ctx); err == nil {
				was := slices.ContainsFunc(p.Blocked, func(b parley.BlockedUser) bool { return b.UserID == ids[0] })
				switch {
				case cmd == "/block" && was:
					return noticeMsg(args[0] + " is already blocked (/unblock " + args[0] + " undoes it)")
				case cmd == "/unblock" && !was:
					return noticeMsg(args[0] + " is not blocked")
				}
			}
			if cmd == "/block" {
				err = c.Block(ctx, ids[0])
			} else {
				err = c.Unblock(ctx, ids[0])
			}
			if err != nil {
				return noticeMsg(cmd + ": " + errText(err))
			}
			return noticeMsg(args[0] + " " + strings.TrimPrefix(cmd, "/") + "ed")
		case "/accept", "/decline":
			var err error
			if cmd == "/accept" {
				_, err = c.AcceptRequest(ctx, open)
			} else {
				_, err = c.DeclineRequest(ctx, open)
			}
			if err != nil {
				return noticeMsg(cmd + ": " + errText(err))
			}
			_, _ = c.Conversations(ctx)
			if cmd == "/accept" {
				return noticeMsg("request accepted")
			}
			return noticeMsg("request declined")
		}
		// /privacy
		var (
			p   parley.Privacy
			err error
		)
		if len(args) == 1 {
			p, err = c.SetConsent(ctx, parley.Consent(args[0]))
		} else {
			p, err = c.Privacy(ctx)
		}
		if err != nil {
			return noticeMsg(cmd + ": " + errText(err))
		}
		names := make([]string, len(p.Blocked))
		for i, b := range p.Blocked {
			names[i] = b.Name
		}
		blocked := "nobody"
		if len(names) > 0 {
			blocked = strings.Join(names, ", ")
		}
		return noticeMsg(fmt.Sprintf("who may reach you: %s · blocked: %s", p.Consent, blocked))
	})
}

// requestTexts are what the list adds to a request's title (mark) and
// the line its pane ends with (notice), by the request's state; an
// ordinary conversation has neither.
var requestTexts = map[parley.Request]struct{ mark, notice string }{
	parley.RequestPending: {" (request)",
		"A message request: they see no read receipts, typing or presence of yours until you /accept (or reply); /decline refuses their messages, /block them."},
	parley.RequestDeclined: {" (declined)", "You declined this request: /accept to take it back."},
}

// requestMark is what the list adds to a request's title.
func requestMark(cv parley.Conversation) string { return requestTexts[cv.Request].mark }

// requestNotice is the line a request's pane ends with.
func requestNotice(cv parley.Conversation) string { return requestTexts[cv.Request].notice }

// keepDeclined keeps the open conversation in the list when it left it
// for being a request this user declined (the server lists declined
// requests no more): while open, it shows marked "(declined)" with how
// to take it back, instead of a pane without a title. Once another
// conversation is open it is gone, as the server's list has it.
func (m *Model) keepDeclined() {
	if i := slices.IndexFunc(m.convs, func(cv parley.Conversation) bool { return cv.ID == m.open }); i >= 0 {
		m.openSeen = m.convs[i]
		return
	}
	if m.open == "" || m.openSeen.ID != m.open || m.openSeen.Request == "" || m.removedOpen() {
		return
	}
	cv := m.openSeen
	cv.Request = parley.RequestDeclined // a pending one that left the list was declined
	m.convs = append([]parley.Conversation{cv}, m.convs...)
}
