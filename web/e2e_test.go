package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// page is one user's browser tab.
type page struct {
	t    *testing.T
	name string
	tab  context.Context
}

func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	do(p.t, p.tab, p.name+": "+what, steps...)
}

// wait waits until expr is truthy in the page.
func (p *page) wait(what, expr string) {
	p.t.Helper()
	waitJS(p.t, p.tab, p.name+": "+what, expr, pageState)
}

// pageState summarises the page for failure messages.
const pageState = `JSON.stringify({
	conn: document.querySelector('[data-testid=conn-status]')?.dataset.state,
	connText: document.querySelector('[data-testid=conn-text]')?.textContent,
	title: document.querySelector('[data-testid=pane-title]')?.textContent,
	typing: document.querySelector('[data-testid=typing]')?.textContent,
	messages: [...document.querySelectorAll('[data-testid=message]')].map(m => m.dataset.status + ':' + m.querySelector('[data-testid=message-text]')?.textContent),
	conversations: [...document.querySelectorAll('[data-testid=conversation]')].map(c => c.dataset.label),
	errors: [...document.querySelectorAll('[role=alert], .error')].map(e => e.textContent).filter(Boolean),
	stats: window.parleyApp?.client?.stats,
	state: [...(window.parleyApp?.convs?.values() || [])].map(c => ({id: c.id, last_seq: c.last_seq, read_seq: c.read_seq, unread: c.unread_count, members: c.members})),
})`

// messageTexts is a JavaScript expression: the texts of the messages in
// the open conversation, top to bottom.
const messageTexts = `[...document.querySelectorAll('[data-testid=message] [data-testid=message-text]')].map(e => e.textContent)`

func connState(state string) string {
	return fmt.Sprintf(`document.querySelector('[data-testid=conn-status]').dataset.state === %s`, jsString(state))
}

// messageWith is a JavaScript expression: the message element with text.
func messageWith(text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('[data-testid=message]')].find(m => m.querySelector('[data-testid=message-text]')?.textContent === %s)`, jsString(text))
}

// click clicks the element sel as soon as it exists. It clicks from
// inside the page: lists are redrawn on every change, so a node looked up
// by the DevTools protocol may be replaced before a synthetic mouse event
// reaches it.
func (p *page) click(what, sel string) {
	p.t.Helper()
	p.clickExpr(what, fmt.Sprintf(`document.querySelector(%s)`, jsString(sel)))
}

// clickExpr clicks the element the JavaScript expression expr finds, as
// soon as it finds one (as click does).
func (p *page) clickExpr(what, expr string) {
	p.t.Helper()
	p.wait(what, fmt.Sprintf(`(el => !!el && (el.click(), true))(%s)`, expr))
}

func (p *page) register(password string) {
	p.t.Helper()
	p.do("register",
		chromedp.WaitVisible(testID("auth-username")),
		chromedp.SendKeys(testID("auth-username"), p.name),
		chromedp.SendKeys(testID("auth-password"), password),
		chromedp.Click(testID("register")),
	)
	p.wait("the chat view", `!document.querySelector('[data-testid=chat-view]').hidden`)
	p.wait("connected after register", connState("connected"))
}

// twoUsers opens two tabs of browser, alice and bob, each registered on
// the server at baseURL.
func twoUsers(t *testing.T, browser context.Context, baseURL string) (alice, bob *page) {
	t.Helper()
	alice = &page{t: t, name: "alice", tab: newTab(t, browser, baseURL)}
	bob = &page{t: t, name: "bob", tab: newTab(t, browser, baseURL)}
	alice.register("alice-password-1")
	bob.register("bob-password-1")
	return alice, bob
}

// startDirect opens the direct chat with username and waits for its pane.
func (p *page) startDirect(username string) {
	p.t.Helper()
	p.do("start a direct chat",
		chromedp.SendKeys(testID("direct-username"), username),
		chromedp.Click(testID("start-direct")),
	)
	p.wait("the chat with "+username+" open", `document.querySelector('[data-testid=pane-title]').textContent === `+jsString(username))
}

// writeToBob has alice open her direct chat with bob by username and send
// text (Enter sends); it returns once bob's page shows the conversation
// with an unread badge, before he opens it.
func writeToBob(alice, bob *page, text string) {
	alice.t.Helper()
	alice.startDirect("bob")
	alice.do("send a message", chromedp.SendKeys(testID("composer"), text+kb.Enter))
	bob.wait("an unread badge from alice",
		`document.querySelector('[data-testid=conversation][data-title=alice] [data-testid=unread]')?.textContent === '1'`)
}

// aliceToBob registers bob through the API and alice in a tab of
// browser, after the actions in before (a viewport, say), and opens
// alice's direct chat with bob. It returns alice's page and bob's token.
func aliceToBob(t *testing.T, browser context.Context, srv *servertest.Server, before ...chromedp.Action[chromedp.Void]) (alice *page, bobToken string) {
	t.Helper()
	bobToken, _ = srv.Register(t, "bob", "bob-password-1")
	alice = &page{t: t, name: "alice", tab: newTab(t, browser, srv.URL)}
	if len(before) > 0 {
		alice.do("before register", before...)
	}
	alice.register("alice-password-1")
	alice.startDirect("bob")
	return alice, bobToken
}

// createGroup creates a group titled title with members (comma-separated
// usernames) from the new-group form and waits for its pane.
func (p *page) createGroup(title, members string) {
	p.t.Helper()
	p.do("create the group "+title,
		chromedp.Click(`details.new-group summary`),
		chromedp.SendKeys(testID("group-title"), title),
		chromedp.SendKeys(testID("group-members"), members),
		chromedp.Click(testID("create-group")),
	)
	p.wait("the group "+title+" open", `document.querySelector('[data-testid=pane-title]').textContent === `+jsString(title))
}

// token reads the session the page keeps in localStorage.
func (p *page) token() string {
	p.t.Helper()
	return eval[string](p.t, p.tab, `JSON.parse(localStorage.getItem('parley.auth')).token`)
}

// setOffline switches the tab's network off or on the way a lost Wi-Fi
// does: requests fail, navigator.onLine changes and online/offline fire.
func (p *page) setOffline(offline bool) {
	p.t.Helper()
	err := chromedp.Do(p.tab, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			MatchedNetworkConditions: []*network.Conditions{{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1}},
		}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1,
		})
		return err
	}))
	if err != nil {
		p.t.Fatalf("%s: set offline=%v: %v", p.name, offline, err)
	}
}

// apiSend stores a message through the HTTP API, as another device of the
// user would.
func apiSend(t *testing.T, baseURL, token, conversationID, clientID, text string) parley.Message {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"client_id": clientID, "type": "text", "text": text})
	var m parley.Message
	b := servertest.Call(t, "POST", baseURL+"/v1/conversations/"+conversationID+"/messages", token, body, http.StatusCreated)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// apiHistory returns the texts of all of a conversation's messages in Seq
// order.
func apiHistory(t *testing.T, baseURL, token, conversationID string) []string {
	t.Helper()
	all := apiMessages(t, baseURL, token, conversationID)
	texts := make([]string, len(all))
	for i, m := range all {
		texts[i] = m.Text
	}
	return texts
}

// apiMessages returns all of a conversation's messages in Seq order,
// paging backwards with the before cursor the server gives (next).
func apiMessages(t *testing.T, baseURL, token, conversationID string) []parley.Message {
	t.Helper()
	var all []parley.Message
	before := int64(0)
	for {
		url := baseURL + "/v1/conversations/" + conversationID + "/messages?limit=100"
		if before > 0 {
			url += fmt.Sprintf("&before=%d", before)
		}
		var page parley.MessagePage
		if err := json.Unmarshal(servertest.Call(t, "GET", url, token, nil, http.StatusOK), &page); err != nil {
			t.Fatalf("history: %v", err)
		}
		all = append(all, page.Messages...)
		if !page.HasMore {
			break
		}
		if page.Next <= 0 || (before > 0 && page.Next >= before) {
			t.Fatalf("history: has_more with next %d after before=%d", page.Next, before)
		}
		before = page.Next
	}
	slices.SortFunc(all, func(a, b parley.Message) int { return int(a.Seq - b.Seq) })
	return all
}

// TestChatInTwoBrowsers is the end-to-end scenario: two users chat
// live, then the server stops and comes back on the same data and port
// while one user has queued a message and the other has sent more.
func TestChatInTwoBrowsers(t *testing.T) {
	browser := newBrowser(t)
	// A goaway delay far beyond the test's waits: reconnecting in time
	// proves that the browser's online event and "Retry now" skip it.
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 5 * time.Minute }))
	shots := screenshotDir(t)

	alice, bob := twoUsers(t, browser, srv.URL)

	// Alice opens the direct chat by username and writes; Enter sends.
	// Bob sees the conversation, a request (they are strangers), with an
	// unread badge, opens it and reads it: alice sees no read yet.
	writeToBob(alice, bob, "Hello Bob")
	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	bob.wait("alice's message", messageWith("Hello Bob"))
	bob.wait("the badge gone after reading",
		`!document.querySelector('[data-testid=conversation][data-title=alice] [data-testid=unread]')`)
	bob.wait("the request banner", `!!document.querySelector('[data-testid=request-accept]')`)
	if status := eval[string](t, alice.tab, messageWith("Hello Bob")+`?.dataset.status`); status == "read" {
		t.Errorf("alice sees a read across a request not accepted")
	}
	if eval[string](t, alice.tab, `document.querySelector('[data-testid=pane-presence]').dataset.online`) == "true" {
		t.Errorf("alice sees bob's presence across a request not accepted")
	}

	// Bob accepts: alice sees her message marked read, and they are
	// contacts (presence).
	bob.click("accept", `[data-testid=request-accept]`)
	alice.wait("her message marked read", messageWith("Hello Bob")+`?.dataset.status === 'read'`)

	// Bob types: alice sees it live; sending ends it.
	bob.do("type", chromedp.SendKeys(testID("composer"), "Hi Alice"))
	alice.wait("bob is typing", `document.querySelector('[data-testid=typing]').textContent === 'bob is typing…'`)
	bob.do("send", chromedp.SendKeys(testID("composer"), kb.Enter))
	alice.wait("bob's reply", messageWith("Hi Alice"))
	alice.wait("bob's presence dot once he accepted", `document.querySelector('[data-testid=pane-presence]').dataset.online === 'true'`)
	alice.wait("typing cleared", `document.querySelector('[data-testid=typing]').textContent === ''`)
	bob.wait("his reply marked read", messageWith("Hi Alice")+`?.dataset.status === 'read'`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "connected"))

	convID := eval[string](t, alice.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)
	bobToken := bob.token()

	// The server stops: both pages turn yellow with a countdown, and a
	// message alice writes meanwhile waits, shown as queued.
	srv.Stop(t)
	for _, p := range []*page{alice, bob} {
		p.wait("reconnecting with a countdown",
			connState("reconnecting")+` && /^Reconnecting in \d+ s \(attempt \d+\)/.test(document.querySelector('[data-testid=conn-text]').textContent)`)
	}
	alice.wait("send still enabled while reconnecting", `!document.querySelector('[data-testid=send]').disabled`)
	alice.do("write while the server is down", chromedp.SendKeys(testID("composer"), "Sent while you were away"+kb.Enter))
	alice.wait("the message shown as queued", messageWith("Sent while you were away")+`?.dataset.status === 'queued'`)
	alice.wait("the indicator counting queued messages", `document.querySelector('[data-testid=conn-text]').textContent.includes('1 queued')`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "reconnecting"))

	// Alice's network goes too, so bob's next messages are surely sent
	// while she is away; then the server comes back on the same port.
	alice.setOffline(true)
	srv.Start(t)
	bobTexts := []string{"Are you there?", "Second while away", "Third while away"}
	for i, text := range bobTexts {
		apiSend(t, srv.URL, bobToken, convID, fmt.Sprintf("bob-http-%d", i), text)
	}
	// Her network returns: she reconnects at once, without sitting out
	// the backoff, resumes, and sends her queued message.
	alice.setOffline(false)
	alice.wait("connected again", connState("connected"))
	bob.do("retry now", chromedp.Click(testID("retry-now")))
	bob.wait("connected again", connState("connected"))

	want := apiHistory(t, srv.URL, bobToken, convID)
	wantSet := []string{"Hello Bob", "Hi Alice", "Are you there?", "Second while away", "Third while away", "Sent while you were away"}
	if got := slices.Sorted(slices.Values(want)); !slices.Equal(got, slices.Sorted(slices.Values(wantSet))) {
		t.Fatalf("server history = %q, want each of %q exactly once", want, wantSet)
	}
	if i := slices.Index(want, bobTexts[0]); i < 0 || !slices.Equal(want[i:i+3], bobTexts) {
		t.Fatalf("server history = %q: bob's messages are not in the order sent", want)
	}
	wantJSON, _ := json.Marshal(want)
	for _, p := range []*page{alice, bob} {
		p.wait("every message once, in server order", `JSON.stringify(`+messageTexts+`) === `+jsString(string(wantJSON)))
	}
	alice.wait("her queued message delivered and read", messageWith("Sent while you were away")+`?.dataset.status === 'read'`)
	bob.wait("his messages read by alice", messageWith("Third while away")+`?.dataset.status === 'read'`)
	alice.wait("the queue empty", `!document.querySelector('[data-testid=conn-text]').textContent.includes('queued')`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "reconnected"))

	stats := eval[map[string]int](t, alice.tab, `window.parleyApp.client.stats`)
	t.Logf("alice's client: %v", stats)
	if stats["resumes"] < 1 {
		t.Errorf("alice did not resume after the restart: %v", stats)
	}

	// Alice deletes her message: both see the tombstone in its place.
	alice.wait("delete", `(m => !!m && (m.querySelector('[data-testid=delete]').click(), true))(`+messageWith("Sent while you were away")+`)`)
	alice.click("confirm the delete", `[data-testid=confirm-delete-yes]`)
	deleted := `[...document.querySelectorAll('[data-testid=message]')].at(-1)`
	for _, p := range []*page{alice, bob} {
		p.wait("the tombstone", deleted+`.classList.contains('deleted') && `+deleted+`.querySelector('[data-testid=message-text]').textContent === 'Message deleted' && document.querySelectorAll('[data-testid=message]').length === 6`)
	}

	// At phone width the list and the pane take turns.
	bob.do("phone width", chromedp.EmulateViewport(390, 760))
	bob.wait("the pane fills the screen", `document.querySelector('.sidebar').offsetParent === null`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "phone"))
}

// blockWebSocket makes the tab's WebSocket handshakes to the server fail
// (or work again) while page loads and the HTTP API still work.
func (p *page) blockWebSocket(wsURL string, block bool) {
	p.t.Helper()
	p.blockURL(wsURL, block)
}

// blockURL makes the tab's requests to urlPattern fail as if the network
// were down (or work again); other requests are not affected. Each call
// replaces the previous rule.
func (p *page) blockURL(urlPattern string, block bool) {
	p.t.Helper()
	conds := []*network.Conditions{}
	if block {
		conds = append(conds, &network.Conditions{URLPattern: urlPattern, Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
	}
	err := chromedp.Do(p.tab, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: conds})
		return err
	}))
	if err != nil {
		p.t.Fatalf("%s: block %s=%v: %v", p.name, urlPattern, block, err)
	}
}

// TestOutboxAndHistory checks that a queued message survives a page
// reload and is delivered once, and that scrolling up pages through the
// whole history in order, each message once.
func TestOutboxAndHistory(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 5 * time.Minute }))
	alice, bobToken := aliceToBob(t, browser, srv)
	convID := eval[string](t, alice.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)

	// Bob accepts alice's conversation (a request: they are strangers),
	// then starts typing from a client that then goes silent, without a
	// stop: alice's indicator expires on its own.
	apiDo(t, "POST", srv.URL+"/v1/conversations/"+convID+"/accept", bobToken, ``)
	apiDo(t, "POST", srv.URL+"/v1/conversations/"+convID+"/typing", bobToken, `{"typing":true}`)
	alice.wait("bob is typing", `document.querySelector('[data-testid=typing]').textContent === 'bob is typing…'`)
	alice.wait("the typing indicator expired", `document.querySelector('[data-testid=typing]').textContent === ''`)

	// 120 messages: the newest page is 50, so two more pages load upward.
	const n = 120
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("history %03d", i+1)
		apiSend(t, srv.URL, bobToken, convID, fmt.Sprintf("h-%d", i), want[i])
	}
	alice.wait("the newest message live", messageWith(want[n-1]))
	wantJSON, _ := json.Marshal(want)
	alice.wait("all history after scrolling up, in order, once",
		`(document.querySelector('[data-testid=messages]').scrollTop = 0, JSON.stringify(`+messageTexts+`) === `+jsString(string(wantJSON))+`)`)
	alice.wait("the start of the conversation", `!!document.querySelector('[data-testid=history-start]')`)

	// The WebSocket cannot get through; the page still loads.
	t.Logf("alice after the burst (batchedMessages counts WebSocket messages that carried several frames): %s", eval[string](t, alice.tab, `JSON.stringify({status: parleyApp.client.status(), stats: parleyApp.client.stats})`))
	alice.blockWebSocket(srv.WSURL(), true)
	eval[bool](t, alice.tab, `(window.parleyApp.client.ws.close(), true)`)
	alice.wait("reconnecting", connState("reconnecting"))
	alice.do("write while cut off", chromedp.SendKeys(testID("composer"), "Survives a reload"+kb.Enter))
	alice.wait("queued", messageWith("Survives a reload")+`?.dataset.status === 'queued'`)

	// A message the server will refuse sits in front of it in the queue.
	eval[bool](t, alice.tab, `(() => {
		localStorage.setItem('parley.' + parleyApp.me.id + '.outbox.too-long-1', JSON.stringify({
			client_id: 'too-long-1', conversation_id: `+jsString(convID)+`, type: 'text', order: 1,
			text: 'x'.repeat(4001), created_at: new Date().toISOString(), status: 'pending', error: '', not_before: 0}));
		return true;
	})()`)
	alice.do("reload", chromedp.Reload())
	alice.wait("the chat view after reload", `!document.querySelector('[data-testid=chat-view]').hidden`)
	alice.click("open the chat again", `[data-testid=conversation][data-title=bob]`)
	alice.wait("still queued after reload", messageWith("Survives a reload")+`?.dataset.status === 'queued'`)

	alice.blockWebSocket(srv.WSURL(), false)
	// The backoff here is short (no goaway), so the client may be back
	// before the button is pressed; press it only if it is still shown.
	eval[bool](t, alice.tab, `(document.querySelector('[data-testid=retry-now]:not([hidden])')?.click(), true)`)
	alice.wait("connected", connState("connected"))
	alice.wait("delivered", messageWith("Survives a reload")+`?.dataset.status === 'sent'`)
	failed := `document.querySelector('[data-testid=message][data-client-id=too-long-1]')`
	// Refused as it is: the same text would be refused again, so the
	// page offers Discard and no Retry.
	alice.wait("the refused message marked failed", failed+`?.dataset.status === 'failed' && `+failed+`.textContent.includes('Not sent: Text is longer') && !`+failed+`.querySelector('[data-testid=retry]')`)
	alice.click("discard it", `[data-client-id=too-long-1] [data-testid=discard]`)
	alice.wait("gone, and the stored queue empty", `!`+failed+` && `+storedOutbox+`.length === 0`)
	got := apiHistory(t, srv.URL, bobToken, convID)
	if len(got) != n+1 || got[n] != "Survives a reload" {
		t.Fatalf("server history has %d messages ending %q, want %d ending with the queued one", len(got), got[len(got)-1], n+1)
	}
	if !slices.Equal(got[:n], want) {
		t.Fatalf("server history is not bob's messages in order: %q", got[:n])
	}
	if c := eval[int](t, alice.tab, `[...document.querySelectorAll('[data-testid=message]')].filter(m => m.textContent.includes('Survives a reload')).length`); c != 1 {
		t.Fatalf("the queued message is shown %d times, want once", c)
	}

	alice.createGroup("Team", "bob")
	alice.wait("the group listed", `!!document.querySelector('[data-testid=conversation][data-title=Team]')`)
	alice.do("write to the group", chromedp.SendKeys(testID("composer"), "Hello team"+kb.Enter))
	alice.wait("the group message sent", messageWith("Hello team")+`?.dataset.status === 'sent'`)
	titles := `[...document.querySelectorAll('[data-testid=conversation]')].map(c => c.dataset.title).join(',')`
	alice.wait("conversations sorted by activity", titles+` === 'Team,bob'`)

	// Closed by the client: red, send disabled, "Retry now" brings it back.
	eval[bool](t, alice.tab, `(window.parleyApp.client.close(), true)`)
	alice.wait("disconnected, send disabled", connState("disconnected")+` && document.querySelector('[data-testid=send]').disabled && !document.querySelector('[data-testid=retry-now]').hidden`)
	alice.click("retry now", `[data-testid=retry-now]:not([hidden])`)
	alice.wait("connected", connState("connected")+` && !document.querySelector('[data-testid=send]').disabled`)

	// Log out and back in: the same conversations, newest first.
	alice.do("log out", chromedp.Click(testID("logout")))
	alice.wait("the login form", `!document.querySelector('[data-testid=auth-view]').hidden`)
	alice.do("log in",
		chromedp.SendKeys(testID("auth-username"), "alice"),
		chromedp.SendKeys(testID("auth-password"), "alice-password-1"),
		chromedp.Click(testID("login")),
	)
	alice.wait("connected after login", connState("connected"))
	alice.wait("the conversations after login", titles+` === 'Team,bob'`)
	alice.wait("the unread count from the server", `!document.querySelector('[data-testid=unread]')`)
}

// storedOutbox is a JavaScript expression: the items of the page user's
// outbox in localStorage (one key per item).
const storedOutbox = `Object.keys(localStorage).filter(k => k.startsWith('parley.' + parleyApp.me.id + '.outbox.')).map(k => JSON.parse(localStorage.getItem(k)))`
