package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// Shards is the conformance suite of a sharded event log
// (parley.ShardedLog). fresh returns the location of a new, empty
// database; open opens the database at loc asking for shards shards (0:
// what the database records), or returns the error of opening it. A store
// open returns must be closed at t's cleanup; Shards closes some itself
// first, so Close must be safe to call twice.
func Shards(t *testing.T, fresh func(t *testing.T) string, open func(t *testing.T, loc string, shards int) (parley.Store, error)) {
	mustOpen := func(t *testing.T, loc string, shards int) parley.Store {
		t.Helper()
		s, err := open(t, loc, shards)
		if err != nil {
			t.Fatalf("open with %d shards: %v", shards, err)
		}
		return s
	}
	t.Run("DefaultIsOne", func(t *testing.T) {
		t.Parallel()
		s := mustOpen(t, fresh(t), 0)
		if n := optional[parley.ShardedLog](t, s).Shards(); n != 1 {
			t.Fatalf("a new database has %d shards, want 1", n)
		}
	})
	t.Run("DensePerShard", func(t *testing.T) {
		t.Parallel()
		testDensePerShard(t, mustOpen(t, fresh(t), 8))
	})
	t.Run("ClientIDAcrossShards", func(t *testing.T) {
		t.Parallel()
		testClientIDAcrossShards(t, mustOpen(t, fresh(t), 8))
	})
	for _, n := range []int{1, 4} {
		t.Run(fmt.Sprint("ReplayAfterReopen", n), func(t *testing.T) {
			t.Parallel()
			loc := fresh(t)
			testReplayAfterReopen(t, mustOpen(t, loc, n), func() parley.Store { return mustOpen(t, loc, 0) })
		})
	}
	t.Run("WebhookQueue", func(t *testing.T) {
		t.Parallel()
		testWebhookQueueShards(t, mustOpen(t, fresh(t), 4))
	})
	t.Run("CountIsFixed", func(t *testing.T) {
		t.Parallel()
		loc := fresh(t)
		s := mustOpen(t, loc, 4)
		a, b := newUser(t, s, "shfa"), newUser(t, s, "shfb")
		newGroup(t, s, a, "G", b)
		s.Close()
		if s, err := open(t, loc, 8); err == nil {
			s.Close()
			t.Fatal("reopening a log holding events with another shard count succeeded; want an error")
		}
		for _, n := range []int{0, 4} {
			s := mustOpen(t, loc, n)
			if got := optional[parley.ShardedLog](t, s).Shards(); got != 4 {
				t.Errorf("reopened with %d: %d shards, want the 4 recorded", n, got)
			}
			s.Close()
		}
		if s, err := open(t, fresh(t), parley.MaxShards+1); err == nil {
			s.Close()
			t.Fatalf("opening with %d shards succeeded; want an error", parley.MaxShards+1)
		}
	})
}

// testDensePerShard writes conversation events of many conversations at
// once (so several shards' positions are handed out in the same batches)
// and a user's own events, and checks: each shard's positions are 1..its
// head, each once; every event is in its conversation's shard (a user's
// own in shard 0); ShardEventsFor of each shard is the part of
// ShardEvents whose audience holds the user; Head, Events and EventsFor
// are shard 0's; a shard out of range is EINVALID.
func testDensePerShard(t *testing.T, s parley.Store) {
	log := optional[parley.ShardedLog](t, s)
	n := log.Shards()
	if n != 8 {
		t.Fatalf("Shards() = %d, want 8", n)
	}
	users := make([]parley.User, 6)
	for i := range users {
		users[i] = newUser(t, s, "shd")
	}
	var convs []parley.Conversation
	for i := range 12 {
		convs = append(convs, newGroup(t, s, users[i%3], fmt.Sprint("G", i), users[3+i%3], users[(i+1)%3]))
	}
	shardsUsed := map[int]bool{}
	for _, c := range convs {
		shardsUsed[parley.ShardOf(c.ID, n)] = true
	}
	if len(shardsUsed) < 3 {
		t.Fatalf("12 conversations fell in %d of %d shards; the hash spreads them poorly", len(shardsUsed), n)
	}
	var wg sync.WaitGroup
	for i, c := range convs {
		wg.Go(func() {
			sender := users[i%3]
			var last parley.Message
			for j := range 15 {
				m, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: c.ID, SenderID: sender.ID,
					ClientID: clientID(), Type: parley.Text, Text: fmt.Sprint("m", j)})
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
				last = m
				if j == 7 {
					title := fmt.Sprint("renamed ", i)
					if _, _, err := s.UpdateConversation(ctx(t), sender.ID, c.ID, parley.ConversationChange{Title: &title}); err != nil {
						t.Errorf("rename: %v", err)
						return
					}
				}
			}
			if _, err := s.MarkRead(ctx(t), users[3+i%3].ID, c.ID, 5); err != nil {
				t.Errorf("mark read: %v", err)
			}
			// The other writes of one conversation (each its shard's
			// alone in PostgreSQL: Engine.WriteShard).
			if _, _, err := s.EditMessage(ctx(t), parley.MessageEdit{UserID: sender.ID, ConversationID: c.ID,
				MessageID: last.ID, ClientID: clientID(), Text: "edited"}); err != nil {
				t.Errorf("edit: %v", err)
			}
			if _, _, err := s.React(ctx(t), users[3+i%3].ID, c.ID, last.ID, "👍", true); err != nil {
				t.Errorf("react: %v", err)
			}
			if _, _, err := s.DeleteMessage(ctx(t), sender.ID, c.ID, last.ID); err != nil {
				t.Errorf("delete: %v", err)
			}
			muted := true
			if _, _, err := s.SetFlags(ctx(t), users[3+i%3].ID, c.ID, &muted, nil); err != nil {
				t.Errorf("flags: %v", err)
			}
		})
	}
	// A member leaves and comes back: two windows, in their
	// conversation's shard.
	wg.Go(func() {
		// Neither a sender nor a reader of convs[1] above.
		c, leaver := convs[1], users[2]
		if _, _, err := s.UpdateConversation(ctx(t), leaver.ID, c.ID, parley.ConversationChange{Remove: []string{leaver.ID}}); err != nil {
			t.Errorf("leave: %v", err)
			return
		}
		if _, _, err := s.UpdateConversation(ctx(t), users[1].ID, c.ID, parley.ConversationChange{Add: []string{leaver.ID}}); err != nil {
			t.Errorf("add back: %v", err)
		}
	})
	// A user's own events (no conversation) go to shard 0.
	cs := optional[parley.Consenter](t, s)
	wg.Go(func() {
		if _, err := cs.Block(ctx(t), users[5].ID, users[4].ID); err != nil {
			t.Errorf("block: %v", err)
		}
	})
	wg.Wait()
	if t.Failed() {
		return
	}

	all := make([][]parley.Event, n)
	for sh := range n {
		head := must[int64](t, "ShardHead")(log.ShardHead(ctx(t), sh))
		var evs []parley.Event
		for after := int64(0); ; {
			page := must[[]parley.Event](t, "ShardEvents")(log.ShardEvents(ctx(t), sh, after, 50))
			if len(page) == 0 {
				break
			}
			evs = append(evs, page...)
			after = page[len(page)-1].Pos
		}
		for i, e := range evs {
			if e.Pos != int64(i+1) {
				t.Fatalf("shard %d: event %d has position %d, want %d (dense from 1)", sh, i, e.Pos, i+1)
			}
			if e.Shard != sh || parley.ShardOf(e.ConversationID, n) != sh {
				t.Fatalf("shard %d holds event %d of conversation %q (shard %d, ShardOf %d)",
					sh, e.Pos, e.ConversationID, e.Shard, parley.ShardOf(e.ConversationID, n))
			}
		}
		if int64(len(evs)) != head {
			t.Fatalf("shard %d: %d events, head %d", sh, len(evs), head)
		}
		if shardsUsed[sh] != (head > 0) && sh != 0 {
			t.Errorf("shard %d: head %d, but it holds conversations: %v", sh, head, shardsUsed[sh])
		}
		all[sh] = evs
	}
	// Every write's events are somewhere: 12 creations, 12*15 sends,
	// 12 renames, 12 reads, 12 each of edits, reactions, deletes and
	// flags, a leave and a join, a block.
	total := 0
	for _, evs := range all {
		total += len(evs)
	}
	if want := 12 + 12*15 + 12 + 12 + 4*12 + 2 + 1; total != want {
		t.Errorf("%d events in all shards, want %d", total, want)
	}
	if !slices.ContainsFunc(all[0], func(e parley.Event) bool { return e.Type == parley.EventUserBlocked }) {
		t.Error("the block (a user's own event) is not in shard 0")
	}

	for _, u := range users {
		for sh := range n {
			var want []int64
			for _, e := range all[sh] {
				if slices.Contains(e.Audience, u.ID) {
					want = append(want, e.Pos)
				}
			}
			var got []int64
			for _, e := range pageEventsFor(t, func(after int64) (parley.EventsPage, error) {
				return log.ShardEventsFor(ctx(t), u.ID, sh, after, 40)
			}) {
				if e.Shard != sh {
					t.Fatalf("ShardEventsFor(%s, shard %d) returned an event of shard %d", u.Name, sh, e.Shard)
				}
				got = append(got, e.Pos)
			}
			if !slices.Equal(got, want) {
				t.Errorf("ShardEventsFor(%s, shard %d) = %v, want the positions whose audience holds them %v", u.Name, sh, got, want)
			}
		}
	}

	// Every head at once (one query on PostgreSQL) is each shard's head.
	if hr, ok := log.(parley.ShardHeadsReader); ok {
		heads := must[[]int64](t, "ShardHeads")(hr.ShardHeads(ctx(t)))
		if len(heads) != n {
			t.Fatalf("ShardHeads returned %d heads, want %d", len(heads), n)
		}
		for sh := range n {
			if h := must[int64](t, "ShardHead")(log.ShardHead(ctx(t), sh)); heads[sh] != h || h == 0 && len(all[sh]) > 0 {
				t.Errorf("ShardHeads()[%d] = %d, ShardHead(%d) = %d (shard holds %d events)", sh, heads[sh], sh, h, len(all[sh]))
			}
		}
	}

	// The shard-less methods are shard 0's.
	if h0, h := must[int64](t, "ShardHead")(log.ShardHead(ctx(t), 0)), must[int64](t, "Head")(s.Head(ctx(t))); h != h0 {
		t.Errorf("Head() = %d, shard 0's head %d", h, h0)
	}
	if evs := must[[]parley.Event](t, "Events")(s.Events(ctx(t), 0, 1000)); len(evs) != len(all[0]) {
		t.Errorf("Events() returned %d events, shard 0 holds %d", len(evs), len(all[0]))
	}
	for _, e := range must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), users[0].ID, 0, 1000)).Events {
		if e.Shard != 0 {
			t.Errorf("EventsFor returned an event of shard %d", e.Shard)
		}
	}
	for _, bad := range []int{-1, n} {
		_, err := log.ShardHead(ctx(t), bad)
		wantCode(t, fmt.Sprint("ShardHead(", bad, ")"), err, parley.EINVALID)
		_, err = log.ShardEvents(ctx(t), bad, 0, 10)
		wantCode(t, fmt.Sprint("ShardEvents(", bad, ")"), err, parley.EINVALID)
		_, err = log.ShardEventsFor(ctx(t), users[0].ID, bad, 0, 10)
		wantCode(t, fmt.Sprint("ShardEventsFor(", bad, ")"), err, parley.EINVALID)
	}
}

// ShardsMigration checks migration 00012 (the log per shard) on an
// engine: a log written before it (made with today's store, then the
// migration undone with downTo(11), as a database of the release before
// would be) keeps its positions after it, in shard 0, with the same head,
// and new writes go on from that head. open must open the same database
// every time; the stores it returns are closed by this function.
func ShardsMigration(t *testing.T, open func(t *testing.T) parley.Store, downTo func(t *testing.T, version int64)) {
	s := open(t)
	a, b := newUser(t, s, "shm"), newUser(t, s, "shm")
	c := newGroup(t, s, a, "G", b)
	for i := range 5 {
		send(t, s, c.ID, a, fmt.Sprint("before ", i))
	}
	head := must[int64](t, "Head")(s.Head(ctx(t)))
	before := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), b.ID, 0, 100)).Events
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	downTo(t, 11)

	s = open(t)
	defer s.Close()
	if h := must[int64](t, "Head")(s.Head(ctx(t))); h != head {
		t.Fatalf("head after the migration %d, before %d", h, head)
	}
	after := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), b.ID, 0, 100)).Events
	if len(after) != len(before) {
		t.Fatalf("%d events after the migration, %d before", len(after), len(before))
	}
	for i := range after {
		if after[i].Pos != before[i].Pos || after[i].Type != before[i].Type || after[i].Shard != 0 {
			t.Fatalf("event %d after the migration: pos %d %s shard %d, before: pos %d %s",
				i, after[i].Pos, after[i].Type, after[i].Shard, before[i].Pos, before[i].Type)
		}
	}
	_, evs, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: c.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Pos != head+1 {
		t.Fatalf("the first send after the migration got events %v, want one at position %d", evs, head+1)
	}
}

// testClientIDAcrossShards: one sender reuses a client id at the same
// moment in conversations of different shards (which PostgreSQL may
// commit in transactions of their own, under different locks): the
// message is stored once, the other sends answer ECONFLICT (never
// EINTERNAL), and a resend to the winner's conversation returns the
// stored message. The same for an edit's client id reused at once on
// messages of different shards.
func testClientIDAcrossShards(t *testing.T, s parley.Store) {
	n := optional[parley.ShardedLog](t, s).Shards()
	a, b := newUser(t, s, "cida"), newUser(t, s, "cidb")
	// A conversation in each of as many shards as 24 groups reach.
	byShard := map[int]parley.Conversation{}
	for i := range 24 {
		c := newGroup(t, s, a, fmt.Sprint("C", i), b)
		if _, ok := byShard[parley.ShardOf(c.ID, n)]; !ok {
			byShard[parley.ShardOf(c.ID, n)] = c
		}
	}
	if len(byShard) < 3 {
		t.Fatalf("24 conversations fell in %d of %d shards", len(byShard), n)
	}
	var convs []parley.Conversation
	for _, c := range byShard {
		convs = append(convs, c)
	}
	for round := range 20 {
		cid := clientID()
		msgs := make([]parley.Message, len(convs))
		errs := make([]error, len(convs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range convs {
			wg.Go(func() {
				<-start
				msgs[i], _, errs[i] = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: c.ID, SenderID: a.ID,
					ClientID: cid, Type: parley.Text, Text: fmt.Sprint("round ", round)})
			})
		}
		close(start)
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch code := parley.ErrorCode(err); {
			case err == nil && won < 0:
				won = i
			case err == nil:
				t.Fatalf("round %d: client id %s stored in two conversations (%s and %s)", round, cid, convs[won].ID, convs[i].ID)
			case code != parley.ECONFLICT:
				t.Fatalf("round %d: a send reusing client id %s in another shard's conversation: %v (code %q), want %q",
					round, cid, err, code, parley.ECONFLICT)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no send of client id %s succeeded", round, cid)
		}
		again, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: convs[won].ID, SenderID: a.ID,
			ClientID: cid, Type: parley.Text, Text: "resend"})
		if err != nil || again.ID != msgs[won].ID {
			t.Fatalf("round %d: resend to the winner's conversation: %v, message %q, want %q", round, err, again.ID, msgs[won].ID)
		}

		// An edit's client id, reused at once on a message of each shard.
		eid := clientID()
		errs = make([]error, len(convs))
		start = make(chan struct{})
		for i, c := range convs {
			m := send(t, s, c.ID, a, "to edit")
			wg.Go(func() {
				<-start
				_, _, errs[i] = s.EditMessage(ctx(t), parley.MessageEdit{UserID: a.ID, ConversationID: c.ID,
					MessageID: m.ID, ClientID: eid, Text: fmt.Sprint("edited ", round)})
			})
		}
		close(start)
		wg.Wait()
		won = -1
		for i, err := range errs {
			switch code := parley.ErrorCode(err); {
			case err == nil && won < 0:
				won = i
			case err == nil:
				t.Fatalf("round %d: edit id %s applied to messages of two conversations", round, eid)
			case code != parley.ECONFLICT:
				t.Fatalf("round %d: an edit reusing edit id %s in another shard's conversation: %v (code %q), want %q",
					round, eid, err, code, parley.ECONFLICT)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no edit with id %s succeeded", round, eid)
		}
	}
}

// testReplayAfterReopen: the edits and reactions a member missed are
// read back from the log, after the store is closed and opened again (a
// server restart), in the order they were made, each once: what a
// resume replays. An edit sent again with its client id adds nothing,
// before the restart or after.
func testReplayAfterReopen(t *testing.T, s parley.Store, reopen func() parley.Store) {
	a, b := newUser(t, s, "rpa"), newUser(t, s, "rpb")
	conv := newGroup(t, s, a, "Replay", b)
	m := send(t, s, conv.ID, a, "v1")
	log := optional[parley.ShardedLog](t, s)
	shard := parley.ShardOf(conv.ID, log.Shards())
	head, err := log.ShardHead(ctx(t), shard)
	if err != nil {
		t.Fatal(err)
	}
	react := func(s parley.Store, add bool) {
		t.Helper()
		if _, _, err := s.React(ctx(t), b.ID, conv.ID, m.ID, "👍", add); err != nil {
			t.Fatalf("React(%v): %v", add, err)
		}
	}
	if _, _, err := edit(t, s, a, m, "e1", "v2"); err != nil {
		t.Fatal(err)
	}
	react(s, true)
	if _, _, err := edit(t, s, a, m, "e2", "v3"); err != nil {
		t.Fatal(err)
	}
	if _, events, err := edit(t, s, a, m, "e1", "v2"); err != nil || len(events) != 0 {
		t.Fatalf("edit e1 sent again: %v, %d events, want none", err, len(events))
	}
	react(s, false)
	s.Close()

	s = reopen()
	if _, events, err := edit(t, s, a, m, "e2", "v3"); err != nil || len(events) != 0 {
		t.Fatalf("edit e2 sent again after the restart: %v, %d events, want none", err, len(events))
	}
	page, err := s.(parley.ShardedLog).ShardEventsFor(ctx(t), b.ID, shard, head, 100)
	if err != nil {
		t.Fatal(err)
	}
	events := page.Events
	var got []string
	last := head
	for _, e := range events {
		if e.Pos <= last {
			t.Fatalf("event at %d after %d", e.Pos, last)
		}
		last = e.Pos
		switch e.Type {
		case parley.EventMessageEdited:
			if e.Message == nil || e.Message.ID != m.ID {
				t.Fatalf("messageEdited at %d names %+v, want message %s", e.Pos, e.Message, m.ID)
			}
			got = append(got, "edited")
		case parley.EventReactionAdded, parley.EventReactionRemoved:
			got = append(got, string(e.Type)+" "+e.Emoji)
		default:
			t.Fatalf("unexpected %s at %d", e.Type, e.Pos)
		}
	}
	want := []string{"edited", "reactionAdded 👍", "edited", "reactionRemoved 👍"}
	if !slices.Equal(got, want) {
		t.Fatalf("replayed after the restart %q, want %q", got, want)
	}
	if now := messageByID(t, s, b, conv.ID, m.ID); now.Text != "v3" || now.EditedAt == nil || len(now.Reactions) != 0 {
		t.Fatalf("history after the restart: text %q, edited_at %v, reactions %+v; want v3, set, none", now.Text, now.EditedAt, now.Reactions)
	}
}
