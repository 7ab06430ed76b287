package web_test

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// Tests of what a user does to a message from the page (actions.js):
// edit, react, reply. Each has two users in two tabs, one acting, the
// other seeing the change live.

// inMessage is a JavaScript expression: the element sel inside the
// message with text.
func inMessage(text, sel string) string {
	return fmt.Sprintf(`%s?.querySelector(%s)`, messageWith(text), jsString(sel))
}

// byID is a JavaScript expression: the message element with the id.
func byID(id string) string {
	return fmt.Sprintf(`document.querySelector('[data-testid=message][data-message-id=%q]')`, id)
}

// focusedTestID is a JavaScript expression: the focused element is the one with data-testid id.
func focusedTestID(id string) string {
	return fmt.Sprintf(`document.activeElement?.dataset.testid === %s`, jsString(id))
}

// actionsShown is a JavaScript expression: whether the actions of the
// message msg (an expression) show (want "1") or are hidden (want "0").
func actionsShown(msg, want string) string {
	return fmt.Sprintf(`(el => !!el && getComputedStyle(el).opacity === %q)(%s?.querySelector('.actions'))`, want, msg)
}

// noOverflow is a JavaScript expression: the thread does not scroll sideways.
const noOverflow = `(el => el.scrollWidth <= el.clientWidth)(document.querySelector('[data-testid=messages]'))`

// TestEditOwnMessage: Edit on one's own message opens an inline editor
// (Escape cancels, Enter saves, a blank text is refused in words); the
// other user sees the new text and "(edited)" live, and so does their
// conversation list; an edit made offline waits in the outbox, shown at
// once as "Edit queued", and is applied when the network is back.
func TestEditOwnMessage(t *testing.T) {
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	alice, bob, convID := directChat(t, srv.URL)
	aTok := alice.token()
	msgID := eval[string](t, alice.tab, messageWith("Look at this")+`.dataset.messageId`)
	serverText := func() string {
		for _, m := range apiMessages(t, srv.URL, aTok, convID) {
			if m.ID == msgID {
				return m.Text
			}
		}
		t.Fatal("the message is gone from the server")
		return ""
	}
	bob.wait("no Edit on another's message", messageWith("Look at this")+` && !`+inMessage("Look at this", "[data-testid=edit]")+` && !!`+inMessage("Look at this", "[data-testid=reply]"))

	alice.clickExpr("Edit", inMessage("Look at this", "[data-testid=edit]"))
	alice.wait("the editor, focused, holding the text", focusedTestID("edit-input")+` && document.activeElement.value === 'Look at this'`)
	alice.wait("no actions over the editor", actionsShown(byID(msgID), "0"))
	alice.do("Escape", chromedp.KeyEvent(kb.Escape))
	alice.wait("the editor gone, focus back on Edit", `!document.querySelector('[data-testid=editor]') && `+focusedTestID("edit")+` && !!`+messageWith("Look at this"))
	alice.wait("the actions shown with the focus on one", actionsShown(byID(msgID), "1"))

	// A blank text is refused, in words, and the editor stays.
	alice.clickExpr("Edit", inMessage("Look at this", "[data-testid=edit]"))
	alice.wait("the editor", focusedTestID("edit-input"))
	eval[bool](t, alice.tab, `(document.activeElement.select(), true)`)
	alice.do("blank, Enter", chromedp.KeyEvent(kb.Delete+kb.Enter))
	alice.wait("refused in words", byID(msgID)+`?.querySelector('[data-testid=action-error]')?.textContent === 'A message cannot be empty. Delete it instead.' && !!document.querySelector('[data-testid=edit-input]')`)

	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "edit-refused-blank"))
	alice.do("the new text, Enter", chromedp.KeyEvent("Look at this one"+kb.Enter))
	alice.wait("saved, marked (edited), focus back on Edit",
		inMessage("Look at this one", "[data-testid=edited]")+`?.textContent === '(edited)' && !document.querySelector('[data-testid=editor]') && !document.querySelector('[data-testid=action-error]') && `+focusedTestID("edit"))
	bob.wait("the edit, live", inMessage("Look at this one", "[data-testid=edited]"))
	bob.wait("the list's last message follows", `document.querySelector('[data-testid=conversation][data-title=alice] [data-testid=last-message]')?.textContent === 'alice: Look at this one'`)
	if got := serverText(); got != "Look at this one" {
		t.Fatalf("server has %q", got)
	}

	// Offline: the edit shows at once, waits, and is applied when back.
	alice.setOffline(true)
	alice.wait("offline", `document.querySelector('[data-testid=conn-status]').dataset.state !== 'connected'`)
	alice.clickExpr("Edit", inMessage("Look at this one", "[data-testid=edit]"))
	alice.wait("the editor", focusedTestID("edit-input"))
	eval[bool](t, alice.tab, `(document.activeElement.select(), true)`)
	alice.do("edit offline", chromedp.KeyEvent("Look at this two"+kb.Enter))
	alice.wait("shown at once, queued, in the list too", inMessage("Look at this two", "[data-testid=edit-status]")+`?.textContent === 'Edit queued' && document.querySelector('[data-testid=conversation][data-title=bob] [data-testid=last-message]')?.textContent === 'You: Look at this two'`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "edit-queued"))
	if got := serverText(); got != "Look at this one" {
		t.Fatalf("offline, the server already has %q", got)
	}
	// A message still in the outbox is edited too: the edit names it by
	// its client id and goes after it.
	alice.do("send offline", chromedp.SendKeys(testID("composer"), "draft one"+kb.Enter))
	alice.wait("queued", messageWith("draft one")+`?.dataset.status === 'queued'`)
	alice.clickExpr("Edit the queued message", inMessage("draft one", "[data-testid=edit]"))
	alice.wait("the editor", focusedTestID("edit-input")+` && document.activeElement.value === 'draft one'`)
	eval[bool](t, alice.tab, `(document.activeElement.select(), true)`)
	alice.do("edit the queued message", chromedp.KeyEvent("draft two"+kb.Enter))
	alice.wait("shown at once", messageWith("draft two")+`?.dataset.status === 'queued' && !!`+inMessage("draft two", "[data-testid=edit-status]"))
	alice.setOffline(false)
	bob.wait("the queued message, edited", inMessage("draft two", "[data-testid=edited]"))
	alice.wait("applied when back", connState("connected")+` && !document.querySelector('[data-testid=edit-status]') && !!`+inMessage("Look at this two", "[data-testid=edited]")+` && !!`+inMessage("draft two", "[data-testid=edited]"))
	bob.wait("the offline edit, live", inMessage("Look at this two", "[data-testid=edited]"))
	if got := serverText(); got != "Look at this two" {
		t.Fatalf("server has %q", got)
	}
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "edit-seen"))

	// An edit the server refuses (here a blank text, which the page
	// itself never sends) is said in words, with Discard and no Retry.
	eval[bool](t, alice.tab, `(parleyApp.client.edit(`+jsString(convID)+`, `+jsString(msgID)+`, '   '), true)`)
	alice.wait("refused, in words", inMessage("Look at this two", "[data-testid=edit-failed]")+`?.textContent.startsWith('Edit not saved: ') && !`+inMessage("Look at this two", "[data-testid=edit-failed]")+`.textContent.includes('went wrong') && !document.querySelector('[data-testid=edit-retry]')`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "edit-refused-by-server"))
	alice.clickExpr("Discard", inMessage("Look at this two", "[data-testid=edit-discard]"))
	alice.wait("gone", `!document.querySelector('[data-testid=edit-failed]') && parleyApp.client.outbox.length === 0`)

	// An edit queued offline of a message deleted meanwhile (on another
	// device) goes with it: nothing stays queued.
	alice.setOffline(true)
	alice.wait("offline", `document.querySelector('[data-testid=conn-status]').dataset.state !== 'connected'`)
	alice.clickExpr("Edit", inMessage("Look at this two", "[data-testid=edit]"))
	alice.wait("the editor", focusedTestID("edit-input"))
	alice.do("edit offline", chromedp.KeyEvent(" again"+kb.Enter))
	alice.wait("queued", inMessage("Look at this two again", "[data-testid=edit-status]"))
	apiDo(t, "DELETE", srv.URL+"/v1/conversations/"+url.PathEscape(convID)+"/messages/"+url.PathEscape(msgID), aTok, "")
	alice.setOffline(false)
	alice.wait("the tombstone, nothing queued", connState("connected")+` && `+byID(msgID)+`?.classList.contains('deleted') && !document.querySelector('[data-testid=edit-status], [data-testid=edit-failed]') && parleyApp.client.outbox.length === 0 && !document.querySelector('[data-testid=conn-text]').textContent.includes('queued')`)
}

// TestReactionPicker: React opens a picker (Escape closes it, focus back
// on React); a picked emoji shows as a chip on both pages, live; a click
// on a chip toggles one's own reaction, highlighted; a message holding the
// most different emoji refuses a new one in words, and still takes one of
// those it has. At phone width (390 px) for bob.
func TestReactionPicker(t *testing.T) {
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	alice, bob, convID := directChat(t, srv.URL)
	bob.do("phone width", chromedp.EmulateViewport(390, 760))
	msg := "Look at this"
	chip := func(emoji string) string {
		return inMessage(msg, fmt.Sprintf(`[data-testid=reaction][data-emoji=%q]`, emoji))
	}

	bob.clickExpr("React", inMessage(msg, "[data-testid=react]"))
	bob.wait("the picker, focus on its first emoji", `!!document.querySelector('[data-testid=reaction-picker]') && `+focusedTestID("pick-reaction"))
	bob.wait("the picker fits the phone", noOverflow)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "phone-390-reaction-picker"))
	bob.do("Escape", chromedp.KeyEvent(kb.Escape))
	bob.wait("closed, focus back on React", `!document.querySelector('[data-testid=reaction-picker]') && `+focusedTestID("react"))
	bob.do("Enter opens it again", chromedp.KeyEvent(kb.Enter))
	bob.clickExpr("👍", `document.querySelector('[data-testid=pick-reaction][data-emoji="👍"]')`)
	bob.wait("bob's 👍, his own", chip("👍")+`?.textContent === '👍 1' && `+chip("👍")+`.classList.contains('mine') && `+chip("👍")+`.getAttribute('aria-pressed') === 'true' && !document.querySelector('[data-testid=reaction-picker]')`)
	alice.wait("bob's 👍 on alice's page, not hers", chip("👍")+`?.textContent === '👍 1' && !`+chip("👍")+`.classList.contains('mine')`)

	alice.clickExpr("the chip", chip("👍"))
	alice.wait("two, one hers", chip("👍")+`?.textContent === '👍 2' && `+chip("👍")+`.classList.contains('mine')`)
	bob.wait("two on bob's page", chip("👍")+`?.textContent === '👍 2' && `+chip("👍")+`.classList.contains('mine')`)
	bob.clickExpr("bob's chip: off", chip("👍"))
	bob.wait("one, not his", chip("👍")+`?.textContent === '👍 1' && !`+chip("👍")+`.classList.contains('mine')`)
	// The focus on a chip does not show the actions (they would stay over
	// the message above); on the message itself (a tap) it does.
	bob.wait("the focus on the chip, no actions", `(`+chip("👍")+`.focus(), true) && `+actionsShown(messageWith(msg), "0"))
	bob.wait("the focus on the message, the actions", `(`+messageWith(msg)+`.focus(), true) && `+actionsShown(messageWith(msg), "1"))
	alice.wait("one, hers", chip("👍")+`?.textContent === '👍 1' && `+chip("👍")+`.classList.contains('mine')`)

	// Fill the message up to the limit (20 different emoji) from bob's
	// other device: 👍 and 19 animals.
	msgID := eval[string](t, alice.tab, messageWith(msg)+`.dataset.messageId`)
	base := srv.URL + "/v1/conversations/" + url.PathEscape(convID) + "/messages/" + url.PathEscape(msgID) + "/reactions/"
	bTok := bob.token()
	for i := range 19 {
		apiDo(t, "PUT", base+url.PathEscape(string(rune(0x1F400+i))), bTok, "")
	}
	alice.wait("20 chips", inMessage(msg, "[data-testid=reactions]")+`?.children.length === 20`)
	alice.clickExpr("React", inMessage(msg, "[data-testid=react]"))
	alice.clickExpr("🎉: a 21st", `document.querySelector('[data-testid=pick-reaction][data-emoji="🎉"]')`)
	alice.wait("refused in words", inMessage(msg, "[data-testid=action-error]")+`?.textContent === 'This message already has 20 different reactions, the most it can hold. Pick one of those instead.'`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "reactions-limit-refused"))
	alice.clickExpr("🐀, one it has", chip("🐀"))
	alice.wait("taken, the error gone", chip("🐀")+`?.textContent === '🐀 2' && !`+inMessage(msg, "[data-testid=action-error]"))
	bob.wait("🐀 2 on bob's page", chip("🐀")+`?.textContent === '🐀 2' && `+chip("🐀")+`.classList.contains('mine')`)
	bob.wait("20 chips fit the phone", inMessage(msg, "[data-testid=reactions]")+`?.children.length === 20 && `+noOverflow)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "reactions-limit"))
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "phone-390-reactions"))
	for _, m := range apiMessages(t, srv.URL, bTok, convID) {
		if m.ID == msgID && len(m.Reactions) != 20 {
			t.Fatalf("the server holds %d different emoji, want 20", len(m.Reactions))
		}
	}
}

// TestReplyAndJump: Reply shows a quote bar above the composer (Escape and
// its × cancel it); the sent reply shows the quote on both pages; a click
// on a quote whose parent is not loaded loads older pages until it is,
// scrolls to it, highlights and focuses it; a deleted parent's quotes say
// so, live. At phone width (390 px) for bob.
func TestReplyAndJump(t *testing.T) {
	// Unlimited: the test sends 110 messages at once to push the parent back.
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Limits = server.Unlimited() }))
	shots := screenshotDir(t)
	alice, bob, convID := directChat(t, srv.URL)
	aTok := alice.token()
	parent := "Look at this"
	parentID := eval[string](t, alice.tab, messageWith(parent)+`.dataset.messageId`)

	alice.clickExpr("Reply", inMessage(parent, "[data-testid=reply]"))
	alice.wait("the quote bar, focus in the composer", `!document.querySelector('[data-testid=reply-bar]').hidden && document.querySelector('[data-testid=reply-to]').textContent === 'Replying to alice Look at this' && `+focusedTestID("composer"))
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "reply-bar"))
	alice.do("Escape", chromedp.KeyEvent(kb.Escape))
	alice.wait("cancelled", `document.querySelector('[data-testid=reply-bar]').hidden`)
	alice.clickExpr("Reply", inMessage(parent, "[data-testid=reply]"))
	alice.click("×", `[data-testid=reply-cancel]`)
	alice.wait("cancelled by ×", `document.querySelector('[data-testid=reply-bar]').hidden && `+focusedTestID("composer"))
	alice.clickExpr("Reply", inMessage(parent, "[data-testid=reply]"))
	alice.do("write the reply", chromedp.KeyEvent("first reply"+kb.Enter))
	alice.wait("sent with its quote, the bar gone", inMessage("first reply", "[data-testid=quote]")+`?.textContent === 'alice Look at this' && !!`+messageWith("first reply")+`.dataset.messageId && document.querySelector('[data-testid=reply-bar]').hidden`)
	bob.wait("the quote on bob's page", inMessage("first reply", "[data-testid=quote]")+`?.textContent === 'alice Look at this'`)
	for _, m := range apiMessages(t, srv.URL, aTok, convID) {
		if m.Text == "first reply" && (m.ReplyTo == nil || m.ReplyTo.MessageID != parentID) {
			t.Fatalf("stored reply_to = %+v, want %s", m.ReplyTo, parentID)
		}
	}

	// Push the parent two pages back, reply to it, and have bob open the
	// thread afresh: only the newest page is loaded.
	for i := range 110 {
		apiSend(t, srv.URL, aTok, convID, fmt.Sprintf("filler-%d", i), fmt.Sprintf("filler %d", i))
	}
	alice.wait("the fillers", messageWith("filler 109"))
	alice.clickExpr("Reply", inMessage(parent, "[data-testid=reply]"))
	alice.do("a late reply", chromedp.KeyEvent("late reply"+kb.Enter))
	alice.wait("stored", messageWith("late reply")+`?.dataset.messageId`)
	bob.do("phone width, reload", chromedp.EmulateViewport(390, 760), chromedp.Reload())
	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	bob.wait("the late reply, the parent not loaded", inMessage("late reply", "[data-testid=quote]")+` && !`+byID(parentID))
	bob.clickExpr("the quote", inMessage("late reply", "[data-testid=quote]"))
	bob.wait("the parent loaded, highlighted, focused and in view", byID(parentID)+`?.dataset.highlight === 'true' && document.activeElement === `+byID(parentID)+` && (r => r.top >= 0 && r.bottom <= innerHeight)(`+byID(parentID)+`.getBoundingClientRect())`)
	bob.wait("no sideways scroll at 390 px", noOverflow)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "phone-390-reply-jump"))
	bob.wait("the highlight fades", byID(parentID)+` && !`+byID(parentID)+`.dataset.highlight`)

	// The parent deleted: every quote of it says so, live.
	apiDo(t, "DELETE", srv.URL+"/v1/conversations/"+url.PathEscape(convID)+"/messages/"+url.PathEscape(parentID), aTok, "")
	deleted := `(q => q?.textContent === 'alice Message deleted' && q.classList.contains('deleted'))(` + inMessage("%s", "[data-testid=quote]") + `)`
	for _, p := range []*page{alice, bob} {
		p.wait("the quotes say deleted", fmt.Sprintf(deleted, "first reply")+` && `+fmt.Sprintf(deleted, "late reply"))
	}
	bob.clickExpr("the deleted parent's quote", inMessage("late reply", "[data-testid=quote]"))
	bob.wait("it jumps to the tombstone", byID(parentID)+`?.classList.contains('deleted') && document.activeElement === `+byID(parentID))
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "reply-deleted-parent"))
}
