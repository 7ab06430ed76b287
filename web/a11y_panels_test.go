package web_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/servertest"
)

// TestAccessibilityPanels: axe-core finds no violation at all (of any
// impact) with a pending request's banner shown, with the privacy panel open
// (consent select and a blocked user), and with the search box's results
// (highlighted matches and a "More results" button).
func TestAccessibilityPanels(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	src := axeSource(t)
	bobToken, _ := srv.Register(t, "bob", "bob-password-1")
	alice := &page{t: t, name: "alice", tab: newTab(t, browser, srv.URL)}
	alice.do("desktop width", chromedp.EmulateViewport(1280, 800))
	alice.register("alice-password-1")

	// A stranger's chat to contacts-only alice: a pending request.
	servertest.Call(t, "PATCH", srv.URL+"/v1/me/privacy", alice.token(), []byte(`{"consent":"contacts"}`), http.StatusOK)
	var direct struct{ ID string }
	if err := json.Unmarshal(servertest.Call(t, "POST", srv.URL+"/v1/conversations/direct", bobToken, []byte(`{"username":"alice"}`), 0), &direct); err != nil {
		t.Fatal(err)
	}
	// More than a page of matches (the page asks for 20), for "More results".
	for i := range 21 {
		apiSend(t, srv.URL, bobToken, direct.ID, "a11y-"+string(rune('a'+i)), "quokka number "+string(rune('a'+i)))
	}
	alice.click("open the request", `[data-testid=conversation][data-title=bob]`)
	alice.wait("the request banner", `!!document.querySelector('[data-testid=request-banner] [data-testid=request-accept]')`)
	noViolations(t, alice, "request banner", src)

	alice.click("block bob", `[data-testid=header-block] [data-testid=block-user]`)
	alice.wait("blocked", `!!document.querySelector('[data-testid=header-block] [data-testid=unblock-user]')`)
	alice.click("open the privacy panel", `[data-testid=privacy-toggle]`)
	alice.wait("bob in the blocked list", `!!document.querySelector('[data-testid=blocked-user][data-user=bob]')`)
	noViolations(t, alice, "privacy panel", src)
	alice.click("unblock bob", `[data-testid=blocked-user][data-user=bob] [data-testid=unblock-user]`)
	alice.wait("nobody blocked", `!!document.querySelector('[data-testid=no-blocked]')`)

	alice.do("search", chromedp.SendKeys(testID("search-input"), "quokka"+kb.Enter))
	alice.wait("a page of results and more", `document.querySelectorAll('[data-testid=search-result]').length === 20
		&& !!document.querySelector('[data-testid=search-more]') && !!document.querySelector('[data-testid=search-match]')`)
	noViolations(t, alice, "search results", src)
}

// noViolations is axeCheck failing on violations of any impact.
func noViolations(t *testing.T, p *page, where, src string) {
	t.Helper()
	if n := axeCheck(t, p, where, src); n != 0 {
		t.Errorf("%s: %d axe violations (logged above)", where, n)
	}
}
