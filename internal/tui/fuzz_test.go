package tui

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"

	"github.com/parleychat/parley"
)

// FuzzFields feeds arbitrary command lines to the /command splitter and to
// the model's command handler (no client: nothing is sent).
//
// Properties: never panics; no field is empty or holds a quote, or a
// space that was not quoted; valid UTF-8 in gives valid UTF-8 out; quoting
// every field and joining them with spaces splits back to the same fields.
func FuzzFields(f *testing.F) {
	for _, s := range []string{
		`/group "the team" bob  carol`, "/dm", "/group", "/nope", "hello", "/help", "/quit",
		`/dm "bob`, `/group "" bob`, `""`, `"a""b"`, "/dm \tbob", "/dm bob\xff", `/group "a b" "c d" e`,
		"/", " ", `/dm "ünïcødé name" x`,
	} {
		f.Add(s)
	}
	m := New(nil, Config{})
	f.Fuzz(func(t *testing.T, s string) {
		out := fields(s)
		for _, w := range out {
			if strings.Contains(w, `"`) {
				t.Fatalf("fields(%q) = %q: a field holds a quote", s, out)
			}
			if utf8.ValidString(s) && !utf8.ValidString(w) {
				t.Fatalf("fields(%q) = %q: invalid UTF-8 out of valid input", s, out)
			}
		}
		if !strings.Contains(s, `"`) {
			// Without quotes it is a plain split on spaces.
			want := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' })
			if utf8.ValidString(s) && !slices.Equal(out, want) {
				t.Fatalf("fields(%q) = %q, want %q", s, out, want)
			}
			if len(out) == 0 && strings.Trim(s, " ") != "" {
				t.Fatalf("fields(%q) is empty", s)
			}
		}
		quoted := make([]string, len(out))
		for i, w := range out {
			quoted[i] = `"` + w + `"`
		}
		if again := fields(strings.Join(quoted, " ")); !slices.Equal(again, out) {
			t.Fatalf("fields(%q) = %q, but quoted again it splits to %q", s, out, again)
		}
		// What submit hands to command: a trimmed line starting with '/'.
		if line := strings.TrimSpace("/" + s); line != "" {
			m.notice = ""
			m.command(line)
		}
	})
}

// FuzzBaseURL feeds arbitrary server addresses (the --server flag) to
// BaseURL.
//
// Properties: never panics; a failure is EINVALID; a success is an http or
// https URL with a host and no query or fragment, and BaseURL of it is
// itself (the SDK appends its paths to it, so a second pass must not
// change where it points).
func FuzzBaseURL(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:8080", "127.0.0.1:8080", "ws://127.0.0.1:8080/v1/ws", "wss://chat.example.com/v1/ws",
		"https://chat.example.com/", "https://example.com/parley/", "ftp://x", "http://", "://", "",
		"http://h/v1/ws/", "http://h/a?b=c#d", "[::1]:80", "http://[::1]:80/", "http://h/%2F",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := BaseURL(s)
		if err != nil {
			if parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("BaseURL(%q): %v, want an invalid error", s, err)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("BaseURL(%q) = %q: not a base http(s) URL (%v)", s, got, err)
		}
		again, err := BaseURL(got)
		if err != nil || again != got {
			t.Fatalf("BaseURL(%q) = %q, but BaseURL(%q) = %q, %v", s, got, got, again, err)
		}
	})
}

// FuzzPlainEmoji: for valid UTF-8 without control characters,
// plainEmoji leaves no code point that joins or modifies an emoji, and
// keeps the width the layout measured (by grapheme cluster).
func FuzzPlainEmoji(f *testing.F) {
	for _, s := range append(slices.Clone(joined), "a 🏽", "\u200d\u200dx", "x👍🏽y 🇫🇷🇫 ❤️1️⃣", "é한👍", "") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			return
		}
		out := plainEmoji(s)
		if strings.ContainsFunc(out, joinRune) {
			t.Fatalf("plainEmoji(%q) = %q holds a joining code point", s, out)
		}
		if g, w := ansi.StringWidth(out), ansi.StringWidth(s); g != w {
			t.Fatalf("plainEmoji(%q) = %q: %d cells by grapheme, was %d", s, out, g, w)
		}
	})
}
