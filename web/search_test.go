package web_test

import (
	"fmt"
	"net/url"
	"regexp"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// firstInView is a JavaScript expression: the message of seq 1 is
// marked, and in view in the thread and the window.
const firstInView = `(() => {
	const el = document.querySelector('[data-testid=message][data-seq="1"][data-highlight=true]');
	if (!el) return false;
	const r = el.getBoundingClientRect(), p = document.querySelector('[data-testid=messages]').getBoundingClientRect();
	return r.bottom > p.top && r.top < p.bottom && r.right <= window.innerWidth;
})()`

// TestSearchOpensMessage: the search box finds messages by a word's
// start ("quok*"), shows each result's text as text with the matched word marked
// (a message holding "<b>" shows "<b>"), and a result opens its
// conversation at the message, loading older pages to reach it. axe-core
// finds no violation in the results.
func TestSearchOpensMessage(t *testing.T) {
	srv, shots, alice, bob := directPair(t)
	convID := eval[string](t, alice.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)
	base := srv.URL + "/v1/conversations/" + url.PathEscape(convID) + "/messages"
	aTok := alice.token()
	apiDo(t, "POST", base, aTok, `{"client_id":"first","text":"an <b>early</b> Quokka sighting"}`)
	for i := range 120 { // more than two pages of history after it
		apiDo(t, "POST", base, aTok, fmt.Sprintf(`{"client_id":"fill%d","text":"filler %d"}`, i, i))
	}
	apiDo(t, "POST", base, aTok, `{"client_id":"last","text":"the quokkas are back"}`)

	bob.wait("how to search, said while the box is empty and focused", `(document.querySelector('[data-testid=search-input]').focus(), true) && document.querySelector('[data-testid=search-status]').textContent === 'Every word must match; end one with * to match the start of a word.'`)
	bob.do("search", chromedp.SendKeys(testID("search-input"), "quok*"+kb.Enter))
	bob.wait("two results", `document.querySelectorAll('[data-testid=search-result]').length === 2`)
	// Where and when: a direct conversation's title is its sender's name,
	// said once.
	if where := eval[string](t, bob.tab, `document.querySelector('.search-where').textContent`); !regexp.MustCompile(`^alice · \d`).MatchString(where) {
		t.Fatalf("a result's conversation, sender and time read %q", where)
	}
	noViolations(t, bob, "search results")
	texts := eval[[]string](t, bob.tab, `[...document.querySelectorAll('[data-testid=search-text]')].map(e => e.textContent)`)
	if len(texts) != 2 || texts[0] != "the quokkas are back" || texts[1] != "an <b>early</b> Quokka sighting" {
		t.Fatalf("results %q, newest first, markup shown as text", texts)
	}
	marks := eval[[]string](t, bob.tab, `[...document.querySelectorAll('[data-testid=search-match]')].map(e => e.textContent)`)
	if len(marks) != 2 || marks[0] != "quokkas" || marks[1] != "Quokka" {
		t.Fatalf("marked words %q", marks)
	}
	if n := eval[int](t, bob.tab, `document.querySelectorAll('[data-testid=search-results] b').length`); n != 0 {
		t.Fatalf("a result's text became %d <b> elements", n)
	}
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "search-results"))

	bob.click("the older result", `[data-testid=search-result][data-seq="1"]`)
	bob.wait("the conversation open at the message, marked and in view", firstInView)
	if title := eval[string](t, bob.tab, `document.querySelector('[data-testid=pane-title]').textContent`); title != "alice" {
		t.Fatalf("pane title %q", title)
	}
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "search-opened-at-message"))

	// At phone width, after a reload (the history not loaded): the results
	// fit the sidebar, and one opens the pane at the message.
	bob.do("phone width, reload", chromedp.EmulateViewport(390, 760), chromedp.Reload())
	bob.wait("the list", `!!document.querySelector('[data-testid=conversation][data-title=alice]')`)
	bob.do("search", chromedp.SendKeys(testID("search-input"), "quok*"+kb.Enter))
	bob.wait("two results, fitting", `document.querySelectorAll('[data-testid=search-result]').length === 2 && [...document.querySelectorAll('[data-testid=search-result]')].every(b => b.getBoundingClientRect().right <= window.innerWidth)`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "phone-390-search-results"))
	bob.click("the older result", `[data-testid=search-result][data-seq="1"]`)
	bob.wait("the pane open at the message, in view", firstInView)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "phone-390-search-opened"))
}

// TestMentionCompletion: typing "@" and the start of a member's name in
// the composer offers the members; Tab puts "@name " in; the message
// mentions the member, whose list shows the unread mention and whose
// pane marks the message.
func TestMentionCompletion(t *testing.T) {
	_, shots, alice, bob := directPair(t)
	alice.do("type a mention", chromedp.SendKeys(testID("composer"), "lunch? @b"))
	alice.wait("bob offered", `(s => !s.hidden && [...s.querySelectorAll('[data-testid=mention-suggestion]')].map(e => e.textContent).join() === '@bob')(document.querySelector('[data-testid=mention-suggestions]'))`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "mention-completion"))
	alice.do("pick with Tab", chromedp.KeyEvent(kb.Tab))
	alice.wait("the name put in", `document.querySelector('[data-testid=composer]').value === 'lunch? @bob '`)
	alice.wait("the list closed", `document.querySelector('[data-testid=mention-suggestions]').hidden`)
	// Not offered: an e-mail address, and a name nobody has.
	alice.do("type more", chromedp.SendKeys(testID("composer"), "or mail x@b"))
	alice.wait("nothing offered for an e-mail", `document.querySelector('[data-testid=mention-suggestions]').hidden`)
	alice.do("send", chromedp.SendKeys(testID("composer"), kb.Enter))
	alice.wait("sent", messageWith("lunch? @bob or mail x@b"))

	bob.wait("the list shows the mention", `!!document.querySelector('[data-testid=conversation][data-title=alice] [data-testid=unread-mentions]')`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "mention-unread"))
	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	bob.wait("the message marked as mentioning bob", messageWith("lunch? @bob or mail x@b")+`?.classList.contains('mentioned')`)
	bob.wait("read: the mention badge gone", `!document.querySelector('[data-testid=conversation][data-title=alice] [data-testid=unread-mentions]')`)
}
