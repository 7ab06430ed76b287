package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// Group membership in the terminal client: the /rename, /add, /remove,
// /promote, /demote, /leave and /members commands, the system lines drawn
// from conversationUpdated events ("alice added bob"), and the notice for
// a conversation this user was removed from (the SDK refuses sends to it
// with client.ErrRemoved).

// sysLine is a system line: the change an event made, placed after the
// message with Seq after.
type sysLine struct {
	pos   int64
	after int64
	text  string
}

// memberCommands are the commands this file runs, with their usage.
var memberCommands = map[string]string{
	"/rename":  "/rename title",
	"/add":     "/add user1 user2...",
	"/remove":  "/remove user1 user2...",
	"/promote": "/promote user1 user2...",
	"/demote":  "/demote user1 user2...",
	"/leave":   "/leave",
	"/members": "/members",
}

// flagCommands set this user's own flags of the open conversation.
var flagCommands = map[string]struct{ muted, archived *bool }{
	"/mute":      {muted: ptrTo(true)},
	"/unmute":    {muted: ptrTo(false)},
	"/archive":   {archived: ptrTo(true)},
	"/unarchive": {archived: ptrTo(false)},
}

func ptrTo[T any](v T) *T { return &v }

// flagCommand runs one of flagCommands on the open conversation. The
// change reaches this client (and the user's other devices) as a
// FlagsChanged event, which the SDK's list follows.
func (m *Model) flagCommand(cmd string) tea.Cmd {
	f := flagCommands[cmd]
	if m.cannotAct() || m.c == nil {
		return nil
	}
	c, id := m.c, m.open
	return m.request(cmd, func(ctx context.Context) tea.Msg {
		var err error
		if f.muted != nil {
			_, err = c.SetMuted(ctx, id, *f.muted)
		} else {
			_, err = c.SetArchived(ctx, id, *f.archived)
		}
		if err != nil {
			return noticeMsg(cmd + ": " + errText(err))
		}
		return noticeMsg(strings.TrimPrefix(cmd, "/") + "d")
	})
}

// mainList leaves archived conversations out of the list (but the open
// one, and all of them after /archived).
func (m *Model) mainList(convs []parley.Conversation) []parley.Conversation {
	if m.showArchived {
		return convs
	}
	return slices.DeleteFunc(convs, func(cv parley.Conversation) bool { return cv.Archived && cv.ID != m.open })
}

// systemText is the line an event draws; known names the users this
// client saw in its lists (removed users are no longer in the event's
// snapshot). Names and titles are other users' words: printable.
func systemText(e client.ConversationUpdated, known map[string]string) string {
	return printable(systemWords(e, known), false)
}

// systemWords is systemText before printable.
func systemWords(e client.ConversationUpdated, known map[string]string) string {
	name := func(id string) string {
		for _, mb := range e.Conversation.Members {
			if mb.UserID == id {
				return mb.Name
			}
		}
		if n := known[id]; n != "" {
			return n
		}
		return id
	}
	names := make([]string, len(e.UserIDs))
	for i, id := range e.UserIDs {
		names[i] = name(id)
	}
	who, targets := e.UserName, strings.Join(names, ", ")
	if who == "" {
		who = name(e.UserID)
	}
	switch e.Change {
	case parley.ChangeRenamed:
		// Not %q: it wrote a ZWJ emoji's joiner as \u200d.
		return fmt.Sprintf("%s renamed the group to “%s”", who, e.Conversation.Title)
	case parley.ChangeMembersAdded:
		return who + " added " + targets
	case parley.ChangeMembersRemoved:
		if len(e.UserIDs) == 1 && e.UserIDs[0] == e.UserID {
			return who + " left"
		}
		return who + " removed " + targets
	case parley.ChangeMembersPromoted:
		if !slices.ContainsFunc(e.Conversation.Members, func(mb parley.Member) bool { return mb.UserID == e.UserID }) {
			return targets + " is now an owner" // the last owner left
		}
		return who + " made " + targets + " an owner"
	case parley.ChangeMembersDemoted:
		return who + " made " + targets + " a member"
	}
	return ""
}

// noteChange records the system line of a conversationUpdated event.
func (m *Model) noteChange(e client.ConversationUpdated) {
	id := e.Conversation.ID
	m.lastSeen[id] = e.Conversation
	if e.Conversation.Kind != parley.Group || e.Change == parley.ChangeCreated {
		return
	}
	if slices.ContainsFunc(m.system[id], func(l sysLine) bool { return l.pos == e.Pos }) {
		return
	}
	m.system[id] = append(m.system[id], sysLine{pos: e.Pos, after: e.Conversation.LastSeq, text: systemText(e, m.names)})
}

// learnNames remembers the names of the members of the listed
// conversations (one entry per user seen: bounded by the users this user
// shares conversations with), for system lines about removed users.
func (m *Model) learnNames() {
	for _, cv := range m.convs {
		for _, mb := range cv.Members {
			m.names[mb.UserID] = mb.Name
		}
	}
}

func (m *Model) convByID(id string) (parley.Conversation, bool) {
	i := slices.IndexFunc(m.convs, func(cv parley.Conversation) bool { return cv.ID == id })
	if i < 0 {
		return parley.Conversation{}, false
	}
	return m.convs[i], true
}

// removedOpen reports whether this user was removed from the open
// conversation (or left it).
func (m *Model) removedOpen() bool {
	return m.c != nil && m.open != "" && m.c.IsRemoved(m.open)
}

// cannotAct says in the notice why no command can act on the open
// conversation, if one cannot: none is open, or the user was removed
// from it.
func (m *Model) cannotAct() bool {
	switch {
	case m.open == "":
		m.say("no conversation open")
	case m.removedOpen():
		m.say("you are no longer a member of this group")
	default:
		return false
	}
	return true
}

// memberCommand runs one of memberCommands (f[0]) on the open group.
func (m *Model) memberCommand(f []string) tea.Cmd {
	cmd, args := f[0], f[1:]
	cv, ok := m.convByID(m.open)
	switch {
	case m.cannotAct():
		return nil
	case ok && cv.Kind != parley.Group:
		m.say(cmd + " works in groups only")
		return nil
	case cmd == "/members":
		parts := make([]string, len(cv.Members))
		for i, mb := range cv.Members {
			parts[i] = mb.Name
			if mb.Role == parley.RoleOwner {
				parts[i] += " (owner)"
			}
		}
		m.say("members: " + strings.Join(parts, ", "))
		return nil
	case (cmd == "/leave") != (len(args) == 0):
		m.say("usage: " + memberCommands[cmd])
		return nil
	}
	if m.c == nil {
		return nil
	}
	c, lookup, id := m.c, m.cfg.LookupUser, m.open
	return m.request(cmd, func(ctx context.Context) tea.Msg {
		u := protocol.UpdateConversation{ConversationID: id}
		if cmd == "/rename" {
			title := strings.Join(args, " ")
			u.Title = &title
		}
		var ids []string
		if cmd != "/rename" {
			var err error
			if ids, err = userIDs(ctx, lookup, args); err != nil {
				return noticeMsg(cmd + ": " + err.Error())
			}
		}
		switch cmd {
		case "/add":
			u.Add = ids
		case "/remove":
			u.Remove = ids
		case "/promote":
			u.Promote = ids
		case "/demote":
			u.Demote = ids
		case "/leave":
			u.Remove = []string{c.User().ID}
		}
		if _, err := c.UpdateConversation(ctx, u); err != nil {
			return noticeMsg(cmd + ": " + errText(err))
		}
		return noticeMsg("")
	})
}

// userIDs resolves usernames to user ids with lookup (Config.LookupUser);
// without one the names are taken as ids. The error names the user that
// failed.
func userIDs(ctx context.Context, lookup func(context.Context, string) (parley.User, error), names []string) ([]string, error) {
	ids := make([]string, 0, len(names))
	for _, n := range names {
		if lookup == nil {
			ids = append(ids, n)
			continue
		}
		u, err := lookup(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("user %s: %s", n, errText(err))
		}
		ids = append(ids, u.ID)
	}
	return ids, nil
}

// withSystemLines interleaves the open conversation's system lines with
// its message lines: each goes after the message it followed. lineOf
// renders a message.
func (m *Model) withSystemLines(msgs []parley.Message, add func(string), lineOf func(parley.Message) string) {
	sys := m.system[m.open]
	i := 0
	if m.hasMore && len(msgs) > 0 {
		// Lines before the loaded history wait for it.
		for i < len(sys) && sys[i].after < msgs[0].Seq {
			i++
		}
	}
	for _, msg := range msgs {
		for ; i < len(sys) && sys[i].after < msg.Seq; i++ {
			add(dim.Italic(true).Render("— " + sys[i].text))
		}
		add(lineOf(msg))
	}
	for ; i < len(sys); i++ {
		add(dim.Italic(true).Render("— " + sys[i].text))
	}
	if m.removedOpen() {
		add(bad.Render("You are no longer a member of this group: you can read it, but not send to it."))
	}
	if cv, ok := m.convByID(m.open); ok && requestNotice(cv) != "" {
		add(dim.Italic(true).Render(requestNotice(cv)))
	}
}
