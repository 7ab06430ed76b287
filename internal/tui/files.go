package tui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/dustin/go-humanize"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// fileLabel is how a file shows in a line: "📎 name (size)", the size in
// binary units (humanize.IBytes: "12 KiB").
func fileLabel(name string, size int64) string {
	return "📎 " + printable(name, false) + " (" + humanize.IBytes(uint64(max(size, 0))) + ")"
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
		m.say("usage: /file PATH")
		return
	case m.open == "":
		m.say("no conversation open")
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
		m.say("/file: " + err.Error())
		return
	case !st.Mode().IsRegular():
		m.say("/file: " + path + " is not a file")
		return
	case st.Size() > client.MaxFileBytes:
		m.say("/file: " + path + " is over " + humanize.IBytes(client.MaxFileBytes))
		return
	}
	msg, err := m.c.SendFile(context.Background(), m.open, path)
	if err != nil {
		m.say("not sent: " + errText(err))
		return
	}
	m.scroll = 0
	m.outgoing = append(m.outgoing, &outItem{msg: msg, clientID: msg.ClientID(), conv: m.open,
		text: fileLabel(filepath.Base(path), st.Size()), at: msg.CreatedAt(), status: msg.Status()})
}

// saveCommand runs "/save #seq [PATH]": it downloads the file or image of
// message #seq of the open conversation to PATH (a directory, or a file
// that does not exist yet; default: the current directory), under the
// name the server keeps when PATH is a directory. It never overwrites a
// file.
func (m *Model) saveCommand(rest string) tea.Cmd {
	const usage = "usage: /save #seq [PATH] (a file or image message's number; PATH: a directory or a new file, default here)"
	tag, path, _ := strings.Cut(strings.TrimSpace(rest), " ")
	seq, err := strconv.ParseInt(strings.TrimPrefix(tag, "#"), 10, 64)
	if !strings.HasPrefix(tag, "#") || err != nil || seq < 1 {
		m.say(usage)
		return nil
	}
	if m.open == "" {
		m.say("no conversation open")
		return nil
	}
	msg, ok := m.target(seq, false)
	switch {
	case !ok:
		if c := m.fetchTarget("/save", seq, func() tea.Cmd { return m.saveCommand(rest) }); c != nil {
			return c
		}
		m.say("/save: no such message here")
		return nil
	case msg.Attachment == nil:
		m.say(fmt.Sprintf("/save: #%d has no file or image", seq))
		return nil
	case m.c == nil:
		return nil
	}
	path = strings.Trim(strings.TrimSpace(path), `"'`)
	if p, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, p)
		}
	}
	if path == "" {
		path = "."
	}
	att := *msg.Attachment
	name := filepath.Base(filepath.Clean("/" + att.Name)) // the server sanitises it; never a path
	if name == "/" || name == "." {
		name = att.ID
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, name)
	}
	c := m.c
	// A file may take a while (up to the server's limit): say it is
	// under way (nothing did until "saved"). Its result replaces it.
	m.sayWhile(fmt.Sprintf("/save: downloading %s (%s) to %s…", name, humanize.IBytes(uint64(max(0, att.Size))), path))
	return timed(func(ctx context.Context) tea.Msg {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return noticeMsg("/save: " + path + " exists; give another path")
		}
		if err != nil {
			return noticeMsg("/save: " + err.Error())
		}
		n, err := c.DownloadAttachment(ctx, att, f) // no more than the message says
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path) // a part of the file is no file
			return noticeMsg("/save: " + errText(err))
		}
		return noticeMsg(fmt.Sprintf("saved %s (%s) to %s", name, humanize.IBytes(uint64(n)), path))
	})
}
