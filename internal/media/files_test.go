package media_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media"
)

func TestSanitizeFileName(t *testing.T) {
	long := strings.Repeat("é", 200) + ".pdf" // 404 bytes
	for _, c := range []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\evil.exe`, "evil.exe"},
		{"a/b\\c.txt", "c.txt"},
		{"dir/", "file"},
		{"..", "file"},
		{".", "file"},
		{"", "file"},
		{"   ", "file"},
		{"bad\x00name\r\n.txt", "badname.txt"},
		{"del\x7f\u0085.txt", "del.txt"},
		// Right-to-left override: "invoice\u202Efdp.exe" shows as invoiceexe.pdf.
		{"invoice\u202efdp.exe", "invoicefdp.exe"},
		{"a\u2066b\u2069\u200fc\u061c.txt", "abc.txt"},
		{"zero\u200bwidth\ufeff.txt", "zerowidth.txt"},
		{"line\u2028sep\u2029.txt", "linesep.txt"},
		{"family 👩\u200d👩\u200d👧.png", "family 👩\u200d👩\u200d👧.png"},
		{"bad\xff\xfeutf8.txt", "bad\ufffdutf8.txt"},
		{"trailing.exe. . ", "trailing.exe"},
		{"  spaced name.txt  ", "spaced name.txt"},
		{".bashrc", ".bashrc"},
		{"résumé 2026.docx", "résumé 2026.docx"},
		{long, strings.Repeat("é", 125) + ".pdf"},
	} {
		if got := media.SanitizeFileName(c.in); got != c.want {
			t.Errorf("SanitizeFileName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// checkName fails t unless name is what SanitizeFileName promises.
func checkName(t *testing.T, in, name string) {
	t.Helper()
	switch {
	case name == "":
		t.Fatalf("SanitizeFileName(%q) is empty", in)
	case !utf8.ValidString(name):
		t.Fatalf("SanitizeFileName(%q) = %q: not valid UTF-8", in, name)
	case len(name) > parley.MaxFileNameBytes:
		t.Fatalf("SanitizeFileName(%q) is %d bytes, over %d", in, len(name), parley.MaxFileNameBytes)
	case strings.ContainsAny(name, `/\`):
		t.Fatalf("SanitizeFileName(%q) = %q holds a path separator", in, name)
	case name == "." || name == "..":
		t.Fatalf("SanitizeFileName(%q) = %q", in, name)
	case strings.TrimSpace(name) != name || strings.HasSuffix(name, "."):
		t.Fatalf("SanitizeFileName(%q) = %q: untrimmed", in, name)
	}
	for _, r := range name {
		if unicode.IsControl(r) || (unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d') ||
			unicode.In(r, unicode.Zl, unicode.Zp, unicode.Co) {
			t.Fatalf("SanitizeFileName(%q) = %q holds %U", in, name, r)
		}
	}
	if again := media.SanitizeFileName(name); again != name {
		t.Fatalf("SanitizeFileName is not idempotent: %q -> %q -> %q", in, name, again)
	}
}

// FuzzSanitizeFileName: whatever the input, the result is a non-empty,
// valid, bounded, single path element without control, bidi or other
// invisible characters, and sanitising it again changes nothing.
func FuzzSanitizeFileName(f *testing.F) {
	for _, s := range []string{"report.pdf", "../../x", `a\b`, "a\u202eb", "\xff", "..", " . ", "x\u200dy",
		strings.Repeat("ab", 200) + ".tar.gz", strings.Repeat("é", 300), strings.Repeat("😀", 70) + ".png",
		"name." + strings.Repeat("e", 20), "a\x00b", "\u2028", strings.Repeat(" ", 300) + "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkName(t, in, media.SanitizeFileName(in))
	})
}

func TestFileContentType(t *testing.T) {
	for _, c := range []struct {
		name, data, want string
	}{
		{"plain text", "hello, world\n", "text/plain; charset=utf-8"},
		{"HTML disguised as .txt", "<!DOCTYPE html><script>alert(1)</script>", "application/octet-stream"},
		{"HTML without a doctype", "  <html><body onload=alert(1)>", "application/octet-stream"},
		{"SVG", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>`, "application/octet-stream"},
		{"XML (SVG with a prolog)", `<?xml version="1.0"?><svg onload="alert(1)"/>`, "application/octet-stream"},
		{"a script comment", "<!--<script>alert(1)</script>-->", "application/octet-stream"},
		{"PDF", "%PDF-1.7\n...", "application/pdf"},
		{"PNG", "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"},
		{"zip", "PK\x03\x04rest", "application/zip"},
		{"binary", "\x00\x01\x02\x03", "application/octet-stream"},
	} {
		if got := media.FileContentType([]byte(c.data)); got != c.want {
			t.Errorf("%s: FileContentType = %q, want %q", c.name, got, c.want)
		}
	}
	for _, ct := range []string{"text/html; charset=utf-8", "image/svg+xml", "text/xml; charset=utf-8", "application/javascript", ""} {
		if got := media.SafeFileType(ct); got != "application/octet-stream" {
			t.Errorf("SafeFileType(%q) = %q, want application/octet-stream", ct, got)
		}
	}
}
