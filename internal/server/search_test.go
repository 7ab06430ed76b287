package server_test

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// resultIDs returns the ids of a page's messages.
func resultIDs(p parley.SearchPage) []string {
	out := make([]string, len(p.Results))
	for i, r := range p.Results {
		out[i] = r.Message.ID
	}
	return out
}

func TestMentionsOverWebSocket(t *testing.T) {
	srv := servertest.Start(t)
	a, b, x, conv := threeInAGroup(t, srv)
	m := a.send(conv.ID, "m1", "hey @BOB and @carol, and @alice")
	if !slices.Equal(m.Mentions, []string{"bob"}) {
		t.Fatalf("send reply mentions = %v, want [bob] (carol is no member, alice the sender)", m.Mentions)
	}
	if ev := b.event(parley.EventNewMessage); !slices.Equal(ev.Message.Mentions, []string{"bob"}) {
		t.Fatalf("newMessage mentions = %v", ev.Message.Mentions)
	}
	var c parley.Conversation
	b.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: conv.ID}, &c)
	if c.UnreadCount != 1 || c.UnreadMentions != 1 {
		t.Fatalf("unread %d, mentions %d; want 1, 1", c.UnreadCount, c.UnreadMentions)
	}
	var page parley.SearchPage
	b.do(protocol.OpMentions, protocol.Mentions{}, &page)
	if !slices.Equal(resultIDs(page), []string{m.ID}) || page.HasMore {
		t.Fatalf("mentions = %+v", page)
	}
	// The same over HTTP, one service.
	r := httpDo(t, srv, "GET", "/v1/mentions?limit=5", srv.Token(t, "bob", "Bob"), "")
	if hp := decodeJSON[parley.SearchPage](t, r.body); r.status != 200 || !slices.Equal(resultIDs(hp), []string{m.ID}) {
		t.Fatalf("GET /v1/mentions: %d %s", r.status, r.body)
	}
	x.do(protocol.OpMentions, protocol.Mentions{}, &page)
	if len(page.Results) != 0 {
		t.Fatalf("carol's mentions = %+v", page)
	}
	// An edit that drops the mention: the event says so, the list and
	// the unread mentions follow.
	var edited parley.Message
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e1", Text: "never mind"}, &edited)
	if ev := b.event(parley.EventMessageEdited); len(ev.Message.Mentions) != 0 {
		t.Fatalf("messageEdited mentions = %v, want none", ev.Message.Mentions)
	}
	b.do(protocol.OpMentions, protocol.Mentions{}, &page)
	b.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: conv.ID}, &c)
	if len(page.Results) != 0 || c.UnreadMentions != 0 {
		t.Fatalf("after the edit: mentions %+v, unread mentions %d", page, c.UnreadMentions)
	}
	for _, d := range []protocol.Mentions{{Limit: -1}, {Limit: parley.MaxSearchLimit + 1}, {Cursor: "nope"}} {
		if code := b.fail(protocol.OpMentions, d); code != parley.EINVALID {
			t.Errorf("mentions %+v: %s, want invalid", d, code)
		}
	}
}

func TestSearchOverWebSocket(t *testing.T) {
	srv := servertest.Start(t)
	a, b, x, conv := threeInAGroup(t, srv)
	var sent []string
	for i := range 3 {
		sent = append(sent, a.send(conv.ID, fmt.Sprintf("s%d", i), fmt.Sprintf("<b>Quokka</b> number %d & more", i)).ID)
	}
	a.send(conv.ID, "s9", "unrelated")
	slices.Reverse(sent) // newest first

	var page parley.SearchPage
	b.do(protocol.OpSearch, protocol.Search{Query: "quokka"}, &page)
	if !slices.Equal(resultIDs(page), sent) || page.HasMore {
		t.Fatalf("search = %v, want %v", resultIDs(page), sent)
	}
	// Highlights: parts, never markup; they make up the text exactly.
	r := page.Results[0]
	want := []parley.HighlightPart{{Text: "<b>"}, {Text: "Quokka", Match: true}, {Text: "</b> number 2 & more"}}
	if !slices.Equal(r.Highlight, want) {
		t.Fatalf("highlight = %+v, want %+v", r.Highlight, want)
	}
	// Page by page with the cursor, and over HTTP with the same answer.
	var got []string
	cursor := ""
	for {
		b.do(protocol.OpSearch, protocol.Search{Query: "quokka", Cursor: cursor, Limit: 1}, &page)
		got = append(got, resultIDs(page)...)
		if !page.HasMore {
			break
		}
		cursor = page.Next
	}
	if !slices.Equal(got, sent) {
		t.Fatalf("paged search = %v, want %v", got, sent)
	}
	tok := srv.Token(t, "bob", "Bob")
	resp := httpDo(t, srv, "GET", "/v1/search?q=QUOK*&conversation_id="+url.QueryEscape(conv.ID), tok, "")
	if hp := decodeJSON[parley.SearchPage](t, resp.body); resp.status != 200 || !slices.Equal(resultIDs(hp), sent) {
		t.Fatalf("GET /v1/search: %d %s", resp.status, resp.body)
	}

	// A non-member finds nothing, and gets not_found for the conversation.
	x.do(protocol.OpSearch, protocol.Search{Query: "quokka"}, &page)
	if len(page.Results) != 0 {
		t.Fatalf("a non-member found %v", resultIDs(page))
	}
	if code := x.fail(protocol.OpSearch, protocol.Search{Query: "quokka", ConversationID: conv.ID}); code != parley.ENOTFOUND {
		t.Fatalf("a non-member's search in the conversation: %s", code)
	}
	if resp := httpDo(t, srv, "GET", "/v1/search?q=quokka&conversation_id="+url.QueryEscape(conv.ID), srv.Token(t, "carol", "Carol"), ""); resp.status != 404 {
		t.Fatalf("GET /v1/search by a non-member: %d %s", resp.status, resp.body)
	}
	// Deleted messages never match.
	a.do(protocol.OpDelete, protocol.Delete{ConversationID: conv.ID, MessageID: sent[0]}, nil)
	b.do(protocol.OpSearch, protocol.Search{Query: "quokka"}, &page)
	if !slices.Equal(resultIDs(page), sent[1:]) {
		t.Fatalf("after a delete: %v, want %v", resultIDs(page), sent[1:])
	}

	for _, d := range []protocol.Search{
		{},
		{Query: "  ,;  "},
		{Query: strings.Repeat("a", parley.MaxSearchQueryBytes+1)},
		{Query: "x", Limit: parley.MaxSearchLimit + 1},
		{Query: "x", Cursor: "not-a-cursor"},
	} {
		if code := b.fail(protocol.OpSearch, d); code != parley.EINVALID {
			t.Errorf("search %+v: %s, want invalid", d, code)
		}
	}
}

// TestSearchRateLimited: searches take from their own bucket, shared by
// the op and the route.
func TestSearchRateLimited(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Limits.SearchesPerSecond, c.Limits.SearchBurst = 0.001, 2
	}))
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	a.do(protocol.OpSearch, protocol.Search{Query: "one"}, nil)
	r := httpDo(t, srv, "GET", "/v1/search?q=two", srv.Token(t, "alice", "Alice"), "")
	if r.status != 200 {
		t.Fatalf("second search over HTTP: %d %s", r.status, r.body)
	}
	f := a.call(protocol.OpSearch, protocol.Search{Query: "three"})
	if f.Error == nil || f.Error.Code != parley.ERATELIMITED || f.Error.RetryAfterMS <= 0 {
		t.Fatalf("third search: %s %+v, want rate_limited with retry_after_ms", f.Type, f.Error)
	}
	// A refused query takes no token: it is checked first.
	if code := a.fail(protocol.OpSearch, protocol.Search{Query: "!"}); code != parley.EINVALID {
		t.Fatalf("an empty query over the limit: %s, want invalid", code)
	}
}

// TestSearchReplyByteCap: a page of long results is cut to the reply
// budget; following next still gives each result once.
func TestSearchReplyByteCap(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Limits.SendQueueBytes = 32 << 10 }))
	a, _, _, conv := threeInAGroup(t, srv)
	var sent []string
	for i := range 6 {
		sent = append(sent, a.send(conv.ID, fmt.Sprintf("long%d", i), "wombat "+strings.Repeat("x", 3000)).ID)
	}
	slices.Reverse(sent)
	var (
		got    []string
		cursor string
		pages  int
	)
	for {
		var page parley.SearchPage
		a.do(protocol.OpSearch, protocol.Search{Query: "wombat", Cursor: cursor, Limit: parley.MaxSearchLimit}, &page)
		pages++
		got = append(got, resultIDs(page)...)
		if !page.HasMore {
			break
		}
		if page.Next == "" || pages > len(sent) {
			t.Fatalf("page %d: has_more with next %q", pages, page.Next)
		}
		cursor = page.Next
	}
	if !slices.Equal(got, sent) || pages < 2 {
		t.Fatalf("%d pages gave %v, want %v in more than one page", pages, got, sent)
	}
}
