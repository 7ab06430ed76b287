package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
)

// joined are emoji sequences whose width terminals disagree on: tmux 3.3a
// draws 👍🏽 in 4 cells, 🏳️‍🌈 in 1, xterm 👩‍👩‍👧 in 6, and the renderer,
// without mode 2027, counts 🇫🇷, ❤️ and 🏳️‍🌈 as 1 where the layout (by
// grapheme cluster) counts 2.
var joined = []string{"👩‍👩‍👧", "🏳️‍🌈", "👍🏽", "🇫🇷", "❤️", "1️⃣", "🧑🏽‍💻", "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f", "🇫"}

// disputed reports whether s holds a code point that joins or modifies
// the one before it as an emoji (what terminals count differently).
func disputed(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r == '\u200d' || r == '\ufe0f' || r == '\u20e3' || r >= 0x1F3FB && r <= 0x1F3FF ||
			r >= 0x1F1E6 && r <= 0x1F1FF || r >= 0xE0020 && r <= 0xE007F
	})
}

// TestEmojiWidth: without the terminal's grapheme clustering (mode 2027),
// a joined emoji sequence (ZWJ, skin tone, flag, VS16, keycap, tags) is
// drawn as its main emoji in the cells the layout gave it, so each line
// measures the same for the renderer and any terminal as for the layout
// (in tmux the read mark written after "👍🏽 and 🇫🇷 end" overwrote "en":
// the renderer counted 3 cells fewer than tmux drew); once the terminal
// reports mode 2027, the sequences are sent whole.
func TestEmojiWidth(t *testing.T) {
	m := newTestModel(t)
	m.convs = conversations()
	m.convs[1].Title = "team " + strings.Join(joined, "")
	m.Update(clientChangedMsg{})
	for i, s := range joined {
		m.msgs = append(m.msgs, parley.Message{ConversationID: "c1", Seq: int64(i + 1), SenderID: "bob", SenderName: "bob",
			Text: "a " + s + " b " + strings.Repeat(s+" ", 12) + "end", CreatedAt: t0})
	}
	m.Update(clientChangedMsg{})
	m.input.SetValue("typed " + strings.Join(joined, " "))
	content := m.View().Content
	if disputed(content) {
		t.Errorf("the screen holds joined emoji sequences without mode 2027:\n%s", ansi.Strip(content))
	}
	for i, line := range strings.Split(content, "\n") {
		if wc, g := ansi.StringWidthWc(line), ansi.StringWidth(line); wc != g || g > 100 {
			t.Errorf("line %d is %d cells by code point, %d by grapheme (screen 100): %q", i, wc, g, ansi.Strip(line))
		}
	}
	s := screen(m)
	for _, want := range []string{"bob: a 👩 b 👩 👩 ", "bob: a 🌈 b ", "bob: a 👍 b ", "bob: a FR b FR FR ", "bob: a ❤  b ❤  ❤  ", "bob: a 1  b ", "bob: a 🧑 b ", "bob: a 🏴 b ", "bob: a F  b "} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}

	m.Update(tea.ModeReportMsg{Mode: ansi.ModeUnicodeCore, Value: ansi.ModeReset})
	s = screen(m)
	for _, j := range joined {
		if want := "bob: a " + j + " b "; !strings.Contains(s, want) {
			t.Errorf("with mode 2027, screen lacks %q:\n%s", want, s)
		}
	}
}

// TestPlainEmoji: each joined sequence becomes a string of the same width
// by grapheme and by code point, without joining code points; other text
// stays as it is.
func TestPlainEmoji(t *testing.T) {
	for in, want := range map[string]string{
		"👩‍👩‍👧": "👩", "🏳️‍🌈": "🌈", "👍🏽": "👍", "🇫🇷": "FR", "❤️": "❤ ", "1️⃣": "1 ", "🧑🏽‍💻": "🧑",
		"🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f": "🏴", "🇫": "F ",
		"x👍🏽y": "x👍y", "\x1b[1mbold\x1b[0m 🇫🇷": "\x1b[1mbold\x1b[0m FR",
		"plain é á 한 👍 ❤": "plain é á 한 👍 ❤", "": "",
		// A skin tone after a space is part of the space's cluster (1
		// cell by grapheme, 3 in tmux): the space stays.
		"a 🏽": "a ",
		// Joiners at the start (nothing to join) are dropped.
		"\u200d\u200dx": "x",
	} {
		got := plainEmoji(in)
		if got != want {
			t.Errorf("plainEmoji(%q) = %q, want %q", in, got, want)
		}
		if ansi.StringWidth(got) != ansi.StringWidth(in) || ansi.StringWidthWc(got) != ansi.StringWidth(got) {
			t.Errorf("plainEmoji(%q) = %q: %d cells by grapheme, %d by code point, was %d", in, got, ansi.StringWidth(got), ansi.StringWidthWc(got), ansi.StringWidth(in))
		}
	}
}

// TestSystemTextQuoted: a rename's system line shows the title as it is
// written (it was Go-quoted: a ZWJ emoji showed as "🏳️\u200d🌈", a quote
// as \"), and control characters in the title or a name as �.
func TestSystemTextQuoted(t *testing.T) {
	e := client.ConversationUpdated{Change: parley.ChangeRenamed, UserName: "al\x07ice",
		Conversation: parley.Conversation{Title: "the 🏳️‍🌈 \"crew\"\x1b[2J"}}
	if got, want := systemText(e, nil), "al\uFFFDice renamed the group to “the 🏳️‍🌈 \"crew\"\uFFFD[2J”"; got != want {
		t.Errorf("systemText = %q, want %q", got, want)
	}
	m := newTestModel(t)
	m.results = &searchList{cmd: "/search", query: "🏳️‍🌈 \"x\"", cursors: []string{""}}
	if got, want := m.resultLines(100)[0], `search "🏳️‍🌈 "x"" · page 1`; !strings.HasPrefix(ansi.Strip(got), want) {
		t.Errorf("the results' head is %q, want it to start %q", ansi.Strip(got), want)
	}
}
