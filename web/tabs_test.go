package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/faultproxy"
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

// TestTabsAfterLostLog checks, with two tabs of one user, that a tab
// that saw the server's log lost keeps the position it saved from then
// on, although tabs never lower the shared saved position. The server's
// data is restored from an older copy on a new node, and the load
// balancer in front (a proxy) sends new connections there while the old
// node still serves the links it has. Tab 1 reconnects, gets resync with
// cause log_lost and saves a position of the new log. Tab 2, still on the
// old node, would go on saving the lost log's higher positions over tab
// 1's: a new tab would then resume from a position the new log has not
// reached (or skip what the new log gave there meanwhile). Instead tab 2
// takes tab 1's position, says resync so its app refetches, and resumes
// on the new node without a resync of its own, and a new tab resumes
// from tab 1's position.
func TestTabsAfterLostLog(t *testing.T) {
	browser := newBrowser(t)
	secret, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	quick := servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 100 * time.Millisecond })
	old := servertest.Start(t, servertest.WithSecret(secret), quick)
	bobToken, _ := old.Register(t, "bob", "bob-password-1")

	// The load balancer: each new connection goes to the node upstream
	// names when it is made.
	var upstream atomic.Value
	upstream.Store(strings.TrimPrefix(old.URL, "http://"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lb := faultproxy.New(ln, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", upstream.Load().(string))
	})
	t.Cleanup(func() { lb.Close() })
	site := "http://" + lb.Addr()

	owner, cancelOwner := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancelOwner)
	if err := chromedp.Do(owner); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	tab1, _ := sameProfileTab(t, browser, owner, site)
	one := &page{t: t, name: "alice", tab: tab1}
	one.register("alice-password-1")
	one.name = "tab 1"
	one.startDirect("bob")
	convID := eval[string](t, one.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)

	// The copy the new node is restored from: alice, bob and their chat,
	// none of the messages below.
	old.Stop(t)
	restored := t.TempDir()
	if err := os.CopyFS(restored, os.DirFS(old.Dir)); err != nil {
		t.Fatal(err)
	}
	old.Start(t)
	one.wait("back after the restart", connState("connected"))

	tab2, _ := sameProfileTab(t, browser, one.tab, site)
	two := &page{t: t, name: "tab 2", tab: tab2}
	two.wait("logged in from the shared storage", connState("connected"))
	const position = `parleyApp.client.position`
	// Positions also move with alice's own read marks: the waits below
	// say "at least".
	for i := range 8 {
		apiSend(t, old.URL, bobToken, convID, fmt.Sprintf("c-%d", i), fmt.Sprintf("message %d", i))
	}
	one.wait("the messages shown", messageWith("message 7"))
	high := eval[int64](t, one.tab, position)
	two.wait("the messages seen", fmt.Sprintf(`%s >= %d`, position, high))

	// The new node, on the older copy, takes the new connections; tab 1
	// reconnects and learns that its position is beyond the log.
	node := servertest.Start(t, servertest.WithSecret(secret), servertest.WithDir(restored), quick)
	upstream.Store(strings.TrimPrefix(node.URL, "http://"))
	eval[bool](t, two.tab, `(window.tabResyncs = [], parleyApp.client.on('resync', r => tabResyncs.push(r)), true)`)
	eval[bool](t, one.tab, `(parleyApp.client.ws.close(), true)`)
	one.wait("resynced", connState("connected")+` && parleyApp.client.stats.resyncs === 1`)
	if low := eval[int64](t, one.tab, position); low >= high {
		t.Fatalf("tab 1's position on the new log is %d, want below the lost log's %d", low, high)
	}
	// savedIsTabOnes checks that what is saved is tab 1's position (read
	// at the same moment) with the one reset.
	savedIsTabOnes := func(when string) {
		t.Helper()
		got := eval[[]any](t, one.tab, `[localStorage.getItem('parley.' + parleyApp.client.user.id + '.cursor'), parleyApp.client.position]`)
		if want := fmt.Sprintf(`{"cursor":{"0":%v},"resets":{"0":1}}`, got[1]); got[0] != want {
			t.Errorf("saved %s: %v, want tab 1's position with one reset: %s", when, got[0], want)
		}
	}
	savedIsTabOnes("after tab 1's log_lost")

	// The old node goes on: a message there reaches tab 2 if it is still
	// connected to it.
	apiSend(t, old.URL, bobToken, convID, "c-late", "late, on the lost log")
	two.wait("the late message seen, or tab 2 on the new node", fmt.Sprintf(`%s > %d || (tabResyncs.length > 0 && %s)`, position, high, connState("connected")))
	savedIsTabOnes("after the old node's message")
	if got, want := eval[string](t, two.tab, fmt.Sprintf(`(%s < %d) + ' ' + JSON.stringify(tabResyncs.map(r => [r.cause, r.tab, r.lost]))`, position, high)), `true [["log_lost",true,[0]]]`; got != want {
		t.Errorf("tab 2's position below the lost log's %d, and the resyncs it told its app: %s, want %s", high, got, want)
	}

	// A new tab resumes from what is saved: on the new log, no resync.
	tab3, _ := sameProfileTab(t, browser, one.tab, site)
	three := &page{t: t, name: "tab 3", tab: tab3}
	three.wait("connected", connState("connected"))
	apiSend(t, node.URL, bobToken, convID, "c-last", "last")
	one.wait("the last message shown", messageWith("last"))
	last := eval[int64](t, one.tab, position)
	for _, p := range []*page{two, three} {
		p.wait("the last message seen", fmt.Sprintf(`%s >= %d`, position, last))
	}
	for _, p := range []*page{two, three} {
		if got := eval[string](t, p.tab, `JSON.stringify(parleyApp.client.stats.resyncs)`); got != "0" {
			t.Errorf("%s got %s resyncs from the server, want 0: it resumed from the lost log", p.name, got)
		}
	}
}
