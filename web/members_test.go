package web_test

import (
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

	alice.do("create a group with bob",
		chromedp.Click(`details.new-group summary`),
		chromedp.SendKeys(testID("group-title"), "team"),
		chromedp.SendKeys(testID("group-members"), "bob"),
		chromedp.Click(testID("create-group")),
	)
	alice.wait("the group open", `document.querySelector('[data-testid=pane-title]').textContent === 'team'`)
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

	// Added back, the notice goes and the composer works again.
	alice.do("add bob back",
		chromedp.SendKeys(testID("add-member-name"), "bob"),
		chromedp.Click(testID("add-member")),
	)
	bob.wait("the group back in bob's list", `!!document.querySelector('[data-testid=conversation][data-title=team]')`)
	bob.click("open it again", `[data-testid=conversation][data-title=team]`)
	bob.wait("the notice gone and the composer enabled", `!document.querySelector('[data-testid=removed-notice]') && !document.querySelector('[data-testid=composer]').disabled`)
	bob.do("write again", chromedp.SendKeys(testID("composer"), "back again"+kb.Enter))
	alice.wait("bob's message", messageWith("back again"))
}
