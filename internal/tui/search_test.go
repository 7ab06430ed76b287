package tui

import (
	"context"
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley/internal/servertest"
)

// markedLine is a screen condition: a line holds the ▶ mark and want.
func markedLine(want string) func(screen string) bool {
	return func(screen string) bool {
		for _, l := range strings.Split(screen, "\n") {
			if strings.Contains(l, "▶") && strings.Contains(l, want) {
				return true
			}
		}
		return false
	}
}

// TestSearchAndMentions: /search lists matches with the words in
// brackets, /mentions the messages naming the user, whose lines and list
// entry are marked with @; /open goes to a mention.
func TestSearchAndMentions(t *testing.T) {
	_, alice, bob := connectedPair(t)
	alice.openDirect("bob")
	alice.enter("the quokka is here, @bob", "#1 alice: the quokka is here, @bob ✓")
	bob.waitText("#1 @alice: the quokka is here") // the line mentions bob
	bob.enter("/mentions", "mentions of you · page 1")
	bob.waitText("1) alice #1 alice: the quokka is here, @bob")
	bob.typeLine("/open 1", true)
	bob.waitFor("the mention marked", markedLine("#1 @alice: the quokka is here"))
	bob.enter("/search QUOK*", `search "QUOK*" · page 1`)
	bob.waitText("1) alice #1 alice: the [quokka] is here, @bob")
	bob.enter("/search zebra", "nothing found")
	bob.enter("/search", "usage: /search words")
}

// TestSearchPagesAndOpens: /next and /prev page through the results with
// the server's cursor, and /open N opens a result's conversation at that
// message, loading the older history up to it and marking it with ▶.
func TestSearchPagesAndOpens(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	bobToken := srv.Token(t, "bob", "bob") // bob exists for /dm
	alice := connected(t, srv, "alice", "alice", lookup)
	alice.openDirect("bob")
	conv := alice.m.open
	// Seven matches (#1 to #7) under 38 more messages: more than two of
	// the driver's history pages (20) above the newest, which bob's view
	// loads first.
	for i := 1; i <= 45; i++ {
		text := fmt.Sprintf("filler %d", i)
		if i <= 7 {
			text = fmt.Sprintf("needle %d", i)
		}
		if _, err := alice.c.Send(context.Background(), conv, text); err != nil {
			t.Fatal(err)
		}
	}
	alice.waitText("#45 alice: filler 45 ✓")
	bob := newDriver(t, "bob", srv.URL, bobToken, lookup)
	bob.waitText("#45 alice: filler 45")
	if len(bob.m.msgs) == 0 || bob.m.msgs[0].Seq <= 7 {
		t.Fatalf("bob's first page holds the matches (from #%d): the test would not load older history", bob.m.msgs[0].Seq)
	}

	bob.enter("/next", "/next: no results shown; /search words or /mentions first")
	bob.enter("/search needle", `search "needle" · page 1 · /open N goes to a result · /next older · /close`)
	for i := 1; i <= 5; i++ {
		bob.waitText(fmt.Sprintf("%d) alice #%d alice: [needle] %d", i, 8-i, 8-i))
	}
	if s := bob.screen(); strings.Contains(s, "6) ") || strings.Contains(s, "[needle] 2") {
		t.Fatalf("page 1 lists more than 5 results:\n%s", s)
	}
	bob.enter("/prev", "these are the newest results")

	bob.enter("/next", `search "needle" · page 2 · /open N goes to a result · /prev newer · /close`)
	bob.waitText("1) alice #2 alice: [needle] 2")
	bob.waitText("2) alice #1 alice: [needle] 1")
	if s := bob.screen(); strings.Contains(s, "3) ") || strings.Contains(s, "[needle] 7") {
		t.Fatalf("page 2 lists other results:\n%s", s)
	}
	bob.enter("/next", "no older results")
	bob.enter("/prev", "1) alice #7 alice: [needle] 7")
	bob.enter("/next", "2) alice #1 alice: [needle] 1")

	bob.enter("/open 3", "usage: /open N (1 to 2, a result's number)")
	bob.typeLine("/open 2", true)
	// The pane shows #1, marked, with the start of the conversation
	// loaded above it.
	bob.waitFor("#1 marked", markedLine("#1 alice: needle 1"))
	bob.waitText("— start of the conversation —")
	if n := strings.Count(bob.screen(), "▶"); n != 1 {
		t.Fatalf("%d marks, want 1:\n%s", n, bob.screen())
	}
	bob.typeLine("/close", true)
	bob.waitFor("the panel hidden", func(s string) bool { return !strings.Contains(s, `search "needle"`) })
	if !strings.Contains(bob.screen(), "#1 alice: needle 1") {
		t.Fatalf("closing the results moved the pane:\n%s", bob.screen())
	}
}

// TestHelpFits: /help shows every command and key on a 80x24 screen,
// and on a smaller one that still has room for it (60x20: /help takes
// more than half of it, and its last line was cut off without a sign);
// where it cannot fit, its last line shown ends with "…".
func TestHelpFits(t *testing.T) {
	for _, size := range []tea.WindowSizeMsg{{Width: 80, Height: 24}, {Width: 60, Height: 20}, {Width: 44, Height: 24}} {
		m := newTestModel(t)
		m.Update(size)
		m.input.SetValue("/help")
		m.Update(key("enter"))
		s := strings.Join(strings.Fields(screen(m)), " ")
		for _, want := range []string{"/dm user", "/search words · /mentions · /next /prev /open N /close (results)", "/save #seq [PATH]", "/privacy [everyone|contacts]", "Esc navigation keys"} {
			if !strings.Contains(s, want) {
				t.Errorf("%dx%d: /help does not show %q:\n%s", size.Width, size.Height, want, screen(m))
			}
		}
	}
	m := newTestModel(t)
	m.Update(tea.WindowSizeMsg{Width: 60, Height: 10})
	m.input.SetValue("/help")
	m.Update(key("enter"))
	lines := strings.Split(screen(m), "\n")
	if last := lines[len(lines)-3]; !strings.HasSuffix(last, "…") {
		t.Errorf("the cut /help's last line %q does not end with …:\n%s", last, screen(m))
	}
}
