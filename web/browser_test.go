package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait for a DOM condition. It is a ceiling for
// a slow, shared CI machine running -race, not a measurement: waits end as
// soon as the condition holds.
const waitTimeout = 30 * time.Second

// chromiumPath finds the browser, skipping the test when it is missing
// (failing instead under CI=true, where it must be installed).
func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PARLEY_TEST_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("chromium not found at %s (%v): install it with `apt-get install -y chromium` or set PARLEY_TEST_CHROMIUM", p, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// newBrowser starts one headless Chromium for the test and returns its
// context; the browser stops (and is waited for) at cleanup.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		// With disable-dev-shm-usage Chromium keeps its shared memory in
		// org.chromium.Chromium.* folders of TMPDIR and leaves them
		// there: in the test's own folder they go with it.
		chromedp.Env("TMPDIR=" + t.TempDir()),
		chromedp.WindowSize(1100, 720),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		// Two tabs share the browser and only one can be in front; keep
		// the other's timers running at full speed like a real window.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(browserCtx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return browserCtx
}

// newTab opens a tab in a fresh browser context (its own storage and
// cookies, like a separate profile) and navigates it to url. Every
// Content-Security-Policy violation the tab reports, in any page it loads,
// fails the test at cleanup: the client must work under the server's CSP.
func newTab(t *testing.T, browserCtx context.Context, url string) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(browserCtx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	v := watchCSP(t, tab)
	t.Cleanup(func() {
		for _, s := range v.list() {
			t.Errorf("CSP violation in the web client: %s", s)
		}
	})
	do(t, tab, "navigate to "+url, chromedp.Navigate(url))
	return tab
}

// cspBinding is the function the page calls, through the DevTools
// protocol, for each securitypolicyviolation event.
const cspBinding = "parleyCSPViolation"

// cspViolations collects a tab's CSP violations. Safe for concurrent use:
// the DevTools listener appends while the test reads.
type cspViolations struct {
	mu   sync.Mutex
	seen []string
}

func (v *cspViolations) list() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.seen...)
}

// watchCSP reports every securitypolicyviolation event of every document
// the tab loads from now on (a script added before each document's own,
// so a blocked inline script in the HTML is caught too).
func watchCSP(t *testing.T, tab context.Context) *cspViolations {
	t.Helper()
	v := &cspViolations{}
	err := chromedp.Listen(tab, func(ev any) {
		if e, ok := ev.(*runtime.EventBindingCalled); ok && e.Name == cspBinding {
			v.mu.Lock()
			v.seen = append(v.seen, e.Payload)
			v.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(tab, runtime.AddBinding, runtime.AddBindingParams{Name: cspBinding}); err != nil {
		t.Fatalf("adding the CSP binding: %v", err)
	}
	src := `document.addEventListener('securitypolicyviolation', (e) => ` + cspBinding +
		`(e.effectiveDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber + ' (' + location.pathname + ')'));`
	if _, err := chromedp.Call(tab, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		t.Fatalf("adding the CSP listener: %v", err)
	}
	return v
}

// do runs steps on a tab with a ceiling on how long they may take.
func do(t *testing.T, tab context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression and decodes its value.
func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until the JavaScript expression is truthy. On timeout it
// reports what was awaited and, to make failures readable, the value of
// describe (a JavaScript expression) at that moment.
func waitJS(t *testing.T, tab context.Context, what, expr, describe string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitTimeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(waitTimeout), chromedp.WithPollingInterval(50*time.Millisecond)))
	if err != nil {
		state := ""
		if describe != "" {
			dctx, dcancel := context.WithTimeout(tab, 5*time.Second)
			s, derr := chromedp.Run(dctx, chromedp.Evaluate[any](describe))
			dcancel()
			state = fmt.Sprintf("; page state: %v %v", s, derr)
		}
		t.Fatalf("waiting for %s: %v%s", what, err, state)
	}
}

// screenshot saves a PNG of the tab into dir and returns its path.
func screenshot(t *testing.T, tab context.Context, dir, name string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// screenshotDir is PARLEY_SCREENSHOTS when set (the files are kept there
// for a person to look at), else a temporary directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("PARLEY_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// testID is a CSS selector for a data-testid.
func testID(id string) chromedp.CSS {
	return chromedp.CSS(fmt.Sprintf(`[data-testid=%q]`, id))
}

// addScript runs src in every document the tab loads from now on, before
// the page's own scripts.
func addScript(t *testing.T, tab context.Context, src string) {
	t.Helper()
	if _, err := chromedp.Call(tab, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{Source: src}); err != nil {
		t.Fatalf("adding a script: %v", err)
	}
}
