package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestThrottledAndComposer checks the featureThrottled indicator against
// a server whose typing limit is on (it shows while the server throttles
// typing and clears when the server's unthrottled frame arrives), and the
// composer's keys: Shift+Enter inserts a newline, Enter sends.
func TestThrottledAndComposer(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		// One typing:true, then one every 2 s: a second start right
		// after a start-stop is over the limit (typing:false is free).
		c.Limits.TypingPerSecond = 0.5
		c.Limits.TypingBurst = 1
	}))
	shots := screenshotDir(t)
	alice, _ := aliceToBob(t, browser, srv)

	// Record what cleared the throttled state: the unthrottled frames
	// counted at that moment (0 would mean the client's own fallback
	// timer, not the server, lifted it).
	eval[bool](t, alice.tab, `(() => {
		let prev = parleyApp.client.state;
		window.clearedAfterFrames = -1;
		parleyApp.client.on('state', s => {
			if (prev === 'featureThrottled' && s.state === 'connected') window.clearedAfterFrames = parleyApp.client.stats.unthrottled;
			prev = s.state;
		});
		return true;
	})()`)
	// Type, erase, type again: typing:true, typing:false, then a second
	// typing:true (the client resends at once after a stop) over the limit.
	alice.do("type, erase, type", chromedp.SendKeys(testID("composer"), "a"+kb.Backspace+"b"))
	alice.wait("the throttled indicator",
		connState("featureThrottled")+` && /typing paused until/.test(document.querySelector('[data-testid=conn-text]').textContent)`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "throttled"))
	alice.wait("cleared by the server's unthrottled frame",
		connState("connected")+` && document.querySelector('[data-testid=conn-text]').textContent === 'Connected' && window.clearedAfterFrames === 1`)
	if n := eval[int](t, alice.tab, `parleyApp.client.stats.throttled`); n != 1 {
		t.Errorf("throttled frames = %d, want 1", n)
	}

	// Shift+Enter: a new line in the composer, nothing sent.
	eval[bool](t, alice.tab, `(document.querySelector('[data-testid=composer]').value = '', true)`)
	alice.do("first line, then Shift+Enter",
		chromedp.SendKeys(testID("composer"), "line one"),
		chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
	)
	alice.wait("a newline in the composer", `document.querySelector('[data-testid=composer]').value === 'line one\n'`)
	if n := eval[int](t, alice.tab, `document.querySelectorAll('[data-testid=message]').length`); n != 0 {
		t.Fatalf("Shift+Enter sent something: %d messages shown", n)
	}
	// Enter sends both lines as one message.
	alice.do("second line, then Enter", chromedp.SendKeys(testID("composer"), "line two"+kb.Enter))
	alice.wait("one two-line message sent",
		messageWith("line one\nline two")+`?.dataset.status === 'sent' && document.querySelectorAll('[data-testid=message]').length === 1`)
	if v := eval[string](t, alice.tab, `document.querySelector('[data-testid=composer]').value`); v != "" {
		t.Errorf("composer after Enter = %q, want empty", v)
	}
}
