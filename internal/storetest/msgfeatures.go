package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// Edits, reactions and replies (issue 14).

func edit(t *testing.T, s parley.Store, u parley.User, m parley.Message, clientID, text string) (parley.Message, []parley.Event, error) {
	return s.EditMessage(ctx(t), parley.MessageEdit{UserID: u.ID, ConversationID: m.ConversationID, MessageID: m.ID, ClientID: clientID, Text: text})
}

// messageByID finds id in the viewer's history of conv.
func messageByID(t *testing.T, s parley.Store, viewer parley.User, convID, id string) parley.Message {
	t.Helper()
	for _, m := range allMessages(t, s, viewer.ID, convID) {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("message %s not in %s's history", id, viewer.Name)
	return parley.Message{}
}

// testEdit: the sender edits; history, the conversation's last message
// and a replayed event show the new text; the edit id makes it
// idempotent; an unchanged text makes no event.
func testEdit(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "edita"), newUser(t, s, "editb")
	conv := newGroup(t, s, a, "edits", b)
	m := send(t, s, conv.ID, a, "helo")
	got, events, err := edit(t, s, a, m, "e1", "hello")
	if err != nil {
		t.Fatalf("EditMessage: %v", err)
	}
	if got.ID != m.ID || got.Seq != m.Seq || got.Text != "hello" || got.EditedAt == nil || got.EditedAt.Before(m.CreatedAt) {
		t.Errorf("EditMessage = %+v", got)
	}
	e := oneEvent(t, "EditMessage", events, parley.EventMessageEdited)
	if e.Message == nil || e.Message.Text != "hello" || e.Message.EditedAt == nil || e.UserID != a.ID || e.UserName != a.Name ||
		e.ConversationID != conv.ID || !sameSet(e.Audience, ids(a, b)) {
		t.Errorf("messageEdited = %+v", e)
	}
	h := messageByID(t, s, b, conv.ID, m.ID)
	if h.Text != "hello" || h.EditedAt == nil || !h.EditedAt.Equal(*got.EditedAt) {
		t.Errorf("history after edit = %+v", h)
	}
	c := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, conv.ID))
	if c.LastMessage == nil || c.LastMessage.Text != "hello" || c.LastMessage.EditedAt == nil {
		t.Errorf("last message after edit = %+v", c.LastMessage)
	}
	// The same edit again: the message as it is, no event, even after a
	// later edit (a late resend never undoes it).
	if _, events, err := edit(t, s, a, m, "e2", "hello again"); err != nil || len(events) != 1 {
		t.Fatalf("second edit: %d events, %v", len(events), err)
	}
	again, events, err := edit(t, s, a, m, "e1", "hello")
	if err != nil || len(events) != 0 || again.Text != "hello again" {
		t.Errorf("resent edit = %q, %d events, %v; want the current text, no events", again.Text, len(events), err)
	}
	// An unchanged text: no event.
	if _, events, err := edit(t, s, a, m, "e3", "hello again"); err != nil || len(events) != 0 {
		t.Errorf("unchanged edit: %d events, %v", len(events), err)
	}
	// An edit id names one edit: another message with it is a conflict.
	m2 := send(t, s, conv.ID, a, "two")
	_, _, err = edit(t, s, a, m2, "e1", "x")
	wantCode(t, "edit id reused for another message", err, parley.ECONFLICT)

	// By the client id it was sent with (an edit queued behind its send).
	byClient, events, err := s.EditMessage(ctx(t), parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageClientID: m2.ClientID, ClientID: clientID(), Text: "two!"})
	if err != nil || byClient.ID != m2.ID || byClient.Text != "two!" || len(events) != 1 {
		t.Errorf("edit by message client id = %+v, %d events, %v", byClient, len(events), err)
	}
	other := newGroup(t, s, a, "other")
	_, _, err = s.EditMessage(ctx(t), parley.MessageEdit{UserID: a.ID, ConversationID: other.ID, MessageClientID: m2.ClientID, ClientID: clientID(), Text: "x"})
	wantCode(t, "edit by client id in another conversation", err, parley.ENOTFOUND)
	_, _, err = s.EditMessage(ctx(t), parley.MessageEdit{UserID: b.ID, ConversationID: conv.ID, MessageClientID: m2.ClientID, ClientID: clientID(), Text: "x"})
	wantCode(t, "another user's client id names none of theirs", err, parley.ENOTFOUND)

	// Replayed, the edits carry the message as it is now, in order.
	var edited []int64
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Type == parley.EventMessageEdited && e.Message != nil && e.Message.ID == m.ID {
			if e.Message.Text != "hello again" {
				t.Errorf("replayed messageEdited = %+v", e.Message)
			}
			edited = append(edited, e.Pos)
		}
	}
	if len(edited) != 2 || edited[0] >= edited[1] {
		t.Errorf("replayed messageEdited positions %v, want 2 in order", edited)
	}
}

// testEditRules: only the sender, only a member, not a tombstone, a
// text stays non-blank while a caption may be emptied.
func testEditRules(t *testing.T, s parley.Store) {
	a, b, x := newUser(t, s, "erula"), newUser(t, s, "erulb"), newUser(t, s, "erulx")
	conv := newGroup(t, s, a, "rules", b)
	m := send(t, s, conv.ID, a, "mine")
	_, _, err := edit(t, s, b, m, clientID(), "theirs")
	wantCode(t, "a member edits another's message", err, parley.EFORBIDDEN)
	_, _, err = edit(t, s, x, m, clientID(), "stranger")
	wantCode(t, "a non-member edits", err, parley.ENOTFOUND)
	_, _, err = s.EditMessage(ctx(t), parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: "no-such", ClientID: clientID(), Text: "x"})
	wantCode(t, "an unknown message", err, parley.ENOTFOUND)
	_, _, err = edit(t, s, a, m, clientID(), "  ")
	wantCode(t, "a blank text", err, parley.EINVALID)
	_, _, err = edit(t, s, a, m, clientID(), strings.Repeat("x", parley.MaxTextRunes+1))
	wantCode(t, "a text too long", err, parley.EINVALID)
	_, _, err = edit(t, s, a, m, "", "x")
	wantCode(t, "no edit id", err, parley.EINVALID)
	// Removed from the group: not found, even for one's own message.
	mb := send(t, s, conv.ID, b, "before leaving")
	if _, _, err := s.UpdateConversation(ctx(t), a.ID, conv.ID, parley.ConversationChange{Remove: []string{b.ID}}); err != nil {
		t.Fatal(err)
	}
	_, _, err = edit(t, s, b, mb, clientID(), "after leaving")
	wantCode(t, "a removed member edits", err, parley.ENOTFOUND)
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = edit(t, s, a, m, clientID(), "undead")
	wantCode(t, "editing a tombstone", err, parley.EINVALID)

	// An image's caption may be emptied.
	if err := s.PutAttachment(ctx(t), a.ID, parley.Attachment{ID: "edit-img-" + a.ID, ContentType: "image/png", Width: 1, Height: 1}, []byte("png"), nil, 0); err != nil {
		t.Fatal(err)
	}
	img, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(),
		Type: parley.Image, AttachmentID: "edit-img-" + a.ID, Text: "caption"})
	if err != nil {
		t.Fatal(err)
	}
	got, events, err := edit(t, s, a, img, clientID(), "")
	if err != nil || got.Text != "" || got.Attachment == nil || len(events) != 1 {
		t.Errorf("emptying a caption = %+v, %d events, %v", got, len(events), err)
	}
}

// testReactions: add, count, me, idempotent both ways, events in order,
// removed with the message's delete.
func testReactions(t *testing.T, s parley.Store) {
	a, b, x := newUser(t, s, "reaca"), newUser(t, s, "reacb"), newUser(t, s, "reacx")
	conv := newGroup(t, s, a, "reactions", b)
	m := send(t, s, conv.ID, a, "react to me")

	rs, events, err := s.React(ctx(t), b.ID, conv.ID, m.ID, "👍", true)
	if err != nil {
		t.Fatal(err)
	}
	e := oneEvent(t, "React add", events, parley.EventReactionAdded)
	if e.MessageID != m.ID || e.Seq != m.Seq || e.Emoji != "👍" || e.Count != 1 || e.UserID != b.ID || e.UserName != b.Name || !sameSet(e.Audience, ids(a, b)) {
		t.Errorf("reactionAdded = %+v", e)
	}
	if !slices.Equal(rs, []parley.Reaction{{Emoji: "👍", Count: 1, Me: true}}) {
		t.Errorf("React reactions = %+v", rs)
	}
	// Adding twice is one reaction and no event.
	if _, events, err := s.React(ctx(t), b.ID, conv.ID, m.ID, "👍", true); err != nil || len(events) != 0 {
		t.Errorf("second add: %d events, %v", len(events), err)
	}
	for _, emoji := range []string{"❤️", "👍"} {
		if _, _, err := s.React(ctx(t), a.ID, conv.ID, m.ID, emoji, true); err != nil {
			t.Fatal(err)
		}
	}

	// History: counts per emoji in order of first use, and mine.
	for _, tt := range []struct {
		viewer parley.User
		want   []parley.Reaction
	}{
		{a, []parley.Reaction{{Emoji: "👍", Count: 2, Me: true}, {Emoji: "❤️", Count: 1, Me: true}}},
		{b, []parley.Reaction{{Emoji: "👍", Count: 2, Me: true}, {Emoji: "❤️", Count: 1}}},
	} {
		if got := messageByID(t, s, tt.viewer, conv.ID, m.ID).Reactions; !slices.Equal(got, tt.want) {
			t.Errorf("%s's history reactions = %+v, want %+v", tt.viewer.Name, got, tt.want)
		}
	}
	// Removing: one event; removing again or what was never there: none.
	rs, events, err = s.React(ctx(t), b.ID, conv.ID, m.ID, "👍", false)
	oneEvent(t, "React remove", events, parley.EventReactionRemoved)
	// 👍's oldest reaction now is a's, added after ❤️: ❤️ comes first.
	if err != nil || !slices.Equal(rs, []parley.Reaction{{Emoji: "❤️", Count: 1}, {Emoji: "👍", Count: 1}}) {
		t.Errorf("after remove: %+v, %v", rs, err)
	}
	for _, emoji := range []string{"👍", "🎉"} {
		if _, events, err := s.React(ctx(t), b.ID, conv.ID, m.ID, emoji, false); err != nil || len(events) != 0 {
			t.Errorf("removing absent %s: %d events, %v", emoji, len(events), err)
		}
	}
	// Rules.
	_, _, err = s.React(ctx(t), x.ID, conv.ID, m.ID, "👍", true)
	wantCode(t, "a non-member reacts", err, parley.ENOTFOUND)
	_, _, err = s.React(ctx(t), b.ID, conv.ID, "no-such", "👍", true)
	wantCode(t, "an unknown message", err, parley.ENOTFOUND)
	_, _, err = s.React(ctx(t), b.ID, conv.ID, m.ID, "ok", true)
	wantCode(t, "a word as emoji", err, parley.EINVALID)

	// Replayed in order with their emoji.
	var got []string
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Type == parley.EventReactionAdded || e.Type == parley.EventReactionRemoved {
			if e.MessageID != m.ID || e.Seq != m.Seq {
				t.Errorf("replayed %s = %+v", e.Type, e)
			}
			got = append(got, fmt.Sprintf("%s %s %s %d", e.Type, e.UserName, e.Emoji, e.Count))
		}
	}
	want := []string{"reactionAdded " + b.Name + " 👍 1", "reactionAdded " + a.Name + " ❤️ 1", "reactionAdded " + a.Name + " 👍 2", "reactionRemoved " + b.Name + " 👍 1"}
	if !slices.Equal(got, want) {
		t.Errorf("replayed reactions %q, want %q", got, want)
	}

	// A tombstone has no reactions and takes none; removing is fine.
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	if rs := messageByID(t, s, b, conv.ID, m.ID).Reactions; len(rs) != 0 {
		t.Errorf("a tombstone's reactions = %+v", rs)
	}
	_, _, err = s.React(ctx(t), b.ID, conv.ID, m.ID, "👍", true)
	wantCode(t, "reacting to a tombstone", err, parley.EINVALID)
	if _, events, err := s.React(ctx(t), a.ID, conv.ID, m.ID, "❤️", false); err != nil || len(events) != 0 {
		t.Errorf("removing from a tombstone: %d events, %v", len(events), err)
	}
}

// testReactionLimit: at most MaxReactionKinds distinct emoji; a known
// one may still be added by another user.
func testReactionLimit(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "rlima"), newUser(t, s, "rlimb")
	conv := newGroup(t, s, a, "limit", b)
	m := send(t, s, conv.ID, a, "many")
	for i := range parley.MaxReactionKinds {
		emoji := string(rune(0x1F600 + i))
		if _, _, err := s.React(ctx(t), a.ID, conv.ID, m.ID, emoji, true); err != nil {
			t.Fatalf("reaction %d: %v", i, err)
		}
	}
	_, _, err := s.React(ctx(t), b.ID, conv.ID, m.ID, "🚀", true)
	wantCode(t, "one emoji past the limit", err, parley.EINVALID)
	if _, events, err := s.React(ctx(t), b.ID, conv.ID, m.ID, string(rune(0x1F600)), true); err != nil || len(events) != 1 {
		t.Errorf("a known emoji at the limit: %d events, %v", len(events), err)
	}
	if rs := messageByID(t, s, a, conv.ID, m.ID).Reactions; len(rs) != parley.MaxReactionKinds || rs[0].Count != 2 {
		t.Errorf("history holds %d kinds, first %+v", len(rs), rs[0])
	}
}

// testReplies: a reply quotes its parent as the parent is now, through
// history, events, the conversation list and both send paths.
func testReplies(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "repla"), newUser(t, s, "replb")
	conv := newGroup(t, s, a, "replies", b)
	other := newGroup(t, s, a, "other", b)
	long := strings.Repeat("é", parley.QuoteRunes+20)
	parent := send(t, s, conv.ID, a, long)
	reply, events, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: b.ID, ClientID: clientID(), Text: "re", ReplyTo: parent.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantQuote := parley.Quote{MessageID: parent.ID, Seq: parent.Seq, SenderID: a.ID, SenderName: a.Name, Type: parley.Text,
		Text: strings.Repeat("é", parley.QuoteRunes)}
	if reply.ReplyTo == nil || *reply.ReplyTo != wantQuote {
		t.Errorf("reply's quote = %+v, want %+v", reply.ReplyTo, wantQuote)
	}
	if e := oneEvent(t, "reply", events, parley.EventNewMessage); e.Message.ReplyTo == nil || *e.Message.ReplyTo != wantQuote {
		t.Errorf("newMessage's quote = %+v", e.Message.ReplyTo)
	}
	// Several replies in one SendMessages (the engines' bulk path), one
	// of them to a message of another conversation, one resent.
	ms := optional[parley.MultiSender](t, s)
	foreign := send(t, s, other.ID, a, "elsewhere")
	nms := []parley.NewMessage{
		{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Text: "r1", ReplyTo: reply.ID},
		{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Text: "r2", ReplyTo: foreign.ID},
		{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Text: "r3"},
		{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Text: "r4", ReplyTo: parent.ID},
		{ConversationID: conv.ID, SenderID: b.ID, ClientID: reply.ClientID, Text: "re", ReplyTo: parent.ID},
		{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Text: "r6", ReplyTo: "no-such-message"},
	}
	res := sendMany(t, ctx(t), ms, nms)
	// Neither store keeps a foreign key on reply_to (SQLite's 00017,
	// PostgreSQL's 00021): the send's own check refuses a missing parent.
	if parley.ErrorCode(res[5].err) != parley.EINVALID {
		t.Errorf("bulk reply to no message: %v, want invalid", res[5].err)
	}
	if _, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Text: "r7", ReplyTo: "no-such-message"}); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("reply to no message: %v, want invalid", err)
	}
	if res[0].err != nil || res[0].m.ReplyTo == nil || res[0].m.ReplyTo.MessageID != reply.ID || res[0].m.ReplyTo.Text != "re" {
		t.Errorf("bulk reply 1 = %+v, %v", res[0].m.ReplyTo, res[0].err)
	}
	if parley.ErrorCode(res[1].err) != parley.EINVALID {
		t.Errorf("a reply to another conversation's message: %v, want invalid", res[1].err)
	}
	if res[2].err != nil || res[2].m.ReplyTo != nil {
		t.Errorf("bulk no-reply = %+v, %v", res[2].m.ReplyTo, res[2].err)
	}
	if res[3].err != nil || res[3].m.ReplyTo == nil || *res[3].m.ReplyTo != wantQuote {
		t.Errorf("bulk reply 4 = %+v, %v", res[3].m.ReplyTo, res[3].err)
	}
	if res[4].err != nil || res[4].m.ID != reply.ID || res[4].m.ReplyTo == nil || len(res[4].evs) != 0 {
		t.Errorf("resent reply = %+v, %d events, %v", res[4].m, len(res[4].evs), res[4].err)
	}

	// The quote follows the parent's edit, then its delete.
	if _, _, err := edit(t, s, a, parent, clientID(), "short now"); err != nil {
		t.Fatal(err)
	}
	if q := messageByID(t, s, b, conv.ID, reply.ID).ReplyTo; q == nil || q.Text != "short now" || q.Deleted {
		t.Errorf("quote after the parent's edit = %+v", q)
	}
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, parent.ID); err != nil {
		t.Fatal(err)
	}
	last := res[3].m
	for what, q := range map[string]*parley.Quote{
		"history":      messageByID(t, s, b, conv.ID, last.ID).ReplyTo,
		"last message": must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, conv.ID)).LastMessage.ReplyTo,
	} {
		if q == nil || !q.Deleted || q.Text != "" || q.MessageID != parent.ID || q.SenderID != a.ID {
			t.Errorf("%s: quote after the parent's delete = %+v", what, q)
		}
	}
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Type == parley.EventNewMessage && e.Message.ID == reply.ID && (e.Message.ReplyTo == nil || !e.Message.ReplyTo.Deleted) {
			t.Errorf("replayed reply's quote = %+v, want deleted", e.Message.ReplyTo)
		}
	}
	// Replying to a tombstone or to nothing is invalid; the rule comes
	// after membership.
	for what, to := range map[string]string{"a tombstone": parent.ID, "no message": "no-such"} {
		_, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: b.ID, ClientID: clientID(), Text: "x", ReplyTo: to})
		wantCode(t, "a reply to "+what, err, parley.EINVALID)
	}
	x := newUser(t, s, "replx")
	_, _, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: x.ID, ClientID: clientID(), Text: "x", ReplyTo: reply.ID})
	wantCode(t, "a non-member's reply", err, parley.ENOTFOUND)
}
