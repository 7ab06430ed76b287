package storetest

import (
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// commitHook records what a store hands its commit hook.
type commitHook struct {
	mu       sync.Mutex
	calls    int
	got      map[int64]parley.Event // by position
	dups     []int64                // positions handed over more than once
	unsorted int                    // calls whose events were not in position order
}

func (h *commitHook) publish(evs []parley.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if !slices.IsSortedFunc(evs, func(a, b parley.Event) int { return int(a.Pos - b.Pos) }) {
		h.unsorted++
	}
	for _, ev := range evs {
		if _, ok := h.got[ev.Pos]; ok {
			h.dups = append(h.dups, ev.Pos)
		}
		h.got[ev.Pos] = ev
	}
}

// missing returns the first of evs the hook was not handed as it is.
func (h *commitHook) missing(evs []parley.Event) (parley.Event, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ev := range evs {
		if got, ok := h.got[ev.Pos]; !ok || !reflect.DeepEqual(got, ev) {
			return ev, true
		}
	}
	return parley.Event{}, false
}

// testCommitPublisher: with a commit hook set (parley.CommitPublisher),
// every event a write returns has been handed to the hook, as returned,
// before the write returns; the hook gets every event the store holds,
// each once, in position order, and none of a write that failed; with
// the hook removed it gets nothing more. The writes cover every kind of
// event, sends alone and in a run (with a resend and a failure in it).
func testCommitPublisher(t *testing.T, s parley.Store) {
	cp := optional[parley.CommitPublisher](t, s)
	alice, bob, carol := newUser(t, s, "cp"), newUser(t, s, "cp"), newUser(t, s, "cp")
	head, err := s.Head(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	h := &commitHook{got: map[int64]parley.Event{}}
	cp.PublishCommits(h.publish)

	check := func(what string, evs []parley.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ev, ok := h.missing(evs); ok {
			t.Errorf("%s returned event %d (%s) the hook was not handed as returned", what, ev.Pos, ev.Type)
		}
	}
	c := ctx(t)
	g, evs, err := s.CreateGroup(c, alice.ID, "G", []string{bob.ID})
	check("CreateGroup", evs, err)
	title := "G2"
	_, evs, err = s.UpdateConversation(c, alice.ID, g.ID, parley.ConversationChange{Title: &title, Add: []string{carol.ID}, Promote: []string{bob.ID}})
	check("UpdateConversation", evs, err)
	m, evs, err := s.SendMessage(c, parley.NewMessage{ConversationID: g.ID, SenderID: alice.ID, ClientID: "cp-1", Type: parley.Text, Text: "one"})
	check("SendMessage", evs, err)
	_, evs, err = s.SendMessage(c, parley.NewMessage{ConversationID: g.ID, SenderID: alice.ID, ClientID: "cp-1", Type: parley.Text, Text: "one"})
	check("SendMessage (resend)", evs, err)
	nms := []parley.NewMessage{
		{ConversationID: g.ID, SenderID: bob.ID, ClientID: "cp-2", Type: parley.Text, Text: "two"},
		{ConversationID: "no-such-conversation", SenderID: bob.ID, ClientID: "cp-3", Type: parley.Text, Text: "lost"},
		{ConversationID: g.ID, SenderID: bob.ID, ClientID: "cp-2", Type: parley.Text, Text: "two"},
		{ConversationID: g.ID, SenderID: carol.ID, ClientID: "cp-4", Type: parley.Text, Text: "four"},
	}
	for _, r := range sendMany(t, c, optional[parley.MultiSender](t, s), nms) {
		if r.i == 1 {
			wantCode(t, "send to a missing conversation", r.err, parley.ENOTFOUND)
			continue
		}
		check("SendMessages", r.evs, r.err)
	}
	_, evs, err = s.EditMessage(c, parley.MessageEdit{UserID: alice.ID, ConversationID: g.ID, MessageID: m.ID, ClientID: "cp-e", Text: "one!"})
	check("EditMessage", evs, err)
	_, _, err = s.EditMessage(c, parley.MessageEdit{UserID: bob.ID, ConversationID: g.ID, MessageID: m.ID, ClientID: "cp-e2", Text: "not mine"})
	if err == nil {
		t.Fatal("EditMessage of another's message succeeded")
	}
	_, evs, err = s.React(c, bob.ID, g.ID, m.ID, "👍", true)
	check("React", evs, err)
	_, evs, err = s.React(c, bob.ID, g.ID, m.ID, "👍", false)
	check("React (remove)", evs, err)
	evs, err = s.MarkRead(c, carol.ID, g.ID, m.Seq)
	check("MarkRead", evs, err)
	muted := true
	_, evs, err = s.SetFlags(c, bob.ID, g.ID, &muted, nil)
	check("SetFlags", evs, err)
	_, evs, err = optional[parley.Receipts](t, s).MarkDelivered(c, carol.ID, []parley.DeliveredMark{{ConversationID: g.ID, Seq: m.Seq}})
	check("MarkDelivered", evs, err)
	name := "Carol"
	_, evs, err = optional[parley.Profiles](t, s).SetProfile(c, carol.ID, parley.ProfileChange{DisplayName: &name})
	check("SetProfile", evs, err)
	_, evs, err = s.DeleteMessage(c, alice.ID, g.ID, m.ID)
	check("DeleteMessage", evs, err)
	_, evs, err = s.UpdateConversation(c, alice.ID, g.ID, parley.ConversationChange{Remove: []string{carol.ID}})
	check("UpdateConversation (remove)", evs, err)
	_, evs, err = s.CreateDirect(c, alice.ID, bob.ID)
	check("CreateDirect", evs, err)
	cs := optional[parley.Consenter](t, s)
	evs, err = cs.Block(c, carol.ID, alice.ID)
	check("Block", evs, err)
	evs, err = cs.Unblock(c, carol.ID, alice.ID)
	check("Unblock", evs, err)

	stored := allEvents(t, s)
	h.mu.Lock()
	var positions []int64
	for _, ev := range stored {
		if ev.Pos <= head {
			continue
		}
		positions = append(positions, ev.Pos)
		if _, ok := h.got[ev.Pos]; !ok {
			t.Errorf("stored event %d (%s) was never handed to the hook", ev.Pos, ev.Type)
		}
	}
	if len(h.got) != len(positions) {
		t.Errorf("the hook got %d events, the store holds %d after %d", len(h.got), len(positions), head)
	}
	if len(h.dups) > 0 || h.unsorted > 0 {
		t.Errorf("positions handed over twice: %v; calls out of position order: %d", h.dups, h.unsorted)
	}
	calls := h.calls
	h.mu.Unlock()

	cp.PublishCommits(nil)
	send(t, s, g.ID, bob, "unhooked")
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.calls != calls {
		t.Errorf("after PublishCommits(nil) the hook was still called")
	}
}
