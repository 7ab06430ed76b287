package parley

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Mentions and search (issue 14, items 4 and 6).

// Limits of mentions and search. Changing one is a protocol change.
const (
	// MaxMentions is how many distinct @names of one message the server
	// resolves; later ones are plain text.
	MaxMentions = 32
	// MaxSearchQueryBytes bounds a search query before it is read.
	MaxSearchQueryBytes = 256
	// MaxSearchTerms is how many words of a query are searched for; the
	// rest are ignored.
	MaxSearchTerms = 8
	// MaxSearchTermBytes bounds one word of a query (longer ones are cut).
	MaxSearchTermBytes = 64
	// DefaultSearchLimit and MaxSearchLimit bound a page of search
	// results or of mentions.
	DefaultSearchLimit = 20
	MaxSearchLimit     = 50
)

// Searcher is implemented by stores that search messages and list a
// user's mentions. Both stores in this module implement it (sqlstore.Complete).
type Searcher interface {
	// Search returns userID's page of the messages matching q.Terms in
	// the conversations userID is a member of now (only q.ConversationID
	// when set; ENOTFOUND when userID is not a member of it), newest
	// first. Tombstones never match; an edited message matches its text
	// as it is now.
	Search(ctx context.Context, userID string, q SearchQuery) (SearchPage, error)
	// Mentions returns userID's page of the messages that mention them,
	// in the conversations they are a member of now, newest first.
	Mentions(ctx context.Context, userID string, q MentionQuery) (SearchPage, error)
}

// SearchQuery selects a page of search results. Terms come from
// SearchTerms; Cursor is the Next of the previous page ("" for the first).
type SearchQuery struct {
	Terms []string
	// Prefix matches the last term as the start of a word
	// (SearchPrefix).
	Prefix         bool
	ConversationID string
	Cursor         string
	Limit          int
}

// MentionQuery selects a page of a user's mentions.
type MentionQuery struct {
	Cursor string
	Limit  int
}

// SearchPage is a page of search results or mentions, newest first.
// Next, set when HasMore, is the cursor of the page after it.
type SearchPage struct {
	Results []SearchResult `json:"results"`
	HasMore bool           `json:"has_more"`
	Next    string         `json:"next,omitempty"`
}

// SearchResult is a message found, and its text cut into parts that say
// which words matched: the parts' texts, in order, make up Message.Text
// exactly. A client shows a match by styling its part (never by parsing
// markup out of the text), so a result is safe to render as text.
type SearchResult struct {
	Message   Message         `json:"message"`
	Highlight []HighlightPart `json:"highlight,omitempty"`
	// Cursor is the cursor of the page after this result (a store's,
	// opaque): how the server cuts a page to its byte budget.
	Cursor string `json:"-"`
}

// HighlightPart is a piece of a found message's text; Match marks a word
// the query asked for.
type HighlightPart struct {
	Text  string `json:"text"`
	Match bool   `json:"match,omitempty"`
}

// Words, as search sees them (docs/protocol.md, "search"): one rule, in
// Go, for the query (SearchTerms), the index of both stores
// (SearchIndexText) and the highlights (Highlight), so that no engine's
// tokenizer or Unicode tables decide what a word is.
//
// A word begins with a letter, a digit (any script) or a private-use
// character and goes on while the runes are those or combining marks (Mn,
// Mc): a mark belongs to the word it follows (Devanagari नमस्ते, e + U+0301
// are one word each). Everything else separates words, including what
// emoji are made of: enclosing marks (Me, such as the keycap U+20E3), the
// emoji and text presentation selectors U+FE0E and U+FE0F (Mn, yet never
// part of a word), ZWJ, skin-tone modifiers, tags and the emoji
// themselves, so 1️⃣word, word🏳 and 👍🏽word hold the word "word". A
// word's key, what is indexed and searched for, is the word lower-cased
// (unicode.ToLower per rune), in Unicode NFC (so a precomposed é and e +
// U+0301 match each other), cut to MaxSearchTermBytes.

// IsSearchWordRune is a rune that may be part of a word as search sees
// it: a letter, a digit or number, a private-use character, or a
// combining mark (Mn, Mc) other than U+FE0E and U+FE0F. A mark only
// continues a word (isSearchWordStart): one after a separator is a
// separator.
func IsSearchWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
	}
	return isSearchWordStart(r) || (unicode.In(r, unicode.Mn, unicode.Mc) && r != 0xFE0E && r != 0xFE0F)
}

// isSearchWordStart is a rune that begins a word.
func isSearchWordStart(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r)
}

// nextSearchWord returns the first word of text at or after i, as
// [start, end) byte offsets; start == len(text) when there is none.
func nextSearchWord(text string, i int) (start, end int) {
	for i < len(text) {
		r, n := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, n = utf8.DecodeRuneInString(text[i:])
		}
		if isSearchWordStart(r) {
			return i, runEnd(text, i+n, IsSearchWordRune)
		}
		i += n
	}
	return len(text), len(text)
}

// searchKey is the key of the word w (see above): what the index holds
// and a query's term is.
func searchKey(w string) string {
	ascii := true
	for i := 0; i < len(w); i++ {
		if w[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		w = strings.ToLower(w) // no allocation when already lower case
	} else {
		w = norm.NFC.String(strings.ToLower(w))
	}
	if len(w) > MaxSearchTermBytes {
		cut := MaxSearchTermBytes
		for cut > 0 && !utf8.RuneStart(w[cut]) {
			cut--
		}
		w = w[:cut]
	}
	return w
}

// SearchIndexText is what a store indexes for a message's text: the keys
// of its words, in order (repeats kept), joined by single spaces. A key
// holds no space and no ASCII character but letters and digits, so an
// engine's tokenizer that splits at ASCII punctuation and spaces only
// (FTS5's ascii, PostgreSQL's string_to_array(x, ' ')) gets back exactly
// these keys, whatever its Unicode tables say.
func SearchIndexText(text string) string {
	var b strings.Builder
	for i := 0; ; {
		start, end := nextSearchWord(text, i)
		if start == end {
			return b.String()
		}
		if b.Len() == 0 {
			b.Grow(len(text) - start)
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(searchKey(text[start:end]))
		i = end
	}
}

// SearchTerms is the search query sanitiser: it cuts a user's query into
// the words searched for (see above), their keys (lower-cased, NFC, each
// at most MaxSearchTermBytes bytes: a longer word is cut at a character
// boundary, as the index cuts it), the first MaxSearchTerms distinct
// ones. Everything else (punctuation, quotes, operators of either
// engine's query language) only separates words, so no input reaches a
// store's query parser as syntax. EINVALID for a query over
// MaxSearchQueryBytes, invalid UTF-8, or one with no word.
func SearchTerms(query string) ([]string, error) {
	if len(query) > MaxSearchQueryBytes {
		return nil, invalidf("query is longer than %d bytes", MaxSearchQueryBytes)
	}
	if !utf8.ValidString(query) {
		return nil, invalidf("query is not valid UTF-8")
	}
	var terms []string
	for i := 0; len(terms) < MaxSearchTerms; {
		start, end := nextSearchWord(query, i)
		if start == end {
			break
		}
		if w := searchKey(query[start:end]); !containsString(terms, w) {
			terms = append(terms, w)
		}
		i = end
	}
	if len(terms) == 0 {
		return nil, invalidf("query holds no word to search for")
	}
	return terms, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SearchPrefix reports whether a query asks for its last word as a
// prefix: it ends (spaces aside) with '*' right after a word, as in
// "quok*". Exact words are the default: a prefix of a common word makes
// the index merge every word it begins, which costs far more.
func SearchPrefix(query string) bool {
	q := strings.TrimRightFunc(query, unicode.IsSpace)
	if !strings.HasSuffix(q, "*") {
		return false
	}
	q = q[:len(q)-1]
	// The '*' must end a word: the last word must reach it.
	for i := 0; ; {
		start, end := nextSearchWord(q, i)
		if start == end {
			return false
		}
		if end == len(q) {
			return true
		}
		i = end
	}
}

// Highlight cuts text into parts, marking each word whose key equals one
// of terms, or, with prefix, begins with the last of them. The parts'
// texts make up text.
func Highlight(text string, terms []string, prefix bool) []HighlightPart {
	parts, _ := SearchMatch(text, terms, prefix)
	return parts
}

// SearchMatch is Highlight, and whether text matches the search: every
// term is the key of one of its words (the last, with prefix, the start
// of one), as the stores' indexes match. More than 63 terms never match
// (a search has at most MaxSearchTerms).
func SearchMatch(text string, terms []string, prefix bool) (parts []HighlightPart, ok bool) {
	var (
		plain int    // start of the plain text not yet in parts
		found uint64 // bit i: terms[i] matched
	)
	matches := func(w string) bool {
		k, any := searchKey(w), false
		for i, t := range terms {
			if k == t || (prefix && i == len(terms)-1 && strings.HasPrefix(k, t)) {
				found |= 1 << (i & 63)
				any = true
			}
		}
		return any
	}
	for i := 0; ; {
		start, end := nextSearchWord(text, i)
		if start == end {
			break
		}
		if matches(text[start:end]) {
			if plain < start {
				parts = append(parts, HighlightPart{Text: text[plain:start]})
			}
			parts = append(parts, HighlightPart{Text: text[start:end], Match: true})
			plain = end
		}
		i = end
	}
	if plain < len(text) {
		parts = append(parts, HighlightPart{Text: text[plain:]})
	}
	return parts, len(terms) > 0 && len(terms) < 64 && found == 1<<len(terms)-1
}

// runEnd returns where the run of runes that in accepts, starting at j,
// ends in text (j when text[j] starts no such rune).
func runEnd(text string, j int, in func(rune) bool) int {
	for j < len(text) {
		r, n := utf8.DecodeRuneInString(text[j:])
		if !in(r) {
			break
		}
		j += n
	}
	return j
}

// isNameRune is a rune of a username (NormalizeUsername), before
// normalisation: letters and digits of any script, '_', '-', '.'.
func isNameRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || r == '_' || r == '-' || r == '.'
}

// ParseMentions returns the @names of a message's text, in order of first
// appearance, without repeats (by NameKey), at most MaxMentions. The
// grammar (docs/protocol.md, "Mentions"):
//
//   - a mention is '@' followed by a name: a maximal run of letters,
//     digits (any script), combining marks, '_', '-' and '.';
//   - the '@' must begin the text or follow a character that cannot be
//     in a name and is not '@' (so "bob@example.com" and "@@bob" mention
//     nobody);
//   - dots ending the run are not part of the name ("thanks @bob." names
//     "bob");
//   - the name must be a valid username (NormalizeUsername: 3..32
//     characters after PRECIS); anything else is plain text.
//
// The returned names are normalised; the store resolves them to the
// conversation's members by NameKey.
func ParseMentions(text string) []string {
	if strings.IndexByte(text, '@') < 0 {
		return nil // the common case costs one scan
	}
	var (
		names []string
		keys  []string
		prev  rune = -1 // the rune before i; -1 at the start
	)
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		if r != '@' || (prev != -1 && (isNameRune(prev) || prev == '@')) {
			prev = r
			i += n
			continue
		}
		j := runEnd(text, i+n, isNameRune)
		name := strings.TrimRight(text[i+n:j], ".")
		if name != "" {
			if norm, err := NormalizeUsername(name); err == nil {
				if k := NameKey(norm); !containsString(keys, k) {
					names, keys = append(names, norm), append(keys, k)
					if len(names) == MaxMentions {
						return names
					}
				}
			}
		}
		// The name's last rune (or the '@' when none) precedes what
		// follows.
		prev, _ = utf8.DecodeLastRuneInString(text[:j])
		i = j
	}
	return names
}
