package web_test

// Tests of the web client as a user finds it (issue 17): each checks one
// fault a user met, in real Chromium against a real server.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// apiJSON calls the HTTP API with token and decodes the JSON answer into
// a map; any status but 2xx fails the test.
func apiJSON(t *testing.T, method, url, token string, body any) map[string]any {
	t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	out := map[string]any{}
	_ = json.Unmarshal(servertest.Call(t, method, url, token, b, 0), &out) // a 204 has no body
	return out
}

// badge is a JavaScript expression: the unread badge's text of the
// conversation titled title (empty when there is none).
func badge(title string) string {
	return fmt.Sprintf(`(document.querySelector('[data-testid=conversation][data-title=%s] [data-testid=unread]')?.textContent || '')`, title)
}

// TestUnreadBadgeAfterDelete: alice sends bob three messages he has not
// read and deletes one; his badge (and the tab's title) must follow the
// server's count, 2, not stay at 3.
func TestUnreadBadgeAfterDelete(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	aliceToken, _ := srv.Register(t, "alice", "alice-password-1")
	bob := &page{t: t, name: "bob", tab: newTab(t, browser, srv.URL)}
	bob.register("bob-password-1")

	conv := apiJSON(t, "POST", srv.URL+"/v1/conversations/direct", aliceToken, map[string]string{"username": "bob"})
	convID := conv["id"].(string)
	var ids []string
	for i := range 3 {
		ids = append(ids, apiSend(t, srv.URL, aliceToken, convID, fmt.Sprintf("u-%d", i), fmt.Sprintf("unread %d", i)).ID)
	}
	bob.wait("three unread", badge("alice")+` === '3'`)

	apiJSON(t, "DELETE", srv.URL+"/v1/conversations/"+convID+"/messages/"+ids[1], aliceToken, nil)
	bobToken := bob.token()
	server := apiJSON(t, "GET", srv.URL+"/v1/conversations/"+convID, bobToken, nil)
	if n := server["unread_count"]; n != float64(2) {
		t.Fatalf("the server counts %v unread after the delete, want 2", n)
	}
	bob.wait("the badge at the server's count", badge("alice")+` === '2'`)

	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	bob.wait("read: no badge", badge("alice")+` === ''`)
}

// TestUnreadBadgeStopsAt99: past parley.MaxUnreadCount unread messages
// the badge and the tab's title say "99+", both when the client counted
// the messages as they came and after a reload, when the count is the
// server's (which stops at 99).
func TestUnreadBadgeStopsAt99(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	aliceToken, _ := srv.Register(t, "alice", "alice-password-1")
	bob := &page{t: t, name: "bob", tab: newTab(t, browser, srv.URL)}
	bob.register("bob-password-1")

	conv := apiJSON(t, "POST", srv.URL+"/v1/conversations/direct", aliceToken, map[string]string{"username": "bob"})
	convID := conv["id"].(string)
	apiSend(t, srv.URL, aliceToken, convID, "first", "first")
	bob.wait("one unread", badge("alice")+` === '1'`)
	for i := range parley.MaxUnreadCount + 1 {
		apiSend(t, srv.URL, aliceToken, convID, fmt.Sprintf("u-%d", i), fmt.Sprintf("unread %d", i))
	}
	const at99 = ` === '99+' && document.title === '(99+) Parley'`
	bob.wait("99+ from the events", badge("alice")+at99)
	bob.do("reload", chromedp.Reload())
	bob.wait("99+ from the server's list", badge("alice")+at99)
}

// TestRefusedFileInWords: a file the server will never take (text bytes
// sent as an image) fails with a sentence, not the server's MIME type,
// and offers Discard but no Retry.
func TestRefusedFileInWords(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	alice, _ := aliceToBob(t, browser, srv)
	eval[bool](t, alice.tab, `(parleyApp.client.sendImage(parleyApp.open, new File(['just some notes'], 'notes.png', {type: 'image/png'})), true)`)
	failed := `document.querySelector('[data-testid=message][data-status=failed]')`
	alice.wait("failed", `!!`+failed)
	mark := eval[string](t, alice.tab, failed+`.querySelector('[data-testid=mark]').textContent`)
	if mark != "Not sent: This file is not an image Parley can send (PNG, JPEG, GIF or WebP)." {
		t.Errorf("a refused file says %q", mark)
	}
	if eval[bool](t, alice.tab, `!!`+failed+`.querySelector('[data-testid=retry]')`) {
		t.Error("Retry is offered for a file the server will never take")
	}
	if !eval[bool](t, alice.tab, `!!`+failed+`.querySelector('[data-testid=discard]')`) {
		t.Error("no Discard")
	}
}

// TestPhoneHeader: at 390 px the header stays one row of one height while
// the reconnect countdown runs, "Retry now" stays on one line, and the
// composer's placeholder fits its box.
func TestPhoneHeader(t *testing.T) {
	browser := newBrowser(t)
	// A far goaway delay: the countdown runs for minutes, ticking each second.
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 5 * time.Minute }))
	shots := screenshotDir(t)
	alice, _ := aliceToBob(t, browser, srv, chromedp.EmulateViewport(390, 760))

	fits := `(() => {
		const ta = document.querySelector('[data-testid=composer]');
		const cs = getComputedStyle(ta);
		const ctx = document.createElement('canvas').getContext('2d');
		ctx.font = cs.font;
		const room = ta.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
		return ctx.measureText(ta.placeholder).width <= room;
	})()`
	if !eval[bool](t, alice.tab, fits) {
		t.Errorf("the composer's placeholder %q is cut off at 390 px", eval[string](t, alice.tab, `document.querySelector('[data-testid=composer]').placeholder`))
	}
	// The conversation's buttons (Mute, Archive, Block) keep their labels
	// on one line (they stacked, "Block bob" broken in two), and nothing
	// pushes the page wider than the phone (the Send button stays in view).
	broken := eval[string](t, alice.tab, `(() => {
		const bad = [...document.querySelectorAll('.pane-header button')].filter(b => {
			if (b.offsetParent === null) return false;
			const r = document.createRange(); r.selectNodeContents(b);
			return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1;
		}).map(b => b.textContent);
		const send = document.querySelector('[data-testid=send]') || document.querySelector('form button[type=submit]');
		if (send && send.getBoundingClientRect().right > window.innerWidth + 1) bad.push('send out of view');
		if (document.documentElement.scrollWidth > window.innerWidth) bad.push('page wider than the screen');
		return bad.join(', ');
	})()`)
	if broken != "" {
		t.Errorf("at 390 px: %s", broken)
	}
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "phone-390-chat"))

	// Record the header's height and rows at every change of the pill's text.
	eval[bool](t, alice.tab, `(() => {
		window.headerLog = [];
		const bar = document.querySelector('.topbar');
		const record = () => {
			const kids = [...bar.children].filter(k => k.offsetParent !== null);
			const tops = kids.map(k => k.getBoundingClientRect().top + k.getBoundingClientRect().height / 2);
			const retry = document.querySelector('[data-testid=retry-now]');
			let retryLines = 0;
			if (!retry.hidden) { const r = document.createRange(); r.selectNodeContents(retry); retryLines = r.getClientRects().length; }
			window.headerLog.push({text: (document.querySelector('[data-testid=conn-short]') || document.querySelector('[data-testid=conn-text]')).textContent,
				height: bar.getBoundingClientRect().height, rowSpread: Math.max(...tops) - Math.min(...tops),
				barWidth: bar.scrollWidth - bar.clientWidth, retryLines});
		};
		new MutationObserver(record).observe(document.querySelector('[data-testid=conn-status]'), {subtree: true, characterData: true, childList: true, attributes: true});
		record();
		return true;
	})()`)
	srv.Stop(t)
	alice.wait("three countdown texts while reconnecting",
		connState("reconnecting")+` && new Set(window.headerLog.filter(e => /^(Retry|Reconnecting) in \d+ s/.test(e.text)).map(e => e.text)).size >= 3`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "phone-390-reconnecting"))
	var log []struct {
		Text       string  `json:"text"`
		Height     float64 `json:"height"`
		RowSpread  float64 `json:"rowSpread"`
		BarWidth   float64 `json:"barWidth"`
		RetryLines int     `json:"retryLines"`
	}
	if err := json.Unmarshal([]byte(eval[string](t, alice.tab, `JSON.stringify(window.headerLog)`)), &log); err != nil {
		t.Fatal(err)
	}
	for _, e := range log {
		if e.Height != log[0].Height {
			t.Errorf("header height %.1f px at %q, %.1f px at %q: the page jumps", e.Height, e.Text, log[0].Height, log[0].Text)
		}
		if e.RowSpread > 8 {
			t.Errorf("header wraps at %q: its items' centres are %.1f px apart", e.Text, e.RowSpread)
		}
		if e.BarWidth > 0 {
			t.Errorf("header overflows by %.0f px at %q", e.BarWidth, e.Text)
		}
		if e.RetryLines > 1 {
			t.Errorf("\"Retry now\" is split over %d lines at %q", e.RetryLines, e.Text)
		}
	}
	if log[0].Height > 56 {
		t.Errorf("header is %.1f px high at 390 px, want one row", log[0].Height)
	}
	t.Logf("%d header samples, height %.1f px", len(log), log[0].Height)
}

// TestDeleteAsksFirst: Delete on an own message asks before deleting;
// Cancel (or Escape) keeps the message, Delete in the question deletes it.
func TestDeleteAsksFirst(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	alice, _ := aliceToBob(t, browser, srv)
	alice.do("send", chromedp.SendKeys(testID("composer"), "Keep me"+kb.Enter))
	alice.wait("sent", messageWith("Keep me")+`?.dataset.status === 'sent'`)
	convID := eval[string](t, alice.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)
	token := alice.token()
	deletedOnServer := func() bool {
		for _, m := range apiMessages(t, srv.URL, token, convID) {
			if m.Text == "Keep me" {
				return false
			}
		}
		return true
	}

	alice.click("delete once", `[data-testid=message] [data-testid=delete]`)
	alice.wait("a question, with the focus on its Delete", `!!document.querySelector('[data-testid=confirm-delete]') && document.activeElement?.dataset.testid === 'confirm-delete-yes'`)
	if deletedOnServer() {
		t.Fatal("one click deleted the message")
	}
	alice.do("Escape cancels", chromedp.KeyEvent(kb.Escape))
	alice.wait("the question gone, focus back on Delete", `!document.querySelector('[data-testid=confirm-delete]') && document.activeElement?.dataset.testid === 'delete'`)
	alice.click("delete again", `[data-testid=message] [data-testid=delete]`)
	alice.click("cancel", `[data-testid=confirm-delete-no]`)
	alice.wait("still there", `!document.querySelector('[data-testid=confirm-delete]') && !`+messageWith("Keep me")+`.classList.contains('deleted')`)
	if deletedOnServer() {
		t.Fatal("Cancel deleted the message")
	}

	alice.click("delete", `[data-testid=message] [data-testid=delete]`)
	alice.click("yes", `[data-testid=confirm-delete-yes]`)
	alice.wait("the tombstone", `document.querySelector('[data-testid=message]').classList.contains('deleted')`)
	if !deletedOnServer() {
		t.Fatal("confirmed, but the server still has the message")
	}
}

// TestComposerAndThread: links are links (http and https only, safely),
// days are separated, the length error goes with the text, the composer
// grows, "No conversations yet" sits under the forms, and an image waits
// in a tray with a caption (pasted; a file that is not an image waits
// there as a file).
func TestComposerAndThread(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	srv.Register(t, "bob", "bob-password-1")
	alice := &page{t: t, name: "alice", tab: newTab(t, browser, srv.URL)}
	alice.do("desktop width", chromedp.EmulateViewport(1280, 800))
	alice.register("alice-password-1")

	// "No conversations yet", once the (empty) list is known, right under
	// the forms, not at the bottom of the sidebar.
	alice.wait("the empty note", `!document.querySelector('[data-testid=no-conversations]').hidden`)
	if gap := eval[float64](t, alice.tab, `document.querySelector('[data-testid=no-conversations]').getBoundingClientRect().top - document.querySelector('.new-group').getBoundingClientRect().bottom`); gap > 80 {
		t.Errorf("\"No conversations yet\" is %.0f px below the forms, want it right under them", gap)
	}
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "desktop-empty"))
	alice.startDirect("bob")
	t.Run("links and days", func(t *testing.T) { linksAndDays(t, alice) })
	t.Run("length error", func(t *testing.T) { lengthError(t, alice) })
	t.Run("composer grows", func(t *testing.T) { composerGrows(t, alice) })
	t.Run("paste and caption", func(t *testing.T) { pasteAndCaption(t, alice) })
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "desktop-1280-thread"))
}

// linksAndDays: http(s) links are links, safely; days are separated.
func linksAndDays(t *testing.T, alice *page) {
	alice.t = t

	// Links.
	text := `See https://example.com/a?b=1#top. Not javascript:alert(1) nor <img src=x onerror="window.pwned=1"> (https://example.org/x_(y))`
	alice.do("send links", chromedp.SendKeys(testID("composer"), text+kb.Enter))
	alice.wait("the message", messageWith(text)+`?.dataset.status === 'sent'`)
	var links []map[string]string
	if err := json.Unmarshal([]byte(eval[string](t, alice.tab, `JSON.stringify([...`+messageWith(text)+`.querySelectorAll('a')].map(a => ({href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target})))`)), &links); err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{
		{"href": "https://example.com/a?b=1#top", "text": "https://example.com/a?b=1#top", "rel": "noopener noreferrer", "target": "_blank"},
		{"href": "https://example.org/x_(y)", "text": "https://example.org/x_(y)", "rel": "noopener noreferrer", "target": "_blank"},
	}
	gotJSON, _ := json.Marshal(links)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("links = %s, want %s", gotJSON, wantJSON)
	}
	if eval[bool](t, alice.tab, `!!`+messageWith(text)+`.querySelector('img') || window.pwned === 1`) {
		t.Error("the message's text became HTML")
	}

	// Day separators: one above today's messages; a message from another
	// day (put into the page's thread as history would) gets its own.
	alice.wait("a separator saying Today", `[...document.querySelectorAll('[data-testid=day-separator]')].map(d => d.textContent).join() === 'Today'`)
	eval[bool](t, alice.tab, `(() => {
		const t = parleyApp.threads.get(parleyApp.open);
		const first = [...t.msgs.values()][0];
		const old = new Date(); old.setDate(old.getDate() - 1); old.setHours(12);
		t.msgs.set('old-1', {...first, id: 'old-1', client_id: 'old-1', seq: 0.5, text: 'from yesterday', created_at: old.toISOString()});
		parleyApp.client.emit('outbox', {});
		return true;
	})()`)
	alice.wait("Yesterday, then Today", `[...document.querySelectorAll('[data-testid=day-separator]')].map(d => d.textContent).join() === 'Yesterday,Today'`)
}

// lengthError: the length error goes with the text.
func lengthError(t *testing.T, alice *page) {
	alice.t = t

	// The length error goes when the text is cleared.
	long := strings.Repeat("x", 4002)
	eval[bool](t, alice.tab, `(document.querySelector('[data-testid=composer]').value = '`+long+`', true)`)
	alice.do("send too much", chromedp.SendKeys(testID("composer"), kb.Enter))
	alice.wait("the length error", `/at most 4000 characters/.test(document.querySelector('li.error')?.textContent)`)
	alice.do("one character less", chromedp.SendKeys(testID("composer"), kb.Backspace))
	alice.wait("still there while too long", `!!document.querySelector('li.error')`)
	eval[bool](t, alice.tab, `(() => { const ta = document.querySelector('[data-testid=composer]'); ta.select(); return true; })()`)
	alice.do("erase all", chromedp.SendKeys(testID("composer"), kb.Backspace))
	alice.wait("the error gone with the text", `!document.querySelector('[data-testid=pane-error], li.error') && document.querySelector('[data-testid=composer]').value === ''`)
}

// composerGrows: the composer grows with its lines, and shrinks when sent.
func composerGrows(t *testing.T, alice *page) {
	alice.t = t
	eval[bool](t, alice.tab, `(document.querySelector('[data-testid=composer]').value = '', true)`)

	// The composer grows with its text, then shrinks back when sent.
	h0 := eval[float64](t, alice.tab, `document.querySelector('[data-testid=composer]').getBoundingClientRect().height`)
	alice.do("four lines", chromedp.SendKeys(testID("composer"), "one"), chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(testID("composer"), "two"), chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(testID("composer"), "three"), chromedp.KeyEvent(kb.Enter, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(testID("composer"), "four"))
	h1 := eval[float64](t, alice.tab, `document.querySelector('[data-testid=composer]').getBoundingClientRect().height`)
	scrolls := eval[bool](t, alice.tab, `(ta => ta.scrollHeight > ta.clientHeight)(document.querySelector('[data-testid=composer]'))`)
	if h1 < h0*2 || scrolls {
		t.Errorf("composer with four lines is %.0f px high (one line: %.0f px, scrolls: %v): it does not grow", h1, h0, scrolls)
	}
	alice.do("send them", chromedp.SendKeys(testID("composer"), kb.Enter))
	alice.wait("back to one line", fmt.Sprintf(`document.querySelector('[data-testid=composer]').getBoundingClientRect().height <= %f`, h0+1))
}

// pasteAndCaption: a pasted image waits in the tray, the text becomes its
// caption; a pasted file that is no image waits there as a file.
func pasteAndCaption(t *testing.T, alice *page) {
	alice.t = t

	// A pasted image waits in the tray; the text becomes its caption.
	png := base64.StdEncoding.EncodeToString(makePNG(t, 80, 50))
	paste := func(name, typ, b64 string) string {
		return `(() => {
			const bytes = Uint8Array.from(atob('` + b64 + `'), c => c.charCodeAt(0));
			const dt = new DataTransfer();
			dt.items.add(new File([bytes], '` + name + `', {type: '` + typ + `'}));
			const ta = document.querySelector('[data-testid=composer]');
			ta.focus();
			ta.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true}));
			return true;
		})()`
	}
	eval[bool](t, alice.tab, paste("notes.txt", "text/plain", base64.StdEncoding.EncodeToString([]byte("not an image"))))
	// A file that is no image waits in the tray too, as a file (issue 14:
	// any file may be sent); removed here, so the image goes alone.
	alice.wait("a text file in the tray as a file", `document.querySelectorAll('[data-testid=tray-item]').length === 1 && !!document.querySelector('[data-testid=tray-item] .tray-file') && !document.querySelector('li.error')`)
	alice.click("remove it", `[data-testid=tray-remove]`)
	alice.wait("the tray empty", `document.querySelectorAll('[data-testid=tray-item]').length === 0`)
	eval[bool](t, alice.tab, paste("screenshot.png", "image/png", png))
	alice.wait("the image in the tray", `document.querySelectorAll('[data-testid=tray-item]').length === 1 && document.querySelector('[data-testid=composer]').placeholder === 'Add a caption (optional)'`)
	alice.do("caption", chromedp.SendKeys(testID("composer"), "My screen"))
	t.Logf("screenshot: %s", screenshot(t, alice.tab, screenshotDir(t), "desktop-tray"))
	alice.do("send with Enter", chromedp.SendKeys(testID("composer"), kb.Enter))
	img := `document.querySelector('[data-testid=message][data-type=image]')`
	alice.wait("sent with its caption", img+`?.dataset.status === 'sent' && `+img+`.querySelector('[data-testid=message-text]').textContent === 'My screen' && document.querySelectorAll('[data-testid=tray-item]').length === 0`)
}

// notificationStub replaces the browser's Notification API before the
// page's scripts run: it records what the page shows and asks, and lets
// the test make the page hidden. Headless Chromium shows no notifications.
const notificationStub = `
window.shown = []; window.asked = [];
window.FakeNotification = class {
	constructor(title, opts) { window.shown.push({title, body: opts?.body, tag: opts?.tag}); }
	close() {}
	static permission = 'default';
	static requestPermission() {
		window.asked.push({gesture: navigator.userActivation.isActive});
		window.FakeNotification.permission = 'granted';
		return Promise.resolve('granted');
	}
};
window.Notification = window.FakeNotification;
window.pageHidden = false;
Object.defineProperty(document, 'visibilityState', {get: () => window.pageHidden ? 'hidden' : 'visible'});
Object.defineProperty(document, 'hidden', {get: () => window.pageHidden});
`

// TestNotifications: asked only from the button (a user gesture), shown
// for a new message while the tab is hidden, not while it is in front.
func TestNotifications(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	aliceToken, _ := srv.Register(t, "alice", "alice-password-1")
	bob := &page{t: t, name: "bob", tab: newTab(t, browser, "about:blank")}
	addScript(t, bob.tab, notificationStub)
	bob.do("open the client", chromedp.Navigate(srv.URL))
	bob.register("bob-password-1")
	conv := apiJSON(t, "POST", srv.URL+"/v1/conversations/direct", aliceToken, map[string]string{"username": "bob"})
	convID := conv["id"].(string)

	apiSend(t, srv.URL, aliceToken, convID, "n-1", "while you look")
	bob.wait("the message's badge, and the count in the tab's title", badge("alice")+` === '1' && document.title === '(1) Parley'`)
	if n := eval[int](t, bob.tab, `window.asked.length`); n != 0 {
		t.Fatalf("permission asked %d times without a click", n)
	}
	bob.do("turn notifications on", chromedp.Click(testID("notify-enable")))
	bob.wait("asked once, on the click", `window.asked.length === 1 && window.asked[0].gesture === true`)
	bob.wait("the button gone", `document.querySelector('[data-testid=notify-enable]').hidden`)

	eval[bool](t, bob.tab, `(window.pageHidden = true, document.dispatchEvent(new Event('visibilitychange')), true)`)
	apiSend(t, srv.URL, aliceToken, convID, "n-2", "while you are away")
	bob.wait("one notification, for the hidden tab's message",
		`JSON.stringify(window.shown) === `+jsString(`[{"title":"alice","body":"while you are away","tag":"`+convID+`"}]`))
	bob.wait("and said to screen readers", `document.querySelector('[data-testid=announcer]').textContent === 'New message from alice.'`)
	bob.wait("two unread in the title", `document.title === '(2) Parley'`)
	eval[bool](t, bob.tab, `(window.pageHidden = false, document.dispatchEvent(new Event('visibilitychange')), true)`)
	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	bob.wait("read: a plain title", `document.title === 'Parley'`)
	if n := eval[int](t, bob.tab, `window.shown.length`); n != 1 {
		t.Errorf("%d notifications, want 1 (none while the tab is in front)", n)
	}
}
