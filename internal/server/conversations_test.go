package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// seedGroups makes alice a member of n groups, each with a 100-character
// title and `members` other members with long names, straight in the
// store (no events published), so the list's JSON is large. It returns
// the group ids.
func seedGroups(t *testing.T, srv *servertest.Server, n, members int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := srv.Store.EnsureUser(ctx, "alice", "alice"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range members {
		id := fmt.Sprintf("member-%02d", i)
		if _, err := srv.Store.EnsureUser(ctx, id, id+strings.Repeat("x", 20)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var (
		mu    sync.Mutex
		convs []string
		wg    sync.WaitGroup
	)
	errs := make(chan error, 4)
	for w := range 4 { // concurrent creates share the store's batches
		wg.Go(func() {
			for i := w; i < n; i += 4 {
				title := fmt.Sprintf("%04d", i) + strings.Repeat("t", parley.MaxTitleRunes-4)
				c, _, err := srv.Store.CreateGroup(ctx, "alice", title, ids)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				convs = append(convs, c.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return convs
}

// TestConversationsDefaultPage: with no limit, a page holds at most
// ConvChunk conversations (the store reads one page, not the list), then
// the rest follows the cursor.
func TestConversationsDefaultPage(t *testing.T) {
	srv := servertest.Start(t)
	srv.Server.SetHTTPReplyBytes(4 << 20) // the bound here is the count, not the bytes
	want := seedGroups(t, srv, server.ConvChunk+5, 0)
	aTok := srv.Token(t, "alice", "alice")
	var got []parley.Conversation
	cursor := ""
	var sizes []int
	for len(sizes) < 3 {
		r := httpDo(t, srv, "GET", "/v1/conversations?cursor="+url.QueryEscape(cursor), aTok, "")
		if r.status != 200 {
			t.Fatalf("GET /v1/conversations: %d %s", r.status, r.body)
		}
		p := decodeJSON[protocol.ConversationList](t, r.body)
		got = append(got, p.Conversations...)
		sizes = append(sizes, len(p.Conversations))
		if !p.HasMore {
			break
		}
		cursor = p.Next
	}
	if !slices.Equal(sizes, []int{server.ConvChunk, 5}) {
		t.Fatalf("pages of %v conversations, want [%d 5]", sizes, server.ConvChunk)
	}
	checkConversationOrder(t, "default pages", got, want)
}

// TestConversationsReplyByteCap: a user in more conversations than fit in
// one reply gets pages cut to the reply cap with has_more and next, and a
// client following next gets every conversation exactly once, newest
// activity first, on the WebSocket and over HTTP, with and without limit.
func TestConversationsReplyByteCap(t *testing.T) {
	// A small send queue and HTTP cap (8 KiB of conversations a page on
	// both) let 60 conversations of about 500 bytes fill several pages.
	const capBytes = 8 << 10
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Limits.SendQueueBytes = 2 * capBytes }))
	srv.Server.SetHTTPReplyBytes(capBytes)
	want := seedGroups(t, srv, 60, 3)
	aTok := srv.Token(t, "alice", "alice")
	a := connectCaughtUp(t, srv, aTok)

	ws := func(q protocol.Conversations) (protocol.ConversationList, int) {
		f := a.call(protocol.OpConversations, q)
		if f.Type != protocol.TypeReply {
			t.Fatalf("conversations %+v: %s %+v", q, f.Type, f.Error)
		}
		return decodeJSON[protocol.ConversationList](t, f.Data), len(f.Data)
	}
	overHTTP := func(q protocol.Conversations) (protocol.ConversationList, int) {
		r := httpDo(t, srv, "GET", fmt.Sprintf("/v1/conversations?cursor=%s&limit=%d", url.QueryEscape(q.Cursor), q.Limit), aTok, "")
		if r.status != 200 {
			t.Fatalf("GET /v1/conversations: %d %s", r.status, r.body)
		}
		return decodeJSON[protocol.ConversationList](t, r.body), len(r.body)
	}
	for name, get := range map[string]func(protocol.Conversations) (protocol.ConversationList, int){"ws": ws, "http": overHTTP} {
		for _, limit := range []int{0, 7} {
			var got []parley.Conversation
			q := protocol.Conversations{Limit: limit}
			pages := 0
			for ; ; pages++ {
				p, size := get(q)
				if len(p.Conversations) == 0 {
					t.Fatalf("%s limit %d: an empty page", name, limit)
				}
				if size > capBytes+1024 {
					t.Fatalf("%s limit %d: a reply of %d bytes, over the cap", name, limit, size)
				}
				if limit > 0 && len(p.Conversations) > limit {
					t.Fatalf("%s: %d conversations, over the limit %d", name, len(p.Conversations), limit)
				}
				got = append(got, p.Conversations...)
				if !p.HasMore {
					if p.Next != "" {
						t.Fatalf("%s limit %d: next %q on the last page", name, limit, p.Next)
					}
					break
				}
				if p.Next == "" {
					t.Fatalf("%s limit %d: has_more without next", name, limit)
				}
				q.Cursor = p.Next
			}
			if pages == 0 {
				t.Fatalf("%s limit %d: one page for %d conversations: the reply was not cut", name, limit, len(want))
			}
			checkConversationOrder(t, fmt.Sprintf("%s limit %d", name, limit), got, want)
			t.Logf("%s limit %d: %d conversations in %d pages", name, limit, len(got), pages+1)
		}
	}

	// A cursor the server did not give is refused.
	for _, c := range []string{"x", "12", "12:", ":id", "1.5:id"} {
		if f := a.call(protocol.OpConversations, protocol.Conversations{Cursor: c}); f.Type != protocol.TypeError || f.Error.Code != parley.EINVALID {
			t.Errorf("cursor %q: %s %+v, want invalid", c, f.Type, f.Error)
		}
	}
	if r := httpDo(t, srv, "GET", "/v1/conversations?limit=1001", aTok, ""); r.status != 400 {
		t.Errorf("limit 1001: %d, want 400", r.status)
	}
}

// checkConversationOrder says got holds every id of want exactly once,
// newest activity first (ties by id, descending).
func checkConversationOrder(t *testing.T, name string, got []parley.Conversation, want []string) {
	t.Helper()
	seen := make(map[string]bool, len(got))
	for i, cv := range got {
		if seen[cv.ID] {
			t.Fatalf("%s: conversation %s twice", name, cv.ID)
		}
		seen[cv.ID] = true
		if i > 0 {
			p := got[i-1]
			if p.LastActivityAt.Before(cv.LastActivityAt) || p.LastActivityAt.Equal(cv.LastActivityAt) && p.ID < cv.ID {
				t.Fatalf("%s: %s (%v) after %s (%v): out of order", name, cv.ID, cv.LastActivityAt, p.ID, p.LastActivityAt)
			}
		}
	}
	for _, id := range want {
		if !seen[id] {
			t.Fatalf("%s: conversation %s missing", name, id)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d conversations, want %d", name, len(got), len(want))
	}
}

// connectCaughtUp connects once the hub has delivered everything in the
// store. Events written straight to the store (seedGroups) reach the hub
// at its next head poll; a connection registered before that would get
// them all live at once, over a small send queue's budget (4001).
func connectCaughtUp(t *testing.T, srv *servertest.Server, tok string) *wsClient {
	t.Helper()
	head, err := srv.Store.Head(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := connect(t, srv, tok, nil)
		if c.welcome.Head >= head {
			return c
		}
		c.ws.CloseNow()
		if time.Now().After(deadline) {
			t.Fatalf("the hub did not reach the store's head %d (welcome head %d)", head, c.welcome.Head)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFlagsAcrossDevices: mute and archive over the op and the HTTP route
// alike reach every connection of the user (another device) as a durable
// flagsChanged, and nobody else; a resume replays it; a new message ends
// the archive; a non-member and a removed member get not_found.
func TestFlagsAcrossDevices(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, bobTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	malloryTok := srv.Token(t, "mallory", "Mallory")
	phone, laptop := connect(t, srv, aliceTok, nil), connect(t, srv, aliceTok, nil)
	b := connect(t, srv, bobTok, nil)
	m := connect(t, srv, malloryTok, nil)

	var g parley.Conversation
	phone.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob"}}, &g)
	created := laptop.event(parley.EventConversationUpdated)
	b.event(parley.EventConversationUpdated)

	yes := true
	var got parley.Conversation
	phone.do(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID, Muted: &yes}, &got)
	if !got.Muted || got.Archived {
		t.Fatalf("mute reply: %+v", got)
	}
	phone.event(parley.EventFlagsChanged) // the device that asked hears it too
	ev := laptop.event(parley.EventFlagsChanged)
	if ev.Flags == nil || !ev.Flags.Muted || ev.Flags.Archived || ev.UserID != "alice" || ev.Pos == 0 {
		t.Fatalf("the other device heard %+v", ev)
	}
	resp := httpDo(t, srv, "PATCH", "/v1/conversations/"+g.ID+"/flags", aliceTok, `{"archived":true}`)
	if resp.status != http.StatusOK || !decodeJSON[parley.Conversation](t, resp.body).Archived {
		t.Fatalf("archive over HTTP: %d %s", resp.status, resp.body)
	}
	if ev := phone.event(parley.EventFlagsChanged); !ev.Flags.Archived || !ev.Flags.Muted {
		t.Fatalf("the phone heard %+v", ev)
	}
	// Bob hears none of it: events come in position order, so any would
	// be among the frames before his own message's event.
	b.send(g.ID, "b1", "news")
	b.event(parley.EventNewMessage)
	for _, f := range b.pending {
		if f.Type == protocol.TypeEvent && strings.Contains(string(f.Data), `"flagsChanged"`) {
			t.Fatalf("bob heard alice's flags: %s", f.Data)
		}
	}
	// The message ended the archive; the mute stays.
	laptop.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: g.ID}, &got)
	if got.Archived || !got.Muted {
		t.Errorf("after a new message: %+v", got)
	}
	// A device resuming from before replays both changes.
	tablet := connect(t, srv, aliceTok, &created.Pos)
	if e1, e2 := tablet.event(parley.EventFlagsChanged), tablet.event(parley.EventFlagsChanged); e1.Flags.Archived || !e2.Flags.Archived {
		t.Errorf("replayed %+v then %+v", e1.Flags, e2.Flags)
	}

	// Refusals: nothing to change, a non-member, a removed member.
	if code := phone.fail(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID}); code != parley.EINVALID {
		t.Errorf("empty set_flags: %s, want invalid", code)
	}
	if code := m.fail(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID, Muted: &yes}); code != parley.ENOTFOUND {
		t.Errorf("non-member: %s, want not_found", code)
	}
	if resp := httpDo(t, srv, "PATCH", "/v1/conversations/"+g.ID+"/flags", malloryTok, `{"muted":true}`); resp.status != http.StatusNotFound {
		t.Errorf("non-member over HTTP: %d, want 404", resp.status)
	}
	phone.do(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: g.ID, Remove: []string{"bob"}}, nil)
	if code := b.fail(protocol.OpSetFlags, protocol.SetFlags{ConversationID: g.ID, Archived: &yes}); code != parley.ENOTFOUND {
		t.Errorf("removed member: %s, want not_found", code)
	}
}
