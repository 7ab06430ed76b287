package web_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
)

// downloads records the downloads of a tab's browser context into dir
// (files named by their download GUID). Safe for concurrent use: the
// DevTools listener writes while the test reads.
type downloads struct {
	dir  string
	mu   sync.Mutex
	name map[string]string // guid -> suggested file name
	done map[string]bool   // guid -> completed
	wake chan struct{}
}

func watchDownloads(t *testing.T, tab context.Context) *downloads {
	t.Helper()
	d := &downloads{dir: t.TempDir(), name: map[string]string{}, done: map[string]bool{}, wake: make(chan struct{}, 1)}
	// The events go to the session that asked for them: the tab's.
	if err := chromedp.Listen(tab, func(ev any) {
		d.mu.Lock()
		switch e := ev.(type) {
		case *browser.EventDownloadWillBegin:
			d.name[e.GUID] = e.SuggestedFilename
		case *browser.EventDownloadProgress:
			if e.State == browser.DownloadProgressStateCompleted {
				d.done[e.GUID] = true
			}
		}
		d.mu.Unlock()
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	on := true
	err := chromedp.Do(tab, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: d.dir, EventsEnabled: &on,
			BrowserContextID: chromedp.FromContext(tab).BrowserContextID,
		})
		return err
	}))
	if err != nil {
		t.Fatalf("set the download behavior: %v", err)
	}
	return d
}

// await waits for a completed download suggested as name and returns its
// bytes.
func (d *downloads) await(t *testing.T, name string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for {
		d.mu.Lock()
		for guid, n := range d.name {
			if n == name && d.done[guid] {
				d.mu.Unlock()
				b, err := os.ReadFile(filepath.Join(d.dir, guid))
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
		seen := len(d.name)
		d.mu.Unlock()
		select {
		case <-d.wake:
		case <-ctx.Done():
			files, _ := os.ReadDir(d.dir)
			t.Fatalf("no completed download named %q (%d downloads began, %d files in the directory)", name, seen, len(files))
		}
	}
}

// chipSel is a CSS selector: the file chip named name in the pane.
func chipSel(name string) string { return `[data-testid=file-chip][data-file-name="` + name + `"]` }

// chip is a JavaScript expression: the file chip named name in the pane.
func chip(name string) string { return `document.querySelector(` + jsString(chipSel(name)) + `)` }

// TestFiles covers file messages in the browser: the attach button takes
// any file (a text file, and HTML disguised as .txt), the tray shows them
// as files, both pages show a chip with name, size and type, and bob's
// download link saves the file: served as an attachment (the header
// checked from the page) under its name, with the exact bytes, and the
// HTML never runs in the page or replaces it.
func TestFiles(t *testing.T) {
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	dir := t.TempDir()
	alice, bob, convID := directChat(t, srv.URL)
	dl := watchDownloads(t, bob.tab)

	report := filepath.Join(dir, "Quarterly report – été.txt")
	reportData := bytes.Repeat([]byte("numbers, numbers\n"), 100) // 1700 bytes
	disguised := filepath.Join(dir, "readme.txt")
	htmlData := []byte("<!DOCTYPE html><html><body><script>parent.pwned = true; document.title = 'pwned'</script></body></html>")
	for path, data := range map[string][]byte{report: reportData, disguised: htmlData} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reportName, htmlName := filepath.Base(report), filepath.Base(disguised)

	alice.do("attach two files", chromedp.SetUploadFiles(testID("attach-input"), []string{report, disguised}))
	alice.wait("both in the tray as files", `document.querySelectorAll('[data-testid=tray-item] .tray-file').length === 2`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "files-tray"))
	alice.do("caption", chromedp.SendKeys(testID("composer"), "the report"))
	alice.click("send them", `[data-testid=send]`)
	alice.wait("both sent", `[...document.querySelectorAll('[data-testid=message][data-type=file]')].filter(m => m.dataset.status === 'sent' || m.dataset.status === 'read').length === 2`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "files-sent"))

	bob.wait("the report's chip", chip(reportName)+`?.querySelector('[data-testid=file-meta]').textContent === '1.7 KiB · text/plain' && !!`+chip(reportName)+`.querySelector('[data-testid=file-download]')`)
	bob.wait("the disguised file's chip, typed inert", chip(htmlName)+`?.querySelector('[data-testid=file-meta]').textContent === '103 B · application/octet-stream'`)
	bob.wait("the caption with the first file", `[...document.querySelectorAll('[data-testid=message][data-type=file]')].some(m => m.querySelector('[data-testid=message-text]').textContent === 'the report' && m.querySelector('[data-testid=file-chip]')?.dataset.fileName === `+jsString(reportName)+`)`)
	t.Logf("screenshot: %s", screenshot(t, bob.tab, shots, "files-chips"))

	// The server's headers, as the page sees them on a signed link.
	headers := eval[map[string]string](t, bob.tab, `(async () => {
		const m = [...parleyApp.threads.get(`+jsString(convID)+`).msgs.values()].find(m => m.attachment?.name === `+jsString(htmlName)+`);
		const link = await parleyApp.client.attachmentLink(m.attachment.id);
		const res = await fetch(parleyApp.client.baseURL + link.url);
		return {disposition: res.headers.get('content-disposition'), type: res.headers.get('content-type'), nosniff: res.headers.get('x-content-type-options'), thumb: String(link.thumb_url ?? '')};
	})()`)
	if headers["disposition"] != `attachment; filename=readme.txt` || headers["type"] != "application/octet-stream" ||
		headers["nosniff"] != "nosniff" || headers["thumb"] != "" {
		t.Errorf("the disguised HTML file is served with %v; want an attachment, application/octet-stream, nosniff, no thumbnail", headers)
	}

	// The download links save both files, byte for byte, under their names.
	bob.click("download the report", chipSel(reportName)+` [data-testid=file-download]`)
	if got := dl.await(t, reportName); !bytes.Equal(got, reportData) {
		t.Fatalf("downloaded report: %d bytes, want %d", len(got), len(reportData))
	}
	bob.click("download the disguised file", chipSel(htmlName)+` [data-testid=file-download]`)
	if got := dl.await(t, htmlName); !bytes.Equal(got, htmlData) {
		t.Fatalf("downloaded readme.txt = %q", got)
	}
	if pwned := eval[bool](t, bob.tab, `!!window.pwned || document.title === 'pwned' || !document.querySelector('[data-testid=composer]')`); pwned {
		t.Fatal("the downloaded HTML ran in, or replaced, the page")
	}

	// The server's history agrees: name, size and type.
	msgs := apiMessages(t, srv.URL, alice.token(), convID)
	files := map[string]parley.Attachment{}
	for _, m := range msgs {
		if m.Type == parley.File && m.Attachment != nil {
			files[m.Attachment.Name] = *m.Attachment
		}
	}
	if a := files[reportName]; a.Size != int64(len(reportData)) || a.ContentType != "text/plain; charset=utf-8" {
		t.Errorf("stored report: %+v", a)
	}
	if a := files[htmlName]; a.ContentType != "application/octet-stream" {
		t.Errorf("stored disguised file: %+v", a)
	}
}
