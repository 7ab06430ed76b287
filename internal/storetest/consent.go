package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/parleychat/parley"
)

// Consent and blocks (parley.Consenter).

// recorder keeps the events writes returned, to compare their audiences
// with the replays' (sameAudiences).
type recorder struct {
	t      *testing.T
	events []parley.Event
}

func (r *recorder) add(events []parley.Event, err error) []parley.Event {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
	r.events = append(r.events, events...)
	return events
}

// sameAudiences checks that each user's replay (EventsFor) holds exactly
// the events whose audience at write held them, and that Events gives
// each event the audience its write gave it: live delivery, gap fill and
// resume agree.
func sameAudiences(t *testing.T, s parley.Store, written []parley.Event, users ...parley.User) {
	t.Helper()
	byPos := map[int64][]string{}
	for _, e := range written {
		byPos[e.Pos] = e.Audience
	}
	for _, e := range allEvents(t, s) {
		if w, ok := byPos[e.Pos]; ok && !sameSet(w, e.Audience) {
			t.Errorf("event %d (%s): Events audience %v, written %v", e.Pos, e.Type, e.Audience, w)
		}
	}
	for _, u := range users {
		var want, got []int64
		for _, e := range allEvents(t, s) {
			if slices.Contains(e.Audience, u.ID) {
				want = append(want, e.Pos)
			}
		}
		for _, e := range allEventsFor(t, s, u.ID) {
			got = append(got, e.Pos)
		}
		if !slices.Equal(got, want) {
			t.Errorf("EventsFor(%s) = %v, want %v (the events whose audience holds them)", u.ID, got, want)
		}
	}
}

func testBlock(t *testing.T, s parley.Store) {
	cs := optional[parley.Consenter](t, s)
	a, b, c := newUser(t, s, "blka"), newUser(t, s, "blkb"), newUser(t, s, "blkc")
	rec := &recorder{t: t}
	group := newGroup(t, s, a, "G", b, c)
	direct := newDirect(t, s, b, a)
	send(t, s, direct.ID, b, "hello a")
	send(t, s, direct.ID, a, "hello b")
	before := send(t, s, group.ID, b, "before the block")

	// a blocks b: one userBlocked event, a's alone, with no conversation.
	e := oneEvent(t, "block", rec.add(cs.Block(ctx(t), a.ID, b.ID)), parley.EventUserBlocked)
	if e.ConversationID != "" || !slices.Equal(e.UserIDs, ids(b)) || !slices.Equal(e.Audience, ids(a)) || e.Pos == 0 {
		t.Fatalf("userBlocked = %+v", e)
	}
	if evs := rec.add(cs.Block(ctx(t), a.ID, b.ID)); len(evs) != 0 {
		t.Errorf("blocking twice: %d events", len(evs))
	}
	p := must[parley.Privacy](t, "Privacy")(cs.Privacy(ctx(t), a.ID))
	if p.Consent != parley.ConsentEveryone || len(p.Blocked) != 1 || p.Blocked[0].UserID != b.ID || p.Blocked[0].Name != b.Name {
		t.Errorf("a's privacy = %+v", p)
	}
	_, err := cs.Block(ctx(t), a.ID, a.ID)
	wantCode(t, "blocking oneself", err, parley.EINVALID)
	_, err = cs.Block(ctx(t), a.ID, "nobody-here")
	wantCode(t, "blocking no user", err, parley.ENOTFOUND)

	// b can no longer reach a: no send in their direct conversation, no
	// new group with a, no adding a. The error is the one for a
	// contacts-only user.
	_, _, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: direct.ID, SenderID: b.ID, ClientID: clientID(), Text: "let me in"})
	wantErr(t, "b sending to a", err, parley.ErrUnreachable)
	_, _, err = s.CreateGroup(ctx(t), b.ID, "B's", []string{a.ID, c.ID})
	wantErr(t, "b creating a group with a", err, parley.ErrUnreachable)
	g2 := newGroup(t, s, b, "B's", c)
	_, _, err = s.UpdateConversation(ctx(t), b.ID, g2.ID, parley.ConversationChange{Add: []string{a.ID}})
	wantErr(t, "b adding a", err, parley.ErrUnreachable)
	if got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, g2.ID)); len(got.Members) != 2 {
		t.Errorf("a refused add changed the group: %+v", got.Members)
	}
	// a may still write to b (a chose to block, and may unblock).
	rec.add(nil, nil)
	m := send(t, s, direct.ID, a, "still mine")
	if m.Seq == 0 {
		t.Fatal("a's send")
	}

	// In the group, b's messages are hidden from a: history, unread
	// count and last message; c sees them.
	after := send(t, s, group.ID, b, "after the block")
	page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), a.ID, group.ID, parley.MessageQuery{}))
	if slices.Contains(texts(page.Messages), before.Text) || slices.Contains(texts(page.Messages), after.Text) {
		t.Errorf("a's history shows b's messages: %v", texts(page.Messages))
	}
	page = must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), a.ID, group.ID, parley.MessageQuery{FromStart: true}))
	if len(page.Messages) != 0 {
		t.Errorf("a's oldest page = %v", texts(page.Messages))
	}
	av := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, group.ID))
	if av.UnreadCount != 0 || av.LastMessage != nil {
		t.Errorf("a's view of the group: unread %d, last %+v", av.UnreadCount, av.LastMessage)
	}
	cv := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), c.ID, group.ID))
	if cv.UnreadCount != 2 || cv.LastMessage == nil || cv.LastMessage.ID != after.ID {
		t.Errorf("c's view of the group: unread %d, last %+v", cv.UnreadCount, cv.LastMessage)
	}
	// b's events (message, edit, reaction, delete) do not go to a.
	_, evs, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: group.ID, SenderID: b.ID, ClientID: clientID(), Text: "three"})
	rec.add(evs, err)
	if ev := oneEvent(t, "b's send", evs, parley.EventNewMessage); !sameSet(ev.Audience, ids(b, c)) {
		t.Errorf("b's newMessage audience = %v, want b and c", ev.Audience)
	}
	_, evs, err = s.EditMessage(ctx(t), parley.MessageEdit{ConversationID: group.ID, UserID: b.ID, MessageID: after.ID, ClientID: clientID(), Text: "edited"})
	rec.add(evs, err)
	if ev := oneEvent(t, "b's edit", evs, parley.EventMessageEdited); !sameSet(ev.Audience, ids(b, c)) {
		t.Errorf("b's edit audience = %v", ev.Audience)
	}
	_, evs, err = s.React(ctx(t), b.ID, group.ID, after.ID, "👍", true)
	rec.add(evs, err)
	if ev := oneEvent(t, "b's reaction", evs, parley.EventReactionAdded); !sameSet(ev.Audience, ids(b, c)) {
		t.Errorf("b's reaction audience = %v", ev.Audience)
	}
	// Nor do c's reactions on b's message: they are about a message a
	// cannot see.
	for _, add := range []bool{true, false} {
		_, evs, err = s.React(ctx(t), c.ID, group.ID, after.ID, "🎉", add)
		rec.add(evs, err)
		typ := parley.EventReactionRemoved
		if add {
			typ = parley.EventReactionAdded
		}
		if ev := oneEvent(t, "c's reaction on b's message", evs, typ); !sameSet(ev.Audience, ids(b, c)) {
			t.Errorf("c's %s on b's message: audience = %v, want b and c", ev.Type, ev.Audience)
		}
	}
	// a's read position does not go to b (read receipts).
	am := send(t, s, group.ID, a, "a writes")
	cm := send(t, s, group.ID, c, "c writes")
	evs = rec.add(s.MarkRead(ctx(t), a.ID, group.ID, cm.Seq))
	if ev := oneEvent(t, "a's read", evs, parley.EventMessageRead); !sameSet(ev.Audience, ids(a, c)) {
		t.Errorf("a's messageRead audience = %v, want a and c", ev.Audience)
	}
	_ = am
	// Nor do delivery receipts, either way.
	if r, ok := s.(parley.Receipts); ok {
		am2 := send(t, s, group.ID, a, "a again") // above c's and b's read positions (sending reads)
		_, evs, err = r.MarkDelivered(ctx(t), c.ID, []parley.DeliveredMark{{ConversationID: group.ID, Seq: am2.Seq}})
		rec.add(evs, err)
		if ev := oneEvent(t, "c's delivered", evs, parley.EventMessageDelivered); !sameSet(ev.Audience, ids(a, b, c)) {
			t.Errorf("c's messageDelivered audience = %v, want all", ev.Audience)
		}
		_, evs, err = r.MarkDelivered(ctx(t), b.ID, []parley.DeliveredMark{{ConversationID: group.ID, Seq: am2.Seq}})
		rec.add(evs, err)
		if ev := oneEvent(t, "b's delivered", evs, parley.EventMessageDelivered); !sameSet(ev.Audience, ids(b, c)) {
			t.Errorf("b's messageDelivered audience = %v, want b and c", ev.Audience)
		}
	}
	// A rename's snapshot goes to b too: it shows no one's positions
	// (a's would cross the block), live or replayed.
	title := "G renamed"
	_, evs, err = s.UpdateConversation(ctx(t), a.ID, group.ID, parley.ConversationChange{Title: &title})
	rec.add(evs, err)
	noPositions(t, "a's rename", oneEvent(t, "a's rename", evs, parley.EventConversationUpdated))
	for _, e := range allEventsFor(t, s, b.ID) {
		noPositions(t, "b's replay", e)
	}
	sameAudiences(t, s, rec.events, a, b, c)
	for _, m := range must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, group.ID)).Members {
		if m.UserID == a.ID && (m.ReadSeq != 0 || m.DeliveredSeq != 0) {
			t.Errorf("b sees a's read_seq %d, delivered_seq %d across the block", m.ReadSeq, m.DeliveredSeq)
		}
	}
	for _, m := range must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID)) {
		for _, mb := range m.Members {
			if mb.UserID == b.ID && mb.DeliveredSeq != 0 {
				t.Errorf("a's list shows b's delivered_seq %d across the block", mb.DeliveredSeq)
			}
		}
	}

	// Blocked users are no contacts, even in a shared group.
	if slices.Contains(must[[]string](t, "Contacts")(s.Contacts(ctx(t), a.ID)), b.ID) ||
		slices.Contains(must[[]string](t, "Contacts")(s.Contacts(ctx(t), b.ID)), a.ID) {
		t.Error("a and b are still contacts")
	}
	checkContactsOf(t, s, a, b, c)
	// Typing and read positions: a's peers leave b out, and b's a.
	if got := must[[]string](t, "Peers")(cs.Peers(ctx(t), a.ID, group.ID)); !slices.Equal(got, ids(c)) {
		t.Errorf("a's peers = %v, want c", got)
	}
	if got := must[[]string](t, "Peers")(cs.Peers(ctx(t), b.ID, group.ID)); !slices.Equal(got, ids(c)) {
		t.Errorf("b's peers = %v, want c", got)
	}
	_, err = cs.Peers(ctx(t), c.ID, direct.ID)
	wantCode(t, "a non-member's peers", err, parley.ENOTFOUND)
	// Blocks among a set of users: both ends in it.
	if got := must[[][2]string](t, "BlocksAmong")(cs.BlocksAmong(ctx(t), ids(c, b, a))); !slices.Equal(got, [][2]string{{a.ID, b.ID}}) {
		t.Errorf("blocks among a, b, c = %v, want a blocked b", got)
	}
	if got := must[[][2]string](t, "BlocksAmong")(cs.BlocksAmong(ctx(t), ids(a, c))); len(got) != 0 {
		t.Errorf("blocks among a and c = %v, want none", got)
	}
	_, err = cs.BlocksAmong(ctx(t), make([]string, parley.MaxGroupMembers+1))
	wantCode(t, "blocks among too many users", err, parley.EINVALID)

	// Unblock restores everything: history, sends, contacts.
	e = oneEvent(t, "unblock", rec.add(cs.Unblock(ctx(t), a.ID, b.ID)), parley.EventUserUnblocked)
	if !slices.Equal(e.UserIDs, ids(b)) || !slices.Equal(e.Audience, ids(a)) {
		t.Errorf("userUnblocked = %+v", e)
	}
	if evs := rec.add(cs.Unblock(ctx(t), a.ID, b.ID)); len(evs) != 0 {
		t.Errorf("unblocking again: %d events", len(evs))
	}
	page = must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), a.ID, group.ID, parley.MessageQuery{FromStart: true}))
	if !slices.Contains(texts(page.Messages), before.Text) {
		t.Errorf("after unblocking, a's history = %v", texts(page.Messages))
	}
	send(t, s, direct.ID, b, "back")
	if !slices.Contains(must[[]string](t, "Contacts")(s.Contacts(ctx(t), a.ID)), b.ID) {
		t.Error("a and b are no contacts again after the unblock")
	}
	if p := must[parley.Privacy](t, "Privacy")(cs.Privacy(ctx(t), a.ID)); len(p.Blocked) != 0 {
		t.Errorf("blocked list after unblock = %+v", p.Blocked)
	}
	// A's own events replay to a alone.
	n := 0
	for _, e := range allEventsFor(t, s, a.ID) {
		if e.Type == parley.EventUserBlocked || e.Type == parley.EventUserUnblocked {
			n++
		}
	}
	if n != 2 {
		t.Errorf("a replays %d block events, want 2", n)
	}
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Type == parley.EventUserBlocked || e.Type == parley.EventUserUnblocked {
			t.Errorf("b replays a's block: %+v", e)
		}
	}
	// Replays follow the blocks as they are now (the unblock shows b's
	// events to a again): Events and EventsFor still agree.
	sameAudiences(t, s, nil, a, b, c)
}

func testConsent(t *testing.T, s parley.Store) {
	cs := optional[parley.Consenter](t, s)
	a, b, c, d := newUser(t, s, "cnsa"), newUser(t, s, "cnsb"), newUser(t, s, "cnsc"), newUser(t, s, "cnsd")
	rec := &recorder{t: t}
	// c shares a group with a: a contact. b is a stranger.
	newGroup(t, s, c, "C", a)
	e := oneEvent(t, "consent", rec.add(cs.SetConsent(ctx(t), a.ID, parley.ConsentContacts)), parley.EventPrivacyChanged)
	if e.Consent != parley.ConsentContacts || !slices.Equal(e.Audience, ids(a)) || e.ConversationID != "" {
		t.Fatalf("privacyChanged = %+v", e)
	}
	if evs := rec.add(cs.SetConsent(ctx(t), a.ID, parley.ConsentContacts)); len(evs) != 0 {
		t.Errorf("setting the same consent: %d events", len(evs))
	}
	_, err := cs.SetConsent(ctx(t), a.ID, "friends")
	wantCode(t, "an unknown consent", err, parley.EINVALID)

	// Under contacts, a stranger can neither start a direct conversation
	// with a nor add a to a group: one error for all.
	_, _, err = s.CreateDirect(ctx(t), b.ID, a.ID)
	wantErr(t, "a stranger's direct to a contacts-only user", err, parley.ErrUnreachable)
	_, _, err = s.CreateGroup(ctx(t), b.ID, "B", []string{a.ID})
	wantErr(t, "a stranger's group", err, parley.ErrUnreachable)
	bg := newGroup(t, s, b, "B", d)
	_, _, err = s.UpdateConversation(ctx(t), b.ID, bg.ID, parley.ConversationChange{Add: []string{a.ID}})
	wantErr(t, "a stranger adding", err, parley.ErrUnreachable)
	// A contact may do both, and the direct conversation is no request.
	cd := newDirect(t, s, c, a)
	if v := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, cd.ID)); v.Request != "" {
		t.Errorf("a contact's direct is a %q request", v.Request)
	}
	newGroup(t, s, c, "C2", a)
	// Back to everyone: a stranger may add a, and start a conversation,
	// a request for a.
	rec.add(cs.SetConsent(ctx(t), a.ID, parley.ConsentEveryone))
	if _, _, err := s.UpdateConversation(ctx(t), b.ID, bg.ID, parley.ConversationChange{Add: []string{a.ID}}); err != nil {
		t.Errorf("adding a after consent everyone: %v", err)
	}
	if p := must[parley.Privacy](t, "Privacy")(cs.Privacy(ctx(t), a.ID)); p.Consent != parley.ConsentEveryone {
		t.Errorf("consent = %q", p.Consent)
	}
	stranger := newUser(t, s, "cnse")
	if v := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, newDirect(t, s, stranger, a).ID)); v.Request != parley.RequestPending {
		t.Errorf("a stranger's direct to a user accepting everyone: request %q", v.Request)
	}
	// b is a's contact now (group B): b's direct is no request.
	if v := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, newDirect(t, s, b, a).ID)); v.Request != "" {
		t.Errorf("a group mate's direct: request %q", v.Request)
	}
	// A user a blocked can start no direct conversation with a, whatever
	// the setting.
	x := newUser(t, s, "cnsx")
	rec.add(cs.Block(ctx(t), a.ID, x.ID))
	_, _, err = s.CreateDirect(ctx(t), x.ID, a.ID)
	wantErr(t, "a blocked user's direct", err, parley.ErrUnreachable)
	n := 0
	for _, e := range allEventsFor(t, s, a.ID) {
		if e.Type == parley.EventPrivacyChanged {
			n++
		}
	}
	if n != 2 {
		t.Errorf("a replays %d privacyChanged, want 2", n)
	}
	sameAudiences(t, s, rec.events, a, b, c, d)
}

func testRequests(t *testing.T, s parley.Store) {
	cs := optional[parley.Consenter](t, s)
	a, b, c := newUser(t, s, "reqa"), newUser(t, s, "reqb"), newUser(t, s, "reqc")
	rec := &recorder{t: t}
	// b, a stranger, writes to a (who accepts everyone, the default): a
	// request for a, not for b.
	conv := newDirect(t, s, b, a)
	if conv.Request != "" {
		t.Errorf("the starter sees request %q", conv.Request)
	}
	m1 := send(t, s, conv.ID, b, "hi, I am b")
	if v := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, conv.ID)); v.Request != parley.RequestPending || v.UnreadCount != 1 {
		t.Errorf("a's view: request %q, unread %d", v.Request, v.UnreadCount)
	}
	// Until accepted, a's read position and typing do not reach b.
	evs := rec.add(s.MarkRead(ctx(t), a.ID, conv.ID, m1.Seq))
	if ev := oneEvent(t, "a's read", evs, parley.EventMessageRead); !slices.Equal(ev.Audience, ids(a)) {
		t.Errorf("a's read in a pending request went to %v", ev.Audience)
	}
	// Nor does it show in the conversation b reads.
	for _, v := range []parley.Conversation{must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, conv.ID)),
		must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), b.ID))[0]} {
		for _, m := range v.Members {
			if m.UserID == a.ID && m.ReadSeq != 0 {
				t.Errorf("b sees a's read_seq %d in a pending request", m.ReadSeq)
			}
		}
	}
	if got := must[[]string](t, "Peers")(cs.Peers(ctx(t), a.ID, conv.ID)); len(got) != 0 {
		t.Errorf("a's peers in a pending request = %v", got)
	}
	// Only the recipient answers; b's accept is invalid, c's not_found.
	_, _, err := cs.AnswerRequest(ctx(t), b.ID, conv.ID, true)
	wantCode(t, "the starter accepting", err, parley.EINVALID)
	_, _, err = cs.AnswerRequest(ctx(t), c.ID, conv.ID, true)
	wantCode(t, "a non-member accepting", err, parley.ENOTFOUND)

	// Declined: out of a's list, b's sends refused.
	v, evs, err := cs.AnswerRequest(ctx(t), a.ID, conv.ID, false)
	rec.add(evs, err)
	if e := oneEvent(t, "decline", evs, parley.EventRequestDeclined); v.Request != parley.RequestDeclined || !slices.Equal(e.Audience, ids(a)) || e.ConversationID != conv.ID {
		t.Errorf("decline: %q, %+v", v.Request, e)
	}
	for _, cv := range must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID)) {
		if cv.ID == conv.ID {
			t.Error("a declined request is still in a's list")
		}
	}
	_, _, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: b.ID, ClientID: clientID(), Text: "please"})
	wantErr(t, "b sending after the decline", err, parley.ErrUnreachable)
	sameAudiences(t, s, rec.events, a, b, c)

	// Accepted after all: listed, b may send, a's reads reach b.
	v, evs, err = cs.AnswerRequest(ctx(t), a.ID, conv.ID, true)
	rec.add(evs, err)
	if v.Request != "" {
		t.Errorf("after accepting: request %q", v.Request)
	}
	// The accept: a's own event, then a's read position for b, which the
	// request hid (a read m1).
	if len(evs) != 2 || evs[0].Type != parley.EventRequestAccepted || !slices.Equal(evs[0].Audience, ids(a)) ||
		evs[1].Type != parley.EventMessageRead || evs[1].UserID != a.ID || evs[1].ReadSeq != m1.Seq || !sameSet(evs[1].Audience, ids(a, b)) {
		t.Errorf("accept events = %+v, want requestAccepted for a, then a's read of %d for a and b", evs, m1.Seq)
	}
	// Accepting again changes nothing and succeeds (a client retrying an
	// accept whose reply it lost).
	if v, evs, err := cs.AnswerRequest(ctx(t), a.ID, conv.ID, true); err != nil || len(evs) != 0 || v.Request != "" {
		t.Errorf("accepting twice: request %q, %d events, %v; want nothing changed", v.Request, len(evs), err)
	}
	_, _, err = cs.AnswerRequest(ctx(t), a.ID, conv.ID, false)
	wantCode(t, "declining an accepted request", err, parley.EINVALID)
	m2 := send(t, s, conv.ID, b, "thanks")
	evs = rec.add(s.MarkRead(ctx(t), a.ID, conv.ID, m2.Seq))
	if ev := oneEvent(t, "a's read", evs, parley.EventMessageRead); !sameSet(ev.Audience, ids(a, b)) {
		t.Errorf("a's read after accepting went to %v", ev.Audience)
	}
	// Accepting makes them contacts (b wrote, a accepted).
	if !slices.Contains(must[[]string](t, "Contacts")(s.Contacts(ctx(t), a.ID)), b.ID) {
		t.Error("accepting made no contacts")
	}
	// An accepted request counts even if its starter never wrote: d
	// opens one and says nothing, a accepts, and they are contacts, so
	// d may then add a to a group though a accepts contacts only.
	d := newUser(t, s, "reqd")
	dc := newDirect(t, s, d, a)
	_, evs, err = cs.AnswerRequest(ctx(t), a.ID, dc.ID, true)
	oneEvent(t, "accepting a request never read (no positions to show)", rec.add(evs, err), parley.EventRequestAccepted)
	if v, evs, err := cs.AnswerRequest(ctx(t), a.ID, dc.ID, true); err != nil || len(evs) != 0 || v.Request != "" {
		t.Errorf("accepting a pending request twice: request %q, %d events, %v; want nothing changed", v.Request, len(evs), err)
	}
	_, _, err = cs.AnswerRequest(ctx(t), a.ID, dc.ID, false)
	wantCode(t, "declining a request accepted without a decline", err, parley.EINVALID)
	if !slices.Contains(must[[]string](t, "Contacts")(s.Contacts(ctx(t), d.ID)), a.ID) {
		t.Error("accepting a silent starter's request made no contacts")
	}
	rec.add(cs.SetConsent(ctx(t), a.ID, parley.ConsentContacts))
	newGroup(t, s, d, "D", a)
	rec.add(cs.SetConsent(ctx(t), a.ID, parley.ConsentEveryone))

	// A reply accepts too: c's request to a, answered by a's message.
	cc := newDirect(t, s, c, a)
	send(t, s, cc.ID, c, "hello")
	send(t, s, cc.ID, a, "hi c")
	if v := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, cc.ID)); v.Request != "" {
		t.Errorf("after a's reply: request %q", v.Request)
	}
	// A declined one too: a writes in e's declined request, which comes
	// back to a's list, and e may answer (twice: the second send reads
	// the conversation's send gate again).
	e := newUser(t, s, "reqe")
	ec := newDirect(t, s, e, a)
	send(t, s, ec.ID, e, "hello")
	_, evs, err = cs.AnswerRequest(ctx(t), a.ID, ec.ID, false)
	rec.add(evs, err)
	send(t, s, ec.ID, a, "changed my mind")
	if v := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, ec.ID)); v.Request != "" {
		t.Errorf("after a wrote in a declined request: request %q", v.Request)
	}
	if !slices.ContainsFunc(must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), a.ID)), func(c parley.Conversation) bool { return c.ID == ec.ID }) {
		t.Error("a declined request a wrote in is not back in a's list")
	}
	send(t, s, ec.ID, e, "thanks")
	send(t, s, ec.ID, e, "really")
	// Replays follow the request as it is now (accepted: a's earlier
	// read goes to b too): Events and EventsFor agree.
	sameAudiences(t, s, nil, a, b, c, d)
}

// wantErr checks err is want (its code and message).
func wantErr(t *testing.T, what string, err error, want *parley.Error) {
	t.Helper()
	if parley.ErrorCode(err) != want.Code || parley.ErrorMessage(err) != want.Message {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

// noPositions fails when e carries a conversation snapshot that shows a
// member's read or delivered position: a snapshot goes to every member,
// so it would show positions across a block or to a requester.
func noPositions(t *testing.T, what string, e parley.Event) {
	t.Helper()
	if e.Conversation == nil {
		return
	}
	for _, m := range e.Conversation.Members {
		if m.ReadSeq != 0 || m.DeliveredSeq != 0 {
			t.Errorf("%s: event %d's snapshot shows %s at read_seq %d, delivered_seq %d", what, e.Pos, m.Name, m.ReadSeq, m.DeliveredSeq)
		}
	}
}

// groupWithBlock makes three users (names from prefix) in a group that
// sender created, viewer having blocked blocked.
func groupWithBlock(t *testing.T, s parley.Store, prefix string) (viewer, sender, blocked parley.User, conv parley.Conversation) {
	t.Helper()
	viewer, sender, blocked = newUser(t, s, prefix+"v"), newUser(t, s, prefix+"s"), newUser(t, s, prefix+"b")
	conv = newGroup(t, s, sender, "G", viewer, blocked)
	if _, err := optional[parley.Consenter](t, s).Block(ctx(t), viewer.ID, blocked.ID); err != nil {
		t.Fatal(err)
	}
	return viewer, sender, blocked, conv
}

// testBlockedRunReplay: a page of EventsFor is never cut short by events
// a block hides. The server's replay takes a short page for "caught up",
// so a run of a blocked user's events longer than the page, followed by
// an event the viewer may see, must still yield that event.
func testBlockedRunReplay(t *testing.T, s parley.Store) {
	a, c, b, group := groupWithBlock(t, s, "brr")
	from := must[int64](t, "Head")(s.Head(ctx(t)))
	for i := range 12 {
		send(t, s, group.ID, b, fmt.Sprint("hidden ", i))
	}
	seen := send(t, s, group.ID, c, "for a")
	for _, limit := range []int{1, 3, 5, 100} {
		got := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), a.ID, from, limit)).Events
		if len(got) != 1 || got[0].Message == nil || got[0].Message.ID != seen.ID {
			var types []string
			for _, e := range got {
				types = append(types, fmt.Sprint(e.Pos, " ", e.Type))
			}
			t.Errorf("EventsFor(a, %d, limit %d) = %v, want c's newMessage alone", from, limit, types)
		}
	}
}

// testReplayScan: a read of a user's events reads at most
// max(limit, parley.ReplayScan) events of each membership window. Over a
// run of a blocked user's events longer than that, a read stops inside
// the run with Through where it stopped (short of the run's end: a read
// that walked the whole run would return the events after it), and
// paging by Next gives every event the viewer may see exactly once, in
// order, in a few reads. A limit above the scan reads that many.
func testReplayScan(t *testing.T, s parley.Store) {
	a, c, b, g1 := groupWithBlock(t, s, "rs")
	g2 := newGroup(t, s, c, "G2", a)
	from := must[int64](t, "Head")(s.Head(ctx(t)))
	hidden := func(n int) []parley.Message {
		nms := make([]parley.NewMessage, n)
		for i := range nms {
			nms[i] = parley.NewMessage{ConversationID: g1.ID, SenderID: b.ID, ClientID: clientID(), Text: fmt.Sprint("hidden ", i)}
		}
		var ms []parley.Message
		for _, r := range sendMany(t, ctx(t), optional[parley.MultiSender](t, s), nms) {
			if r.err != nil {
				t.Fatal(r.err)
			}
			ms = append(ms, r.m)
		}
		return ms
	}
	var want []string // the viewer's messages, in order
	visible := func(conv parley.Conversation, text string) {
		want = append(want, send(t, s, conv.ID, c, text).ID)
	}
	visible(g1, "before")
	run := hidden(parley.ReplayScan / 2)
	visible(g2, "in the run, elsewhere")
	run = append(run, hidden(2*parley.ReplayScan)...)
	visible(g1, "after 1")
	visible(g1, "after 2")
	visible(g2, "after, elsewhere")
	visible(g1, "after 3")

	messages := func(evs []parley.Event) []string {
		var ids []string
		for _, e := range evs {
			if e.UserID == b.ID {
				t.Errorf("event %d (%s) of the blocked user replayed", e.Pos, e.Type)
			}
			if e.Type == parley.EventNewMessage {
				ids = append(ids, e.Message.ID)
			}
		}
		return ids
	}

	// One read stops inside the run: past the messages before it (the
	// other group's included), at most ReplayScan events in.
	p := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), a.ID, from, 5))
	if got := messages(p.Events); !slices.Equal(got, want[:2]) {
		t.Errorf("EventsFor(a, limit 5) = %v, want the two messages before the run's end %v", got, want[:2])
	}
	runPos := positionsOf(t, s, b.ID, from)
	if len(runPos) != len(run) {
		t.Fatalf("the log holds %d of b's messages, want %d", len(runPos), len(run))
	}
	if p.Through < runPos[parley.ReplayScan/2] || p.Through > runPos[parley.ReplayScan-1] {
		t.Errorf("EventsFor(a, limit 5): through %d, want it inside the run, at most ReplayScan events in (%d to %d)",
			p.Through, runPos[parley.ReplayScan/2], runPos[parley.ReplayScan-1])
	}

	// Paging by Next: every message once, in order, in a few reads.
	for _, limit := range []int{1, 2, 100} {
		var all []parley.Event
		reads := 0
		for after := from; ; reads++ {
			p := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), a.ID, after, limit))
			if len(p.Events) > limit || p.Through != 0 && (p.Through <= after || len(p.Events) == limit) {
				t.Fatalf("EventsFor(a, %d, limit %d): %d events, through %d", after, limit, len(p.Events), p.Through)
			}
			all = append(all, p.Events...)
			if len(p.Events) < limit && p.Through == 0 {
				break
			}
			after = p.Next(after)
		}
		if got := messages(all); !slices.Equal(got, want) {
			t.Errorf("paging with limit %d: messages %v, want %v", limit, got, want)
		}
		if max := len(want) + 2*len(run)/parley.ReplayScan + 2; reads > max {
			t.Errorf("paging with limit %d took %d reads, want at most %d", limit, reads, max)
		}
	}

	// A limit above the scan reads that many: the whole run at once.
	p = must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), a.ID, from, len(run)+100))
	if got := messages(p.Events); !slices.Equal(got, want) || p.Through != 0 {
		t.Errorf("EventsFor(a, limit %d) = %v, through %d; want %v, 0", len(run)+100, got, p.Through, want)
	}
	// b, who blocked nobody, reads their own messages as ever.
	if p := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), b.ID, from, 5)); len(p.Events) != 5 || p.Through != 0 {
		t.Errorf("EventsFor(b, limit 5): %d events, through %d; want 5, 0", len(p.Events), p.Through)
	}
}

// positionsOf returns the positions of the newMessage events of sender
// after after, in order, read from the whole log.
func positionsOf(t *testing.T, s parley.Store, sender string, after int64) []int64 {
	t.Helper()
	var pos []int64
	for _, e := range allEvents(t, s) {
		if e.Pos > after && e.Type == parley.EventNewMessage && e.UserID == sender {
			pos = append(pos, e.Pos)
		}
	}
	return pos
}

// testListWindow: a conversation list reads each conversation's newest
// parley.ListWindow messages, no more: its unread counts and last_message
// come from them. A run of messages hidden from the viewer (a user they
// blocked) pushes older ones out of the window; without the window every
// list walked the whole run.
func testListWindow(t *testing.T, s parley.Store) {
	b, a, c, conv := groupWithBlock(t, s, "lw")
	mention := "@" + b.Name
	replyMany(t, s, conv.ID, a, "one "+mention, "two "+mention, "three "+mention) // seq 1-3
	hidden := func(n int) {
		t.Helper()
		texts := make([]string, n)
		for i := range texts {
			texts[i] = fmt.Sprint("hidden ", i, " ", mention)
		}
		replyMany(t, s, conv.ID, c, texts...)
	}
	check := func(when string, unread, mentions, last int64) {
		t.Helper()
		one := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, conv.ID))
		list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), b.ID))
		if len(list) != 1 {
			t.Fatalf("b's list: %d conversations", len(list))
		}
		for _, cv := range []parley.Conversation{one, list[0]} {
			var seq int64
			if cv.LastMessage != nil {
				seq = cv.LastMessage.Seq
			}
			if cv.UnreadCount != unread || cv.UnreadMentions != mentions || seq != last {
				t.Errorf("%s (last_seq %d): unread %d, mentions %d, last_message seq %d; want %d, %d, %d",
					when, cv.LastSeq, cv.UnreadCount, cv.UnreadMentions, seq, unread, mentions, last)
			}
		}
	}
	hidden(parley.ListWindow - 3)
	check("a's three messages and the run fill the window", 3, 3, 3)
	hidden(1)
	check("the first left the window", 2, 2, 3)
	hidden(2)
	check("all three left the window", 0, 0, 0)
	m := send(t, s, conv.ID, a, "four")
	check("a new message", 1, 0, m.Seq)
}

// testHistoryWindow: a page of history reads at most
// parley.HistoryWindow seqs. Over a run of a blocked user's messages a
// page comes back short or empty with has_more and Next where reading
// stopped; following Next either way gives every message the viewer may
// see exactly once, in few pages. Without the window one page walked the
// whole run.
func testHistoryWindow(t *testing.T, s parley.Store) {
	b, a, c, conv := groupWithBlock(t, s, "hw")
	const run = parley.HistoryWindow + 10
	replyMany(t, s, conv.ID, a, "one", "two", "three") // seq 1-3
	texts := make([]string, run)
	for i := range texts {
		texts[i] = fmt.Sprint("hidden ", i)
	}
	replyMany(t, s, conv.ID, c, texts...)       // seq 4-1013
	replyMany(t, s, conv.ID, a, "four", "five") // seq 1014-1015
	const last = 3 + run + 2
	visible := []int64{1, 2, 3, last - 1, last}

	type want struct {
		seqs    []int64
		hasMore bool
		next    int64
	}
	for _, tt := range []struct {
		q    parley.MessageQuery
		want want
	}{
		// The newest page reads seqs 16-1015: two of them are b's to see.
		{parley.MessageQuery{Limit: 5}, want{[]int64{last - 1, last}, true, last - parley.HistoryWindow + 1}},
		{parley.MessageQuery{Limit: 1}, want{[]int64{last}, true, last}},
		{parley.MessageQuery{Before: last - parley.HistoryWindow + 1, Limit: 5}, want{[]int64{1, 2, 3}, false, 0}},
		{parley.MessageQuery{Before: 500, Limit: 5}, want{[]int64{1, 2, 3}, false, 0}},
		{parley.MessageQuery{Before: 1500, Limit: 5}, want{[]int64{last - 1, last}, true, last - parley.HistoryWindow + 1}},
		{parley.MessageQuery{FromStart: true, Limit: 5}, want{[]int64{1, 2, 3}, true, parley.HistoryWindow}},
		{parley.MessageQuery{After: 3, Limit: 5}, want{nil, true, 3 + parley.HistoryWindow}},
		{parley.MessageQuery{After: 3 + parley.HistoryWindow, Limit: 5}, want{[]int64{last - 1, last}, false, 0}},
		{parley.MessageQuery{After: 3, Before: last - 1, Limit: 5}, want{nil, true, 3 + parley.HistoryWindow}},
		{parley.MessageQuery{After: 3 + parley.HistoryWindow, Before: last - 1, Limit: 5}, want{nil, false, 0}},
	} {
		page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID, tt.q))
		if got := (want{seqs(page.Messages), page.HasMore, page.Next}); !slices.Equal(got.seqs, tt.want.seqs) || got.hasMore != tt.want.hasMore || got.next != tt.want.next {
			t.Errorf("Messages(%+v) = %+v, want %+v", tt.q, got, tt.want)
		}
	}

	walk := func(q parley.MessageQuery, back bool) (all []int64, pages int) {
		for {
			page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID, q))
			pages++
			if back {
				all = append(seqs(page.Messages), all...)
				q.Before = page.Next
			} else {
				all = append(all, seqs(page.Messages)...)
				q.After, q.FromStart = page.Next, false
			}
			if !page.HasMore || pages > 10 {
				return all, pages
			}
		}
	}
	for _, back := range []bool{true, false} {
		q := parley.MessageQuery{Limit: 2, FromStart: !back}
		all, pages := walk(q, back)
		if !slices.Equal(all, visible) || pages > 4 {
			t.Errorf("walking (back %v) by Next: %v in %d pages, want %v in at most 4", back, all, pages, visible)
		}
	}
	// a sees every message: the window changes nothing for them.
	if p := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), a.ID, conv.ID, parley.MessageQuery{Limit: 5})); len(p.Messages) != 5 || !p.HasMore || p.Next != last-4 {
		t.Errorf("a's newest page: %v, has_more %v, next %d", seqs(p.Messages), p.HasMore, p.Next)
	}
}

// testBlockedSearch: search results and the mentions list leave out the
// messages of a user the searcher blocked, as history does, and show them
// again after an unblock.
func testBlockedSearch(t *testing.T, s parley.Store) {
	cs := optional[parley.Consenter](t, s)
	a, b, c := newUser(t, s, "bsa"), newUser(t, s, "bsb"), newUser(t, s, "bsc")
	conv := newGroup(t, s, a, "G", b, c)
	w := word("zebra")
	fromB := send(t, s, conv.ID, b, w+" from b @"+a.Name)
	fromC := send(t, s, conv.ID, c, w+" from c @"+a.Name)
	if _, err := cs.Block(ctx(t), a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	want := msgIDs(fromB)
	if got := searchIDs(t, s, a, w, "", 1); !slices.Equal(got, want) {
		t.Errorf("a's search while c is blocked: %v, want b's %v", got, want)
	}
	if got := searchIDs(t, s, a, w, conv.ID, 1); !slices.Equal(got, want) {
		t.Errorf("a's search in the group while c is blocked: %v, want %v", got, want)
	}
	if got := mentionIDs(t, s, a, 1); !slices.Equal(got, want) {
		t.Errorf("a's mentions while c is blocked: %v, want %v", got, want)
	}
	if got := searchIDs(t, s, b, w, "", 10); len(got) != 2 {
		t.Errorf("b, who blocked nobody, finds %v", got)
	}
	if _, err := cs.Unblock(ctx(t), a.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	want = msgIDs(fromC, fromB)
	if got := searchIDs(t, s, a, w, "", 10); !slices.Equal(got, want) {
		t.Errorf("a's search after the unblock: %v, want %v", got, want)
	}
	if got := mentionIDs(t, s, a, 10); !slices.Equal(got, want) {
		t.Errorf("a's mentions after the unblock: %v, want %v", got, want)
	}
}

// testTie: Consenter.Tie reads what links a pair as Contacts' rule does:
// a direct conversation only once both wrote in it (or its request was
// accepted), a group only when asked for groups and while both are
// members, each block by its direction; and it agrees with Contacts on
// every pair (none of these users is near the contacts limit).
func testTie(t *testing.T, s parley.Store) {
	cs := optional[parley.Consenter](t, s)
	u := newUsers(t, s, "tie", 6)
	a, b, c, d, e, f := u[0], u[1], u[2], u[3], u[4], u[5]
	tie := func(x, y parley.User, groups bool) parley.Tie {
		t.Helper()
		return must[parley.Tie](t, "Tie")(cs.Tie(ctx(t), x.ID, y.ID, groups))
	}
	check := func(what string, got, want parley.Tie) {
		t.Helper()
		if got != want {
			t.Errorf("%s: Tie %+v, want %+v", what, got, want)
		}
	}
	agree := func(when string) {
		t.Helper()
		for _, x := range u {
			contacts := must[[]string](t, "Contacts")(s.Contacts(ctx(t), x.ID))
			for _, y := range u {
				if x.ID != y.ID && tie(x, y, true).Contacts() != slices.Contains(contacts, y.ID) {
					t.Errorf("%s: Tie(%s, %s) says contacts %v, Contacts(%s) = %v", when, x.Name, y.Name, tie(x, y, true).Contacts(), x.Name, contacts)
				}
			}
		}
	}
	check("strangers", tie(a, b, true), parley.Tie{})

	// A direct conversation: one-sided, then answered (in both orders
	// of the pair, whichever is direct_a).
	direct := newDirect(t, s, a, b)
	send(t, s, direct.ID, a, "hello?")
	check("a direct conversation only a wrote in", tie(a, b, true), parley.Tie{})
	check("the same, asked by b", tie(b, a, false), parley.Tie{})
	send(t, s, direct.ID, b, "hi")
	check("an answered direct conversation", tie(a, b, false), parley.Tie{Direct: true})
	check("the same, asked by b", tie(b, a, false), parley.Tie{Direct: true})
	// An accepted request counts as both having written.
	req := newDirect(t, s, e, f)
	if _, _, err := cs.AnswerRequest(ctx(t), f.ID, req.ID, true); err != nil {
		t.Fatal(err)
	}
	check("an accepted request nobody wrote in", tie(f, e, false), parley.Tie{Direct: true})

	// A group: only when asked for, while both are members.
	g := newGroup(t, s, c, "G", d, a)
	check("a group, not asked for", tie(c, d, false), parley.Tie{})
	check("a group", tie(c, d, true), parley.Tie{Group: true})
	check("a direct conversation, groups asked for", tie(b, a, true), parley.Tie{Direct: true})
	check("a group, and no direct conversation", tie(a, c, true), parley.Tie{Group: true})
	agree("after the group")

	// Blocks, by their direction; a block ends contacts, not the rest.
	if _, err := cs.Block(ctx(t), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Block(ctx(t), d.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	check("a blocked b", tie(a, b, false), parley.Tie{Direct: true, Blocked: true})
	check("a blocked b, asked by b", tie(b, a, false), parley.Tie{Direct: true, BlockedBy: true})
	check("d blocked c", tie(c, d, true), parley.Tie{Group: true, BlockedBy: true})
	agree("after the blocks")
	if _, _, err := s.UpdateConversation(ctx(t), c.ID, g.ID, parley.ConversationChange{Remove: []string{d.ID}}); err != nil {
		t.Fatal(err)
	}
	check("d left the group", tie(d, c, true), parley.Tie{Blocked: true})
	check("a is still in it", tie(a, c, true), parley.Tie{Group: true})
	agree("after d left")

	// A user that does not exist is linked to nobody; a user is no pair.
	check("no such user", tie(a, parley.User{ID: "00000000-0000-7000-8000-000000000000"}, true), parley.Tie{})
	_, err := cs.Tie(ctx(t), a.ID, a.ID, true)
	wantCode(t, "a tie of one user", err, parley.EINVALID)
	_, err = cs.Tie(ctx(t), a.ID, "", false)
	wantCode(t, "a tie with no user", err, parley.EINVALID)
}
