package media

import (
	"bytes"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/parleychat/parley"
)

// DefaultMaxFileBytes is the largest file upload (a file of any type, not
// an image), by default.
const DefaultMaxFileBytes = 25 << 20

// fallbackName is the name of a file whose name sanitises to nothing.
const fallbackName = "file"

// SanitizeFileName returns name fit to show as a file's name, and to put
// in a Content-Disposition header: valid UTF-8 (invalid bytes become
// U+FFFD), only its last path element (after the last '/' or '\'), no
// control characters (C0, C1, DEL), no bidirectional overrides, embeds or
// isolates (U+202A..U+202E, U+2066..U+2069) nor other invisible format
// characters (category Cf, save the zero-width joiner and non-joiner that
// emoji and some scripts need), no line or paragraph separators, no
// leading or trailing spaces, no trailing dots, and at most
// parley.MaxFileNameBytes bytes, cut at a character boundary keeping a
// short extension. A name left empty (or "." / "..") becomes "file".
//
// The result is for display only: a file is stored and served under its
// id. SanitizeFileName(SanitizeFileName(s)) == SanitizeFileName(s).
func SanitizeFileName(name string) string {
	name = strings.ToValidUTF8(name, "\uFFFD")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unsafeRune(r) {
			return -1
		}
		return r
	}, name)
	name = trimName(name)
	if len(name) > parley.MaxFileNameBytes {
		name = trimName(truncateName(name, parley.MaxFileNameBytes))
	}
	if name == "" {
		return fallbackName
	}
	return name
}

// trimName drops surrounding white space and trailing dots (Windows drops
// those when saving, so "a.exe." and "a.exe " would become "a.exe"); a
// name of dots only ("." or "..") is nothing.
func trimName(s string) string {
	for {
		t := strings.TrimRightFunc(strings.TrimLeftFunc(s, unicode.IsSpace), func(r rune) bool {
			return unicode.IsSpace(r) || r == '.'
		})
		if t == s {
			return t
		}
		s = t
	}
}

// unsafeRune reports whether r must not appear in a shown file name.
func unsafeRune(r rune) bool {
	switch {
	case r == '\u200c' || r == '\u200d': // ZWNJ, ZWJ: emoji sequences, scripts
		return false
	case unicode.IsControl(r), unicode.Is(unicode.Cf, r), // includes the bidi controls
		unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r),
		unicode.Is(unicode.Co, r), unicode.Is(unicode.Cs, r),
		r == '\uFEFF', r == '\uFFFE', r == '\uFFFF':
		return true
	}
	return false
}

// truncateName cuts name to at most n bytes at a character boundary,
// keeping its extension when that is short (at most 16 bytes), so
// "report….pdf" stays a ".pdf".
func truncateName(name string, n int) string {
	ext := ""
	if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
		ext = name[i:]
	}
	keep := n - len(ext)
	base := name[:len(name)-len(ext)]
	for keep > 0 && keep < len(base) && !utf8.RuneStart(base[keep]) {
		keep--
	}
	return base[:min(keep, len(base))] + ext
}

// safeTypes are the sniffed types a file is served with: none of them is
// something a browser runs or renders as a document with scripts.
// Anything else, HTML, XML (so SVG) and scripts first, is served as
// application/octet-stream.
var safeTypes = map[string]bool{
	"text/plain; charset=utf-8":     true,
	"text/plain; charset=utf-16be":  true,
	"text/plain; charset=utf-16le":  true,
	"image/png":                     true,
	"image/jpeg":                    true,
	"image/gif":                     true,
	"image/webp":                    true,
	"image/bmp":                     true,
	"image/x-icon":                  true,
	"audio/aiff":                    true,
	"audio/basic":                   true,
	"audio/midi":                    true,
	"audio/mpeg":                    true,
	"audio/wave":                    true,
	"audio/ogg":                     true,
	"video/avi":                     true,
	"video/mp4":                     true,
	"video/webm":                    true,
	"application/ogg":               true,
	"application/pdf":               true,
	"application/zip":               true,
	"application/x-gzip":            true,
	"application/x-rar-compressed":  true,
	"font/ttf":                      true,
	"font/otf":                      true,
	"font/woff":                     true,
	"font/woff2":                    true,
	"font/collection":               true,
	"application/vnd.ms-fontobject": true,
}

// FileContentType is the type a file with this content is stored and
// served as: http.DetectContentType's answer when it is in a fixed list of
// inert types (plain text, images, audio, video, PDF, archives, fonts),
// application/octet-stream otherwise. It is never text/html, text/xml,
// image/svg+xml or a script type, whatever the content or the name. Text
// that starts with '<' (after white space) is markup DetectContentType
// did not recognise (an SVG without an XML prolog, say) and is
// application/octet-stream too, so that even a browser that sniffed
// despite nosniff would find nothing to render.
func FileContentType(data []byte) string {
	ct := http.DetectContentType(data)
	if strings.HasPrefix(ct, "text/") && looksLikeMarkup(data) {
		return "application/octet-stream"
	}
	return SafeFileType(ct)
}

// looksLikeMarkup reports whether the first byte of data that is not
// white space (ASCII, or a UTF-8 byte order mark) is '<'.
func looksLikeMarkup(data []byte) bool {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	data = bytes.TrimLeft(data, "\t\n\x0c\r ")
	return len(data) > 0 && data[0] == '<'
}

// SafeFileType is ct if FileContentType could have returned it, else
// application/octet-stream: the server applies it again when serving, so
// a row written by anything else is still served inert.
func SafeFileType(ct string) string {
	if safeTypes[ct] {
		return ct
	}
	return "application/octet-stream"
}
