package tui

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// fileLabel is how a file shows in a line: "📎 name (size)", the size in
// binary units (humanize.IBytes: "12 KiB").
func fileLabel(name string, size int64) string {
	return "📎 " + name + " (" + humanize.IBytes(uint64(max(size, 0))) + ")"
}

// attachmentLabel is the label of a file message's attachment.
func attachmentLabel(a *parley.Attachment) string { return fileLabel(a.Name, a.Size) }

// fileCommand runs "/file PATH": it queues the file at PATH (a leading ~/
// is the home directory; surrounding quotes are dropped, so a path may
// hold spaces) as a file message in the open conversation.
func (m *Model) fileCommand(path string) {
	path = strings.Trim(strings.TrimSpace(path), `"'`)
	switch {
	case path == "":
		m.notice = "usage: /file PATH"
		return
	case m.open == "":
		m.notice = "no conversation open"
		return
	case m.c == nil:
		return
	}
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, rest)
		}
	}
	st, err := os.Stat(path)
	switch {
	case err != nil:
		m.notice = "/file: " + err.Error()
		return
	case !st.Mode().IsRegular():
		m.notice = "/file: " + path + " is not a file"
		return
	case st.Size() > client.MaxFileBytes:
		m.notice = "/file: " + path + " is over " + humanize.IBytes(client.MaxFileBytes)
		return
	}
	msg, err := m.c.SendFile(context.Background(), m.open, path)
	if err != nil {
		m.notice = "not sent: " + errText(err)
		return
	}
	m.scroll = 0
	m.outgoing = append(m.outgoing, &outItem{msg: msg, clientID: msg.ClientID(), conv: m.open,
		text: fileLabel(filepath.Base(path), st.Size()), at: msg.CreatedAt(), status: msg.Status()})
}
