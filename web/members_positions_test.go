package web_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/servertest"
)

// TestAddedMemberPositions: a member removed and added back keeps the
// read position they had (the server carries it over), and the owner's
// page shows it at once from the server, not 0 until their next receipt:
// the event's snapshot carries no positions, so the page fetches the
// conversation (docs/protocol.md, Conversation).
func TestAddedMemberPositions(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	shots := screenshotDir(t)
	alice, bob := twoUsers(t, browser, srv.URL)
	carolTok, carol := srv.Register(t, "carol", "carol-password-1")

	alice.createGroup("team", "bob, carol")
	alice.do("say hello", chromedp.SendKeys(testID("composer"), "hello team"+kb.Enter))
	alice.wait("her message stored", `['sent', 'delivered', 'read'].includes(`+messageWith("hello team")+`?.dataset.status)`)
	group := eval[string](t, alice.tab, `window.parleyApp.open`)
	m := apiMessages(t, srv.URL, carolTok, group)[0]
	body, _ := json.Marshal(map[string]int64{"seq": m.Seq})
	servertest.Call(t, "POST", srv.URL+"/v1/conversations/"+group+"/read", carolTok, body, http.StatusOK)
	bob.click("open the group", `[data-testid=conversation][data-title=team]`)
	alice.wait("read by both", markOf("hello team")+`?.textContent === '✓✓ Read by 2'`)

	// Carol removed: one recipient left, who read it.
	patch := func(op string) {
		b, _ := json.Marshal(map[string][]string{op: {carol.ID}})
		servertest.Call(t, "PATCH", srv.URL+"/v1/conversations/"+group, alice.token(), b, http.StatusOK)
	}
	patch("remove")
	alice.wait("carol's removal", systemLine("alice removed carol"))
	alice.wait("read by bob alone", markOf("hello team")+`?.textContent === '✓✓ Read by 1'`)
	// Added back: her read position is the one she had, shown at once
	// (no receipt of hers follows to raise it).
	patch("add")
	alice.wait("carol added back", systemLine("alice added carol"))
	alice.wait("read by both again, carol's position from the server", markOf("hello team")+`?.textContent === '✓✓ Read by 2'`)
	t.Logf("screenshot: %s", screenshot(t, alice.tab, shots, "added-member-positions"))
}
