package tui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// refusedReads is how many reads (history pages among them) srv's rate
// limit refused so far, from its metrics.
func refusedReads(t *testing.T, srv *servertest.Server) int {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.Server.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.Lines(rec.Body.String()) {
		if rest, ok := strings.CutPrefix(line, `parley_rate_limited_total{limit="reads"} `); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	return 0
}

// TestOlderFailsNoLoop: a page of older messages the server refuses
// while connected (here rate_limited, its retry_after far off) is asked
// for once: a notice says so, and neither the pane that still has room
// for more (fill), nor a redraw, nor a new message asks again; the
// user's next PgUp does, once. Before, the failed load's redraw asked
// again at once, in a loop as fast as the server answered.
func TestOlderFailsNoLoop(t *testing.T) {
	// One read in 100 s once the burst is spent: a refused page's
	// retry_after is far beyond the test.
	srv, first, alice := olderSpent(t, 0.01)
	if !alice.m.hasMore {
		t.Fatalf("one page loaded, no older ones:\n%s", alice.screen())
	}
	before := refusedReads(t, srv)

	// A taller window: the page no longer fills the pane, which asks for
	// the older one.
	alice.process(tea.WindowSizeMsg{Width: 100, Height: 60})
	alice.waitText("cannot load older messages: too many requests")
	alice.idle(2 * time.Second)
	if n := refusedReads(t, srv) - before; n != 1 {
		t.Fatalf("one failed page of older messages: %d history requests refused in 2 s, want 1", n)
	}
	// A redraw (a new message) does not ask again.
	first.enter("message 26", "#26 alice: message 26 ✓")
	alice.waitText("#26 alice: message 26")
	alice.idle(time.Second)
	if n := refusedReads(t, srv) - before; n != 1 {
		t.Fatalf("after a new message: %d history requests refused, want 1", n)
	}
	if s := alice.screen(); !strings.Contains(s, "PgUp tries again") {
		t.Fatalf("the pane after a failed page of older messages:\n%s", s)
	}
	// The user's PgUp asks again, once.
	alice.press(key("pgup"))
	alice.waitText("cannot load older messages: too many requests")
	alice.idle(time.Second)
	if n := refusedReads(t, srv) - before; n != 2 {
		t.Fatalf("after one PgUp: %d history requests refused, want 2", n)
	}
}

// TestOlderRetryAfter: a page of older messages refused with a short
// retry_after is asked for again once it is over, without a key press
// (the pane still has room), and the history fills.
func TestOlderRetryAfter(t *testing.T) {
	srv, _, alice := olderSpent(t, 0.5) // one read in 2 s once the burst is spent
	alice.process(tea.WindowSizeMsg{Width: 100, Height: 60})
	alice.waitText("PgUp tries again")
	alice.waitText("#1 alice: message 1 ✓")
	if n := refusedReads(t, srv); n > 3 {
		t.Fatalf("%d reads refused, want at most 3 (the spending's and one or two pages')", n)
	}
}

// olderSpent starts a server allowing readsPerSecond reads (a burst of
// 60), where alice (first) sends bob 25 messages, more than a page;
// another terminal of alice's (alice) loads one page of them, filling its
// pane, and then spends her reads: its next page of older ones is
// refused.
func olderSpent(t *testing.T, readsPerSecond float64) (srv *servertest.Server, first, alice *driver) {
	t.Helper()
	srv = servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits.ReadsPerSecond, c.Limits.ReadBurst = readsPerSecond, 60
	}))
	lookup := adminLookup(t, srv)
	token := srv.Token(t, "alice", "alice")
	first = newDriverWith(t, "alice", srv.URL, token, Config{LookupUser: lookup})
	first.waitText("● connected as alice")
	connected(t, srv, "bob", "bob", lookup)
	first.openDirect("bob")
	for i := 1; i <= 25; i++ { // more than a page (20)
		first.enter(fmt.Sprintf("message %d", i), fmt.Sprintf("#%d alice: message %d ✓", i, i))
	}
	alice = newDriverWith(t, "alice again", srv.URL, token, Config{LookupUser: lookup, RequestTimeout: 5 * time.Second})
	alice.waitText("#25 alice: message 25")
	conv := alice.m.open
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := alice.c.History(ctx, conv, parley.MessageQuery{Limit: 1})
		cancel()
		var pe *parley.Error
		if errors.As(err, &pe) && pe.Code == parley.ERATELIMITED {
			return srv, first, alice
		}
		if err != nil || i > 100 {
			t.Fatalf("spending the reads: %d calls, %v", i, err)
		}
	}
}

// TestOlderStaleFailure: a page of older messages asked for by a
// conversation's earlier opening (PgUp, then another conversation and
// back) that fails once the conversation is open again concerns a view
// that is gone: it neither holds the new view's older pages (olderHeld,
// 'PgUp tries again') nor says they could not be loaded, nor ends the
// new view's own load. Before, it was taken for the open view's, as it
// names the same conversation.
func TestOlderStaleFailure(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits.ReadsPerSecond, c.Limits.ReadBurst = 0.01, 60 // one read in 100 s once the burst is spent
	}))
	lookup := adminLookup(t, srv)
	token := srv.Token(t, "alice", "alice")
	alice := newDriverWith(t, "alice", srv.URL, token, Config{LookupUser: lookup, RequestTimeout: 5 * time.Second})
	alice.waitText("● connected as alice")
	connected(t, srv, "bob", "bob", lookup)
	alice.openDirect("bob")
	for i := 1; i <= 25; i++ { // more than a page (20)
		alice.enter(fmt.Sprintf("message %d", i), fmt.Sprintf("#%d alice: message %d ✓", i, i))
	}
	conv := alice.m.open

	// Opened afresh: one page, older ones to load. (Away to a
	// conversation never opened, its load not run, and back.)
	const elsewhere = "00000000-0000-7000-8000-000000000000"
	alice.m.select_(elsewhere)
	alice.run(alice.m.select_(conv))
	alice.waitText("#25 alice: message 25")
	if !alice.m.hasMore {
		t.Fatalf("one page loaded, no older ones:\n%s", alice.screen())
	}
	// PgUp's load of the older page, its answer held back.
	stale := alice.m.older()
	if stale == nil {
		t.Fatal("no load of older messages")
	}
	// Another conversation and back: the view is opened again.
	alice.m.select_(elsewhere)
	alice.run(alice.m.select_(conv))
	alice.waitText("#25 alice: message 25")
	alice.idle(500 * time.Millisecond)
	// The reads are spent: the held-back load fails now.
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := alice.c.History(ctx, conv, parley.MessageQuery{Limit: 1})
		cancel()
		var pe *parley.Error
		if errors.As(err, &pe) && pe.Code == parley.ERATELIMITED {
			break
		}
		if err != nil || i > 100 {
			t.Fatalf("spending the reads: %d calls, %v", i, err)
		}
	}
	msg := stale()
	if m, ok := msg.(loadedMoreMsg); !ok || m.err == nil {
		t.Fatalf("the held-back load ended with %#v, want a failure", msg)
	}
	alice.process(msg)
	if alice.m.olderHeld {
		t.Error("the earlier opening's failed load holds the open view's older pages")
	}
	if s := alice.screen(); strings.Contains(s, "cannot load older messages") || strings.Contains(s, "PgUp tries again") {
		t.Errorf("the earlier opening's failed load is told of the open view:\n%s", s)
	}
}

// TestOlderDuplicateOpen: a conversation opened twice over (away and
// back while its first opening was under way) keeps the view the first
// opening gave, with its load of older messages, and closes the second:
// the load's end (which names its view, TestOlderStaleFailure) ends the
// pane's load, and PgUp loads older messages again. Replaced by the
// second view, the pane would wait for good for a load it no longer
// counts as its own (and the first view stayed open, unseen).
func TestOlderDuplicateOpen(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	token := srv.Token(t, "alice", "alice")
	alice := newDriverWith(t, "alice", srv.URL, token, Config{LookupUser: lookup, RequestTimeout: 5 * time.Second})
	alice.waitText("● connected as alice")
	connected(t, srv, "bob", "bob", lookup)
	alice.openDirect("bob")
	for i := 1; i <= 45; i++ { // more than two pages (20)
		alice.enter(fmt.Sprintf("message %d", i), fmt.Sprintf("#%d alice: message %d ✓", i, i))
	}
	conv := alice.m.open
	const elsewhere = "00000000-0000-7000-8000-000000000000"
	alice.m.select_(elsewhere)
	first := alice.m.select_(conv)
	alice.m.select_(elsewhere)
	second := alice.m.select_(conv)
	alice.process(first())
	if alice.m.view == nil || !alice.m.hasMore {
		t.Fatalf("the first opening gave no view with older messages:\n%s", alice.screen())
	}
	load := alice.m.older()
	if load == nil {
		t.Fatal("no load of older messages")
	}
	alice.process(second())
	alice.process(load())
	if alice.m.loadMore {
		t.Fatal("the load of older messages ended, and the pane still waits for it")
	}
	for i := 0; !strings.Contains(alice.screen(), "#1 alice: message 1 ✓"); i++ {
		if i == 10 {
			t.Fatalf("10 PgUps did not reach the first message:\n%s", alice.screen())
		}
		alice.process(key("pgup"))
		alice.idle(300 * time.Millisecond)
	}
}
