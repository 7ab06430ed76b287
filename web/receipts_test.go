package web_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/servertest"
)

// markOf is a JavaScript expression: the receipt mark of the message
// with text.
func markOf(text string) string {
	return messageWith(text) + `?.querySelector('[data-testid=mark]')`
}

// acceptFrom has p accept, from another device (the HTTP API), the
// request that from's direct conversation with them is (they are
// strangers): p's read and delivered positions then reach from.
func (p *page) acceptFrom(baseURL, from string) {
	p.t.Helper()
	conv := eval[string](p.t, p.tab, `document.querySelector('[data-testid=conversation][data-title=`+from+`]').dataset.conversationId`)
	servertest.Call(p.t, "POST", baseURL+"/v1/conversations/"+conv+"/accept", p.token(), nil, http.StatusOK)
}

// TestDeliveredFromTheList: a message that came while bob had no page
// open and that no resume replays (his page lost its position) shows ✓✓
// Delivered once his page has fetched the conversation list, before he
// opens the chat.
func TestDeliveredFromTheList(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	alice, bob := twoUsers(t, browser, srv.URL)
	writeToBob(alice, bob, "first")
	bob.acceptFrom(srv.URL, "alice")
	alice.wait("the first delivered", markOf("first")+`?.textContent === '✓✓ Delivered'`)

	// Bob's page goes, and with it its position.
	bob.wait("bob's page gone", `(parleyApp.client.close(), localStorage.removeItem(parleyApp.client.posKey), localStorage.removeItem(parleyApp.client.cursorKey), location.assign('about:blank'), true)`)
	bob.do("about:blank", chromedp.WaitReady("body"))
	alice.do("send while bob is away", chromedp.SendKeys(testID("composer"), "while you were away"+kb.Enter))
	alice.wait("sent, not delivered", markOf("while you were away")+`?.textContent === '✓ Sent'`)

	bob.do("back", chromedp.Navigate(srv.URL))
	bob.wait("the list, the chat not open", `!!document.querySelector('[data-testid=conversation][data-title=alice] [data-testid=unread]') && document.querySelector('[data-testid=pane-title]')?.textContent !== 'alice'`)
	alice.wait("delivered from the list", markOf("while you were away")+`?.textContent === '✓✓ Delivered'`)
}

// TestReceiptsAndProfiles: a message shows ✓✓ Delivered once bob's page
// has it (he has not opened the chat), then Read in blue once he reads
// it; alice sets a display name and an avatar in the profile editor, and
// bob's list and messages show them (the avatar's thumbnail loaded).
func TestReceiptsAndProfiles(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	alice, bob := twoUsers(t, browser, srv.URL)

	// Bob's page receives it (an unread badge) without opening the chat;
	// he accepts the request (they are strangers) from another device,
	// which shows alice what his page received.
	writeToBob(alice, bob, "Are you there?")
	bob.acceptFrom(srv.URL, "alice")
	alice.wait("her message delivered, not read",
		messageWith("Are you there?")+`?.dataset.status === 'delivered' && `+markOf("Are you there?")+`.textContent === '✓✓ Delivered'`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "receipt-delivered"))

	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	alice.wait("her message read, in blue",
		messageWith("Are you there?")+`?.dataset.status === 'read' && `+markOf("Are you there?")+`.textContent === '✓✓ Read' && `+
			`getComputedStyle(`+markOf("Are you there?")+`).color === 'rgb(47, 91, 211)'`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "receipt-read"))

	// The profile editor: a display name and an avatar.
	avatarFile := filepath.Join(t.TempDir(), "me.png")
	if err := os.WriteFile(avatarFile, makePNG(t, 96, 96), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.click("open the profile editor", `[data-testid=me-name]`)
	alice.wait("the editor open", `document.querySelector('[data-testid=profile-editor]').open`)
	alice.do("fill it in",
		chromedp.SendKeys(testID("profile-name"), "Alice Liddell"),
		chromedp.SetUploadFiles(testID("profile-avatar"), []string{avatarFile}),
	)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "profile-editor"))
	alice.click("save", `[data-testid=profile-save]`)
	alice.wait("the editor closed, the name shown", `!document.querySelector('[data-testid=profile-editor]').open && `+
		`document.querySelector('[data-testid=me-name]').textContent === 'Alice Liddell'`)

	bob.wait("alice's display name and avatar in bob's list",
		`(b => !!b && b.dataset.title === 'Alice Liddell' && (i => !!i && i.complete && i.naturalWidth > 0)(b.querySelector('[data-testid=avatar]')))(document.querySelector('[data-testid=conversation]'))`)
	alice.do("send again", chromedp.SendKeys(testID("composer"), "It's me"+kb.Enter))
	bob.wait("her avatar beside her message",
		`(i => !!i && i.complete && i.naturalWidth > 0)(`+messageWith("It's me")+`?.querySelector('.sender [data-testid=avatar]'))`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "profile-bob"))

	// A group with carol, who never connects: read by bob, 1 of 2.
	srv.Register(t, "carol", "carol-password-1")
	alice.do("create a group with bob and carol",
		chromedp.Click(`details.new-group summary`),
		chromedp.SendKeys(testID("group-title"), "team"),
		chromedp.SendKeys(testID("group-members"), "bob, carol"),
		chromedp.Click(testID("create-group")),
	)
	alice.wait("the group open", `document.querySelector('[data-testid=pane-title]').textContent === 'team'`)
	alice.do("say hello", chromedp.SendKeys(testID("composer"), "hello team"+kb.Enter))
	bob.click("open the group", `[data-testid=conversation][data-title=team]`)
	alice.wait("read by bob, not delivered to carol", markOf("hello team")+`?.textContent === '✓ Read by 1 of 2'`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "receipt-group"))

	// A name the server refuses is said in the editor.
	alice.click("open the editor again", `[data-testid=me-name]`)
	alice.do("a bidi override", chromedp.SetValue(testID("profile-name"), "evil\u202egnp"))
	alice.click("save", `[data-testid=profile-save]`)
	alice.wait("the server's words", `document.querySelector('[data-testid=profile-error]').textContent.includes('display_name holds a control, format or unassigned character')`)
}
