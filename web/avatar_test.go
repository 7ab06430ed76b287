package web_test

import (
	"bytes"
	"encoding/base64"
	"image"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/servertest"
)

// loadedAvatar is a JavaScript expression: whether the element sel finds
// holds an avatar <img> of user whose thumbnail has loaded.
func loadedAvatar(sel, userID string) string {
	return `(i => !!i && i.complete && i.naturalWidth > 0)(document.querySelector(` + jsString(sel+` img[data-testid=avatar][data-user-id="`+userID+`"]`) + `))`
}

// TestAvatar: a 12 MP phone photo, which the server's decode budget
// refuses as it is, chosen as an avatar is uploaded as its middle square
// at 256 px (squareAvatar), served with its thumbnail to a user sharing a
// conversation; bob sees it, loaded, in his list, the pane header, the
// member panel, beside alice's messages and in the typing line.
func TestAvatar(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	alice, bob := twoUsers(t, browser, srv.URL)
	aliceID := eval[string](t, alice.tab, `window.parleyApp.me.id`)

	orig, err := base64.StdEncoding.DecodeString(eval[string](t, alice.tab, photo))
	if err != nil {
		t.Fatal(err)
	}
	if status, code, _ := upload(t, srv.URL, alice.token(), orig); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("the photo uploaded as it is: HTTP %d %s, want 413", status, code)
	}
	file := filepath.Join(t.TempDir(), "IMG_0002.jpg")
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	alice.click("open the profile editor", `[data-testid=me-name]`)
	alice.do("choose the photo", chromedp.SetUploadFiles(testID("profile-avatar"), []string{file}))
	alice.click("save", `[data-testid=profile-save]`)
	alice.wait("the editor closed with an avatar", `!document.querySelector('[data-testid=profile-editor]').open && !!window.parleyApp.me.avatar_id`)
	avatarID := eval[string](t, alice.tab, `window.parleyApp.me.avatar_id`)

	// A group makes them contacts: the avatar is served to bob.
	alice.createGroup("team", "bob")
	alice.do("say hello", chromedp.SendKeys(testID("composer"), "hello team"+kb.Enter))
	for _, route := range []string{"", "/thumb"} {
		res := servertest.Do(t, "GET", srv.URL+"/v1/attachments/"+avatarID+route, bob.token(), nil)
		cfg, format, err := image.DecodeConfig(bytes.NewReader(res.Body))
		if res.Status != http.StatusOK || err != nil || format != "jpeg" || cfg.Width != 256 || cfg.Height != 256 {
			t.Errorf("bob fetching the avatar%s: HTTP %d, %s %dx%d (%v), want a 256x256 jpeg", route, res.Status, format, cfg.Width, cfg.Height, err)
		}
	}

	bob.click("open the group", `[data-testid=conversation][data-title=team]`)
	bob.wait("her avatar beside her message", loadedAvatar(`[data-testid=message] .sender`, aliceID))
	bob.click("open the member panel", `[data-testid=members-toggle]`)
	bob.wait("her avatar in the member panel", loadedAvatar(memberSel("alice"), aliceID))
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "avatar-group"))

	alice.startDirect("bob")
	bob.startDirect("alice")
	bob.wait("her avatar in the list and the pane header", loadedAvatar(`[data-testid=conversation][data-title=alice]`, aliceID)+` && `+loadedAvatar(`[data-testid=pane-avatar]`, aliceID))
	alice.do("type without sending", chromedp.SendKeys(testID("composer"), "I am typ"))
	bob.wait("her avatar in the typing line", `document.querySelector('[data-testid=typing]').textContent === 'alice is typing…' && `+loadedAvatar(`[data-testid=typing]`, aliceID))
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "avatar-direct-typing"))
}
