package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// sameProfileTab opens another tab in the browser context of tab (so it
// shares localStorage, IndexedDB and Web Locks, like a second tab of one
// browser window) and navigates it to url. The returned cancel closes it.
func sameProfileTab(t *testing.T, browserCtx, tab context.Context, url string) (context.Context, context.CancelFunc) {
	t.Helper()
	id := chromedp.FromContext(tab).BrowserContextID
	next, cancel := chromedp.NewContext(browserCtx, chromedp.WithExistingBrowserContext(id))
	t.Cleanup(cancel)
	if err := chromedp.Do(next); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	do(t, next, "navigate to "+url, chromedp.Navigate(url))
	return next, cancel
}

// TestTwoTabsOneOutbox checks that two tabs of the same user share the
// stored outbox without losing each other's messages: each queues a
// message while cut off, the first tab is closed, and the second sends
// both, once each, in the order written. Then two live tabs send at the
// same time and every message is stored once, each tab's in order.
func TestTwoTabsOneOutbox(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 5 * time.Minute }))
	bobToken, _ := srv.Register(t, "bob", "bob-password-1")

	// A blank tab owns the browser context (closing the tab that created
	// a context disposes of it, with every tab in it).
	owner, cancelOwner := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelOwner)
	if err := chromedp.Do(owner); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	tab1, closeOne := sameProfileTab(t, browser, owner, srv.URL)
	one := &page{t: t, name: "alice", tab: tab1}
	one.register("alice-password-1") // registers the page's name
	one.name = "tab 1"
	one.do("start a direct chat",
		chromedp.SendKeys(testID("direct-username"), "bob"),
		chromedp.Click(testID("start-direct")),
	)
	one.wait("the chat with bob open", `document.querySelector('[data-testid=pane-title]').textContent === 'bob'`)
	convID := eval[string](t, one.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)

	tab2, _ := sameProfileTab(t, browser, one.tab, srv.URL)
	two := &page{t: t, name: "tab 2", tab: tab2}
	two.wait("logged in from the shared storage", connState("connected"))
	two.click("open the chat", `[data-testid=conversation][data-title=bob]`)
	two.wait("the chat open", `document.querySelector('[data-testid=pane-title]').textContent === 'bob'`)

	// Both tabs lose the server and each queues a message.
	for _, p := range []*page{one, two} {
		p.blockWebSocket(srv.WSURL(), true)
		eval[bool](t, p.tab, `(window.parleyApp.client.ws?.close(), true)`)
		p.wait("reconnecting", connState("reconnecting"))
	}
	one.do("queue in tab 1", chromedp.SendKeys(testID("composer"), "from tab one"+kb.Enter))
	one.wait("queued", messageWith("from tab one")+`?.dataset.status === 'queued'`)
	two.do("queue in tab 2", chromedp.SendKeys(testID("composer"), "from tab two"+kb.Enter))
	two.wait("queued", messageWith("from tab two")+`?.dataset.status === 'queued'`)
	// Each tab keeps, and shows, both.
	for _, p := range []*page{one, two} {
		p.wait("both items stored and shown", storedOutbox+`.length === 2 && `+messageWith("from tab one")+`?.dataset.status === 'queued' && `+messageWith("from tab two")+`?.dataset.status === 'queued'`)
	}

	// Tab 1 goes away; tab 2 comes back and sends both.
	closeOne()
	two.blockWebSocket(srv.WSURL(), false)
	eval[bool](t, two.tab, `(document.querySelector('[data-testid=retry-now]:not([hidden])')?.click(), true)`)
	two.wait("connected", connState("connected"))
	two.wait("both sent and the outbox empty", messageWith("from tab one")+`?.dataset.status === 'sent' && `+messageWith("from tab two")+`?.dataset.status === 'sent' && `+storedOutbox+`.length === 0`)
	if got := apiHistory(t, srv.URL, bobToken, convID); !slices.Equal(got, []string{"from tab one", "from tab two"}) {
		t.Fatalf("server history = %q, want each tab's message once, in the order written", got)
	}

	// Two live tabs send at once: the Web Lock lets one flush at a time
	// (and the client_id would dedupe a double send anyway).
	tab3, _ := sameProfileTab(t, browser, two.tab, srv.URL)
	three := &page{t: t, name: "tab 3", tab: tab3}
	three.wait("connected", connState("connected"))
	const n = 8
	for _, p := range []*page{two, three} {
		eval[bool](t, p.tab, fmt.Sprintf(`(() => {
			for (let i = 1; i <= %d; i++) parleyApp.client.send(%s, %s + i);
			return true;
		})()`, n, jsString(convID), jsString(p.name+" #")))
	}
	for _, p := range []*page{two, three} {
		p.wait("the shared outbox drained", storedOutbox+`.length === 0 && parleyApp.client.outbox.length === 0`)
	}
	got := apiHistory(t, srv.URL, bobToken, convID)[2:]
	if len(got) != 2*n {
		t.Fatalf("server stored %d messages, want %d: %q", len(got), 2*n, got)
	}
	for _, name := range []string{"tab 2", "tab 3"} {
		var mine []string
		for _, s := range got {
			if len(s) > len(name) && s[:len(name)] == name {
				mine = append(mine, s)
			}
		}
		want := make([]string, n)
		for i := range n {
			want[i] = fmt.Sprintf("%s #%d", name, i+1)
		}
		if !slices.Equal(mine, want) {
			b, _ := json.Marshal(got)
			t.Errorf("%s's messages on the server = %q, want %q (all: %s)", name, mine, want, b)
		}
	}
}
