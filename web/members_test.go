package web_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/parleychat/parley/internal/servertest"
)

// memberSel is the CSS selector of user's row in the open member panel.
func memberSel(user string) string {
	return `[data-testid=member-panel] [data-testid=member][data-user=` + user + `]`
}

// systemLine is a JavaScript expression: whether the open thread shows a
// system line with text.
func systemLine(text string) string {
	return `[...document.querySelectorAll('[data-testid=system-line]')].some(l => l.textContent === ` + jsString(text) + `)`
}

// TestGroupMembersAndRemoval: in a group made in the page, the owner's
// member panel shows roles and the actions of an owner (a member's shows
// none), promotes and demotes, and removes a member who is viewing the
// group; every change is a system line in both threads, and the removed
// user keeps the pane with a notice and a disabled composer while the
// group leaves their list.
func TestGroupMembersAndRemoval(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	alice, bob := twoUsers(t, browser, srv.URL)

	alice.createGroup("team", "bob")
	alice.do("say hello", chromedp.SendKeys(testID("composer"), "hello team"+kb.Enter))
	bob.click("open the group", `[data-testid=conversation][data-title=team]`)
	bob.wait("alice's message", messageWith("hello team"))

	// The owner's panel: roles, and actions for bob.
	alice.click("open the member panel", `[data-testid=members-toggle]`)
	alice.wait("alice is an owner", `document.querySelector('`+memberSel("alice")+`')?.dataset.role === 'owner'`)
	alice.wait("bob is a member", `document.querySelector('`+memberSel("bob")+`')?.dataset.role === 'member'`)

	// A member's panel has no owner actions, only Leave.
	bob.click("open the member panel", `[data-testid=members-toggle]`)
	bob.wait("bob's panel", `!!document.querySelector('`+memberSel("alice")+`')`)
	bob.wait("no owner actions for a member",
		`!document.querySelector('[data-testid=member-panel] :is([data-testid=promote], [data-testid=demote], [data-testid=remove-member], [data-testid=add-member], [data-testid=rename])')
		&& !!document.querySelector('[data-testid=member-panel] [data-testid=leave]')`)

	// Promote, then demote: the roles follow in both pages, with a system
	// line each.
	alice.click("make bob an owner", memberSel("bob")+` [data-testid=promote]`)
	bob.wait("bob is an owner on his page", `document.querySelector('`+memberSel("bob")+`')?.dataset.role === 'owner'`)
	bob.wait("the promotion line", systemLine("alice made bob an owner"))
	alice.click("make bob a member again", memberSel("bob")+` [data-testid=demote]`)
	alice.wait("the demotion line", systemLine("alice made bob a member"))
	bob.wait("bob is a member again", `document.querySelector('`+memberSel("bob")+`')?.dataset.role === 'member'`)

	// Alice removes bob while he views the group.
	alice.click("remove bob", memberSel("bob")+` [data-testid=remove-member]`)
	alice.wait("the removal line on alice's page", systemLine("alice removed bob"))
	alice.wait("bob gone from the panel", `!document.querySelector('`+memberSel("bob")+`')`)

	bob.wait("the removed notice", `!!document.querySelector('[data-testid=removed-notice]')?.textContent.includes('no longer a member')`)
	bob.wait("the composer disabled", `document.querySelector('[data-testid=composer]').disabled && document.querySelector('[data-testid=send]').disabled`)
	bob.wait("the removal line on bob's page", systemLine("alice removed bob"))
	bob.wait("the pane kept, history readable", `document.querySelector('[data-testid=pane-title]').textContent === 'team' && !!(`+messageWith("hello team")+`)`)
	bob.wait("the group gone from bob's list", `!document.querySelector('[data-testid=conversation][data-title=team]')`)
	bob.wait("no member panel for a removed user", `!document.querySelector('[data-testid=member-panel]') && !document.querySelector('[data-testid=members-toggle]')`)

	// Added back, the notice goes and the composer works again. What is
	// typed in the panel survives a redraw (here a forced one).
	alice.do("type bob's name", chromedp.SendKeys(testID("add-member-name"), "bob"))
	if !eval[bool](t, alice.tab, `import('/members.js').then(m => { m.renderMembers(); return document.querySelector('[data-testid=add-member-name]')?.value === 'bob'; })`) {
		t.Fatal("alice: the name typed in the member panel was lost in a redraw")
	}
	alice.do("add bob back", chromedp.Click(testID("add-member")))
	bob.wait("the group back in bob's list", `!!document.querySelector('[data-testid=conversation][data-title=team]')`)
	bob.click("open it again", `[data-testid=conversation][data-title=team]`)
	bob.wait("the notice gone and the composer enabled", `!document.querySelector('[data-testid=removed-notice]') && !document.querySelector('[data-testid=composer]').disabled`)
	bob.do("write again", chromedp.SendKeys(testID("composer"), "back again"+kb.Enter))
	alice.wait("bob's message", messageWith("back again"))
}

// TestMuteAndArchive: mute from the pane header, and flags set on another
// device (the HTTP API with the same user's token) reach the page: an
// archived conversation leaves the list (behind an "Archived (n)" switch)
// until a new message arrives.
func TestMuteAndArchive(t *testing.T) {
	browser := newBrowser(t)
	srv := servertest.Start(t)
	alice, bob := twoUsers(t, browser, srv.URL)
	aliceTok, bobTok := alice.token(), bob.token()

	alice.startDirect("bob")
	alice.do("say hi", chromedp.SendKeys(testID("composer"), "hi bob"+kb.Enter))
	direct := eval[string](t, alice.tab, `window.parleyApp.open`)
	alice.createGroup("team", "bob")

	alice.click("mute the group", `[data-testid=mute]`)
	alice.wait("muted", `document.querySelector('[data-testid=mute]')?.getAttribute('aria-pressed') === 'true' && document.querySelector('[data-testid=mute]').textContent === 'Unmute'`)
	group := eval[string](t, alice.tab, `window.parleyApp.open`)
	// Unmuted on another device: the page follows.
	servertest.Call(t, "PATCH", srv.URL+"/v1/conversations/"+group+"/flags", aliceTok, []byte(`{"muted":false}`), http.StatusOK)
	alice.wait("unmuted by the other device", `document.querySelector('[data-testid=mute]')?.textContent === 'Mute'`)

	// The direct conversation archived on another device leaves the list.
	servertest.Call(t, "PATCH", srv.URL+"/v1/conversations/"+direct+"/flags", aliceTok, []byte(`{"archived":true}`), http.StatusOK)
	alice.wait("the direct chat out of the list", `!document.querySelector('[data-testid=conversation][data-title=bob]')
		&& document.querySelector('[data-testid=archived-toggle]')?.textContent === 'Archived (1)'`)
	alice.click("show archived", `[data-testid=archived-toggle]`)
	alice.wait("the archived chat shown", `!!document.querySelector('[data-testid=conversation][data-title=bob]')`)
	alice.click("hide archived", `[data-testid=archived-toggle]`)
	alice.wait("hidden again", `!document.querySelector('[data-testid=conversation][data-title=bob]')`)

	// A new message ends the archive.
	apiSend(t, srv.URL, bobTok, direct, "wake-1", "are you there?")
	alice.wait("the direct chat back, the switch gone", `!!document.querySelector('[data-testid=conversation][data-title=bob]')
		&& !document.querySelector('[data-testid=archived-toggle]')`)
}

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
