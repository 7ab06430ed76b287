package server_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
)

// FuzzConversationsQuery sends arbitrary query strings to GET
// /v1/conversations: the conversations cursor is the server's own text
// ("<unix nanoseconds>:<id>"), parsed from what a client sends back.
//
// Properties: never a 5xx; a limit that is no integer in 0..1000 is 400
// invalid; otherwise 200, or 400 invalid for a cursor the server did not
// give; a page holds at most limit conversations (as many as fit when 0),
// each once, and says has_more with next when it holds fewer than there
// are after its cursor.
func FuzzConversationsQuery(f *testing.F) {
	for _, s := range []string{
		"", "limit=1", "limit=0", "limit=1000", "limit=1001", "limit=-1", "limit=x", "limit=99999999999999999999",
		"cursor=", "cursor=1:x", "cursor=x", "cursor=:", "cursor=1:", "cursor=-9223372036854775808:%00",
		"cursor=9223372036854775807:zz&limit=2", "cursor=1%3Aa", "cursor=1:%FF", "cursor=1:a&cursor=2:b",
	} {
		f.Add(s)
	}
	srv, tok, _ := directWithMessages(f, 1)
	for _, other := range []string{"carol", "dave", "erin"} {
		srv.Token(f, other, other)
		httpDo(f, srv, "POST", "/v1/conversations/direct", tok, `{"user_id":"`+other+`"}`)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if !requestable(raw) {
			return
		}
		r := getQuery(t, srv, "/v1/conversations", raw, tok)
		q, _ := url.ParseQuery(raw)
		limit, ok := intParam(q, "limit")
		if !ok || limit < 0 || limit > server.MaxConversationsPage {
			pageAnswer(t, raw, r, false)
			return
		}
		if r.status == 400 && strings.Contains(string(r.body), `"invalid"`) && q.Get("cursor") != "" {
			return // a cursor the server did not give
		}
		if !pageAnswer(t, raw, r, true) {
			return
		}
		var page struct {
			Conversations []parley.Conversation
			HasMore       bool `json:"has_more"`
			Next          string
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if limit > 0 && int64(len(page.Conversations)) > limit {
			t.Fatalf("GET ?%s: %d conversations, limit %d", raw, len(page.Conversations), limit)
		}
		seen := map[string]bool{}
		for _, c := range page.Conversations {
			if seen[c.ID] {
				t.Fatalf("GET ?%s: conversation %s twice", raw, c.ID)
			}
			seen[c.ID] = true
		}
		if page.HasMore != (page.Next != "") {
			t.Fatalf("GET ?%s: has_more %v with next %q", raw, page.HasMore, page.Next)
		}
	})
}

// FuzzSearchQuery sends arbitrary query strings to GET /v1/search and GET
// /v1/mentions: the query is cut into words by the server
// (parley.SearchTerms), and the cursors are the stores' own (base64 of
// their key), parsed from what a client sends back.
//
// Properties: never a 5xx; a refusal is 400 invalid (or 404 not_found
// for a conversation_id the user is not in); a page holds at most limit
// results (default parley.DefaultSearchLimit), each message once, and a
// search result's highlight parts join up to its message's text.
func FuzzSearchQuery(f *testing.F) {
	for _, s := range []string{
		"q=m", "q=m*", "q=", "q=%00", "q=%FF", "q=*", "q=a+b+c+d+e+f+g+h+i+j", "q=m&limit=1", "q=m&limit=51",
		"q=m&limit=-1", "q=m&cursor=cw", "q=m&cursor=czk5", "q=m&cursor=%00", "q=m&conversation_id=x",
		"q=m&conversation_id=%00", "cursor=", "cursor=bTE6eA", "cursor=bQ", "cursor=!!", "limit=50", "limit=x",
	} {
		f.Add("/v1/search", s)
		f.Add("/v1/mentions", s)
	}
	srv, tok, conv := directWithMessages(f, 12)
	f.Fuzz(func(t *testing.T, path, raw string) {
		if path != "/v1/search" && path != "/v1/mentions" || !requestable(raw) {
			return
		}
		raw = strings.ReplaceAll(raw, "CONV", conv)
		r := getQuery(t, srv, path, raw, tok)
		if r.status >= 400 {
			if r.status != 400 && r.status != 404 || !strings.Contains(string(r.body), `"invalid"`) && !strings.Contains(string(r.body), `"not_found"`) {
				t.Fatalf("GET %s?%s: %d %s, want 200, 400 invalid or 404 not_found", path, raw, r.status, r.body)
			}
			return
		}
		q, _ := url.ParseQuery(raw)
		limit, ok := intParam(q, "limit")
		if !ok || limit < 0 || limit > parley.MaxSearchLimit {
			t.Fatalf("GET %s?%s: 200 for limit %q", path, raw, q.Get("limit"))
		}
		if limit == 0 {
			limit = parley.DefaultSearchLimit
		}
		var page parley.SearchPage
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if int64(len(page.Results)) > limit {
			t.Fatalf("GET %s?%s: %d results, limit %d", path, raw, len(page.Results), limit)
		}
		seen := map[string]bool{}
		for _, res := range page.Results {
			if seen[res.Message.ID] {
				t.Fatalf("GET %s?%s: message %s twice", path, raw, res.Message.ID)
			}
			seen[res.Message.ID] = true
			if res.Highlight == nil {
				continue
			}
			var text strings.Builder
			for _, p := range res.Highlight {
				text.WriteString(p.Text)
			}
			if text.String() != res.Message.Text {
				t.Fatalf("GET %s?%s: highlight %+v does not join to %q", path, raw, res.Highlight, res.Message.Text)
			}
		}
	})
}
