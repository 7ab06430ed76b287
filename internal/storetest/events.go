package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// testMessagesWhileSending pages through history while messages keep
// arriving: forward with After and backward with Before, the pages must
// join with no gap and no duplicate.
func testMessagesWhileSending(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "mwsa"), newUser(t, s, "mwsb")
	conv := newGroup(t, s, a, "G", b)
	for i := range 30 {
		send(t, s, conv.ID, a, fmt.Sprint("before ", i))
	}
	const more = 60
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range more {
			if _, _, err := s.SendMessage(ctx(t), parley.NewMessage{
				ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: fmt.Sprint("during ", i),
			}); err != nil {
				t.Errorf("send during paging: %v", err)
				return
			}
		}
	})

	// Backward from the newest page seen at the start.
	first := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID, parley.MessageQuery{Limit: 4}))
	back := seqs(first.Messages)
	for page := first; page.HasMore; {
		page = must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID,
			parley.MessageQuery{Before: page.Messages[0].Seq, Limit: 4}))
		back = append(seqs(page.Messages), back...)
	}
	for i, seq := range back {
		if seq != int64(i+1) {
			t.Fatalf("walking back while sending: seqs %v", back)
		}
	}

	// Forward from the start until caught up with the sender.
	// After 0 means "no cursor" (the newest page), so the walk starts with
	// the oldest page, asked for with Before.
	fwd := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID, parley.MessageQuery{Before: 8, Limit: 7})).Messages
	after, senderDone := int64(7), false
	for {
		page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID, parley.MessageQuery{After: after, Limit: 7}))
		fwd = append(fwd, page.Messages...)
		if len(page.Messages) > 0 {
			after = page.Messages[len(page.Messages)-1].Seq
		}
		if !page.HasMore {
			if senderDone {
				break
			}
			// Caught up with the sender: wait for it, then read the rest.
			wg.Wait()
			senderDone = true
		}
	}
	wg.Wait()
	for i, m := range fwd {
		if m.Seq != int64(i+1) {
			t.Fatalf("walking forward while sending: seqs %v", seqs(fwd))
		}
	}
	if len(fwd) != 30+more {
		t.Fatalf("walking forward found %d messages, want %d", len(fwd), 30+more)
	}
}

func testAuthorization(t *testing.T, s parley.Store) {
	a, b, outsider := newUser(t, s, "auta"), newUser(t, s, "autb"), newUser(t, s, "auto")
	direct := newDirect(t, s, a, b)
	group := newGroup(t, s, a, "G", b)
	left := newUser(t, s, "autl")
	leftGroup := newGroup(t, s, a, "L", left)
	if _, _, err := s.UpdateConversation(ctx(t), a.ID, leftGroup.ID, parley.ConversationChange{Remove: []string{left.ID}}); err != nil {
		t.Fatal(err)
	}
	// A message in each conversation for the intruders to try to delete.
	target := map[string]string{
		direct.ID:    send(t, s, direct.ID, a, "direct target").ID,
		group.ID:     send(t, s, group.ID, a, "group target").ID,
		leftGroup.ID: send(t, s, leftGroup.ID, a, "left target").ID,
	}
	target["no-such-conversation"] = target[group.ID]
	title := "hijack"
	cases := []struct {
		user   parley.User
		convID string
	}{
		{outsider, direct.ID}, {outsider, group.ID}, {left, leftGroup.ID}, {a, "no-such-conversation"},
	}
	yes := true
	for _, c := range cases {
		checks := map[string]error{}
		_, checks["Conversation"] = s.Conversation(ctx(t), c.user.ID, c.convID)
		_, checks["MemberIDs"] = s.MemberIDs(ctx(t), c.user.ID, c.convID)
		_, checks["Messages"] = s.Messages(ctx(t), c.user.ID, c.convID, parley.MessageQuery{})
		_, _, checks["SendMessage"] = s.SendMessage(ctx(t), parley.NewMessage{
			ConversationID: c.convID, SenderID: c.user.ID, ClientID: clientID(), Type: parley.Text, Text: "intrude",
		})
		_, _, checks["DeleteMessage"] = s.DeleteMessage(ctx(t), c.user.ID, c.convID, target[c.convID])
		_, checks["MarkRead"] = s.MarkRead(ctx(t), c.user.ID, c.convID, 1)
		_, _, checks["UpdateConversation rename"] = s.UpdateConversation(ctx(t), c.user.ID, c.convID, parley.ConversationChange{Title: &title})
		_, _, checks["UpdateConversation add self"] = s.UpdateConversation(ctx(t), c.user.ID, c.convID, parley.ConversationChange{Add: []string{c.user.ID}})
		_, _, checks["SetFlags"] = s.SetFlags(ctx(t), c.user.ID, c.convID, &yes, nil)
		_, _, checks["UpdateConversation leave"] = s.UpdateConversation(ctx(t), c.user.ID, c.convID, parley.ConversationChange{Remove: []string{c.user.ID}})
		_, _, checks["UpdateConversation promote self"] = s.UpdateConversation(ctx(t), c.user.ID, c.convID, parley.ConversationChange{Promote: []string{c.user.ID}})
		_, _, checks["UpdateConversation demote"] = s.UpdateConversation(ctx(t), c.user.ID, c.convID, parley.ConversationChange{Demote: []string{a.ID}})
		for name, err := range checks {
			if !isNotFound(err) {
				t.Errorf("%s by %s on %s: %v, want not found", name, c.user.Name, c.convID, err)
			}
		}
	}
	// The outsider's event log holds none of it.
	if events := allEventsFor(t, s, outsider.ID); len(events) != 0 {
		t.Errorf("outsider receives %d events", len(events))
	}
	if list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), outsider.ID)); len(list) != 0 {
		t.Errorf("outsider lists %d conversations", len(list))
	}
	// Nothing the intruders tried was written.
	g := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, group.ID))
	if g.Title != "G" || len(g.Members) != 2 || g.LastSeq != 1 || g.LastMessage == nil || g.LastMessage.Deleted {
		t.Errorf("group after intrusions = %+v", g)
	}
}

// testEventsForWindows: a user receives a conversation's events from the
// event that added them up to and including the one that removed them.
func testEventsForWindows(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "wina"), newUser(t, s, "winb"), newUser(t, s, "winc")
	conv := newGroup(t, s, a, "G", b)
	send(t, s, conv.ID, a, "before c")

	_, addC, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{c.ID}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, s, conv.ID, b, "with c")
	_, removeB, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Remove: []string{b.ID}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, s, conv.ID, a, "without b")
	_, addB, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{b.ID}})
	if err != nil {
		t.Fatal(err)
	}
	send(t, s, conv.ID, c, "b is back")

	type ev struct {
		typ  parley.EventType
		text string
	}
	summary := func(events []parley.Event) []ev {
		var out []ev
		for _, e := range events {
			x := ev{typ: e.Type}
			if e.Message != nil {
				x.text = e.Message.Text
			} else {
				x.text = string(e.Change)
			}
			out = append(out, x)
		}
		return out
	}
	created, added, removed := string(parley.ChangeCreated), string(parley.ChangeMembersAdded), string(parley.ChangeMembersRemoved)
	nm := parley.EventNewMessage
	upd := parley.EventConversationUpdated
	want := map[string][]ev{
		"a": {{upd, created}, {nm, "before c"}, {upd, added}, {nm, "with c"}, {upd, removed}, {nm, "without b"}, {upd, added}, {nm, "b is back"}},
		"b": {{upd, created}, {nm, "before c"}, {upd, added}, {nm, "with c"}, {upd, removed}, {upd, added}, {nm, "b is back"}},
		"c": {{upd, added}, {nm, "with c"}, {upd, removed}, {nm, "without b"}, {upd, added}, {nm, "b is back"}},
	}
	for name, u := range map[string]parley.User{"a": a, "b": b, "c": c} {
		got := allEventsFor(t, s, u.ID)
		if !slices.Equal(summary(got), want[name]) {
			t.Errorf("EventsFor(%s) = %v, want %v", name, summary(got), want[name])
		}
	}
	// The window edges are the membership events themselves.
	bEvents := allEventsFor(t, s, b.ID)
	if !slices.ContainsFunc(bEvents, func(e parley.Event) bool { return e.Pos == removeB[0].Pos }) ||
		!slices.ContainsFunc(bEvents, func(e parley.Event) bool { return e.Pos == addB[0].Pos }) {
		t.Errorf("b's events lack its removal or its return")
	}
	if cEvents := allEventsFor(t, s, c.ID); cEvents[0].Pos != addC[0].Pos {
		t.Errorf("c's first event is at %d, want the add at %d", cEvents[0].Pos, addC[0].Pos)
	}
	// Resuming from the middle returns only what follows.
	mid := bEvents[2].Pos
	rest := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), b.ID, mid, 100)).Events
	if !slices.Equal(summary(rest), want["b"][3:]) {
		t.Errorf("EventsFor(b, %d) = %v", mid, summary(rest))
	}
	if got := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), b.ID, mid, 2)).Events; len(got) != 2 {
		t.Errorf("EventsFor with limit 2 returned %d", len(got))
	}
}

// testEventsForAudience: EventsFor(user) is exactly the events of the log
// whose Audience holds user, across joins, leaves, returns, reads and
// deletes. The server relies on it: it answers a resume from its own
// record of delivered audiences when that says nothing is missed.
func testEventsForAudience(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "efaa"), newUser(t, s, "efab"), newUser(t, s, "efac")
	conv := newGroup(t, s, a, "G", b)
	m := send(t, s, conv.ID, a, "one")
	if _, err := s.MarkRead(ctx(t), b.ID, conv.ID, m.Seq); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{c.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpdateConversation(ctx(t), b.ID, conv.ID, parley.ConversationChange{Remove: []string{b.ID}}); err != nil {
		t.Fatal(err)
	}
	send(t, s, conv.ID, c, "two")
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{b.ID}}); err != nil {
		t.Fatal(err)
	}
	send(t, s, conv.ID, b, "three")
	newDirect(t, s, a, c)
	all := allEvents(t, s)
	for _, u := range []parley.User{a, b, c} {
		var want []int64
		for _, e := range all {
			if slices.Contains(e.Audience, u.ID) {
				want = append(want, e.Pos)
			}
		}
		for _, after := range append([]int64{0}, want...) {
			var got []int64
			for _, e := range must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), u.ID, after, 1000)).Events {
				got = append(got, e.Pos)
			}
			var w []int64
			for _, p := range want {
				if p > after {
					w = append(w, p)
				}
			}
			if !slices.Equal(got, w) {
				t.Errorf("EventsFor(%s, %d) = %v, the log's events with them in the audience %v", u.ID, after, got, w)
			}
		}
	}
}

// testEventsAudience: the log replayed by Events matches, event for event,
// what the writes returned, Audience included.
func testEventsAudience(t *testing.T, s parley.Store) {
	if h := must[int64](t, "Head")(s.Head(ctx(t))); h != 0 {
		t.Fatalf("Head of an empty store = %d", h)
	}
	if got := must[[]parley.Event](t, "Events")(s.Events(ctx(t), 0, 10)); len(got) != 0 {
		t.Fatalf("Events of an empty store = %v", got)
	}
	a, b, c := newUser(t, s, "auda"), newUser(t, s, "audb"), newUser(t, s, "audc")
	var live []parley.Event
	keep := func(events []parley.Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, events...)
	}
	conv, events, err := s.CreateGroup(ctx(t), a.ID, "G", []string{b.ID})
	keep(events, err)
	m, events, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: "x"})
	keep(events, err)
	keep(s.MarkRead(ctx(t), b.ID, conv.ID, 1))
	_, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Add: []string{c.ID}})
	keep(events, err)
	_, events, err = s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Remove: []string{b.ID}})
	keep(events, err)
	_, events, err = s.DeleteMessage(ctx(t), a.ID, conv.ID, m.ID)
	keep(events, err)
	d, events, err := s.CreateDirect(ctx(t), b.ID, c.ID)
	keep(events, err)
	_, events, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: d.ID, SenderID: c.ID, ClientID: clientID(), Type: parley.Text, Text: "y"})
	keep(events, err)

	replay := allEvents(t, s)
	if len(replay) != len(live) {
		t.Fatalf("Events replays %d events, the writes returned %d", len(replay), len(live))
	}
	for i := range live {
		l, r := live[i], replay[i]
		if l.Pos != int64(i+1) || r.Pos != l.Pos || r.Type != l.Type || r.ConversationID != l.ConversationID ||
			r.UserID != l.UserID || r.UserName != l.UserName || r.ReadSeq != l.ReadSeq || r.Change != l.Change ||
			!slices.Equal(r.UserIDs, l.UserIDs) || !r.At.Equal(l.At) || !sameSet(r.Audience, l.Audience) {
			t.Errorf("event %d: live %+v, replayed %+v", i+1, l, r)
		}
		if (l.Message == nil) != (r.Message == nil) || (l.Message != nil && l.Message.ID != r.Message.ID) {
			t.Errorf("event %d: live message %+v, replayed %+v", i+1, l.Message, r.Message)
		}
		if (l.Conversation == nil) != (r.Conversation == nil) ||
			(l.Conversation != nil && (l.Conversation.Title != r.Conversation.Title || !sameSet(memberIDs(*l.Conversation), memberIDs(*r.Conversation)))) {
			t.Errorf("event %d: live conversation %+v, replayed %+v", i+1, l.Conversation, r.Conversation)
		}
	}
	// The removal reaches b; the delete after it does not.
	if !sameSet(live[4].Audience, ids(a, b, c)) || !sameSet(live[5].Audience, ids(a, c)) {
		t.Errorf("audiences of removal and delete = %v, %v", live[4].Audience, live[5].Audience)
	}
	// The replayed newMessage of the deleted message is a tombstone.
	if r := replay[1]; r.Message == nil || !r.Message.Deleted || r.Message.Text != "" {
		t.Errorf("replayed newMessage of a deleted message = %+v", r.Message)
	}
	if h := must[int64](t, "Head")(s.Head(ctx(t))); h != int64(len(live)) {
		t.Errorf("Head = %d, want %d", h, len(live))
	}
	// Paging by small limits yields the same log.
	var paged []int64
	for after := int64(0); ; {
		page := must[[]parley.Event](t, "Events")(s.Events(ctx(t), after, 3))
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			paged = append(paged, e.Pos)
		}
		after = page[len(page)-1].Pos
	}
	if len(paged) != len(live) {
		t.Errorf("paging Events by 3 gave %v", paged)
	}
}

func testEventsLimits(t *testing.T, s parley.Store) {
	a := newUser(t, s, "lima")
	_, err := s.Events(ctx(t), -1, 10)
	wantCode(t, "Events(after -1)", err, parley.EINVALID)
	_, err = s.Events(ctx(t), 0, 0)
	wantCode(t, "Events(limit 0)", err, parley.EINVALID)
	_, err = s.EventsFor(ctx(t), a.ID, -1, 10)
	wantCode(t, "EventsFor(after -1)", err, parley.EINVALID)
	_, err = s.EventsFor(ctx(t), a.ID, 0, -5)
	wantCode(t, "EventsFor(limit -5)", err, parley.EINVALID)
	// Past the head: nothing, no error.
	if got, err := s.EventsFor(ctx(t), a.ID, 1<<40, 10); err != nil || len(got.Events) != 0 || got.Through != 0 {
		t.Errorf("EventsFor past the head = %v, %v", got, err)
	}
}

func testAttachments(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "atta"), newUser(t, s, "attb"), newUser(t, s, "attc")
	conv := newDirect(t, s, a, b)
	data, thumb := []byte("\x89PNG full image"), []byte("\x89PNG thumb")
	att := parley.Attachment{ID: "att-1", ContentType: "image/png", Size: int64(len(data)), Width: 640, Height: 480}
	if err := s.PutAttachment(ctx(t), a.ID, att, data, thumb, 0); err != nil {
		t.Fatalf("PutAttachment: %v", err)
	}
	wantCode(t, "PutAttachment with a taken id", s.PutAttachment(ctx(t), a.ID, att, data, thumb, 0), parley.ECONFLICT)
	wantCode(t, "PutAttachment with no id", s.PutAttachment(ctx(t), a.ID, parley.Attachment{ContentType: "image/png"}, data, nil, 0), parley.EINVALID)

	get := func(u parley.User, thumbnail bool) ([]byte, error) {
		got, b, err := attachmentData(t, s, u.ID, att.ID, thumbnail)
		if err == nil && (got.ID != att.ID || got.ContentType != att.ContentType || got.Width != 640 || got.Height != 480 || got.Size != att.Size) {
			t.Errorf("AttachmentData = %+v, want %+v", got, att)
		}
		return b, err
	}
	// The owner, before any message uses it.
	if got, err := get(a, false); err != nil || !bytes.Equal(got, data) {
		t.Errorf("owner's data = %q, %v", got, err)
	}
	if got, err := get(a, true); err != nil || !bytes.Equal(got, thumb) {
		t.Errorf("owner's thumb = %q, %v", got, err)
	}
	if _, err := get(b, false); !isNotFound(err) {
		t.Errorf("b before the message: %v, want not found", err)
	}

	// Someone else cannot send it.
	_, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: b.ID, ClientID: clientID(), Type: parley.Image, AttachmentID: att.ID})
	wantCode(t, "sending another user's upload", err, parley.EINVALID)

	m, events, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Image, AttachmentID: att.ID, Text: "caption"})
	if err != nil {
		t.Fatalf("sending an image: %v", err)
	}
	if m.Type != parley.Image || m.Text != "caption" || m.Attachment == nil || m.Attachment.ID != att.ID ||
		m.Attachment.Width != 640 || m.Attachment.ContentType != "image/png" || m.Attachment.Size != att.Size {
		t.Errorf("image message = %+v (attachment %+v)", m, m.Attachment)
	}
	if e := oneEvent(t, "image send", events, parley.EventNewMessage); e.Message.Attachment == nil {
		t.Errorf("newMessage of an image has no attachment")
	}
	if got, err := get(b, true); err != nil || !bytes.Equal(got, thumb) {
		t.Errorf("member's thumb = %q, %v", got, err)
	}
	if _, err := get(c, false); !isNotFound(err) {
		t.Errorf("outsider: %v, want not found", err)
	}
	if _, _, err := attachmentData(t, s, a.ID, "no-such", false); !isNotFound(err) {
		t.Errorf("unknown attachment: %v, want not found", err)
	}

	// Deleting the message takes the attachment from the other members.
	tomb, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tomb.Attachment != nil || tomb.Text != "" {
		t.Errorf("tombstone of an image = %+v", tomb)
	}
	if _, err := get(b, false); !isNotFound(err) {
		t.Errorf("b after the delete: %v, want not found", err)
	}
	if _, err := get(a, false); err != nil {
		t.Errorf("owner after the delete: %v", err)
	}
}
