package server_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// threeInAGroup connects alice and bob (members of a group) and carol
// (not a member) and returns them with the group.
func threeInAGroup(t *testing.T, srv *servertest.Server) (a, b, x *wsClient, conv parley.Conversation) {
	t.Helper()
	a = connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b = connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	x = connect(t, srv, srv.Token(t, "carol", "Carol"), nil)
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"bob"}}, &conv)
	return a, b, x, conv
}

func TestEditOverWebSocket(t *testing.T) {
	srv := servertest.Start(t)
	a, b, x, conv := threeInAGroup(t, srv)
	m := a.send(conv.ID, "m1", "helo")

	var got parley.Message
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e1", Text: "hello"}, &got)
	if got.Text != "hello" || got.EditedAt == nil || got.ID != m.ID {
		t.Fatalf("edit reply = %+v", got)
	}
	ev := b.event(parley.EventMessageEdited)
	if ev.Pos == 0 || ev.Message == nil || ev.Message.Text != "hello" || ev.UserID != "alice" {
		t.Fatalf("messageEdited = %+v", ev)
	}
	// The same edit again: the message, no second event (the next edit's
	// event is the next one bob sees).
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e1", Text: "hello"}, &got)
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageClientID: "m1", ClientID: "e2", Text: "hello!"}, &got)
	if ev2 := b.event(parley.EventMessageEdited); ev2.Message.Text != "hello!" || ev2.Pos <= ev.Pos {
		t.Fatalf("next messageEdited = %+v, want the second edit's", ev2)
	}
	// History and the conversation list follow.
	page := b.history(conv.ID)
	if len(page.Messages) != 1 || page.Messages[0].Text != "hello!" || page.Messages[0].EditedAt == nil {
		t.Fatalf("history = %+v", page.Messages)
	}
	var c parley.Conversation
	b.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: conv.ID}, &c)
	if c.LastMessage == nil || c.LastMessage.Text != "hello!" {
		t.Fatalf("last message = %+v", c.LastMessage)
	}

	// Errors: not the sender, not a member, a tombstone, bad input.
	checkRefusals(t, protocol.OpEdit, []refusal{
		{b, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "b1", Text: "mine now"}, parley.EFORBIDDEN},
		{x, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "x1", Text: "stranger"}, parley.ENOTFOUND},
		{a, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "a9", Text: " "}, parley.EINVALID},
		{a, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, Text: "no id"}, parley.EINVALID},
		{a, protocol.Edit{ConversationID: conv.ID, MessageID: "nope", ClientID: "a8", Text: "x"}, parley.ENOTFOUND},
	})
	a.do(protocol.OpDelete, protocol.Delete{ConversationID: conv.ID, MessageID: m.ID}, nil)
	checkRefusals(t, protocol.OpEdit, []refusal{{a, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "a7", Text: "x"}, parley.EINVALID}}) // a tombstone
}

// refusal is a request data of a client who and the error code it must
// get.
type refusal struct {
	who  *wsClient
	data any
	want string
}

// checkRefusals sends each refusal's op and checks its code.
func checkRefusals(t *testing.T, op string, rs []refusal) {
	t.Helper()
	for _, r := range rs {
		if code := r.who.fail(op, r.data); code != r.want {
			t.Errorf("%s %+v: %s, want %s", op, r.data, code, r.want)
		}
	}
}

func TestReactOverWebSocket(t *testing.T) {
	srv := servertest.Start(t)
	a, b, x, conv := threeInAGroup(t, srv)
	m := a.send(conv.ID, "m1", "react")

	var r protocol.ReactResult
	b.do(protocol.OpReact, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "👍"}, &r)
	if r.MessageID != m.ID || !slices.Equal(r.Reactions, []parley.Reaction{{Emoji: "👍", Count: 1, Me: true}}) {
		t.Fatalf("react reply = %+v", r)
	}
	ev := a.event(parley.EventReactionAdded)
	if ev.Pos == 0 || ev.MessageID != m.ID || ev.Seq != m.Seq || ev.Emoji != "👍" || ev.UserID != "bob" {
		t.Fatalf("reactionAdded = %+v", ev)
	}
	// Twice: one reaction, no event; then removal: one event.
	b.do(protocol.OpReact, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "👍"}, &r)
	b.do(protocol.OpReact, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "👍", Remove: true}, &r)
	if len(r.Reactions) != 0 {
		t.Fatalf("after removal: %+v", r.Reactions)
	}
	if ev2 := a.event(parley.EventReactionRemoved); ev2.Pos <= ev.Pos || ev2.Emoji != "👍" {
		t.Fatalf("reactionRemoved = %+v", ev2)
	}
	a.do(protocol.OpReact, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "🎉"}, &r)
	page := b.history(conv.ID)
	if got := page.Messages[0].Reactions; !slices.Equal(got, []parley.Reaction{{Emoji: "🎉", Count: 1}}) {
		t.Fatalf("bob's history reactions = %+v", got)
	}
	checkRefusals(t, protocol.OpReact, []refusal{
		{x, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "👍"}, parley.ENOTFOUND},
		{b, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "lol"}, parley.EINVALID},
		{b, protocol.React{ConversationID: conv.ID, MessageID: m.ID}, parley.EINVALID},
		{b, protocol.React{ConversationID: conv.ID, MessageID: "nope", Emoji: "👍"}, parley.ENOTFOUND},
	})
	a.do(protocol.OpDelete, protocol.Delete{ConversationID: conv.ID, MessageID: m.ID}, nil)
	checkRefusals(t, protocol.OpReact, []refusal{{b, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "👍"}, parley.EINVALID}}) // a tombstone
}

func TestReplyOverWebSocket(t *testing.T) {
	srv := servertest.Start(t)
	a, b, x, conv := threeInAGroup(t, srv)
	parent := a.send(conv.ID, "p", "the question")
	var reply parley.Message
	b.do(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "r", Text: "the answer", ReplyTo: parent.ID}, &reply)
	want := parley.Quote{MessageID: parent.ID, Seq: parent.Seq, SenderID: "alice", SenderName: "Alice", Type: parley.Text, Text: "the question"}
	if reply.ReplyTo == nil || *reply.ReplyTo != want {
		t.Fatalf("reply's quote = %+v, want %+v", reply.ReplyTo, want)
	}
	if ev := a.event(parley.EventNewMessage); ev.Message.ID == parent.ID {
		if ev = a.event(parley.EventNewMessage); ev.Message.ReplyTo == nil || *ev.Message.ReplyTo != want {
			t.Fatalf("newMessage quote = %+v", ev.Message.ReplyTo)
		}
	}
	var other parley.Conversation
	x.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "alice"}, &other)
	foreign := x.send(other.ID, "f", "elsewhere")
	if code := b.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "r2", Text: "x", ReplyTo: foreign.ID}); code != parley.EINVALID {
		t.Errorf("reply to another conversation's message: %s", code)
	}
	if code := x.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "r3", Text: "x", ReplyTo: parent.ID}); code != parley.ENOTFOUND {
		t.Errorf("a non-member's reply: %s", code)
	}
	// The parent deleted: the quote says so in history.
	a.do(protocol.OpDelete, protocol.Delete{ConversationID: conv.ID, MessageID: parent.ID}, nil)
	page := b.history(conv.ID)
	if q := page.Messages[len(page.Messages)-1].ReplyTo; q == nil || !q.Deleted || q.Text != "" {
		t.Fatalf("quote after the parent's delete = %+v", q)
	}
}

// TestResumeReplaysEditsAndReactions: a client that missed edits and
// reactions gets them replayed in order after a restart, each once.
func TestResumeReplaysEditsAndReactions(t *testing.T) {
	srv := servertest.Start(t)
	a, b, _, conv := threeInAGroup(t, srv)
	m := a.send(conv.ID, "m1", "v1")
	last := b.event(parley.EventNewMessage).Pos
	b.ws.CloseNow()

	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e1", Text: "v2"}, nil)
	a.do(protocol.OpReact, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "👍"}, nil)
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e2", Text: "v3"}, nil)
	a.do(protocol.OpReact, protocol.React{ConversationID: conv.ID, MessageID: m.ID, Emoji: "👍", Remove: true}, nil)
	srv.Restart(t)

	b = connect(t, srv, srv.Token(t, "bob", "Bob"), &last)
	evs, end := collectResume(t, b)
	if end.Type != protocol.TypeResumed {
		t.Fatalf("got %s", end.Type)
	}
	checkIncreasing(t, evs, last)
	var got []string
	for _, ev := range evs {
		switch ev.Type {
		case parley.EventMessageEdited:
			got = append(got, fmt.Sprintf("edited %s", ev.Message.Text))
		case parley.EventReactionAdded, parley.EventReactionRemoved:
			got = append(got, fmt.Sprintf("%s %s", ev.Type, ev.Emoji))
		}
	}
	// A replayed edit carries the message as it is now (v3).
	want := []string{"edited v3", "reactionAdded 👍", "edited v3", "reactionRemoved 👍"}
	if !slices.Equal(got, want) {
		t.Fatalf("replayed %q, want %q", got, want)
	}
}

// TestMessageFeaturesOverHTTP: the routes run the same service.
func TestMessageFeaturesOverHTTP(t *testing.T) {
	srv := servertest.Start(t)
	aTok, bTok, xTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob"), srv.Token(t, "carol", "Carol")
	r := httpDo(t, srv, "POST", "/v1/conversations/group", aTok, `{"title":"g","member_ids":["bob"]}`)
	conv := decodeJSON[parley.Conversation](t, r.body)
	r = httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/messages", aTok, `{"client_id":"m1","text":"hi"}`)
	m := decodeJSON[parley.Message](t, r.body)
	msgPath := "/v1/conversations/" + conv.ID + "/messages/" + m.ID

	r = httpDo(t, srv, "PATCH", msgPath, aTok, `{"client_id":"e1","text":"hi!"}`)
	if got := decodeJSON[parley.Message](t, r.body); r.status != http.StatusOK || got.Text != "hi!" || got.EditedAt == nil {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "PATCH", msgPath, bTok, `{"client_id":"e2","text":"no"}`); r.status != http.StatusForbidden {
		t.Errorf("PATCH by another member: %d", r.status)
	}
	if r := httpDo(t, srv, "PATCH", msgPath, xTok, `{"client_id":"e3","text":"no"}`); r.status != http.StatusNotFound {
		t.Errorf("PATCH by a non-member: %d", r.status)
	}
	reactPath := msgPath + "/reactions/" + url.PathEscape("❤️")
	r = httpDo(t, srv, "PUT", reactPath, bTok, "")
	if got := decodeJSON[protocol.ReactResult](t, r.body); r.status != http.StatusOK || !slices.Equal(got.Reactions, []parley.Reaction{{Emoji: "❤️", Count: 1, Me: true}}) {
		t.Fatalf("PUT reaction: %d %s", r.status, r.body)
	}
	if r := httpDo(t, srv, "PUT", reactPath, xTok, ""); r.status != http.StatusNotFound {
		t.Errorf("PUT reaction by a non-member: %d", r.status)
	}
	if r := httpDo(t, srv, "PUT", msgPath+"/reactions/abc", bTok, ""); r.status != http.StatusBadRequest {
		t.Errorf("PUT a word as reaction: %d", r.status)
	}
	r = httpDo(t, srv, "DELETE", reactPath, bTok, "")
	if got := decodeJSON[protocol.ReactResult](t, r.body); r.status != http.StatusOK || len(got.Reactions) != 0 {
		t.Fatalf("DELETE reaction: %d %s", r.status, r.body)
	}
	r = httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/messages", bTok, fmt.Sprintf(`{"client_id":"r1","text":"re","reply_to":%q}`, m.ID))
	if got := decodeJSON[parley.Message](t, r.body); r.status != http.StatusCreated || got.ReplyTo == nil || got.ReplyTo.Text != "hi!" {
		t.Fatalf("POST reply: %d %s", r.status, r.body)
	}
	// The events the HTTP writes made, in order, through GET /v1/events.
	r = httpDo(t, srv, "GET", "/v1/events?after=0", aTok, "")
	var page struct{ Events []parley.Event }
	page = decodeJSON[struct{ Events []parley.Event }](t, r.body)
	var types []parley.EventType
	for _, e := range page.Events {
		types = append(types, e.Type)
	}
	want := []parley.EventType{parley.EventConversationUpdated, parley.EventNewMessage, parley.EventMessageEdited,
		parley.EventReactionAdded, parley.EventReactionRemoved, parley.EventNewMessage}
	if !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}
