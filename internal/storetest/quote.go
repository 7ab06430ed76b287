package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/parleychat/parley"
)

// testBlockedQuote: a reply's quote of a message whose sender the reader
// blocked is hidden from that reader (parley.Quote.Hide: its place and
// Hidden, nothing of the parent), by the blocks as they are when read:
// in the answers to the reader's own send, resend and edit, history,
// the conversation's last message, the list, EventsFor, search, mentions
// and MessagesBySender. Events carry the quote whole, with QuoteHidden
// naming who of their audience receives it hidden, at write and in
// Events (the hub's gap fill). Other readers get it whole; after an
// unblock so does the reader.
func testBlockedQuote(t *testing.T, s parley.Store) {
	a, c, b, g := groupWithBlock(t, s, "bq")
	from := must[int64](t, "Head")(s.Head(ctx(t)))
	parent := send(t, s, g.ID, b, "b's secret")
	whole := parley.Quote{MessageID: parent.ID, Seq: parent.Seq, SenderID: b.ID, SenderName: b.Name, Type: parley.Text, Text: parent.Text}
	hidden := parley.Quote{MessageID: parent.ID, Seq: parent.Seq, Hidden: true}
	w := word("pineapple")
	wantQuote := func(what string, m *parley.Message, want parley.Quote) {
		t.Helper()
		if m == nil || m.ReplyTo == nil || *m.ReplyTo != want {
			var got any = m
			if m != nil {
				got = m.ReplyTo
			}
			t.Errorf("%s: quote %+v, want %+v", what, got, want)
		}
	}
	wantEvent := func(what string, evs []parley.Event, typ parley.EventType, quoteHidden []string) {
		t.Helper()
		e := oneEvent(t, what, evs, typ)
		wantQuote(what+": the event's message", e.Message, whole)
		if !slices.Equal(e.QuoteHidden, quoteHidden) {
			t.Errorf("%s: QuoteHidden %v, want %v (audience %v)", what, e.QuoteHidden, quoteHidden, e.Audience)
		}
	}

	// c's reply (one send), and in one SendMessages (the engines' bulk
	// path) a's own reply to b's message and c's second.
	reply, evs, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: g.ID, SenderID: c.ID, ClientID: clientID(), Text: w + " @" + a.Name, ReplyTo: parent.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantQuote("c's send", &reply, whole)
	wantEvent("c's reply", evs, parley.EventNewMessage, ids(a))
	res := sendMany(t, ctx(t), optional[parley.MultiSender](t, s), []parley.NewMessage{
		{ConversationID: g.ID, SenderID: a.ID, ClientID: clientID(), Text: "a answers", ReplyTo: parent.ID},
		{ConversationID: g.ID, SenderID: c.ID, ClientID: clientID(), Text: "c again", ReplyTo: parent.ID},
	})
	for _, r := range res {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	own := res[0].m
	wantQuote("a's send, as a reads it", &own, hidden)
	wantEvent("a's reply", res[0].evs, parley.EventNewMessage, ids(a))
	wantQuote("c's bulk send", &res[1].m, whole)
	wantEvent("c's bulk reply", res[1].evs, parley.EventNewMessage, ids(a))
	again, evs, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: g.ID, SenderID: a.ID, ClientID: own.ClientID, Text: "a answers", ReplyTo: parent.ID})
	if err != nil || len(evs) != 0 || again.ID != own.ID {
		t.Fatalf("a's resend: %+v, %d events, %v", again, len(evs), err)
	}
	wantQuote("a's resend", &again, hidden)

	// Edits: the editor's answer as they read it, the event whole.
	edited, evs, err := s.EditMessage(ctx(t), parley.MessageEdit{ConversationID: g.ID, UserID: c.ID, MessageID: reply.ID, ClientID: clientID(), Text: w + "! @" + a.Name})
	if err != nil {
		t.Fatal(err)
	}
	wantQuote("c's edit", &edited, whole)
	wantEvent("c's edit", evs, parley.EventMessageEdited, ids(a))
	ownEdit := parley.MessageEdit{ConversationID: g.ID, UserID: a.ID, MessageClientID: own.ClientID, ClientID: clientID(), Text: "a answers, edited"}
	edited, evs, err = s.EditMessage(ctx(t), ownEdit)
	if err != nil {
		t.Fatal(err)
	}
	wantQuote("a's edit", &edited, hidden)
	wantEvent("a's edit", evs, parley.EventMessageEdited, ids(a))
	edited, evs, err = s.EditMessage(ctx(t), ownEdit)
	if err != nil || len(evs) != 0 {
		t.Fatalf("a's edit again: %d events, %v", len(evs), err)
	}
	wantQuote("a's edit again", &edited, hidden)

	// Reads.
	reads := func(u parley.User, want parley.Quote) {
		t.Helper()
		history := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), u.ID, g.ID, parley.MessageQuery{}))
		for _, id := range []string{reply.ID, own.ID} {
			i := slices.IndexFunc(history.Messages, func(m parley.Message) bool { return m.ID == id })
			if i < 0 {
				t.Fatalf("%s's history lacks %s", u.Name, id)
			}
			wantQuote(fmt.Sprintf("%s's history, message %d", u.Name, history.Messages[i].Seq), &history.Messages[i], want)
		}
		wantQuote(u.Name+"'s last_message", must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), u.ID, g.ID)).LastMessage, want)
		for _, cv := range must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), u.ID)) {
			if cv.ID == g.ID {
				wantQuote(u.Name+"'s list", cv.LastMessage, want)
			}
		}
		n := 0
		for _, e := range allEventsFor(t, s, u.ID) {
			if e.Pos > from && e.Message != nil && e.Message.ReplyTo != nil {
				n++
				wantQuote(fmt.Sprintf("%s's EventsFor, %s %d", u.Name, e.Type, e.Pos), e.Message, want)
			}
		}
		if n != 5 {
			t.Errorf("%s's EventsFor: %d replies, want 3 and 2 edits", u.Name, n)
		}
		page := must[parley.SearchPage](t, "Search")(search(t, s, u, w, "", "", 10))
		if len(page.Results) != 1 {
			t.Fatalf("%s's search: %+v", u.Name, page)
		}
		wantQuote(u.Name+"'s search", &page.Results[0].Message, want)
	}
	reads(a, hidden)
	reads(c, whole)
	page := must[parley.SearchPage](t, "Mentions")(optional[parley.Searcher](t, s).Mentions(ctx(t), a.ID, parley.MentionQuery{}))
	if len(page.Results) != 1 {
		t.Fatalf("a's mentions: %+v", page)
	}
	wantQuote("a's mentions", &page.Results[0].Message, hidden)
	mine := must[[]parley.Message](t, "MessagesBySender")(s.(parley.APIKeyStore).MessagesBySender(ctx(t), a.ID, "", 10))
	if len(mine) != 1 {
		t.Fatalf("a's MessagesBySender: %+v", mine)
	}
	wantQuote("a's MessagesBySender", &mine[0], hidden)
	var replies int
	for _, e := range allEvents(t, s) {
		if e.Pos > from && e.Message != nil && e.Message.ReplyTo != nil && e.Message.ConversationID == g.ID {
			replies++
			wantEvent(fmt.Sprintf("Events %d", e.Pos), []parley.Event{e}, e.Type, ids(a))
		}
	}
	if replies != 5 {
		t.Errorf("Events: %d replies, want 3 and 2 edits", replies)
	}

	// Unblocked: every read shows the quote again; events hide it from
	// nobody.
	if _, err := optional[parley.Consenter](t, s).Unblock(ctx(t), a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	reads(a, whole)
	for _, e := range allEvents(t, s) {
		if e.Pos > from && e.Message != nil && e.Message.ReplyTo != nil && e.Message.ConversationID == g.ID {
			wantEvent(fmt.Sprintf("Events %d after the unblock", e.Pos), []parley.Event{e}, e.Type, nil)
		}
	}
}
