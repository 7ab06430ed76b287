package tui

import (
	"context"
	"fmt"
	"os"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// Receipts and profiles in the terminal client: the receipt mark of the
// user's own messages, display names, and the /name and /avatar commands.

// receiptMark is ✓ (stored), ✓✓ (delivered to every other member), and
// "✓✓ read" when every other member read it; a group adds how many:
// "✓✓ read by 2/3" while some have not.
func receiptMark(r client.Receipt, kind parley.ConversationKind) string {
	switch {
	case r.Status == client.Read:
		return readStyle.Render("✓✓ read")
	case kind == parley.Group && r.Read > 0:
		return okStyle.Render("✓✓") + dim.Render(fmt.Sprintf(" read by %d/%d", r.Read, r.Recipients))
	case r.Status == client.Delivered:
		return okStyle.Render("✓✓")
	case kind == parley.Group && r.Delivered > 0:
		return okStyle.Render("✓") + dim.Render(fmt.Sprintf(" delivered to %d/%d", r.Delivered, r.Recipients))
	}
	return okStyle.Render("✓")
}

// shownName is the name to show for userID in cv: their display name
// with their unique name when they set one ("Alice L. (alice)": display
// names are not unique), else fallback (the name the server sent).
func shownName(cv parley.Conversation, userID, fallback string) string {
	for _, mb := range cv.Members {
		if mb.UserID == userID && mb.DisplayName != "" && mb.DisplayName != mb.Name {
			return mb.DisplayName + " (" + mb.Name + ")"
		}
	}
	return fallback
}

// readStyle marks a message every other member read: blue, as other
// chat apps do.
var readStyle = lipgloss.NewStyle().Foreground(lipgloss.Color("4")).Bold(true)

// shownTypists is who types in the open conversation, by the names
// shownName gives.
func (m *Model) shownTypists() []client.Typist {
	cv, _ := m.openConv()
	out := make([]client.Typist, len(m.typing))
	for i, t := range m.typing {
		out[i] = t
		out[i].UserName = shownName(cv, t.UserID, t.UserName)
	}
	return out
}

// What /name and /avatar take to clear the profile, and their usage.
const (
	clearName    = "--clear"
	removeAvatar = "--remove"
	nameUsage    = "usage: /name display name (/name " + clearName + " removes it)"
	avatarUsage  = "usage: /avatar image-file (/avatar " + removeAvatar + " removes it)"
)

// profileCommand runs /name and /avatar (rest: what follows the command,
// trimmed).
func (m *Model) profileCommand(cmd, rest string) tea.Cmd {
	// Alone, each shows its usage, as every other command does: typing
	// a bare command to see what it takes must not clear the profile
	// ("/name" cleared the display name and "/avatar" removed the
	// avatar, without a question). Clearing is asked for by name.
	switch {
	case cmd == "/name" && rest == "":
		m.say(nameUsage)
		return nil
	case cmd == "/avatar" && rest == "":
		m.say(avatarUsage)
		return nil
	case cmd == "/name" && rest == clearName:
		rest = ""
	case cmd == "/avatar" && rest == removeAvatar:
		rest = ""
	}
	if m.c == nil {
		return nil
	}
	c := m.c
	switch cmd {
	case "/name":
		name, err := parley.NormalizeProfileName(rest)
		if err != nil {
			m.say("/name: " + errText(err))
			return nil
		}
		return m.request(cmd, func(ctx context.Context) tea.Msg {
			if _, err := c.SetProfile(ctx, &name, nil); err != nil {
				return noticeMsg("/name: " + errText(err))
			}
			if name == "" {
				return noticeMsg("display name cleared")
			}
			return noticeMsg("display name set to " + name)
		})
	case "/avatar":
		path := strings.TrimSpace(rest) // "" after removeAvatar
		return m.request(cmd, func(ctx context.Context) tea.Msg {
			if path == "" {
				empty := ""
				if _, err := c.SetProfile(ctx, nil, &empty); err != nil {
					return noticeMsg("/avatar: " + errText(err))
				}
				return noticeMsg("avatar removed")
			}
			f, err := os.Open(path)
			if err != nil {
				return noticeMsg("/avatar: " + err.Error())
			}
			defer f.Close()
			if _, err := c.SetAvatar(ctx, f); err != nil {
				return noticeMsg("/avatar: " + errText(err))
			}
			return noticeMsg("avatar set")
		})
	}
	return nil
}
