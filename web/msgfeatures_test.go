package web_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/servertest"
)

// apiDo sends a request with a JSON body and a token, as another device
// would, and fails the test unless it is answered 2xx.
func apiDo(t *testing.T, method, u, token, body string) {
	t.Helper()
	servertest.Call(t, method, u, token, []byte(body), 0)
}

// directPair starts a server and a browser with two registered users'
// tabs, alice with her direct chat with bob open; screenshots go to shots.
func directPair(t *testing.T) (srv *servertest.Server, shots string, alice, bob *page) {
	t.Helper()
	browser := newBrowser(t)
	srv = servertest.Start(t)
	shots = screenshotDir(t)
	alice, bob = twoUsers(t, browser, srv.URL)
	alice.startDirect("bob")
	return srv, shots, alice, bob
}

// TestEditsRepliesReactionsShown: the web client shows edits, a reply's
// quote (following its parent's edit) and reactions live, as another
// device of the users makes them through the HTTP API. (Making them from
// the page: actions_test.go.)
func TestEditsRepliesReactionsShown(t *testing.T) {
	srv, shots, alice, bob := directPair(t)
	alice.do("send a message", chromedp.SendKeys(testID("composer"), "lunch at noom?"+kb.Enter))
	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	bob.wait("alice's message", messageWith("lunch at noom?"))

	convID := eval[string](t, alice.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)
	msgID := eval[string](t, alice.tab, messageWith("lunch at noom?")+`.dataset.messageId`)
	aTok, bTok := alice.token(), bob.token()
	base := srv.URL + "/v1/conversations/" + url.PathEscape(convID) + "/messages"

	apiDo(t, "PATCH", base+"/"+msgID, aTok, `{"client_id":"e1","text":"lunch at noon?"}`)
	bob.wait("the edit, marked", messageWith("lunch at noon?")+`?.querySelector('[data-testid=edited]')`)
	apiDo(t, "POST", base, bTok, fmt.Sprintf(`{"client_id":"r1","text":"yes","reply_to":%q}`, msgID))
	alice.wait("the reply's quote", messageWith("yes")+`?.querySelector('[data-testid=quote]')?.textContent === 'alice lunch at noon?'`)
	apiDo(t, "PUT", base+"/"+msgID+"/reactions/"+url.PathEscape("👍"), bTok, "")
	apiDo(t, "PUT", base+"/"+msgID+"/reactions/"+url.PathEscape("👍"), aTok, "")
	alice.wait("two 👍, one mine", messageWith("lunch at noon?")+`?.querySelector('[data-testid=reaction][data-emoji="👍"].mine')?.textContent === '👍 2'`)
	apiDo(t, "DELETE", base+"/"+msgID+"/reactions/"+url.PathEscape("👍"), aTok, "")
	alice.wait("one 👍, not mine", messageWith("lunch at noon?")+`?.querySelector('[data-testid=reaction]:not(.mine)')?.textContent === '👍 1'`)
	apiDo(t, "PATCH", base+"/"+msgID, aTok, `{"client_id":"e2","text":"lunch at 1?"}`)
	bob.wait("the quote follows the edit", messageWith("yes")+`?.querySelector('[data-testid=quote]')?.textContent === 'alice lunch at 1?'`)
	bob.wait("the reactions kept through the edit", messageWith("lunch at 1?")+`?.querySelector('[data-testid=reaction]')?.textContent === '👍 1'`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "edits-replies-reactions"))
}
