package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/internal/servertest"
)

// TestContentSecurityPolicy: the client loads under the server's strict
// CSP with no violation, and the violation watch every browser test uses
// (newTab) does see one when a page breaks the policy.
func TestContentSecurityPolicy(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Fatalf("GET / has CSP %q, want a strict one", csp)
	}

	tab, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatal(err)
	}
	v := watchCSP(t, tab)
	do(t, tab, "open the client", chromedp.Navigate(srv.URL+"/"))
	waitJS(t, tab, "the sign-in form", `!!document.querySelector('[data-testid=auth-view]:not([hidden]) [data-testid=login]')`, "")
	if got := v.list(); len(got) != 0 {
		t.Fatalf("the client broke its CSP: %q", got)
	}

	// An inline event handler is what the CSP forbids: it must be blocked
	// and reported.
	eval[bool](t, tab, `(document.body.insertAdjacentHTML('beforeend', '<img src="data:," onload="window.inlineRan = true">'), true)`)
	deadline := time.Now().Add(waitTimeout) // a ceiling for a broken run, not a measurement
	for len(v.list()) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := v.list(); len(got) == 0 || !strings.Contains(got[0], "script-src") {
		t.Fatalf("an inline handler was not reported as a CSP violation: %q", got)
	}
	if eval[bool](t, tab, `window.inlineRan === true`) {
		t.Fatal("the inline handler ran")
	}
}
