package client

import (
	"testing"

	"github.com/parleychat/parley"
)

// TestHiddenQuoteStaysHidden: a loaded reply whose quote is hidden (its
// parent's sender is one this user blocked) keeps it hidden when an
// event of the parent reaches the view anyway, as one in flight when
// the block was made does after a page read since: neither an edit nor
// a delete fills in the parent's text or state. A quote of a parent
// this user sees follows both.
func TestHiddenQuoteStaysHidden(t *testing.T) {
	c, err := New("http://127.0.0.1:1", WithToken("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hiddenQuote := &parley.Quote{MessageID: "m1", Seq: 1, Hidden: true}
	shown := parley.Message{ID: "m2", ConversationID: "c1", Seq: 2, SenderID: "carol", Text: "shown"}
	v := &ConversationView{c: c, id: "c1", pageSize: 10, syncing: true}
	v.msgs = []parley.Message{
		shown,
		{ID: "m3", ConversationID: "c1", Seq: 3, SenderID: "carol", Text: "re bob", ReplyTo: hiddenQuote},
		{ID: "m4", ConversationID: "c1", Seq: 4, SenderID: "carol", Text: "re carol",
			ReplyTo: &parley.Quote{MessageID: "m2", Seq: 2, SenderID: "carol", SenderName: "Carol", Type: parley.Text, Text: "shown"}},
	}
	v.buf = []Event{MessageEdited{Message: parley.Message{ID: "m1", ConversationID: "c1", Seq: 1, SenderID: "bob", Text: "bob's secret, edited"}}}
	v.finishSync()
	v.apply(MessageDeleted{Message: parley.Message{ID: "m1", ConversationID: "c1", Seq: 1, SenderID: "bob", Deleted: true}})
	shown.Text = "shown, edited"
	v.apply(MessageEdited{Message: shown})

	got := v.Messages()
	if len(got) != 3 {
		t.Fatalf("view holds %+v", got)
	}
	if q := got[1].ReplyTo; q == nil || *q != *hiddenQuote {
		t.Errorf("the hidden quote became %+v, want %+v", q, hiddenQuote)
	}
	if q := got[2].ReplyTo; q == nil || q.Text != "shown, edited" {
		t.Errorf("the quote of a shown message is %+v, want its edit", q)
	}
}
