package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// failWith calls op and checks it fails with want (code and message).
func (c *wsClient) failWith(op string, data any, want *parley.Error) {
	c.t.Helper()
	f := c.call(op, data)
	if f.Type != protocol.TypeError || f.Error == nil || f.Error.Code != want.Code || f.Error.Message != want.Message {
		c.t.Errorf("%s: got %s %+v %s, want %v", op, f.Type, f.Error, f.Data, want)
	}
}

// eventBy waits for the next event of type typ by user.
func (c *wsClient) eventBy(typ parley.EventType, user string) parley.Event {
	c.t.Helper()
	f := c.waitFor(func(f protocol.Frame) bool {
		var ev parley.Event
		return f.Type == protocol.TypeEvent && json.Unmarshal(f.Data, &ev) == nil && ev.Type == typ && ev.UserID == user
	})
	var ev parley.Event
	json.Unmarshal(f.Data, &ev)
	return ev
}

// heardNone fails if a frame read so far (pending) is an event of typ by
// user: call it after waiting for an event that follows in position order.
func (c *wsClient) heardNone(typ parley.EventType, user string) {
	c.t.Helper()
	for _, f := range c.pending {
		var ev parley.Event
		if f.Type == protocol.TypeEvent && json.Unmarshal(f.Data, &ev) == nil && ev.Type == typ && ev.UserID == user {
			c.t.Errorf("heard %s", f.Data)
		}
	}
}

// TestBlockOverWebSocket: every reach of a blocked user is refused with
// the documented error, over the WebSocket and HTTP alike; their group
// messages, and the blocker's read receipts, typing and presence, no
// longer cross the block; the blocker's devices sync the list; unblock
// restores.
func TestBlockOverWebSocket(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, bobTok, carolTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob"), srv.Token(t, "carol", "Carol")
	phone, laptop := connect(t, srv, aliceTok, nil), connect(t, srv, aliceTok, nil)
	b, c := connect(t, srv, bobTok, nil), connect(t, srv, carolTok, nil)

	var direct, g parley.Conversation
	b.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "alice"}, &direct)
	b.send(direct.ID, "b0", "hi alice")
	phone.send(direct.ID, "a0", "hi bob") // contacts now
	phone.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob", "carol"}}, &g)
	b.event(parley.EventConversationUpdated)

	var res protocol.BlockResult
	phone.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, &res)
	if !res.Blocked || res.UserID != "bob" {
		t.Fatalf("block reply %+v", res)
	}
	if ev := laptop.event(parley.EventUserBlocked); ev.Pos == 0 || len(ev.UserIDs) != 1 || ev.UserIDs[0] != "bob" {
		t.Fatalf("the other device heard %+v", ev)
	}
	// Bob sees alice go offline: her presence no longer reaches him.
	b.event(parley.EventUserOffline)
	// What came before the block is of no interest to heardNone below.
	phone.pending, b.pending = nil, nil

	// Bob cannot reach alice: one error for everything, over both APIs.
	b.failWith(protocol.OpSend, protocol.Send{ConversationID: direct.ID, ClientID: "b1", Text: "hello?"}, parley.ErrUnreachable)
	resp := httpDo(t, srv, "POST", "/v1/conversations/"+direct.ID+"/messages", bobTok, `{"client_id":"b2","text":"hello?"}`)
	if resp.status != http.StatusForbidden || !strings.Contains(string(resp.body), parley.ErrUnreachable.Message) {
		t.Errorf("bob's HTTP send: %d %s", resp.status, resp.body)
	}
	b.failWith(protocol.OpCreateGroup, protocol.CreateGroup{Title: "bob's", MemberIDs: []string{"alice"}}, parley.ErrUnreachable)
	var bg parley.Conversation
	b.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "bob's", MemberIDs: []string{"carol"}}, &bg)
	b.failWith(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: bg.ID, Add: []string{"alice"}}, parley.ErrUnreachable)
	resp = httpDo(t, srv, "POST", "/v1/conversations/group", bobTok, `{"title":"x","member_ids":["alice"]}`)
	if resp.status != http.StatusForbidden {
		t.Errorf("bob's HTTP group with alice: %d %s", resp.status, resp.body)
	}

	// In the group, bob's message reaches carol, not alice; alice's read
	// and typing do not reach bob.
	bm := b.send(g.ID, "b3", "psst")
	c.event(parley.EventNewMessage)
	phone.do(protocol.OpTyping, protocol.Typing{ConversationID: g.ID, Typing: true}, nil)
	c.event(parley.EventTypingStarted)
	phone.do(protocol.OpRead, protocol.Read{ConversationID: g.ID, Seq: bm.Seq}, nil)
	c.do(protocol.OpTyping, protocol.Typing{ConversationID: g.ID, Typing: true}, nil)
	c.do(protocol.OpRead, protocol.Read{ConversationID: g.ID, Seq: bm.Seq}, nil)
	c.send(g.ID, "c1", "ok")
	// Events come in position order: alice's read, before carol's, would
	// be among the frames bob read until then.
	for _, e := range []parley.EventType{parley.EventTypingStarted, parley.EventMessageRead, parley.EventNewMessage} {
		b.eventBy(e, "carol")
	}
	b.heardNone(parley.EventMessageRead, "alice")
	b.heardNone(parley.EventTypingStarted, "alice")
	phone.eventBy(parley.EventNewMessage, "carol")
	phone.heardNone(parley.EventNewMessage, "bob")
	var page parley.MessagePage
	phone.do(protocol.OpHistory, protocol.History{ConversationID: g.ID}, &page)
	for _, m := range page.Messages {
		if m.SenderID == "bob" {
			t.Errorf("alice's history holds bob's %q", m.Text)
		}
	}
	var pres protocol.PresenceList
	b.do(protocol.OpPresence, nil, &pres)
	for _, id := range pres.Online {
		if id == "alice" {
			t.Error("bob sees alice online")
		}
	}

	// Refusals of the op itself.
	for _, tc := range []struct {
		d    protocol.UserRef
		code string
	}{{protocol.UserRef{}, parley.EINVALID}, {protocol.UserRef{UserID: "alice"}, parley.EINVALID}, {protocol.UserRef{UserID: "nobody"}, parley.ENOTFOUND}} {
		if code := phone.fail(protocol.OpBlock, tc.d); code != tc.code {
			t.Errorf("block %+v: %s, want %s", tc.d, code, tc.code)
		}
	}
	if resp := httpDo(t, srv, "PUT", "/v1/me/blocked/nobody", aliceTok, ``); resp.status != http.StatusNotFound {
		t.Errorf("blocking nobody over HTTP: %d", resp.status)
	}

	// The list, then unblock over HTTP: the phone hears it, bob can write.
	resp = httpDo(t, srv, "GET", "/v1/me/privacy", aliceTok, ``)
	if p := decodeJSON[parley.Privacy](t, resp.body); resp.status != http.StatusOK || len(p.Blocked) != 1 || p.Blocked[0].UserID != "bob" || p.Consent != parley.ConsentEveryone {
		t.Errorf("GET /v1/me/privacy: %d %s", resp.status, resp.body)
	}
	if resp := httpDo(t, srv, "DELETE", "/v1/me/blocked/bob", aliceTok, ``); resp.status != http.StatusOK {
		t.Fatalf("unblock: %d %s", resp.status, resp.body)
	}
	phone.event(parley.EventUserUnblocked)
	b.send(direct.ID, "b4", "back")
	phone.do(protocol.OpHistory, protocol.History{ConversationID: g.ID}, &page)
	if !strings.Contains(string(mustJSON(t, page)), "psst") {
		t.Error("after the unblock, alice's history lacks bob's message")
	}
	// A device resuming from the start replays the list's changes.
	var zero int64
	tablet := connect(t, srv, aliceTok, &zero)
	tablet.event(parley.EventUserBlocked)
	tablet.event(parley.EventUserUnblocked)

	// A blocked user cannot start a direct conversation either.
	c.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, nil)
	b.failWith(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "carol"}, parley.ErrUnreachable)
}

// TestBlockedStrangerHearsNoPresence: a block ends the presence that
// crossed between the two, and tells nothing where none crossed. A
// stranger the blocker never answered hears nothing of the blocker at
// the block (a userOffline out of nowhere would tell them they were
// blocked), nor the blocker of them; a contact and the blocker hear
// userOffline of each other once; a user who had blocked the blocker
// first (no contacts since) hears nothing more when blocked back.
func TestBlockedStrangerHearsNoPresence(t *testing.T) {
	srv := servertest.Start(t)
	alice := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	bob := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	carol := connect(t, srv, srv.Token(t, "carol", "Carol"), nil)
	dave := connect(t, srv, srv.Token(t, "dave", "Dave"), nil)

	// Bob writes to alice, who never answers: a stranger to her.
	var d parley.Conversation
	bob.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "alice"}, &d)
	bob.send(d.ID, "b1", "hello?")
	// Carol and dave are alice's contacts: both wrote, and each side
	// heard the other is online.
	for _, c := range []struct {
		ws *wsClient
		id string
	}{{carol, "carol"}, {dave, "dave"}} {
		var dc parley.Conversation
		c.ws.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "alice"}, &dc)
		c.ws.send(dc.ID, "c1", "hi alice")
		alice.send(dc.ID, "a-"+c.id, "hi")
		c.ws.eventBy(parley.EventUserOnline, "alice")
		alice.eventBy(parley.EventUserOnline, c.id)
	}

	// block has by block user and returns, once the blocker's own device
	// has the block's event, the presence events about the blocker that
	// the blocked user holds, and about the blocked user that the
	// blocker holds: both were queued before that event
	// (Server.consentChanged).
	block := func(by, user *wsClient, byID, userID string) (toUser, toBlocker []string) {
		t.Helper()
		by.pending, user.pending = nil, nil
		by.do(protocol.OpBlock, protocol.UserRef{UserID: userID}, nil)
		by.event(parley.EventUserBlocked)
		return presenceAbout(t, user, byID), presenceAbout(t, by, userID)
	}
	offline := []string{string(parley.EventUserOffline)}

	if toBob, toAlice := block(alice, bob, "alice", "bob"); len(toBob) != 0 || len(toAlice) != 0 {
		t.Errorf("alice blocked bob, a stranger: bob heard %v about alice, alice %v about bob, want nothing", toBob, toAlice)
	}
	if toCarol, toAlice := block(alice, carol, "alice", "carol"); !slices.Equal(toCarol, offline) || !slices.Equal(toAlice, offline) {
		t.Errorf("alice blocked carol, a contact: carol heard %v about alice, alice %v about carol, want %v each", toCarol, toAlice, offline)
	}
	if toAlice, toDave := block(dave, alice, "dave", "alice"); !slices.Equal(toAlice, offline) || !slices.Equal(toDave, offline) {
		t.Errorf("dave blocked alice, a contact: alice heard %v about dave, dave %v about alice, want %v each", toAlice, toDave, offline)
	}
	if toDave, toAlice := block(alice, dave, "alice", "dave"); len(toDave) != 0 || len(toAlice) != 0 {
		t.Errorf("alice blocked dave back: dave heard %v about alice, alice %v about dave, want nothing more", toDave, toAlice)
	}
}

// TestRequestsAndConsent: a stranger's direct conversation is a request
// that reveals no read state, typing or presence until accepted; only the
// recipient answers it; a decline refuses the stranger's sends; an
// accept makes them contacts. To a contacts-only user, strangers can
// neither start a direct conversation nor add them to groups.
func TestRequestsAndConsent(t *testing.T) {
	srv := servertest.Start(t)
	daveTok, erinTok := srv.Token(t, "dave", "Dave"), srv.Token(t, "erin", "Erin")
	frankTok, graceTok := srv.Token(t, "frank", "Frank"), srv.Token(t, "grace", "Grace")
	d, e, e2 := connect(t, srv, daveTok, nil), connect(t, srv, erinTok, nil), connect(t, srv, erinTok, nil)
	f, g := connect(t, srv, frankTok, nil), connect(t, srv, graceTok, nil)

	var conv parley.Conversation
	d.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "erin"}, &conv)
	m := d.send(conv.ID, "d1", "hello erin, we have not met")
	var got parley.Conversation
	e.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: conv.ID}, &got)
	if got.Request != parley.RequestPending {
		t.Fatalf("erin's view: request %q", got.Request)
	}
	got = parley.Conversation{} // a reply without request leaves the field as it was
	d.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: conv.ID}, &got)
	if got.Request != "" {
		t.Errorf("dave's view: request %q", got.Request)
	}
	// Erin reads and types: dave hears neither.
	e.do(protocol.OpRead, protocol.Read{ConversationID: conv.ID, Seq: m.Seq}, nil)
	e.do(protocol.OpTyping, protocol.Typing{ConversationID: conv.ID, Typing: true}, nil)
	var pres protocol.PresenceList
	d.do(protocol.OpPresence, nil, &pres)
	if len(pres.Online) != 0 {
		t.Errorf("dave sees %v online", pres.Online)
	}
	// Only erin answers it.
	if code := d.fail(protocol.OpAcceptRequest, protocol.ConversationRef{ConversationID: conv.ID}); code != parley.EINVALID {
		t.Errorf("dave accepting: %s, want invalid", code)
	}
	if code := f.fail(protocol.OpAcceptRequest, protocol.ConversationRef{ConversationID: conv.ID}); code != parley.ENOTFOUND {
		t.Errorf("frank accepting: %s, want not_found", code)
	}
	if resp := httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/decline", frankTok, ``); resp.status != http.StatusNotFound {
		t.Errorf("frank declining over HTTP: %d", resp.status)
	}
	// Declined over HTTP: erin's other device hears it, dave is refused.
	resp := httpDo(t, srv, "POST", "/v1/conversations/"+conv.ID+"/decline", erinTok, ``)
	if v := decodeJSON[parley.Conversation](t, resp.body); resp.status != http.StatusOK || v.Request != parley.RequestDeclined {
		t.Fatalf("decline: %d %s", resp.status, resp.body)
	}
	e2.event(parley.EventRequestDeclined)
	d.failWith(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "d2", Text: "please"}, parley.ErrUnreachable)
	// Accepted after all: dave writes, erin's read reaches him.
	got = parley.Conversation{}
	e.do(protocol.OpAcceptRequest, protocol.ConversationRef{ConversationID: conv.ID}, &got)
	if got.Request != "" {
		t.Errorf("after accepting: request %q", got.Request)
	}
	e2.event(parley.EventRequestAccepted)
	// The accept shows dave the read the request hid; reads flow after.
	if ev := d.eventBy(parley.EventMessageRead, "erin"); ev.ReadSeq != m.Seq {
		t.Errorf("on the accept dave heard %+v, want erin's read of %d", ev, m.Seq)
	}
	m2 := d.send(conv.ID, "d3", "thank you")
	e.do(protocol.OpRead, protocol.Read{ConversationID: conv.ID, Seq: m2.Seq}, nil)
	if ev := d.eventBy(parley.EventMessageRead, "erin"); ev.ReadSeq != m2.Seq {
		t.Errorf("dave heard %+v, want erin's read of %d", ev, m2.Seq)
	}
	d.heardNone(parley.EventTypingStarted, "erin")

	// Erin accepts contacts only; her other device hears it.
	var p parley.Privacy
	e.do(protocol.OpSetPrivacy, protocol.SetPrivacy{Consent: parley.ConsentContacts}, &p)
	if p.Consent != parley.ConsentContacts {
		t.Errorf("set_privacy reply %+v", p)
	}
	if ev := e2.event(parley.EventPrivacyChanged); ev.Consent != parley.ConsentContacts {
		t.Errorf("the other device heard %+v", ev)
	}
	// Grace, a stranger, can neither start a direct conversation with
	// erin nor add her to a group, over both APIs; dave, a contact since
	// the accept, can.
	g.failWith(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "erin"}, parley.ErrUnreachable)
	if resp := httpDo(t, srv, "POST", "/v1/conversations/direct", graceTok, `{"user_id":"erin"}`); resp.status != http.StatusForbidden || !strings.Contains(string(resp.body), parley.ErrUnreachable.Message) {
		t.Errorf("grace's HTTP direct to erin: %d %s", resp.status, resp.body)
	}
	g.failWith(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"erin"}}, parley.ErrUnreachable)
	var gg parley.Conversation
	g.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g"}, &gg)
	g.failWith(protocol.OpUpdateConversation, protocol.UpdateConversation{ConversationID: gg.ID, Add: []string{"erin"}}, parley.ErrUnreachable)
	d.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "d", MemberIDs: []string{"erin"}}, nil)
	if code := e.fail(protocol.OpSetPrivacy, protocol.SetPrivacy{Consent: "friends"}); code != parley.EINVALID {
		t.Errorf("consent friends: %s, want invalid", code)
	}
	if resp := httpDo(t, srv, "PATCH", "/v1/me/privacy", erinTok, `{"consent":"everyone"}`); resp.status != http.StatusOK {
		t.Errorf("PATCH /v1/me/privacy: %d %s", resp.status, resp.body)
	}
	// Under everyone again, grace's conversation is a request.
	var gc parley.Conversation
	g.do(protocol.OpCreateDirect, protocol.CreateDirect{Username: "erin"}, &gc)
	got = parley.Conversation{}
	e.do(protocol.OpConversation, protocol.ConversationRef{ConversationID: gc.ID}, &got)
	if got.Request != parley.RequestPending {
		t.Errorf("grace's conversation under everyone: request %q", got.Request)
	}
}

// blockedTeam makes alice's group "team" with bob and carol, in which
// alice blocked bob, and closes alice's connection: it returns her token,
// bob's and carol's connections, the group and the position alice is
// at (her userBlocked event), to resume from.
func blockedTeam(t *testing.T, srv *servertest.Server) (aliceTok string, b, c *wsClient, g parley.Conversation, from int64) {
	t.Helper()
	aliceTok, bobTok, carolTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob"), srv.Token(t, "carol", "Carol")
	a := connect(t, srv, aliceTok, nil)
	b, c = connect(t, srv, bobTok, nil), connect(t, srv, carolTok, nil)
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob", "carol"}}, &g)
	a.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, nil)
	from = a.event(parley.EventUserBlocked).Pos
	a.ws.CloseNow()
	return aliceTok, b, c, g, from
}

// TestResumePastBlockedRun: a resume replays every event its user may see,
// however many events of a user they blocked come first. The replay reads
// the log a page at a time and takes a short page for its end; a page
// emptied by the block (more of bob's messages than the first page holds)
// once ended it there, and carol's message after them was never replayed.
func TestResumePastBlockedRun(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, b, c, g, from := blockedTeam(t, srv)

	for i := range 40 { // the replay's first page is 16 events, later ones larger
		b.send(g.ID, fmt.Sprint("b", i), fmt.Sprint("hidden ", i))
	}
	want := c.send(g.ID, "c0", "for alice")
	back := connect(t, srv, aliceTok, &from)
	got := back.eventBy(parley.EventNewMessage, "carol")
	if got.Message == nil || got.Message.ID != want.ID {
		t.Fatalf("replayed %+v, want carol's message %s", got, want.ID)
	}
	back.heardNone(parley.EventNewMessage, "bob")
}

// TestResumePastLongBlockedRun: a run of a blocked user's messages longer
// than a store read scans (parley.ReplayScan) cuts the replay's reads
// short, even empty; the replay reads on from where the store stopped
// until the head and gives every message after the run exactly once, in
// order, then resumed. The resume limit counts the events written, not
// the hidden ones. GET /v1/events pages over the same run by next.
func TestResumePastLongBlockedRun(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ResumeLimit = 100 }))
	aliceTok, b, c, g, from := blockedTeam(t, srv)
	b.ws.CloseNow()

	want := []string{"before", "after 1", "after 2"}
	c.send(g.ID, "c0", want[0])
	sendRun(t, srv, g.ID, "bob", 2*parley.ReplayScan+50)
	c.send(g.ID, "c1", want[1])
	c.send(g.ID, "c2", want[2])

	back := connect(t, srv, aliceTok, &from)
	evs, end := collectResume(t, back)
	if end.Type != protocol.TypeResumed {
		t.Fatalf("after %d events: %s, want resumed", len(evs), end.Type)
	}
	checkExactlyOnce(t, evs, from, want)
	if r := decodeJSON[protocol.Resumed](t, end.Data); r.Count != len(evs) || r.To != evs[len(evs)-1].Pos {
		t.Fatalf("resumed %+v after %d events ending at %d", r, len(evs), evs[len(evs)-1].Pos)
	}
	back.ws.CloseNow()

	// Over HTTP, two at a time: pages cut by the scan come back short or
	// empty with has_more and next.
	var got []parley.Event
	after, reads := from, 0
	for {
		if reads++; reads > 20 {
			t.Fatalf("still paging after %d reads at %d", reads, after)
		}
		r := httpDo(t, srv, "GET", fmt.Sprintf("/v1/events?after=%d&limit=2", after), aliceTok, "")
		p := decodeJSON[struct {
			Events  []parley.Event `json:"events"`
			HasMore bool           `json:"has_more"`
			Next    int64          `json:"next"`
		}](t, r.body)
		got = append(got, p.Events...)
		if !p.HasMore {
			if p.Next != 0 {
				t.Fatalf("a last page with next %d", p.Next)
			}
			break
		}
		if p.Next <= after || len(p.Events) > 0 && p.Next < p.Events[len(p.Events)-1].Pos {
			t.Fatalf("page after %d: %d events, next %d", after, len(p.Events), p.Next)
		}
		after = p.Next
	}
	checkExactlyOnce(t, got, from, want)
	if reads < 3 { // the run is over two scans long
		t.Fatalf("%d reads over a run of %d: the pages were not cut", reads, 2*parley.ReplayScan+50)
	}
}

// sendRun has user send n messages to conv at once through the store,
// published as the server's sends are, and returns when all are.
func sendRun(t *testing.T, srv *servertest.Server, conv, user string, n int) {
	t.Helper()
	nms := make([]parley.NewMessage, n)
	for i := range nms {
		nms[i] = parley.NewMessage{ConversationID: conv, SenderID: user, ClientID: fmt.Sprint("run-", i), Type: parley.Text, Text: fmt.Sprint("run ", i)}
	}
	ctx := t.Context()
	srv.Store.(parley.MultiSender).SendMessages(ctx, nms, func(i int, _ parley.Message, evs []parley.Event, err error) {
		if err == nil {
			err = srv.Broker.Publish(ctx, parley.BrokerMessage{Node: "run", Events: evs})
		}
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	})
}

// TestReactionsOnBlockedHidden: a blocked user's messages are hidden from
// the blocker, so are the reactions others put on them: the blocker
// hears no reactionAdded or reactionRemoved about such a message, live
// or replayed (they would name a message the blocker cannot see). A
// reaction on a message the blocker sees still reaches them.
func TestReactionsOnBlockedHidden(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, b, c, g, from := blockedTeam(t, srv)
	a := connect(t, srv, aliceTok, nil)

	bm := b.send(g.ID, "b0", "hidden")
	c.do(protocol.OpReact, protocol.React{ConversationID: g.ID, MessageID: bm.ID, Emoji: "👍"}, nil)
	c.do(protocol.OpReact, protocol.React{ConversationID: g.ID, MessageID: bm.ID, Emoji: "👍", Remove: true}, nil)
	cm := c.send(g.ID, "c0", "seen")
	c.do(protocol.OpReact, protocol.React{ConversationID: g.ID, MessageID: cm.ID, Emoji: "🎉"}, nil)
	c.send(g.ID, "c1", "barrier")

	check := func(who string, cl *wsClient) {
		t.Helper()
		if ev := cl.eventBy(parley.EventReactionAdded, "carol"); ev.MessageID != cm.ID {
			t.Errorf("%s: heard carol's reaction on %s, want only the one on her own message %s", who, ev.MessageID, cm.ID)
		}
		cl.eventBy(parley.EventNewMessage, "carol") // the barrier
		cl.heardNone(parley.EventReactionRemoved, "carol")
	}
	check("live", a)
	check("replayed", connect(t, srv, aliceTok, &from))

	resp := httpDo(t, srv, "GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", from), aliceTok, ``)
	page := decodeJSON[struct {
		Events []parley.Event `json:"events"`
	}](t, resp.body)
	if len(page.Events) == 0 {
		t.Fatalf("GET /v1/events: %d %s", resp.status, resp.body)
	}
	for _, ev := range page.Events {
		if ev.MessageID == bm.ID {
			t.Errorf("GET /v1/events holds %s on bob's message", ev.Type)
		}
	}
}

// TestTypingGoneSkipsBlocked: the typingStopped the server sends when a
// typist's last connection closes goes where their typing went: not to
// a member who blocked them (who never heard them start either).
func TestTypingGoneSkipsBlocked(t *testing.T) {
	srv := servertest.Start(t)
	aliceTok, bobTok, carolTok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob"), srv.Token(t, "carol", "Carol")
	a, b, c := connect(t, srv, aliceTok, nil), connect(t, srv, bobTok, nil), connect(t, srv, carolTok, nil)
	var g parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "team", MemberIDs: []string{"bob", "carol"}}, &g)
	a.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, nil)

	b.do(protocol.OpTyping, protocol.Typing{ConversationID: g.ID, Typing: true}, nil)
	c.eventBy(parley.EventTypingStarted, "bob")
	b.ws.CloseNow()
	c.eventBy(parley.EventTypingStopped, "bob")
	// A barrier for alice: carol's typing, published after bob's stop.
	c.do(protocol.OpTyping, protocol.Typing{ConversationID: g.ID, Typing: true}, nil)
	a.eventBy(parley.EventTypingStarted, "carol")
	a.heardNone(parley.EventTypingStarted, "bob")
	a.heardNone(parley.EventTypingStopped, "bob")
}
