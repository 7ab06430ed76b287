package storetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// Mentions and search (issue 14, items 4 and 6).

// word returns a word no other test sends.
func word(prefix string) string { return fmt.Sprintf("%s%d", prefix, clientCount.Add(1)) }

// search runs parley.Searcher.Search with the terms of query.
func search(t *testing.T, s parley.Store, u parley.User, query, convID, cursor string, limit int) (parley.SearchPage, error) {
	t.Helper()
	terms, err := parley.SearchTerms(query)
	if err != nil {
		t.Fatalf("SearchTerms(%q): %v", query, err)
	}
	return optional[parley.Searcher](t, s).Search(ctx(t), u.ID, parley.SearchQuery{Terms: terms, Prefix: parley.SearchPrefix(query), ConversationID: convID, Cursor: cursor, Limit: limit})
}

// resultIDs follows a search's or mentions' pages (limit each) to the
// end and returns the ids found, failing on a repeat.
func resultIDs(t *testing.T, page func(cursor string) (parley.SearchPage, error)) []string {
	t.Helper()
	var (
		out    []string
		cursor string
	)
	for range 1000 {
		p, err := page(cursor)
		if err != nil {
			t.Fatalf("page after %q: %v", cursor, err)
		}
		for _, r := range p.Results {
			if slices.Contains(out, r.Message.ID) {
				t.Fatalf("message %s came twice", r.Message.ID)
			}
			out = append(out, r.Message.ID)
		}
		if !p.HasMore {
			return out
		}
		if p.Next == "" || len(p.Results) == 0 {
			t.Fatalf("page with has_more has next %q and %d results", p.Next, len(p.Results))
		}
		cursor = p.Next
	}
	t.Fatal("pages never end")
	return nil
}

func searchIDs(t *testing.T, s parley.Store, u parley.User, query, convID string, limit int) []string {
	t.Helper()
	return resultIDs(t, func(c string) (parley.SearchPage, error) { return search(t, s, u, query, convID, c, limit) })
}

func mentionIDs(t *testing.T, s parley.Store, u parley.User, limit int) []string {
	t.Helper()
	return resultIDs(t, func(c string) (parley.SearchPage, error) {
		return optional[parley.Searcher](t, s).Mentions(ctx(t), u.ID, parley.MentionQuery{Cursor: c, Limit: limit})
	})
}

func msgIDs(ms ...parley.Message) []string {
	return field(ms, func(m parley.Message) string { return m.ID })
}

// testMentions: @names resolve to members (not the sender, not
// outsiders, not e-mail addresses), on the message, its event, its
// replay and history; the mentioned list them; unread mentions are
// derived from read positions; an edit re-resolves; a delete and leaving
// the conversation take them away.
func testMentions(t *testing.T, s parley.Store) {
	a, b, c, d := newUser(t, s, "menta"), newUser(t, s, "mentb"), newUser(t, s, "mentc"), newUser(t, s, "mentd")
	conv := newGroup(t, s, a, "mentions", b, c)
	text := fmt.Sprintf("hi @%s, @%s and @%s; mail %s@example.com; @%s.", strings.ToUpper(b.Name), d.Name, a.Name, c.Name, c.Name)
	m, events, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: text})
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	want := ids(b, c)
	if !slices.Equal(m.Mentions, want) {
		t.Errorf("Mentions = %v, want %v (b by any case, c after the e-mail; not the sender, not the outsider)", m.Mentions, want)
	}
	if e := oneEvent(t, "send", events, parley.EventNewMessage); !slices.Equal(e.Message.Mentions, want) {
		t.Errorf("newMessage mentions = %v", e.Message.Mentions)
	}
	if h := messageByID(t, s, b, conv.ID, m.ID); !slices.Equal(h.Mentions, want) {
		t.Errorf("history mentions = %v", h.Mentions)
	}
	replayed := false
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Type == parley.EventNewMessage && e.Message.ID == m.ID {
			replayed = slices.Equal(e.Message.Mentions, want)
		}
	}
	if !replayed {
		t.Errorf("the replayed newMessage has no mentions %v", want)
	}
	plain := send(t, s, conv.ID, a, "no mention here @nobody1")
	if len(plain.Mentions) != 0 {
		t.Errorf("plain message mentions %v", plain.Mentions)
	}
	unread := func(u parley.User) (int64, int64) {
		t.Helper()
		cv := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), u.ID, conv.ID))
		list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), u.ID))
		if len(list) != 1 || list[0].UnreadMentions != cv.UnreadMentions {
			t.Errorf("Conversations and Conversation disagree: %+v vs %d", list, cv.UnreadMentions)
		}
		return cv.UnreadCount, cv.UnreadMentions
	}
	if n, k := unread(b); n != 2 || k != 1 {
		t.Errorf("b: unread %d, mentions %d; want 2, 1", n, k)
	}
	if got := mentionIDs(t, s, b, 10); !slices.Equal(got, msgIDs(m)) {
		t.Errorf("b's mentions = %v, want %v", got, msgIDs(m))
	}
	if got := mentionIDs(t, s, d, 10); len(got) != 0 {
		t.Errorf("the outsider's mentions = %v", got)
	}
	if got := mentionIDs(t, s, a, 10); len(got) != 0 {
		t.Errorf("the sender's mentions = %v", got)
	}

	// An edit re-resolves: b is no longer mentioned, c still is.
	edited, events, err := edit(t, s, a, m, "medit1", "only @"+c.Name)
	if err != nil || !slices.Equal(edited.Mentions, ids(c)) {
		t.Fatalf("edit: %v mentions, %v", edited.Mentions, err)
	}
	if e := oneEvent(t, "edit", events, parley.EventMessageEdited); !slices.Equal(e.Message.Mentions, ids(c)) {
		t.Errorf("messageEdited mentions = %v", e.Message.Mentions)
	}
	if got := mentionIDs(t, s, b, 10); len(got) != 0 {
		t.Errorf("b's mentions after the edit = %v", got)
	}
	if _, k := unread(b); k != 0 {
		t.Errorf("b's unread mentions after the edit = %d", k)
	}
	// Reading moves unread mentions with the unread count.
	if _, k := unread(c); k != 1 {
		t.Errorf("c's unread mentions = %d, want 1", k)
	}
	must[[]parley.Event](t, "MarkRead")(s.MarkRead(ctx(t), c.ID, conv.ID, m.Seq))
	if _, k := unread(c); k != 0 {
		t.Errorf("c's unread mentions after reading = %d", k)
	}
	if got := mentionIDs(t, s, c, 10); !slices.Equal(got, msgIDs(m)) {
		t.Errorf("c's mentions (read ones too) = %v", got)
	}
	// A delete takes the mention away.
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m.ID); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if got := mentionIDs(t, s, c, 10); len(got) != 0 {
		t.Errorf("c's mentions after the delete = %v", got)
	}

	// Pages: newest first, each once; a member who leaves sees none.
	// Sent in one run, so the engines' multi-row paths carry mentions too.
	var nms []parley.NewMessage
	for i := range 5 {
		nms = append(nms, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: fmt.Sprintf("%d @%s", i, b.Name)})
	}
	sent := make([]parley.Message, len(nms))
	optional[parley.MultiSender](t, s).SendMessages(ctx(t), nms, func(i int, m parley.Message, _ []parley.Event, err error) {
		if err != nil || !slices.Equal(m.Mentions, ids(b)) {
			t.Errorf("SendMessages[%d]: mentions %v, %v", i, m.Mentions, err)
		}
		sent[i] = m
	})
	slices.Reverse(sent)
	for _, limit := range []int{1, 2, 5, 50} {
		if got := mentionIDs(t, s, b, limit); !slices.Equal(got, msgIDs(sent...)) {
			t.Errorf("b's mentions by %d = %v, want %v", limit, got, msgIDs(sent...))
		}
	}
	if n, k := unread(b); n != 6 || k != 5 {
		t.Errorf("b: unread %d, mentions %d; want 6 (the deleted one gone), 5", n, k)
	}
	_, err = optional[parley.Searcher](t, s).Mentions(ctx(t), b.ID, parley.MentionQuery{Cursor: "bm90IGEgY3Vyc29y"})
	wantCode(t, "a made-up cursor", err, parley.EINVALID)
	leave := parley.ConversationChange{Remove: ids(b)}
	if _, _, err := s.UpdateConversation(ctx(t), b.ID, conv.ID, leave); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if got := mentionIDs(t, s, b, 10); len(got) != 0 {
		t.Errorf("mentions of a member who left = %v", got)
	}
}

// testSearch: members find messages of their conversations by words
// (any case, the last word a prefix), newest first, page by page, with
// highlights; non-members never; tombstones never; an edit re-indexes.
func testSearch(t *testing.T, s parley.Store) {
	a, b, c, d := newUser(t, s, "srcha"), newUser(t, s, "srchb"), newUser(t, s, "srchc"), newUser(t, s, "srchd")
	conv := newGroup(t, s, a, "search", b)
	other := newGroup(t, s, a, "search other", c)
	w := word("quokka")
	var inConv []parley.Message
	for i := range 4 {
		inConv = append(inConv, send(t, s, conv.ID, a, fmt.Sprintf("message %d: the %s jumps", i, strings.ToUpper(w))))
	}
	send(t, s, conv.ID, b, "nothing to see")
	inOther := send(t, s, other.ID, c, "a "+w+" elsewhere")
	newest := func(ms ...parley.Message) []string {
		out := msgIDs(ms...)
		slices.Reverse(out)
		return out
	}

	if got, want := searchIDs(t, s, b, w, "", 50), newest(inConv...); !slices.Equal(got, want) {
		t.Errorf("b finds %v, want %v (newest first)", got, want)
	}
	if got, want := searchIDs(t, s, a, w, "", 50), newest(append(slices.Clone(inConv), inOther)...); !slices.Equal(got, want) {
		t.Errorf("a finds %v, want %v", got, want)
	}
	if got := searchIDs(t, s, c, w, "", 50); !slices.Equal(got, msgIDs(inOther)) {
		t.Errorf("c finds %v, want only the other conversation's", got)
	}
	// A non-member never finds a message, with or without the filter.
	if got := searchIDs(t, s, d, w, "", 50); len(got) != 0 {
		t.Errorf("a non-member finds %v", got)
	}
	_, err := search(t, s, d, w, conv.ID, "", 10)
	wantCode(t, "a non-member's search in the conversation", err, parley.ENOTFOUND)
	_, err = search(t, s, d, w, "no-such-conversation", "", 10)
	wantCode(t, "a search in no conversation", err, parley.ENOTFOUND)
	if got := searchIDs(t, s, a, w, other.ID, 50); !slices.Equal(got, msgIDs(inOther)) {
		t.Errorf("filtered to the other conversation: %v", got)
	}

	// Pages of every size give each result once, in order.
	for _, limit := range []int{1, 2, 3} {
		if got, want := searchIDs(t, s, b, w, "", limit), newest(inConv...); !slices.Equal(got, want) {
			t.Errorf("by %d: %v, want %v", limit, got, want)
		}
	}
	// Prefix of the last word when asked (a '*' after it), else exact
	// words; all words required; case ignored.
	if got := searchIDs(t, s, b, strings.ToUpper(w[:len(w)-1])+"*", "", 50); len(got) != 4 {
		t.Errorf("prefix finds %d, want 4", len(got))
	}
	if got := searchIDs(t, s, b, strings.ToUpper(w[:len(w)-1]), "", 50); len(got) != 0 {
		t.Errorf("a word's start without '*' finds %d, want 0", len(got))
	}
	if got := searchIDs(t, s, b, "message 2 "+w, "", 50); !slices.Equal(got, msgIDs(inConv[2])) {
		t.Errorf("all words: %v, want %v", got, msgIDs(inConv[2]))
	}
	// Query syntax of either engine is only words.
	if got := searchIDs(t, s, b, `"`+w+`" OR * NEAR( -x:'`, "", 50); len(got) != 0 {
		t.Errorf("operators as words found %v (the word x is in no message)", got)
	}
	if got := searchIDs(t, s, b, `"`+w+`" -- ' : * ^`, "", 50); len(got) != 4 {
		t.Errorf("a quoted word with punctuation finds %d, want 4", len(got))
	}

	// Highlights: parts make up the text; the word is a match.
	p, err := search(t, s, b, w, "", "", 1)
	if err != nil || len(p.Results) != 1 {
		t.Fatalf("search: %+v, %v", p, err)
	}
	r := p.Results[0]
	var joined strings.Builder
	var matched []string
	for _, part := range r.Highlight {
		joined.WriteString(part.Text)
		if part.Match {
			matched = append(matched, part.Text)
		}
	}
	if joined.String() != r.Message.Text || !slices.Equal(matched, []string{strings.ToUpper(w)}) {
		t.Errorf("highlight %+v of %q", r.Highlight, r.Message.Text)
	}

	// A tombstone never matches; an edit is re-indexed.
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, inConv[0].ID); err != nil {
		t.Fatal(err)
	}
	w2 := word("wombat")
	if _, _, err := edit(t, s, a, inConv[1], clientID(), "now a "+w2); err != nil {
		t.Fatal(err)
	}
	if got, want := searchIDs(t, s, b, w, "", 50), newest(inConv[2:]...); !slices.Equal(got, want) {
		t.Errorf("after a delete and an edit: %v, want %v", got, want)
	}
	if got := searchIDs(t, s, b, w2, "", 50); !slices.Equal(got, msgIDs(inConv[1])) {
		t.Errorf("the edited text finds %v, want %v", got, msgIDs(inConv[1]))
	}

	// A made-up cursor is refused; a member who leaves finds nothing.
	_, err = search(t, s, b, w, "", "eHl6", 10)
	wantCode(t, "a made-up cursor", err, parley.EINVALID)
	if _, _, err := s.UpdateConversation(ctx(t), b.ID, conv.ID, parley.ConversationChange{Remove: ids(b)}); err != nil {
		t.Fatalf("leave: %v", err)
	}
	if got := searchIDs(t, s, b, w, "", 50); len(got) != 0 {
		t.Errorf("a member who left finds %v", got)
	}

	// A user in many conversations (more than a store may name to its
	// index) finds the same: every match they may see, and no other.
	e := newUser(t, s, "srche")
	w3 := word("numbat")
	var many []parley.Message
	for i := range 70 {
		g := newGroup(t, s, e, fmt.Sprint("many ", i))
		many = append(many, send(t, s, g.ID, e, w3+" in group "+fmt.Sprint(i)))
	}
	send(t, s, other.ID, a, w3+" where e is not")
	if got, want := searchIDs(t, s, e, w3, "", 50), newest(many...); !slices.Equal(got, want) {
		t.Errorf("a user in %d groups finds %d messages, want %d", len(many), len(got), len(want))
	}
}

// testSearchWords: both stores split a message's text into words by the
// query's rule (parley.SearchIndexText, docs/protocol.md "search"):
// combining marks belong to the word they follow (Devanagari, a
// decomposed accent, which matches the precomposed one), emoji and their
// parts (keycap, presentation selector, flag, skin tone) separate words,
// and the parts of e-mail addresses and URLs are words; the last word a
// prefix across them; an edit of such a text re-indexes it.
func testSearchWords(t *testing.T, s parley.Store) { SearchWords(t, s, nil) }

// SearchWords is testSearchWords with index (nil: none) called before
// each round of searches: a store's test has the messages indexed there,
// so the searches read its index rather than what waits for it.
func SearchWords(t *testing.T, s parley.Store, index func(t *testing.T)) {
	if index == nil {
		index = func(*testing.T) {}
	}
	a := newUser(t, s, "srchwa")
	conv := newGroup(t, s, a, "search words")
	hindi := send(t, s, conv.ID, a, "नमस्ते दुनिया")
	decomposed := send(t, s, conv.ID, a, "un cafe\u0301 noir")
	composed := send(t, s, conv.ID, a, "un café crème")
	keycap := send(t, s, conv.ID, a, "1\ufe0f\u20e3word")
	flag := send(t, s, conv.ID, a, "word\U0001f3f3")
	tone := send(t, s, conv.ID, a, "\U0001f44d\U0001f3fdword")
	mail := send(t, s, conv.ID, a, "mail bob.smith@example.com now")
	url := send(t, s, conv.ID, a, "see https://parley.example/path/to?q=quokka")
	// Two characters that are not ASCII and whose keys are: Kelvin
	// (U+212A) and İ (U+0130, lower case i).
	kelvin := send(t, s, conv.ID, a, "\u212aELVIN \u0130STANBUL")
	index(t)
	for _, tc := range []struct {
		query string
		want  []parley.Message // newest first
	}{
		{"नमस्ते", []parley.Message{hindi}},
		{"दुनिया", []parley.Message{hindi}},
		{"नमस*", []parley.Message{hindi}},
		{"café", []parley.Message{composed, decomposed}},
		{"CAFE\u0301", []parley.Message{composed, decomposed}},
		{"caf*", []parley.Message{composed, decomposed}},
		{"cafe", nil}, // accents count
		{"word", []parley.Message{tone, flag, keycap}},
		{"WOR*", []parley.Message{tone, flag, keycap}},
		{"1\ufe0f\u20e3", []parley.Message{keycap}},
		{"smith", []parley.Message{mail}},
		{"bob.smith@example.com", []parley.Message{mail}},
		{"example", []parley.Message{url, mail}},
		{"exam*", []parley.Message{url, mail}},
		{"https", []parley.Message{url}},
		{"path quokka", []parley.Message{url}},
		{"parley.example/pa*", []parley.Message{url}},
		{"kelvin istanbul", []parley.Message{kelvin}},
		{"KELV*", []parley.Message{kelvin}},
		{"\u0130stanbul", []parley.Message{kelvin}},
	} {
		got := searchIDs(t, s, a, tc.query, conv.ID, 50)
		if want := msgIDs(tc.want...); !slices.Equal(got, want) {
			t.Errorf("search %q finds %v, want %v", tc.query, got, want)
		}
	}
	// The highlight is the text's own word, marks and all.
	p, err := search(t, s, a, "नमस्ते", conv.ID, "", 1)
	if err != nil || len(p.Results) != 1 || !slices.Equal(p.Results[0].Highlight, []parley.HighlightPart{{Text: "नमस्ते", Match: true}, {Text: " दुनिया"}}) {
		t.Errorf("highlight: %+v, %v", p, err)
	}
	// An edit takes the old words out of the index (each engine deletes
	// what it indexed) and puts the new ones in.
	if _, _, err := edit(t, s, a, hindi, clientID(), "नमस्कार"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := edit(t, s, a, flag, clientID(), "other\U0001f3f3"); err != nil {
		t.Fatal(err)
	}
	index(t)
	for query, want := range map[string][]parley.Message{"नमस्ते": nil, "नमस्कार": {hindi}, "नमस*": {hindi},
		"word": {tone, keycap}, "other": {flag}} {
		if got := searchIDs(t, s, a, query, conv.ID, 50); !slices.Equal(got, msgIDs(want...)) {
			t.Errorf("after the edits: search %q finds %v, want %v", query, got, msgIDs(want...))
		}
	}
}

// searchPieces are what texts of SearchTexts are made of: words of
// several scripts and cases, combining marks, emoji and their parts,
// e-mail and URL punctuation, spaces.
var searchPieces = []string{"word", "Quokka", "नमस्ते", "e\u0301", "É", "日本語", "42", "x1", "\u0301", "\ufe0f", "\u20e3", "\u200d",
	"\U0001f3f3", "\U0001f44d", "\U0001f3fd", "\U000e0067", "@", ".", "/", ":", "?", "=", "-", "_", "'", " ", " ", "\t", "\u00a0", "İ", "\u212a", "ß"}

// SearchTexts returns n texts made of searchPieces (1 to 12 of them,
// drawn by a fixed seed), none of them empty.
func SearchTexts(n int) []string {
	rng := rand.New(rand.NewPCG(14, 23))
	texts := make([]string, 0, n)
	for len(texts) < n {
		var b strings.Builder
		for range 1 + rng.IntN(12) {
			b.WriteString(searchPieces[rng.IntN(len(searchPieces))])
		}
		if strings.TrimSpace(b.String()) != "" {
			texts = append(texts, b.String())
		}
	}
	return texts
}

// SendSearchTexts sends SearchTexts(n) to a new group of a new user and
// returns the texts and their messages' ids, in order.
func SendSearchTexts(t *testing.T, s parley.Store, n int) (texts, ids []string) {
	a := newUser(t, s, "searchtexts")
	g := newGroup(t, s, a, "search texts")
	texts = SearchTexts(n)
	for _, text := range texts {
		ids = append(ids, send(t, s, g.ID, a, text).ID)
	}
	return texts, ids
}

// IndexKeys are the distinct keys of parley.SearchIndexText of text,
// sorted.
func IndexKeys(text string) []string {
	keys := strings.Fields(parley.SearchIndexText(text))
	slices.Sort(keys)
	return slices.Compact(keys)
}
