package tui

import (
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Emoji width.
//
// The layout measures text by grapheme cluster (ansi.StringWidth), as
// modern terminals draw it: 👩‍👩‍👧 is one emoji, 2 cells. Terminals do not
// agree on a sequence that joins or modifies emoji (ZWJ, a skin tone, a
// flag's regional indicators, VS16, a keycap, tag characters): tmux 3.3a
// draws 👍🏽 in 4 cells and 🏳️‍🌈 in 1, xterm 👩‍👩‍👧 in 6, and bubbletea's
// renderer, unless the terminal reports grapheme clustering (DEC mode
// 2027, which the program asks for at start), counts by code point
// (ansi.WcWidth): 🇫🇷 and ❤️ as 1. Where they disagree the cursor drifts,
// and the next change to the line (a read mark) overwrites what was there.
//
// So, until the terminal reports mode 2027, such a sequence is drawn as
// its main emoji, padded to the cells the layout gave it (plainEmoji):
// 👩‍👩‍👧 as 👩, 👍🏽 as 👍, 🏳️‍🌈 as 🌈, 🇫🇷 as FR, ❤️ as "❤ ". Every terminal
// and the renderer count a lone code point alike, so lines stay intact.
// With mode 2027 the sequences are sent whole: the terminal and the
// renderer then count as the layout does.

// joinRune reports whether r joins or modifies the emoji before it, or
// is a regional indicator (two make a flag).
func joinRune(r rune) bool {
	switch {
	case r == '\u200d', // zero-width joiner
		r == '\ufe0f',                // emoji presentation selector (VS16)
		r == '\u20e3',                // combining enclosing keycap
		r >= 0x1F3FB && r <= 0x1F3FF, // skin tones
		r >= 0x1F1E6 && r <= 0x1F1FF, // regional indicators
		r >= 0xE0020 && r <= 0xE007F: // tags (subdivision flags)
		return true
	}
	return false
}

// plainEmoji returns s with each grapheme cluster that holds a joinRune
// replaced by code points every terminal draws in the same cells, as
// many as the cluster takes by grapheme (see above). Other text,
// escape sequences included, is left as it is.
func plainEmoji(s string) string {
	if !strings.ContainsFunc(s, joinRune) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for s != "" {
		cluster, w := ansi.FirstGraphemeCluster(s, ansi.GraphemeWidth)
		if cluster == "" { // not expected: keep going a byte at a time
			cluster = s[:1]
		}
		s = s[len(cluster):]
		if !strings.ContainsFunc(cluster, joinRune) {
			b.WriteString(cluster)
			continue
		}
		b.WriteString(plainCluster(cluster, w))
	}
	return b.String()
}

// plainCluster is one cluster of plainEmoji, w cells wide by grapheme.
func plainCluster(cluster string, w int) string {
	var out string
	if letters, ok := regionLetters(cluster); ok {
		out = letters // a flag: its region's code
	} else {
		// The first emoji that is wide however it is counted (👩 of a
		// family, 🌈 of the rainbow flag), else the first code point
		// (❤ of ❤️, 1 of 1️⃣).
		first, _ := utf8.DecodeRuneInString(cluster)
		out = string(first)
		if joinRune(first) {
			out = "" // a joiner with nothing before it joins nothing
		}
		for _, r := range cluster {
			if !joinRune(r) && sameWidth(string(r)) == 2 {
				out = string(r)
				break
			}
		}
	}
	if n := sameWidth(out); n < 0 || n > w {
		out = "\uFFFD" // counted alike, one cell
	}
	return out + strings.Repeat(" ", max(0, w-sameWidth(out)))
}

// regionLetters is the letters of a cluster of regional indicators only
// (🇫🇷: "FR").
func regionLetters(cluster string) (string, bool) {
	var b strings.Builder
	for _, r := range cluster {
		if r < 0x1F1E6 || r > 0x1F1FF {
			return "", false
		}
		b.WriteRune('A' + r - 0x1F1E6)
	}
	return b.String(), true
}

// sameWidth is s's width when the grapheme and code point counts agree,
// else -1.
func sameWidth(s string) int {
	if g := ansi.StringWidth(s); g == ansi.StringWidthWc(s) {
		return g
	}
	return -1
}
