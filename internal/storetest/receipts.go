package storetest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// memberOf returns userID's entry in c.Members.
func memberOf(t *testing.T, c parley.Conversation, userID string) parley.Member {
	t.Helper()
	for _, m := range c.Members {
		if m.UserID == userID {
			return m
		}
	}
	t.Fatalf("%s is not in the members of %s: %+v", userID, c.ID, c.Members)
	return parley.Member{}
}

// testMarkDelivered: delivered positions only move forward, are clamped,
// never below the read position, skip non-members alike, make one
// messageDelivered per moved conversation, and show in members.
func testMarkDelivered(t *testing.T, s parley.Store) {
	r := optional[parley.Receipts](t, s)
	a, b, c, out := newUser(t, s, "dela"), newUser(t, s, "delb"), newUser(t, s, "delc"), newUser(t, s, "delout")
	g := newGroup(t, s, a, "G", b, c)
	d := newDirect(t, s, a, b)
	for i := range 4 {
		send(t, s, g.ID, a, fmt.Sprint("g", i))
	}
	send(t, s, d.ID, a, "d0")

	marks, events, err := r.MarkDelivered(ctx(t), b.ID, []parley.DeliveredMark{
		{ConversationID: g.ID, Seq: 2}, {ConversationID: d.ID, Seq: 9}, {ConversationID: "no-such-conversation", Seq: 1},
	})
	if err != nil {
		t.Fatalf("MarkDelivered: %v", err)
	}
	want := []parley.DeliveredMark{{ConversationID: g.ID, Seq: 2}, {ConversationID: d.ID, Seq: 1}}
	if fmt.Sprint(marks) != fmt.Sprint(want) {
		t.Errorf("MarkDelivered marks = %v, want %v (clamped, the unknown one skipped)", marks, want)
	}
	if len(events) != 2 {
		t.Fatalf("MarkDelivered events = %+v, want 2", events)
	}
	for i, e := range events {
		if e.Type != parley.EventMessageDelivered || e.UserID != b.ID || e.Pos <= 0 ||
			e.ConversationID != want[i].ConversationID || e.DeliveredSeq != want[i].Seq {
			t.Errorf("event %d = %+v, want messageDelivered of %v", i, e, want[i])
		}
	}
	if !sameSet(events[0].Audience, ids(a, b, c)) {
		t.Errorf("messageDelivered audience = %v, want the members", events[0].Audience)
	}
	// Backwards or in place: nothing.
	for _, seq := range []int64{0, 1, 2} {
		marks, events, err := r.MarkDelivered(ctx(t), b.ID, []parley.DeliveredMark{{ConversationID: g.ID, Seq: seq}})
		if err != nil || len(marks) != 0 || len(events) != 0 {
			t.Errorf("MarkDelivered(%d) after 2 = %v, %d events, %v; want nothing", seq, marks, len(events), err)
		}
	}
	// A non-member is skipped exactly like a missing conversation.
	marks, events, err = r.MarkDelivered(ctx(t), out.ID, []parley.DeliveredMark{{ConversationID: g.ID, Seq: 3}})
	if err != nil || len(marks) != 0 || len(events) != 0 {
		t.Errorf("a non-member's mark = %v, %d events, %v; want nothing", marks, len(events), err)
	}
	// Validation.
	_, _, err = r.MarkDelivered(ctx(t), b.ID, []parley.DeliveredMark{{ConversationID: g.ID, Seq: -1}})
	wantCode(t, "a negative seq", err, parley.EINVALID)
	_, _, err = r.MarkDelivered(ctx(t), b.ID, make([]parley.DeliveredMark, parley.MaxDeliveredMarks+1))
	wantCode(t, "too many marks", err, parley.EINVALID)

	// The positions in members: b delivered 2; c delivered nothing; a,
	// the sender, has read (so received) everything.
	got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, g.ID))
	if m := memberOf(t, got, b.ID); m.DeliveredSeq != 2 || m.ReadSeq != 0 {
		t.Errorf("b = %+v, want delivered 2, read 0", m)
	}
	if m := memberOf(t, got, c.ID); m.DeliveredSeq != 0 {
		t.Errorf("c = %+v, want delivered 0", m)
	}
	if m := memberOf(t, got, a.ID); m.DeliveredSeq != 4 {
		t.Errorf("the sender = %+v, want delivered 4 (its read position)", m)
	}
	// Reading implies delivery: c reads 3, so c's delivered position is 3
	// with no messageDelivered, and a mark at 3 then changes nothing.
	if _, err := s.MarkRead(ctx(t), c.ID, g.ID, 3); err != nil {
		t.Fatal(err)
	}
	if marks, events, err := r.MarkDelivered(ctx(t), c.ID, []parley.DeliveredMark{{ConversationID: g.ID, Seq: 3}}); err != nil || len(marks)+len(events) != 0 {
		t.Errorf("a mark at the read position = %v, %d events, %v; want nothing", marks, len(events), err)
	}
	list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), b.ID))
	for _, cv := range list {
		if cv.ID == g.ID {
			if m := memberOf(t, cv, c.ID); m.DeliveredSeq != 3 || m.ReadSeq != 3 {
				t.Errorf("c in the list = %+v, want delivered 3, read 3", m)
			}
			if m := memberOf(t, cv, b.ID); m.DeliveredSeq != 2 {
				t.Errorf("b in the list = %+v, want delivered 2", m)
			}
		}
	}
	// The events replay, in order, to the members.
	evs := must[parley.EventsPage](t, "EventsFor")(s.EventsFor(ctx(t), a.ID, 0, 100)).Events
	n := 0
	for _, e := range evs {
		if e.Type == parley.EventMessageDelivered {
			n++
			if e.UserID != b.ID || e.DeliveredSeq == 0 {
				t.Errorf("replayed messageDelivered = %+v", e)
			}
		}
	}
	if n != 2 {
		t.Errorf("replay holds %d messageDelivered, want 2", n)
	}

	// A conversation named more than once is marked once, at its largest
	// seq, in the place it was first named: one event.
	marks, events, err = r.MarkDelivered(ctx(t), b.ID, []parley.DeliveredMark{
		{ConversationID: g.ID, Seq: 3}, {ConversationID: "no-such-conversation", Seq: 1}, {ConversationID: g.ID, Seq: 4}, {ConversationID: g.ID, Seq: 1},
	})
	if err != nil || fmt.Sprint(marks) != fmt.Sprint([]parley.DeliveredMark{{ConversationID: g.ID, Seq: 4}}) || len(events) != 1 || events[0].DeliveredSeq != 4 {
		t.Errorf("one conversation named three times = %v, %d events, %v; want it once at 4", marks, len(events), err)
	}
}

// testProfiles: SetProfile checks and stores a display name and avatar,
// shows them in users and members, makes one profileUpdated per
// conversation, and keeps the avatar from the orphan sweep and serves it
// to those who share a conversation only.
func testProfiles(t *testing.T, s parley.Store) {
	p := optional[parley.Profiles](t, s)
	a, b, c, out := newUser(t, s, "profa"), newUser(t, s, "profb"), newUser(t, s, "profc"), newUser(t, s, "profout")
	g := newGroup(t, s, a, "G", b)
	d := newDirect(t, s, a, c)
	if err := putUpload(t, s, a, "avatar-a", 100, 0); err != nil {
		t.Fatal(err)
	}
	if err := putUpload(t, s, b, "upload-b", 100, 0); err != nil {
		t.Fatal(err)
	}
	file := parley.Attachment{ID: "file-a", ContentType: "image/png", Name: "a.png"}
	if err := s.PutAttachment(ctx(t), a.ID, file, []byte("\x89PNG"), nil, 0); err != nil {
		t.Fatal(err)
	}
	str := func(v string) *string { return &v }

	u, events, err := p.SetProfile(ctx(t), a.ID, parley.ProfileChange{DisplayName: str("  Alice Á  "), AvatarID: str("avatar-a")})
	if err != nil {
		t.Fatalf("SetProfile: %v", err)
	}
	if u.DisplayName != "Alice Á" || u.AvatarID != "avatar-a" || u.ID != a.ID || u.Name != a.Name {
		t.Errorf("SetProfile user = %+v", u)
	}
	if len(events) != 2 {
		t.Fatalf("SetProfile events = %+v, want one per conversation (2)", events)
	}
	convs := map[string]bool{}
	for _, e := range events {
		convs[e.ConversationID] = true
		if e.Type != parley.EventProfileUpdated || e.UserID != a.ID || e.Pos <= 0 || e.Profile == nil ||
			*e.Profile != (parley.Profile{DisplayName: "Alice Á", AvatarID: "avatar-a"}) {
			t.Errorf("profileUpdated = %+v", e)
		}
		want := ids(a, b)
		if e.ConversationID == d.ID {
			want = ids(a, c)
		}
		if !sameSet(e.Audience, want) {
			t.Errorf("profileUpdated audience in %s = %v, want %v", e.ConversationID, e.Audience, want)
		}
	}
	if !convs[g.ID] || !convs[d.ID] {
		t.Errorf("profileUpdated conversations = %v", convs)
	}
	// The same again: no events.
	if _, events, err := p.SetProfile(ctx(t), a.ID, parley.ProfileChange{DisplayName: str("Alice Á")}); err != nil || len(events) != 0 {
		t.Errorf("SetProfile unchanged: %d events, %v", len(events), err)
	}
	// Seen in User and in members.
	if got := must[parley.User](t, "User")(s.User(ctx(t), a.ID)); got.DisplayName != "Alice Á" || got.AvatarID != "avatar-a" {
		t.Errorf("User = %+v", got)
	}
	if m := memberOf(t, must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, g.ID)), a.ID); m.DisplayName != "Alice Á" || m.AvatarID != "avatar-a" {
		t.Errorf("member a = %+v", m)
	}
	for _, cv := range must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), c.ID)) {
		if m := memberOf(t, cv, a.ID); m.DisplayName != "Alice Á" {
			t.Errorf("member a in c's list = %+v", m)
		}
	}
	// The avatar: served to who shares a conversation, not to others.
	for _, v := range []parley.User{a, b, c} {
		if _, _, err := attachmentData(t, s, v.ID, "avatar-a", true); err != nil {
			t.Errorf("%s fetching a's avatar: %v", v.Name, err)
		}
	}
	if _, _, err := attachmentData(t, s, out.ID, "avatar-a", true); !isNotFound(err) {
		t.Errorf("an outsider fetching a's avatar: %v, want not found", err)
	}
	// Served while the outsider shares a group with a, and no longer once
	// removed from it.
	og := newGroup(t, s, a, "with out", out)
	if _, _, err := attachmentData(t, s, out.ID, "avatar-a", true); err != nil {
		t.Errorf("a group mate fetching a's avatar: %v", err)
	}
	if _, _, err := s.UpdateConversation(ctx(t), a.ID, og.ID, parley.ConversationChange{Remove: []string{out.ID}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := attachmentData(t, s, out.ID, "avatar-a", true); !isNotFound(err) {
		t.Errorf("a removed member fetching a's avatar: %v, want not found", err)
	}
	// Kept by the orphan sweep while it is an avatar.
	if _, err := s.DeleteOrphanAttachments(ctx(t), parley.Now().Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := attachmentData(t, s, a.ID, "avatar-a", false); err != nil {
		t.Errorf("the avatar after the sweep: %v", err)
	}

	// Refused: another user's upload, a missing one, bad names.
	for name, ch := range map[string]parley.ProfileChange{
		"another's upload":  {AvatarID: str("upload-b")},
		"a missing upload":  {AvatarID: str("nope")},
		"a file, not image": {AvatarID: str("file-a")},
		"a bidi override":   {DisplayName: str("evil\u202Egnp.exe")},
		"a control char":    {DisplayName: str("a\x07b")},
		"a zero-width join": {DisplayName: str("a\u200Bb")},
		"a line separator":  {DisplayName: str("a\u2028b")},
		"too long":          {DisplayName: str(strings.Repeat("é", parley.MaxDisplayNameRunes+1))},
		"invalid UTF-8":     {DisplayName: str("a\xffb")},
	} {
		_, events, err := p.SetProfile(ctx(t), a.ID, ch)
		wantCode(t, name, err, parley.EINVALID)
		if len(events) != 0 {
			t.Errorf("%s: events %v", name, events)
		}
	}
	_, _, err = p.SetProfile(ctx(t), "no-such-user", parley.ProfileChange{DisplayName: str("x")})
	wantCode(t, "an unknown user", err, parley.ENOTFOUND)

	// Clearing: the avatar becomes an orphan the sweep deletes.
	u, _, err = p.SetProfile(ctx(t), a.ID, parley.ProfileChange{DisplayName: str(""), AvatarID: str("")})
	if err != nil || u.DisplayName != "" || u.AvatarID != "" {
		t.Fatalf("clearing the profile = %+v, %v", u, err)
	}
	if _, _, err := attachmentData(t, s, b.ID, "avatar-a", true); !isNotFound(err) {
		t.Errorf("b fetching a's former avatar: %v, want not found", err)
	}
	if _, err := s.DeleteOrphanAttachments(ctx(t), parley.Now().Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := attachmentData(t, s, a.ID, "avatar-a", false); !isNotFound(err) {
		t.Errorf("the former avatar after the sweep: %v, want deleted", err)
	}
}

// testProfileChunks: a user in more conversations than one write may
// tell (parley.MaxProfileEventsPerWrite) gets one profileUpdated in each,
// written in commits of at most that many, all carrying the new profile.
func testProfileChunks(t *testing.T, s parley.Store) {
	p := optional[parley.Profiles](t, s)
	a, b := newUser(t, s, "chunka"), newUser(t, s, "chunkb")
	n := 2*parley.MaxProfileEventsPerWrite + 3
	convs := map[string]bool{}
	for i := range n {
		convs[newGroup(t, s, b, fmt.Sprintf("G%d", i), a).ID] = true
	}
	newGroup(t, s, b, "without a") // b's alone: no event of a's
	h := &commitHook{got: map[int64]parley.Event{}}
	commits := 0
	cp := optional[parley.CommitPublisher](t, s)
	defer cp.PublishCommits(nil)
	cp.PublishCommits(func(evs []parley.Event) {
		h.publish(evs)
		k := 0
		for _, e := range evs {
			if e.Type == parley.EventProfileUpdated {
				k++
			}
		}
		if k > parley.MaxProfileEventsPerWrite {
			t.Errorf("one commit holds %d profileUpdated, more than %d", k, parley.MaxProfileEventsPerWrite)
		}
		if k > 0 {
			h.mu.Lock()
			commits++
			h.mu.Unlock()
		}
	})
	name := "Many"
	_, events, err := p.SetProfile(ctx(t), a.ID, parley.ProfileChange{DisplayName: &name})
	if err != nil {
		t.Fatal(err)
	}
	if ev, ok := h.missing(events); ok {
		t.Errorf("event %d was not committed as returned", ev.Pos)
	}
	told := map[string]int{}
	for _, e := range events {
		told[e.ConversationID]++
		if e.Type != parley.EventProfileUpdated || e.Profile == nil || e.Profile.DisplayName != name || !sameSet(e.Audience, ids(a, b)) {
			t.Errorf("event %+v", e)
		}
	}
	for id := range convs {
		if told[id] != 1 {
			t.Errorf("conversation %s told %d times", id, told[id])
		}
	}
	if len(told) != n {
		t.Errorf("%d conversations told, want %d", len(told), n)
	}
	h.mu.Lock()
	if want := (n + parley.MaxProfileEventsPerWrite - 1) / parley.MaxProfileEventsPerWrite; commits < want {
		t.Errorf("%d commits held profileUpdated events, want at least %d", commits, want)
	}
	h.mu.Unlock()
	// What b replays agrees.
	k := 0
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Type == parley.EventProfileUpdated && e.UserID == a.ID {
			k++
		}
	}
	if k != n {
		t.Errorf("b replays %d profileUpdated of a's, want %d", k, n)
	}
	// Pace is asked before each write after the first, and its error
	// ends the change there: the profile changed, the events of the
	// first write returned with the error.
	paced := 0
	refused := parley.Errorf(parley.ERATELIMITED, "slow down")
	other := "Paced"
	_, events, err = p.SetProfile(ctx(t), a.ID, parley.ProfileChange{DisplayName: &other, Pace: func(context.Context) error {
		if paced++; paced == 2 {
			return refused
		}
		return nil
	}})
	if err != refused || paced != 2 || len(events) != 2*parley.MaxProfileEventsPerWrite {
		t.Errorf("a change paced twice, refused the second time: error %v, paced %d, %d events; want the refusal, 2, %d",
			err, paced, len(events), 2*parley.MaxProfileEventsPerWrite)
	}
	if u := must[parley.User](t, "User")(s.User(ctx(t), a.ID)); u.DisplayName != other {
		t.Errorf("the display name after a paced change = %q, want %q", u.DisplayName, other)
	}
}
