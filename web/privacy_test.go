package web_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestRequestsAndBlocks: a stranger's conversation arrives under
// "Message requests" with Accept and Decline; declined it says so, and
// the stranger's messages are refused; accepted it joins the main list.
// Block and Unblock in the pane header and the Privacy panel (consent
// setting, blocked list) follow each other and the server; under
// contacts only, a stranger can neither start a chat nor add alice to a
// group. axe-core finds no violation in the request banner or the panel.
func TestRequestsAndBlocks(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	alice, bob := twoUsers(t, browser, srv.URL)
	shots := screenshotDir(t)
	alice.do("desktop width", chromedp.EmulateViewport(1280, 800))

	// Alice accepts everyone (the default): bob's chat is a request.
	bob.startDirect("alice")
	bob.do("write to a stranger", chromedp.SendKeys(testID("composer"), "hello alice, we have not met"+kb.Enter))
	direct := eval[string](t, bob.tab, `window.parleyApp.open`)
	alice.wait("the request listed apart", `!!document.querySelector('[data-testid=requests-heading]')
		&& document.querySelector('[data-testid=requests-heading] ~ li [data-testid=conversation][data-title=bob]') !== null`)
	alice.wait("no \"no conversations\" beside a request", `document.querySelector('[data-testid=no-conversations]').hidden`)
	alice.click("open the request", `[data-testid=conversation][data-title=bob]`)
	alice.wait("the request banner", `!!document.querySelector('[data-testid=request-accept]') && !!document.querySelector('[data-testid=request-decline]')`)
	alice.wait("bob's message", messageWith("hello alice, we have not met"))
	noViolations(t, alice, "request banner")
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "desktop-1280-request"))

	alice.click("decline", `[data-testid=request-decline]`)
	alice.wait("declined", `document.querySelector('[data-testid=request-banner]')?.textContent.includes('You declined')
		&& !document.querySelector('[data-testid=request-decline]')`)
	if code := apiSendStatus(t, srv.URL, bob.token(), direct, "declined-1", "please?"); code != 403 {
		t.Errorf("bob's send after the decline: HTTP %d, want 403", code)
	}
	alice.click("accept after all", `[data-testid=request-accept]`)
	alice.wait("accepted: no banner, no requests heading", `!document.querySelector('[data-testid=request-banner]') && !document.querySelector('[data-testid=requests-heading]')
		&& !!document.querySelector('[data-testid=conversation][data-title=bob]')`)

	// Bob types: alice sees it until she blocks him, which ends it at
	// once (not TYPING_EXPIRY_MS later).
	if code := servertest.Do(t, "POST", srv.URL+"/v1/conversations/"+direct+"/typing", bob.token(), []byte(`{"typing":true}`)).Status; code != 200 {
		t.Fatalf("bob's typing: HTTP %d", code)
	}
	alice.wait("bob typing", `window.parleyApp.client.typersIn(window.parleyApp.open).length === 1`)
	alice.click("block bob", `[data-testid=header-block] [data-testid=block-user]`)
	alice.wait("the button says Unblock", `document.querySelector('[data-testid=header-block] [data-testid=unblock-user]')?.textContent === 'Unblock bob'`)
	if code := apiSendStatus(t, srv.URL, bob.token(), direct, "blocked-1", "still there?"); code != 403 {
		t.Errorf("bob's send while blocked: HTTP %d, want 403", code)
	}
	alice.wait("bob's messages gone from the list and the thread", `document.querySelector('[data-testid=conversation][data-title=bob] [data-testid=last-message]')?.textContent === ''
		&& !(`+messageWith("hello alice, we have not met")+`)`)
	// The thread reloaded on the userBlocked event, which ended bob's typing.
	if n := eval[int](t, alice.tab, `window.parleyApp.client.typersIn(window.parleyApp.open).length`); n != 0 {
		t.Errorf("after the block alice sees %d typing, want none", n)
	}
	alice.click("open the privacy panel", `[data-testid=privacy-toggle]`)
	alice.wait("bob in the blocked list", `!!document.querySelector('[data-testid=blocked-user][data-user=bob]')`)
	alice.wait("everyone shown", `document.querySelector('[data-testid=privacy-panel]')?.dataset.consent === 'everyone'
		&& document.querySelector('[data-testid=consent]').value === 'everyone'`)
	noViolations(t, alice, "privacy panel")
	// Choosing an option, as a user does: the value, then change.
	choose := func(v string) {
		eval[bool](t, alice.tab, `(() => { const s = document.querySelector('[data-testid=consent]'); s.value = `+jsString(v)+`; return s.dispatchEvent(new Event('change')); })()`)
		alice.wait(v+" saved", `document.querySelector('[data-testid=privacy-panel]')?.dataset.consent === `+jsString(v))
	}
	choose("contacts")
	stranger := srv.Token(t, "stranger", "stranger")
	if code := apiCreateGroupStatus(t, srv.URL, stranger, "alice"); code != 403 {
		t.Errorf("a stranger's group with a contacts-only alice: HTTP %d, want 403", code)
	}
	if code := servertest.Do(t, "POST", srv.URL+"/v1/conversations/direct", stranger, []byte(`{"username":"alice"}`)).Status; code != 403 {
		t.Errorf("a stranger's chat with a contacts-only alice: HTTP %d, want 403", code)
	}
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "desktop-1280-privacy"))
	choose("everyone")
	if code := apiCreateGroupStatus(t, srv.URL, stranger, "alice"); code != 201 {
		t.Errorf("a stranger's group with alice, accepting everyone: HTTP %d, want 201", code)
	}
	alice.click("unblock from the panel", `[data-testid=blocked-user][data-user=bob] [data-testid=unblock-user]`)
	alice.wait("nobody blocked", `!!document.querySelector('[data-testid=no-blocked]')
		&& !!document.querySelector('[data-testid=header-block] [data-testid=block-user]')`)
	apiSend(t, srv.URL, bob.token(), direct, "unblocked-1", "thanks")
	alice.wait("bob's message after the unblock", messageWith("thanks"))

	alice.do("phone width", chromedp.EmulateViewport(390, 760))
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "phone-390-privacy"))
}

// apiCreateGroupStatus asks for a group with username and returns the
// HTTP status.
func apiCreateGroupStatus(t *testing.T, baseURL, token, username string) int {
	t.Helper()
	u := apiJSON(t, "GET", baseURL+"/v1/users/"+username, token, nil)
	b, _ := json.Marshal(map[string]any{"title": "g", "member_ids": []any{u["id"]}})
	return servertest.Do(t, "POST", baseURL+"/v1/conversations/group", token, b).Status
}

// apiSendStatus posts a text message as another client would and returns
// the HTTP status.
func apiSendStatus(t *testing.T, baseURL, token, conversationID, clientID, text string) int {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"client_id": clientID, "type": "text", "text": text})
	return servertest.Do(t, "POST", baseURL+"/v1/conversations/"+conversationID+"/messages", token, b).Status
}

// TestWriteInDeclinedRequest: writing in a request one declined accepts
// it, as writing in a pending one does (docs/protocol.md): the banner and
// the requests heading go at once, and the other user may write again.
// (The page cleared only a pending request, so "You declined" stayed
// above alice's own message until the list was fetched again.)
func TestWriteInDeclinedRequest(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	alice, bob := twoUsers(t, browser, srv.URL)
	bob.startDirect("alice")
	bob.do("write to a stranger", chromedp.SendKeys(testID("composer"), "hello alice"+kb.Enter))
	direct := eval[string](t, bob.tab, `window.parleyApp.open`)
	alice.wait("the request listed", `!!document.querySelector('[data-testid=conversation][data-title=bob]')`)
	alice.click("open the request", `[data-testid=conversation][data-title=bob]`)
	alice.click("decline", `[data-testid=request-decline]`)
	alice.wait("declined", `document.querySelector('[data-testid=request-banner]')?.textContent.includes('You declined')`)

	alice.do("write in it after all", chromedp.SendKeys(testID("composer"), "sorry bob, hi"+kb.Enter))
	alice.wait("her message shown", messageWith("sorry bob, hi"))
	alice.wait("no banner, no requests heading", `!document.querySelector('[data-testid=request-banner]') && !document.querySelector('[data-testid=requests-heading]')`)
	if code := apiSendStatus(t, srv.URL, bob.token(), direct, "after-1", "thanks"); code >= 300 {
		t.Errorf("bob's send after alice wrote: HTTP %d, want success", code)
	}
	alice.wait("bob's answer", messageWith("thanks"))
}

// TestHistoryPastBlockedRun: a thread loads past a run of more messages
// of a blocked user than the server reads for one page
// (parley.HistoryWindow): the page follows the server's next through the
// pages the run leaves empty and reaches the start of the conversation.
// (Paging by its oldest message, it asked for the same empty page for
// ever.)
func TestHistoryPastBlockedRun(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	bobToken, _ := srv.Register(t, "bob", "bob-password-1")
	carolToken, carol := srv.Register(t, "carol", "carol-password-1")
	alice := &page{t: t, name: "alice", tab: newTab(t, browser, srv.URL)}
	alice.register("alice-password-1")
	alice.createGroup("Team", "bob,carol")
	group := eval[string](t, alice.tab, `window.parleyApp.open`)
	apiDo(t, "PUT", srv.URL+"/v1/me/blocked/"+carol.ID, alice.token(), ``)

	apiSend(t, srv.URL, bobToken, group, "old", "before the run")
	for i := range parley.HistoryWindow + 5 {
		apiSend(t, srv.URL, carolToken, group, fmt.Sprint("hidden-", i), "hidden")
	}
	apiSend(t, srv.URL, bobToken, group, "new", "after the run")

	alice.do("reload", chromedp.Reload())
	alice.wait("the chat view after reload", `!document.querySelector('[data-testid=chat-view]').hidden`)
	alice.click("open the group", `[data-testid=conversation][data-title=Team]`)
	alice.wait("both of bob's messages and the start of the conversation",
		`(document.querySelector('[data-testid=messages]').scrollTop = 0, JSON.stringify(`+messageTexts+`) === '["before the run","after the run"]')
		&& !!document.querySelector('[data-testid=history-start]')`)
}

// TestHiddenQuote: alice blocked bob; carol's replies to bob's message
// show in alice's thread with the quote hidden ("A hidden message": not
// bob's name or text, nowhere on the page, and no jump), from history and
// live; bob's page shows the quote whole. Unblocked, alice's thread
// reloads with the quotes whole.
func TestHiddenQuote(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	bobToken, bob := srv.Register(t, "bob", "bob-password-1")
	carolToken, _ := srv.Register(t, "carol", "carol-password-1")
	alice := &page{t: t, name: "alice", tab: newTab(t, browser, srv.URL)}
	alice.register("alice-password-1")
	alice.do("desktop width", chromedp.EmulateViewport(1280, 800))
	alice.createGroup("Team", "bob,carol")
	group := eval[string](t, alice.tab, `window.parleyApp.open`)
	apiDo(t, "PUT", srv.URL+"/v1/me/blocked/"+bob.ID, alice.token(), ``)
	parent := apiSend(t, srv.URL, bobToken, group, "b1", "bob's secret plan")
	reply := func(clientID, text string) {
		b, _ := json.Marshal(map[string]string{"client_id": clientID, "text": text, "reply_to": parent.ID})
		servertest.Call(t, "POST", srv.URL+"/v1/conversations/"+group+"/messages", carolToken, b, 201)
	}
	reply("c1", "re: that plan")

	hiddenQuote := func(text string) string {
		return `(q => q?.textContent === 'A hidden message' && q.classList.contains('hidden') && q.disabled && q.dataset.replyTo === ` + jsString(parent.ID) + `)(` + inMessage(text, "[data-testid=quote]") + `)`
	}
	noSecret := `!document.body.textContent.includes("bob's secret")`
	alice.do("reload", chromedp.Reload())
	alice.wait("the chat view after reload", `!document.querySelector('[data-testid=chat-view]').hidden`)
	alice.click("open the group", `[data-testid=conversation][data-title=Team]`)
	alice.wait("carol's reply, its quote hidden (history)", hiddenQuote("re: that plan")+` && `+noSecret)
	reply("c2", "and another")
	alice.wait("carol's live reply, its quote hidden", hiddenQuote("and another")+` && `+noSecret)
	noViolations(t, alice, "hidden quote")
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "desktop-1280-hidden-quote"))

	apiDo(t, "DELETE", srv.URL+"/v1/me/blocked/"+bob.ID, alice.token(), ``)
	whole := func(text string) string {
		return `(q => q?.textContent === "bob bob's secret plan" && !q.classList.contains('hidden') && !q.disabled)(` + inMessage(text, "[data-testid=quote]") + `)`
	}
	alice.wait("unblocked: the quotes whole again", whole("re: that plan")+` && `+whole("and another"))
}
