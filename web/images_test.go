package web_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// makePNG encodes a w x h PNG with a gradient, so it is a real image the
// server decodes, re-encodes and thumbnails.
func makePNG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// uploadError posts body to /v1/uploads and returns the server's error
// message, failing the test if the upload is accepted.
func uploadError(t *testing.T, baseURL, token string, body []byte) (int, string) {
	t.Helper()
	status, _, message := upload(t, baseURL, token, body)
	if status < 400 {
		t.Fatalf("upload of a bad file: HTTP %d", status)
	}
	return status, message
}

// directChat opens a browser with two tabs, alice and bob, registered on
// the server at baseURL, in a direct conversation alice started with the
// text "Look at this", both showing it; it returns the conversation's id.
func directChat(t *testing.T, baseURL string) (alice, bob *page, convID string) {
	t.Helper()
	alice, bob = twoUsers(t, newBrowser(t), baseURL)
	alice.startDirect("bob")
	alice.do("say hello", chromedp.SendKeys(testID("composer"), "Look at this\n"))
	bob.click("open the chat", `[data-testid=conversation][data-title=alice]`)
	bob.wait("alice's message", messageWith("Look at this"))
	// A stranger's chat is a request: accepted, bob's reads reach alice.
	bob.click("accept the request", `[data-testid=request-accept]`)
	convID = eval[string](t, alice.tab, `document.querySelector('[data-testid=conversation][data-title=bob]').dataset.conversationId`)
	return alice, bob, convID
}

// thumbOf is a JavaScript expression: the thumbnail <img> of the n-th
// image message (0-based) in the open pane.
func thumbOf(n int) string {
	return fmt.Sprintf(`[...document.querySelectorAll('[data-testid=message][data-type=image]')][%d]?.querySelector('[data-testid=thumb]')`, n)
}

// TestImages covers image messages end to end: the attach button with a
// real PNG, a thumbnail both users' pages load, the full image in the
// lightbox, drag and drop, an upload the network cuts off (retried), a
// text file named .png (refused in words, Discard but no Retry, nothing sent),
// and a send that fails after a good upload (retried without uploading
// again).
func TestImages(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 5 * time.Minute }))
	shots := screenshotDir(t)
	dir := t.TempDir()
	alice, bob, convID := directChat(t, srv.URL)
	aliceToken := alice.token()

	// 1. The attach button: a 640x480 PNG. The server's thumbnail fits in
	// 320 px, so a loaded 320-wide <img> is the server's thumbnail, not
	// the local preview.
	photo := filepath.Join(dir, "photo.png")
	if err := os.WriteFile(photo, makePNG(t, 640, 480), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.do("attach a photo", chromedp.SetUploadFiles(testID("attach-input"), []string{photo}))
	alice.wait("the photo in the tray", `document.querySelectorAll('[data-testid=tray-item]').length === 1`)
	alice.click("send it", `[data-testid=send]`)
	alice.wait("the image sent, showing the server's thumbnail",
		`(m => ['sent', 'delivered', 'read'].includes(m?.dataset.status))(document.querySelector('[data-testid=message][data-type=image]')) && `+thumbOf(0)+`?.complete && `+thumbOf(0)+`.naturalWidth === 320`)
	bob.wait("the thumbnail loaded", thumbOf(0)+`?.complete && `+thumbOf(0)+`.naturalWidth === 320 && `+thumbOf(0)+`.src.startsWith('blob:')`)
	alice.wait("the image read by bob", `document.querySelector('[data-testid=message][data-type=image]').dataset.status === 'read'`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "image-thumbnail"))

	// A click opens the full image (640 wide) in the lightbox.
	bob.click("open the image", `[data-testid=message][data-type=image] [data-testid=open-image]`)
	full := `document.querySelector('[data-testid=lightbox-image]')`
	bob.wait("the full image in the lightbox", `document.querySelector('[data-testid=lightbox]').open && `+full+`.complete && `+full+`.naturalWidth === 640 && `+full+`.naturalHeight === 480`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "image-lightbox"))
	bob.click("close the lightbox", `[data-testid=lightbox-close]`)
	bob.wait("the lightbox closed", `!document.querySelector('[data-testid=lightbox]').open`)

	// 2. Drag and drop onto the message pane: a 100x60 PNG.
	small := base64.StdEncoding.EncodeToString(makePNG(t, 100, 60))
	eval[bool](t, alice.tab, `(() => {
		const bytes = Uint8Array.from(atob('`+small+`'), c => c.charCodeAt(0));
		const dt = new DataTransfer();
		dt.items.add(new File([bytes], 'small.png', {type: 'image/png'}));
		const pane = document.querySelector('[data-testid=pane]');
		for (const type of ['dragenter', 'dragover', 'drop']) {
			pane.dispatchEvent(new DragEvent(type, {dataTransfer: dt, bubbles: true, cancelable: true}));
		}
		return true;
	})()`)
	alice.click("send the dropped image", `[data-testid=send]`)
	bob.wait("the dropped image", thumbOf(1)+`?.complete && `+thumbOf(1)+`.naturalWidth === 100`)

	// 3. The upload is cut off by the network (the WebSocket stays up):
	// the item waits and the upload is retried, once the network lets it.
	alice.blockURL(srv.URL+"/v1/uploads", true)
	alice.do("attach while uploads fail", chromedp.SetUploadFiles(testID("attach-input"), []string{photo}))
	alice.click("send it", `[data-testid=send]`)
	alice.wait("an upload attempt failed and waits", storedOutbox+`.some(i => i.type === 'image' && i.tries >= 1 && i.status === 'pending' && !i.attachment_id)`)
	alice.wait("the image still shown, not failed", `[...document.querySelectorAll('[data-testid=message][data-type=image]')].length === 3 && !document.querySelector('[data-testid=message][data-status=failed]')`)
	alice.blockURL(srv.URL+"/v1/uploads", false)
	bob.wait("the retried image", thumbOf(2)+`?.complete && `+thumbOf(2)+`.naturalWidth === 320`)
	alice.wait("the outbox empty", storedOutbox+`.length === 0`)

	// 4. A text file named .png: failed, said in words, and
	// nothing sent.
	notPNG := []byte("this is a text file, not an image\n")
	status, reason := uploadError(t, srv.URL, aliceToken, notPNG)
	if status != http.StatusUnsupportedMediaType || reason == "" {
		t.Fatalf("server answered a text file with HTTP %d %q, want 415 with a reason", status, reason)
	}
	fake := filepath.Join(dir, "notes.png")
	if err := os.WriteFile(fake, notPNG, 0o644); err != nil {
		t.Fatal(err)
	}
	alice.do("attach a text file named .png", chromedp.SetUploadFiles(testID("attach-input"), []string{fake}))
	alice.click("send it", `[data-testid=send]`)
	failed := `document.querySelector('[data-testid=message][data-type=image][data-status=failed]')`
	// Said in words a person reads (not the server's MIME type), and no
	// Retry: the server will never take this file.
	alice.wait("failed with a human reason and no Retry", failed+`?.querySelector('[data-testid=mark]').textContent === `+
		jsString("Not sent: This file is not an image Parley can send (PNG, JPEG, GIF or WebP).")+` && !`+failed+`.querySelector('[data-testid=retry]') && !!`+failed+`.querySelector('[data-testid=discard]')`)
	if strings.Contains(eval[string](t, alice.tab, `document.body.innerText`), "text/plain") {
		t.Errorf("the page shows the server's MIME type: %q", reason)
	}
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "image-refused"))
	if got := apiHistory(t, srv.URL, aliceToken, convID); len(got) != 4 {
		t.Fatalf("server history has %d messages, want 4 (a text and three images): %q", len(got), got)
	}
	alice.click("discard it", `[data-testid=message][data-status=failed] [data-testid=discard]`)
	alice.wait("gone from the page and the outbox", `!`+failed+` && `+storedOutbox+`.length === 0`)

	// 5. The upload succeeds but the send is refused (no such
	// conversation): the item keeps its attachment, and Retry sends again
	// without a second upload.
	uploads := eval[int](t, alice.tab, `parleyApp.client.stats.uploads`)
	eval[bool](t, alice.tab, `(() => {
		const bytes = Uint8Array.from(atob('`+small+`'), c => c.charCodeAt(0));
		window.lostItem = parleyApp.client.sendImage('no-such-conversation', new Blob([bytes], {type: 'image/png'}));
		return true;
	})()`)
	lost := storedOutbox + `.find(i => i.client_id === window.lostItem.client_id)`
	alice.wait("the send refused after the upload", lost+`?.status === 'failed' && !!`+lost+`.attachment_id`)
	attID := eval[string](t, alice.tab, lost+`.attachment_id`)
	eval[bool](t, alice.tab, `(parleyApp.client.retry(window.lostItem.client_id), true)`)
	alice.wait("refused again after the retry", lost+`?.status === 'failed' && parleyApp.client.stats.uploads === `+fmt.Sprint(uploads+1))
	if again := eval[string](t, alice.tab, lost+`.attachment_id`); again != attID {
		t.Fatalf("the retry uploaded again: attachment %s, then %s", attID, again)
	}
	if got := apiHistory(t, srv.URL, aliceToken, convID); len(got) != 4 {
		t.Fatalf("server history has %d messages, want 4", len(got))
	}
}
