package web_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	_ "image/jpeg"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley/internal/servertest"
)

// photo is a JavaScript expression that resolves to a base64 JPEG like a
// 12 MP phone photo (4032 x 3024, quality 0.9): gradients under a veil of
// noise, so it weighs megabytes as a photo does.
const photo = `(async () => {
	const w = 4032, h = 3024;
	const c = document.createElement('canvas');
	c.width = w;
	c.height = h;
	const ctx = c.getContext('2d');
	const g = ctx.createLinearGradient(0, 0, w, h);
	g.addColorStop(0, '#d35');
	g.addColorStop(0.5, '#3a7');
	g.addColorStop(1, '#25c');
	ctx.fillStyle = g;
	ctx.fillRect(0, 0, w, h);
	const r = ctx.createRadialGradient(w / 3, h / 2, 10, w / 3, h / 2, h);
	r.addColorStop(0, 'rgba(255, 240, 200, 0.8)');
	r.addColorStop(1, 'rgba(0, 0, 0, 0)');
	ctx.fillStyle = r;
	ctx.fillRect(0, 0, w, h);
	const noise = document.createElement('canvas');
	noise.width = noise.height = 509; // prime: tiles do not line up with JPEG blocks
	const n = noise.getContext('2d');
	const px = n.createImageData(509, 509);
	for (let i = 0; i < px.data.length; i += 4) {
		const v = Math.random() * 255;
		px.data[i] = v;
		px.data[i + 1] = (v * 7) % 255;
		px.data[i + 2] = 255 - v;
		px.data[i + 3] = 255;
	}
	n.putImageData(px, 0, 0);
	ctx.globalAlpha = 0.12;
	for (let y = 0; y < h; y += 509) for (let x = 0; x < w; x += 509) ctx.drawImage(noise, x, y);
	const blob = await new Promise((resolve) => c.toBlob(resolve, 'image/jpeg', 0.9));
	const url = await new Promise((resolve) => {
		const fr = new FileReader();
		fr.onload = () => resolve(fr.result);
		fr.readAsDataURL(blob);
	});
	return url.slice(url.indexOf(',') + 1);
})()`

// outboxBlobSizes is a JavaScript expression that resolves to the sizes
// of the image bytes the page keeps in IndexedDB for its outbox.
const outboxBlobSizes = `new Promise((resolve, reject) => {
	const req = indexedDB.open('parley-outbox');
	req.onerror = () => reject(req.error);
	req.onsuccess = () => {
		const all = req.result.transaction('blobs').objectStore('blobs').getAll();
		all.onerror = () => reject(all.error);
		all.onsuccess = () => resolve(all.result.map((b) => b.size));
	};
})`

// TestImageShrink: a 12 MP phone photo, which the server's default decode
// budget refuses as it is, is attached through the file picker while
// offline; the page shrinks it to 2048 px before it stores it in its
// outbox, and once online it is uploaded and delivered to bob, stored at
// 2048 x 1536.
func TestImageShrink(t *testing.T) {
	srv := servertest.Start(t) // the default upload limits and decode budget
	alice, bob, convID := directChat(t, srv.URL)
	aliceToken := alice.token()

	b64 := eval[string](t, alice.tab, photo)
	orig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(orig))
	if err != nil || format != "jpeg" || cfg.Width != 4032 || cfg.Height != 3024 {
		t.Fatalf("the photo is %s %dx%d (%v), want a 4032x3024 jpeg", format, cfg.Width, cfg.Height, err)
	}
	// Under the 10 MiB size limit: the budget, not the size, refuses it.
	if len(orig) < 2<<20 || len(orig) >= 10<<20 {
		t.Fatalf("the photo weighs %d bytes, want 2-10 MiB like a phone photo", len(orig))
	}
	t.Logf("the photo: %dx%d, %d bytes", cfg.Width, cfg.Height, len(orig))

	// Uploaded as it is, the server refuses it before decoding.
	status, code, reason := upload(t, srv.URL, aliceToken, orig)
	if status != http.StatusRequestEntityTooLarge || code != "too_large" || !strings.Contains(reason, "budget") {
		t.Fatalf("the original upload: HTTP %d %s %q, want 413 too_large over the budget", status, code, reason)
	}
	t.Logf("the original refused: %d %s %q", status, code, reason)

	// Through the file picker, offline: the outbox keeps the shrunk bytes.
	file := filepath.Join(t.TempDir(), "IMG_0001.jpg")
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	alice.setOffline(true)
	alice.do("attach the photo", chromedp.SetUploadFiles(testID("attach-input"), []string{file}))
	alice.click("send it", `[data-testid=send]`)
	alice.wait("the item stored in the outbox", storedOutbox+`.some(i => i.type === 'image')`)
	sizes := eval[[]int](t, alice.tab, outboxBlobSizes)
	if len(sizes) != 1 || sizes[0] <= 0 || sizes[0] >= len(orig)/2 {
		t.Fatalf("the outbox holds images of %v bytes, want one, shrunk from %d", sizes, len(orig))
	}
	t.Logf("the outbox holds %d bytes", sizes[0])
	alice.setOffline(false)

	alice.wait("the image sent", `(m => ['sent', 'delivered', 'read'].includes(m?.dataset.status))(document.querySelector('[data-testid=message][data-type=image]'))`)
	bob.wait("the thumbnail loaded", thumbOf(0)+`?.complete && `+thumbOf(0)+`.naturalWidth === 320`)
	alice.wait("the outbox empty", storedOutbox+`.length === 0`)

	msgs := apiMessages(t, srv.URL, aliceToken, convID)
	att := msgs[len(msgs)-1].Attachment
	if att == nil || att.Width != 2048 || att.Height != 1536 || att.ContentType != "image/jpeg" {
		t.Fatalf("the stored image is %+v, want a 2048x1536 jpeg", att)
	}
	// The bytes bob downloads are the shrunk image.
	req, _ := http.NewRequest("GET", srv.URL+att.URL, nil)
	req.Header.Set("Authorization", "Bearer "+bob.token())
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, _, err := image.DecodeConfig(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || got.Width != 2048 || got.Height != 1536 {
		t.Fatalf("bob downloads HTTP %d, %dx%d (%v), want 2048x1536", res.StatusCode, got.Width, got.Height, err)
	}
	t.Logf("delivered: %dx%d, %d bytes stored", got.Width, got.Height, att.Size)
}

// upload posts body to /v1/uploads and returns the HTTP status and, when
// refused, the server's error code and message.
func upload(t *testing.T, baseURL, token string, body []byte) (status int, code, message string) {
	t.Helper()
	res := servertest.Do(t, "POST", baseURL+"/v1/uploads", token, body, "Content-Type", "application/octet-stream")
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if res.Status >= 400 {
		if err := json.Unmarshal(res.Body, &e); err != nil {
			t.Fatalf("upload: HTTP %d: %v", res.Status, err)
		}
	}
	return res.Status, e.Error.Code, e.Error.Message
}
