package parley

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var mentionCases = []struct {
	text string
	want []string
}{
	{"hi @bob", []string{"bob"}},
	{"@bob at the start", []string{"bob"}},
	{"@Bob and @BOB are one", []string{"bob"}},
	{"thanks @bob.", []string{"bob"}},
	{"thanks @bob...", []string{"bob"}},
	{"@bob, @carol; (@dave) @émile", []string{"bob", "carol", "dave", "émile"}},
	{"@a.b-c_d is a name", []string{"a.b-c_d"}},
	{"mail bob@example.com", nil},
	{"@@bob is not one", nil},
	{"x@bob is not one", nil},
	{"@ab is too short", nil},
	{"@" + strings.Repeat("x", MaxUsernameRunes+1) + " is too long", nil},
	{"@", nil},
	{"no at sign", nil},
	{"@ＢＯＢ full width", []string{"bob"}},
	{"@bob's hat", []string{"bob"}},
	{"\n@bob\t@carol", []string{"bob", "carol"}},
}

func TestParseMentions(t *testing.T) {
	for _, tt := range mentionCases {
		if got := ParseMentions(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("ParseMentions(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
	var many strings.Builder
	for i := range MaxMentions + 5 {
		many.WriteString(" @user" + strconv.Itoa(i))
	}
	if got := ParseMentions(many.String()); len(got) != MaxMentions {
		t.Errorf("%d mentions kept, want %d", len(got), MaxMentions)
	}
}

// FuzzParseMentions: whatever the text, every name is a normalised
// username that the text names after an '@', at most MaxMentions, no
// two with one key.
func FuzzParseMentions(f *testing.F) {
	for _, tt := range mentionCases {
		f.Add(tt.text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		names := ParseMentions(text)
		if len(names) > MaxMentions {
			t.Fatalf("%d names", len(names))
		}
		keys := map[string]bool{}
		for _, n := range names {
			if norm, err := NormalizeUsername(n); err != nil || norm != n {
				t.Fatalf("name %q is no normalised username (%q, %v)", n, norm, err)
			}
			if keys[NameKey(n)] {
				t.Fatalf("names %q repeat a key", names)
			}
			keys[NameKey(n)] = true
			if !strings.Contains(text, "@") {
				t.Fatalf("a name %q from a text without '@'", n)
			}
		}
	})
}

var termCases = []struct {
	query string
	want  []string
	code  string
}{
	{"hello", []string{"hello"}, ""},
	{"Hello World", []string{"hello", "world"}, ""},
	{`"quoted" OR * NEAR(x) -y:z ^a`, []string{"quoted", "or", "near", "x", "y", "z", "a"}, ""},
	{"it's a-b", []string{"it", "s", "a", "b"}, ""},
	{"dup dup DUP", []string{"dup"}, ""},
	{"Ünïcödé 日本語 42", []string{"ünïcödé", "日本語", "42"}, ""},
	{"a b c d e f g h i j", []string{"a", "b", "c", "d", "e", "f", "g", "h"}, ""},
	// The word rule (docs/protocol.md, "search"): marks belong to the
	// word they follow, emoji parts separate, keys are NFC.
	{"नमस्ते दुनिया", []string{"नमस्ते", "दुनिया"}, ""},
	{"CAFE\u0301 café", []string{"café"}, ""},
	{"1\ufe0f\u20e3word word\U0001f3f3 \U0001f44d\U0001f3fdword", []string{"1", "word"}, ""},
	{"a\u200db\ufe0ec\U000e0067d", []string{"a", "b", "c", "d"}, ""},
	{"bob.smith@example.com https://x.example/p?q=1", []string{"bob", "smith", "example", "com", "https", "x", "p", "q"}, ""},
	{"\u0301 \u0301x", []string{"x"}, ""}, // a mark after a separator is one

	{"", nil, EINVALID},
	{" ,.;:'\" ", nil, EINVALID},
	{"bad\xff", nil, EINVALID},
	{strings.Repeat("a", MaxSearchQueryBytes+1), nil, EINVALID},
}

func TestSearchTerms(t *testing.T) {
	for _, tt := range termCases {
		got, err := SearchTerms(tt.query)
		if ErrorCode(err) != tt.code || !slices.Equal(got, tt.want) {
			t.Errorf("SearchTerms(%q) = %q, %v; want %q, code %q", tt.query, got, err, tt.want, tt.code)
		}
	}
	long, err := SearchTerms(strings.Repeat("é", MaxSearchQueryBytes/2))
	if err != nil || len(long) != 1 || len(long[0]) > MaxSearchTermBytes || !utf8.ValidString(long[0]) {
		t.Errorf("a long word: %q, %v; want one valid word of at most %d bytes", long, err, MaxSearchTermBytes)
	}
}

func TestSearchPrefix(t *testing.T) {
	for q, want := range map[string]bool{"quok*": true, "a b*  ": true, "quok": false, "quok *": false, "*": false, "quok**": false,
		"नमस्*": true, "word\ufe0f*": false, "\u0301*": false} {
		if got := SearchPrefix(q); got != want {
			t.Errorf("SearchPrefix(%q) = %v, want %v", q, got, want)
		}
	}
	want := []HighlightPart{{Text: "quokkas", Match: true}, {Text: " quok"}}
	if got := Highlight("quokkas quok", []string{"quok", "x"}, true); !slices.Equal(got, []HighlightPart{{Text: "quokkas "}, {Text: "quok", Match: true}}) {
		t.Errorf("only the last term is a prefix, the others exact: %+v", got)
	}
	if got := Highlight("quokkas quok", []string{"x", "quokk"}, true); !slices.Equal(got, want) {
		t.Errorf("prefix highlight = %+v, want %+v", got, want)
	}
}

func TestHighlight(t *testing.T) {
	for _, tt := range []struct {
		text  string
		terms []string
		want  []HighlightPart
	}{
		{"a <b>Quokka</b>!", []string{"quokka"}, []HighlightPart{{Text: "a <b>"}, {Text: "Quokka", Match: true}, {Text: "</b>!"}}},
		{"quokkas", []string{"quok"}, []HighlightPart{{Text: "quokkas"}}}, // exact words by default
		{"no match", []string{"zzz"}, []HighlightPart{{Text: "no match"}}},
		{"", []string{"x"}, nil},
		// The query's rule: a decomposed accent matches the precomposed
		// term, and the part is the text's own bytes.
		{"un cafe\u0301!", []string{"café"}, []HighlightPart{{Text: "un "}, {Text: "cafe\u0301", Match: true}, {Text: "!"}}},
		{"1\ufe0f\u20e3word", []string{"word"}, []HighlightPart{{Text: "1\ufe0f\u20e3"}, {Text: "word", Match: true}}},
		{"नमस्ते!", []string{"नमस्ते"}, []HighlightPart{{Text: "नमस्ते", Match: true}, {Text: "!"}}},
	} {
		if got := Highlight(tt.text, tt.terms, false); !slices.Equal(got, tt.want) {
			t.Errorf("Highlight(%q, %q) = %+v, want %+v", tt.text, tt.terms, got, tt.want)
		}
	}
}

// FuzzSearchTerms: the sanitiser's words hold only letters, digits and marks
// (nothing a store's query language reads as syntax), within the
// bounds, and highlighting any text with them gives back the text.
func FuzzSearchTerms(f *testing.F) {
	for _, tt := range termCases {
		f.Add(tt.query, "some text with "+tt.query)
	}
	f.Fuzz(func(t *testing.T, query, text string) {
		terms, err := SearchTerms(query)
		if err != nil {
			if ErrorCode(err) != EINVALID {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		if len(terms) == 0 || len(terms) > MaxSearchTerms {
			t.Fatalf("%d terms", len(terms))
		}
		for _, w := range terms {
			if w == "" || len(w) > MaxSearchTermBytes || !utf8.ValidString(w) {
				t.Fatalf("term %q out of bounds", w)
			}
			for _, r := range w {
				if !IsSearchWordRune(r) {
					t.Fatalf("term %q holds %q", w, r)
				}
			}
		}
		var b strings.Builder
		for _, p := range Highlight(text, terms, SearchPrefix(query)) {
			if p.Text == "" {
				t.Fatalf("an empty part")
			}
			b.WriteString(p.Text)
		}
		if b.String() != text {
			t.Fatalf("highlight parts make %q, not %q", b.String(), text)
		}
	})
}

func TestSearchIndexText(t *testing.T) {
	for text, want := range map[string]string{
		"Hello, World!":          "hello world",
		"नमस्ते  दुनिया":         "नमस्ते दुनिया",
		"Cafe\u0301 CAFÉ":        "café café",
		"1\ufe0f\u20e3word🏳x👍🏽y": "1 word x y",
		"bob@example.com":        "bob example com",
		"🏳 ,.":                   "",
		strings.Repeat("é", 40):  strings.Repeat("é", MaxSearchTermBytes/2),
	} {
		if got := SearchIndexText(text); got != want {
			t.Errorf("SearchIndexText(%q) = %q, want %q", text, got, want)
		}
	}
}

// FuzzSearchIndexText: what a store indexes for a text is the keys of
// the text's words, each one a query finds as it is: the query of a key
// is that key alone (SearchTerms), and the words a query of the whole
// text searches for are the index's first distinct keys, which the text
// matches. A key holds no space and no ASCII but letters and digits, so
// the engines' tokenizers (FTS5 ascii, string_to_array) cut nothing.
func FuzzSearchIndexText(f *testing.F) {
	for _, tt := range termCases {
		f.Add(tt.query)
	}
	f.Add("x\u0345\u0301 \u0130\u212a \u1100\u1161\u11a8 \u0f73")
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return // messages are valid UTF-8
		}
		index := SearchIndexText(text)
		var keys []string
		if index != "" {
			keys = strings.Split(index, " ")
		}
		for _, k := range keys {
			if k == "" || len(k) > MaxSearchTermBytes || !utf8.ValidString(k) {
				t.Fatalf("key %q of %q out of bounds", k, text)
			}
			for _, c := range []byte(k) {
				if c < utf8.RuneSelf && !('a' <= c && c <= 'z' || '0' <= c && c <= '9') {
					t.Fatalf("key %q holds %q", k, c)
				}
			}
			if terms, err := SearchTerms(k); len(k) <= MaxSearchQueryBytes && (err != nil || !slices.Equal(terms, []string{k})) {
				t.Fatalf("the query %q (a key of %q) searches for %q, %v", k, text, terms, err)
			}
		}
		terms, err := SearchTerms(text)
		if len(text) > MaxSearchQueryBytes {
			return
		}
		var distinct []string
		for _, k := range keys {
			if len(distinct) < MaxSearchTerms && !slices.Contains(distinct, k) {
				distinct = append(distinct, k)
			}
		}
		if !slices.Equal(terms, distinct) {
			t.Fatalf("SearchTerms(%q) = %q, %v; the index's first distinct keys are %q", text, terms, err, distinct)
		}
		if _, ok := SearchMatch(text, terms, false); len(terms) > 0 && !ok {
			t.Fatalf("%q does not match its own terms %q", text, terms)
		}
	})
}

// TestSearchASCIIKeys: the only characters other than ASCII letters and
// digits that a word's key makes ASCII are U+212A (Kelvin, k) and U+0130
// (İ, i): PostgreSQL's tail filter (internal/postgres searchTailText)
// maps exactly those, so that a text whose word's key is an ASCII term
// holds that term once they and the ASCII letters are lower-cased. A Go
// release whose Unicode tables add one fails here.
func TestSearchASCIIKeys(t *testing.T) {
	for r := rune(utf8.RuneSelf); r <= utf8.MaxRune; r++ {
		if !IsSearchWordRune(r) || r == 0x212A || r == 0x130 {
			continue
		}
		k := searchKey(string(r))
		for i := 0; i < len(k); i++ {
			if k[i] < utf8.RuneSelf {
				t.Errorf("the key of %U is %q, which holds ASCII", r, k)
				break
			}
		}
	}
	for _, r := range []rune{0x212A, 0x130} {
		if k := searchKey(string(r)); k != "k" && k != "i" {
			t.Errorf("the key of %U is %q", r, k)
		}
	}
}
