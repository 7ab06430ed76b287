package web_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/servertest"
)

// axeSource is axe-core, vendored (see testdata/axe-core/README.md): the
// tests run with no network.
func axeSource(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/axe-core/axe.min.js")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// axeCheck runs axe-core on the tab's page as it is and fails the test on
// every serious or critical violation (minor and moderate ones are logged).
// It returns how many violations it found, of any impact.
func axeCheck(t *testing.T, p *page, where, src string) int {
	t.Helper()
	if !eval[bool](t, p.tab, `!!window.axe`) {
		eval[bool](t, p.tab, src+"\n;true")
	}
	out := eval[string](t, p.tab, `axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))))`)
	var vs []struct {
		ID     string   `json:"id"`
		Impact string   `json:"impact"`
		Help   string   `json:"help"`
		Nodes  []string `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		msg := where + ": axe " + v.Impact + " " + v.ID + ": " + v.Help + " at " + strings.Join(v.Nodes, ", ")
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
	t.Logf("%s: axe found %d violations", where, len(vs))
	return len(vs)
}

// noViolations is axeCheck failing on violations of any impact: the
// request banner, the privacy panel and search results
// (TestRequestsAndBlocks, TestSearchOpensMessage) are held to it.
func noViolations(t *testing.T, p *page, where string) {
	t.Helper()
	if n := axeCheck(t, p, where, axeSource(t)); n != 0 {
		t.Errorf("%s: %d axe violations (logged above)", where, n)
	}
}

// TestAccessibility: axe-core finds no serious or critical violation on the
// sign-in page, the chat and the phone layout; every control is reached
// with Tab and shows a visible focus; new messages and the connection
// state are said through live regions.
func TestAccessibility(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	bobToken, _ := srv.Register(t, "bob", "bob-password-1")
	src := axeSource(t)

	alice := &page{t: t, name: "alice", tab: newTab(t, browser, srv.URL)}
	alice.do("desktop width", chromedp.EmulateViewport(1280, 800))
	alice.do("the sign-in form", chromedp.WaitVisible(testID("auth-username")))
	axeCheck(t, alice, "sign-in", src)

	alice.register("alice-password-1")
	alice.startDirect("bob")
	alice.do("send", chromedp.SendKeys(testID("composer"), "Hello https://example.com"+kb.Enter))
	alice.wait("sent", messageWith("Hello https://example.com")+`?.dataset.status === 'sent'`)
	convID := eval[string](t, alice.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)
	apiSend(t, srv.URL, bobToken, convID, "b-1", "Hi Alice")
	alice.wait("bob's message", messageWith("Hi Alice"))
	axeCheck(t, alice, "chat", src)
	alice.wait("said through the live region", `document.querySelector('[data-testid=announcer]')?.textContent === 'bob: Hi Alice'`)
	// Live regions: polite status regions; the countdown pill is not one.
	if !eval[bool](t, alice.tab, `['announcer', 'conn-announcer'].every(id => (el => el.getAttribute('aria-live') === 'polite' && el.getAttribute('role') === 'status')(document.querySelector('[data-testid=' + id + ']'))) && !document.querySelector('[data-testid=conn-status]').closest('[aria-live]')`) {
		t.Error("live regions missing, or the countdown pill is one")
	}
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "desktop-1280-chat"))

	// Tab through the page: every visible control is reached, each with a
	// visible focus ring.
	eval[bool](t, alice.tab, `(document.activeElement?.blur(), window.focusLog = [], document.addEventListener('focusin', e => {
		const el = e.target;
		const ring = el.id === 'attach-input' ? document.querySelector('[data-testid=attach]') : el;
		const cs = getComputedStyle(ring);
		window.focusLog.push({key: el.dataset.testid || el.id || el.tagName + ':' + el.textContent.trim().slice(0, 20),
			visible: cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2});
	}), true)`)
	for range 40 {
		alice.do("Tab", chromedp.KeyEvent(kb.Tab))
	}
	var log []struct {
		Key     string `json:"key"`
		Visible bool   `json:"visible"`
	}
	if err := json.Unmarshal([]byte(eval[string](t, alice.tab, `JSON.stringify(window.focusLog)`)), &log); err != nil {
		t.Fatal(err)
	}
	reached := map[string]bool{}
	for _, e := range log {
		reached[e.Key] = true
		if !e.Visible {
			t.Errorf("%s has no visible focus", e.Key)
		}
	}
	var controls []string
	if err := json.Unmarshal([]byte(eval[string](t, alice.tab, `JSON.stringify([...document.querySelectorAll('button, a[href], input, textarea, summary, [tabindex="0"]')]
		.filter(el => !el.disabled && (el.id === 'attach-input' ? !el.closest('[hidden]') : el.checkVisibility()))
		.map(el => el.dataset.testid || el.id || el.tagName + ':' + el.textContent.trim().slice(0, 20)))`)), &controls); err != nil {
		t.Fatal(err)
	}
	for _, c := range controls {
		if !reached[c] {
			t.Errorf("%s is not reached with Tab (reached: %v)", c, log)
		}
	}
	t.Logf("Tab reached %d controls of %d", len(reached), len(controls))

	// The connection state is said once when it changes.
	srv.Stop(t)
	alice.wait("the connection loss said", `document.querySelector('[data-testid=conn-announcer]').textContent.startsWith('Connection lost')`)
	axeCheck(t, alice, "reconnecting", src)
	srv.Start(t)
	alice.wait("reconnected, and said", connState("connected")+` && document.querySelector('[data-testid=conn-announcer]').textContent === 'Connected.'`)

	alice.do("phone width", chromedp.EmulateViewport(390, 760))
	axeCheck(t, alice, "phone, conversation", src)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "phone-390-a11y-chat"))
	alice.click("back", `[data-testid=back]`)
	axeCheck(t, alice, "phone, list", src)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "phone-390-list"))
}
