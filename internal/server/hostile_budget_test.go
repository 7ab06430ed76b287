package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/membroker"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// liveHeap is the heap in use after a collection: what the process holds.
// Two collections: the first only moves sync.Pool's items to its victim
// cache.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// attackWindow is how long the budget tests watch the heap while an attack
// runs: long enough for the old, unbounded code to take hundreds of MiB
// (it took 748 MB in 4 s), and shorter than writeTimeout (10 s), after
// which the server drops a connection that does not read anyway. It bounds
// the sampling, it is not an assertion on speed.
const attackWindow = 4 * time.Second

// peakHeap samples the live heap during attackWindow and returns the
// largest growth over base.
func peakHeap(base uint64) uint64 {
	var peak uint64
	for end := time.Now().Add(attackWindow); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if h := liveHeap(); h > base && h-base > peak {
			peak = h - base
		}
	}
	return peak
}

const mib = 1 << 20

// seedConversation creates a direct conversation of alice and bob with n
// messages of text from alice, straight in the store (no client is
// connected yet, so nobody is sent their events), and waits until the
// server's hub has delivered them: a welcome's head covers them, so a
// resume replays them rather than receiving them live.
func seedConversation(t *testing.T, srv *servertest.Server, n int, text string) parley.Conversation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, u := range []string{"alice", "bob"} {
		if _, err := srv.Store.EnsureUser(ctx, u, u); err != nil {
			t.Fatal(err)
		}
	}
	conv, _, err := srv.Store.CreateDirect(ctx, "alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 { // concurrent sends share the store's batches
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				_, evs, err := srv.Store.SendMessage(ctx, parley.NewMessage{
					ConversationID: conv.ID, SenderID: "alice", ClientID: fmt.Sprint("seed-", i), Type: parley.Text, Text: text})
				if err == nil {
					err = srv.Broker.Publish(ctx, parley.BrokerMessage{Node: "seed", Events: evs})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	head, err := srv.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok := srv.Token(t, "bob", "bob")
	for ctx.Err() == nil {
		c := connect(t, srv, tok, nil)
		c.ws.CloseNow()
		if c.welcome.Head >= head {
			return conv
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the hub never delivered the seeded messages")
	return conv
}

// postMessage sends a text message over HTTP, from any goroutine.
func postMessage(srv *servertest.Server, token, convID, clientID, text string) error {
	body, _ := json.Marshal(protocol.Send{ClientID: clientID, Text: text})
	req, err := http.NewRequest("POST", srv.URL+"/v1/conversations/"+convID+"/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("send: status %d", resp.StatusCode)
	}
	return nil
}

// startUnhurried starts a server whose heartbeat timeout outlasts a
// flood test: its clients never ping, and on a loaded machine under -race
// the other client's answer (stillServed) has taken over the default 9 s,
// which closed it with 4002 before the answer came (CI, load 16).
func startUnhurried(t *testing.T) *servertest.Server {
	return servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.HeartbeatTimeout = 2 * time.Minute }))
}

// stillServed checks that a client connecting now is answered: a history
// page of conv and a ping. Its reads are bounded by a minute, not
// testWait: the attackers' replays or pages are read from the store until
// their sockets fill, and they share the store's few read connections
// with this client; under -race on a loaded machine, filling them has
// taken longer than testWait after attackWindow, and this client's
// history read waited that long for a connection (load 10). The
// bound is a liveness bound: the answer is checked, not its speed.
func stillServed(t *testing.T, srv *servertest.Server, token, convID string) {
	t.Helper()
	c := helloWait(t, srv, protocol.Hello{Token: token}, time.Minute)
	var page parley.MessagePage
	c.do(protocol.OpHistory, protocol.History{ConversationID: convID, Limit: 5}, &page)
	if len(page.Messages) == 0 {
		t.Fatal("another client got an empty history page")
	}
	if f := c.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
		t.Fatalf("another client's ping got %s", f.Type)
	}
}

// TestHostileHistoryFlood: a client asks for 400 history pages of 100
// messages of 4000 '<' (each '<' is 6 bytes of JSON: a page would be
// 2.4 MB) and never reads. The server holds about its send queue's
// budget for it, not the 400 pages, and serves others meanwhile.
func TestHostileHistoryFlood(t *testing.T) {
	srv := startUnhurried(t)
	conv := seedConversation(t, srv, 100, strings.Repeat("<", parley.MaxTextRunes))
	aTok, bTok := srv.Token(t, "alice", "alice"), srv.Token(t, "bob", "bob")
	base := liveHeap()

	attacker := dialSmallBuffer(t, srv) // never read from below
	attacker.sendOp(protocol.OpHello, "", protocol.Hello{Token: aTok})
	for i := range 400 {
		attacker.sendOp(protocol.OpHistory, fmt.Sprint("h", i), protocol.History{ConversationID: conv.ID, Limit: parley.MaxPageLimit})
	}
	grew := peakHeap(base)
	stillServed(t, srv, bTok, conv.ID)

	// The queue's budget, what the writer is writing (up to as much
	// again), one history read in progress, and the runtime's slack.
	const bound = 4*server.DefaultSendQueueBytes + 4*mib
	t.Logf("history flood: live heap grew by at most %.1f MiB (bound %.1f MiB)", float64(grew)/mib, float64(bound)/mib)
	if grew > bound {
		t.Fatalf("the heap grew by %.1f MiB for one client that does not read; want at most %.1f MiB", float64(grew)/mib, float64(bound)/mib)
	}
}

// TestHostileResumeFlood: eight connections of a user with 2,000 messages
// of 16 KB each say hello with resume_from 0 and never read. Each replay
// is read page by page as the socket drains, so the server holds about a
// page per connection, not the 32 MB each would replay.
func TestHostileResumeFlood(t *testing.T) {
	srv := startUnhurried(t)
	text := strings.Repeat("𝄞", parley.MaxTextRunes) // 4 bytes each: 16 KB
	conv := seedConversation(t, srv, 2000, text)
	aTok, bTok := srv.Token(t, "alice", "alice"), srv.Token(t, "bob", "bob")
	base := liveHeap()

	zero := int64(0)
	for range 8 {
		c := dialSmallBuffer(t, srv) // never read from below
		c.sendOp(protocol.OpHello, "", protocol.Hello{Token: aTok, ResumeFrom: &zero})
	}
	grew := peakHeap(base)
	stillServed(t, srv, bTok, conv.ID)

	// Per connection a page of events and its frames, each about the
	// budget, plus the runtime's slack.
	const bound = 8*3*server.DefaultSendQueueBytes + 8*mib
	t.Logf("resume flood: live heap grew by at most %.1f MiB (bound %.1f MiB)", float64(grew)/mib, float64(bound)/mib)
	if grew > bound {
		t.Fatalf("the heap grew by %.1f MiB for 8 replays nobody reads; want at most %.1f MiB", float64(grew)/mib, float64(bound)/mib)
	}
}

// TestHostileHubOverflowLosesNothing: with the broker's and the hub's
// queues bounded to almost nothing, every durable event overflows them and
// is read from the store instead; every member still gets every event
// exactly once, in position order.
func TestHostileHubOverflowLosesNothing(t *testing.T) {
	broker := membroker.NewWithLimit(1) // a message is dropped whenever one waits
	t.Cleanup(func() { broker.Close() })
	srv := servertest.Start(t, servertest.WithBroker(broker), servertest.WithConfig(func(c *server.Config) {
		c.Limits.HubQueueBytes = 1 // no event fits: each is read from the store
	}))
	aTok := srv.Token(t, "alice", "Alice")
	srv.Token(t, "bob", "Bob")
	srv.Token(t, "carol", "Carol")
	a := connect(t, srv, aTok, nil)
	var conv parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "burst", MemberIDs: []string{"bob", "carol"}}, &conv)
	members := map[string]*wsClient{"alice": a}
	for _, u := range []string{"bob", "carol"} {
		members[u] = connect(t, srv, srv.Token(t, u, u), nil)
	}

	// A burst from several senders at once, over HTTP.
	const senders, each = 8, 40
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := postMessage(srv, aTok, conv.ID, fmt.Sprintf("b%d-%d", w, i), fmt.Sprintf("m%d-%d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	for name, c := range members {
		seen := make(map[string]bool)
		last := int64(0)
		for len(seen) < senders*each {
			ev := c.event(parley.EventNewMessage)
			if ev.Pos <= last {
				t.Fatalf("%s: event at %d after %d: duplicate or out of order", name, ev.Pos, last)
			}
			last = ev.Pos
			if ev.ConversationID == conv.ID {
				seen[ev.Message.Text] = true
			}
		}
	}
	if metricLabel(t, srv, "parley_queue_drops_total", `kind="hub"`) == 0 {
		t.Fatal("the hub dropped nothing: the test did not overflow it")
	}
	t.Logf("broker dropped %d messages", broker.Dropped())
}

// TestReplyByteCap: history and events pages of large messages are cut to
// the reply cap with has_more set, and a client following the cursors
// gets every message (and event) exactly once, in both directions, on the
// WebSocket and over HTTP. A history page cut short says where it was cut
// (next).
func TestReplyByteCap(t *testing.T) {
	srv := servertest.Start(t)
	const n = 100
	conv := seedConversation(t, srv, n, strings.Repeat("<", parley.MaxTextRunes))
	aTok := srv.Token(t, "alice", "alice")
	a := connect(t, srv, aTok, nil)

	// follow pages from q (before or after) until has_more is false and
	// returns the seqs in the order the pages gave them.
	follow := func(name string, q protocol.History, get func(protocol.History) (parley.MessagePage, int)) []int64 {
		var seqs []int64
		for pages := 0; ; pages++ {
			p, size := get(q)
			if len(p.Messages) == 0 {
				t.Fatalf("%s: an empty page", name)
			}
			if size > server.MaxReplyBytes+1024 {
				t.Fatalf("%s: a reply of %d bytes, over the cap", name, size)
			}
			if pages == 0 && len(p.Messages) == parley.MaxPageLimit {
				t.Fatalf("%s: the first page was not cut", name)
			}
			for _, m := range p.Messages {
				seqs = append(seqs, m.Seq)
			}
			if !p.HasMore {
				return seqs
			}
			// A page cut to the cap ends where it was cut: next is the
			// edge message's seq.
			edge := p.Messages[0].Seq
			if q.After != nil {
				edge = p.Messages[len(p.Messages)-1].Seq
			}
			if p.Next != edge {
				t.Fatalf("%s: next %d, want the page's edge %d", name, p.Next, edge)
			}
			if q.After != nil {
				q.After = protocol.Cursor(p.Next)
			} else {
				q.Before = protocol.Cursor(p.Next)
			}
		}
	}
	ws := func(q protocol.History) (parley.MessagePage, int) {
		f := a.call(protocol.OpHistory, q)
		return decodeJSON[parley.MessagePage](t, f.Data), len(f.Data)
	}
	overHTTP := func(q protocol.History) (parley.MessagePage, int) {
		path := fmt.Sprintf("/v1/conversations/%s/messages?limit=%d", conv.ID, q.Limit)
		if q.Before != nil {
			path += fmt.Sprintf("&before=%d", *q.Before)
		}
		if q.After != nil {
			path += fmt.Sprintf("&after=%d", *q.After)
		}
		r := httpDo(t, srv, "GET", path, aTok, "")
		return decodeJSON[parley.MessagePage](t, r.body), len(r.body)
	}
	check := func(name string, seqs []int64, from, to int64) {
		t.Helper()
		seen := make(map[int64]bool)
		for _, s := range seqs {
			if seen[s] {
				t.Fatalf("%s: seq %d twice", name, s)
			}
			seen[s] = true
		}
		for s := from; s <= to; s++ {
			if !seen[s] {
				t.Fatalf("%s: seq %d missing", name, s)
			}
		}
		if len(seen) != int(to-from+1) {
			t.Fatalf("%s: %d messages, want %d", name, len(seen), to-from+1)
		}
	}
	for name, get := range map[string]func(protocol.History) (parley.MessagePage, int){"ws": ws, "http": overHTTP} {
		check(name+" backwards", follow(name, protocol.History{ConversationID: conv.ID, Limit: parley.MaxPageLimit}, get), 1, n)
		check(name+" forwards", follow(name, protocol.History{ConversationID: conv.ID, After: protocol.Cursor(0), Limit: parley.MaxPageLimit}, get), 1, n)
	}

	// GET /v1/events pages the same way: every event once, in order.
	var pos []int64
	after := int64(0)
	for {
		r := httpDo(t, srv, "GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", after), aTok, "")
		if len(r.body) > server.MaxReplyBytes+1024 {
			t.Fatalf("an events reply of %d bytes, over the cap", len(r.body))
		}
		p := decodeJSON[struct {
			Events  []parley.Event `json:"events"`
			HasMore bool           `json:"has_more"`
			Next    int64          `json:"next"`
		}](t, r.body)
		for _, ev := range p.Events {
			if ev.Pos <= after {
				t.Fatalf("event %d after %d", ev.Pos, after)
			}
			after = ev.Pos
			pos = append(pos, ev.Pos)
		}
		if !p.HasMore {
			break
		}
		if p.Next != after { // nothing is hidden: next is the last event's pos
			t.Fatalf("next %d, the page's last event %d", p.Next, after)
		}
	}
	if len(pos) != n+1 { // the conversation's creation and the messages
		t.Fatalf("%d events, want %d", len(pos), n+1)
	}
}

// TestResumeReplayPages: a replay of many pages (large events) meets the
// live stream with no gap and no overlap while messages keep arriving, and
// past the resume limit the client gets resync after the limit's events.
func TestResumeReplayPages(t *testing.T) {
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ResumeLimit = 1000 }))
	const seeded, live = 300, 40
	conv := seedConversation(t, srv, seeded, strings.Repeat("€", parley.MaxTextRunes))
	aTok, bTok := srv.Token(t, "alice", "alice"), srv.Token(t, "bob", "bob")

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // live messages while bob's replay is written
		defer wg.Done()
		for i := range live {
			if err := postMessage(srv, aTok, conv.ID, fmt.Sprint("live-", i), fmt.Sprint("live ", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	zero := int64(0)
	b := connect(t, srv, bTok, &zero)
	evs, end := collectResume(t, b)
	if end.Type != protocol.TypeResumed {
		t.Fatalf("got %s, want resumed", end.Type)
	}
	if r := decodeJSON[protocol.Resumed](t, end.Data); r.Count != len(evs) || len(evs) < seeded+1 {
		t.Fatalf("resumed %+v after %d events, want at least %d", r, len(evs), seeded+1)
	}
	wg.Wait()
	msgs := 0
	for _, ev := range evs {
		if ev.Type == parley.EventNewMessage {
			msgs++
		}
	}
	for msgs < seeded+live {
		evs = append(evs, b.event(parley.EventNewMessage))
		msgs++
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Pos <= evs[i-1].Pos {
			t.Fatalf("event %d at %d after %d: a gap or an overlap where the replay met the live stream", i, evs[i].Pos, evs[i-1].Pos)
		}
	}

	// 150 events behind with a limit of 100: the limit's events, in
	// order, then resync at the welcome's head.
	srv2 := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.ResumeLimit = 100 }))
	seedConversation(t, srv2, 149, "x")
	c := connect(t, srv2, srv2.Token(t, "bob", "bob"), &zero)
	evs, end = collectResume(t, c)
	if end.Type != protocol.TypeResync || len(evs) != 100 {
		t.Fatalf("150 behind with limit 100: %d events then %s", len(evs), end.Type)
	}
	if r := decodeJSON[protocol.Resync](t, end.Data); r.Head != c.welcome.Head {
		t.Fatalf("resync head %d, welcome head %d", r.Head, c.welcome.Head)
	}
	want := make([]string, 99) // the conversation's creation, then 99 of the messages
	for i := range want {
		want[i] = "x"
	}
	checkExactlyOnce(t, evs, 0, want)
}

// stuckHistory is a SQLite store whose history reads for user hang
// until release is closed (or their request's time runs out): a store
// too slow to answer, behind which a connection's requests wait.
type stuckHistory struct {
	*sqlite.DB
	user    string
	release chan struct{}
}

func (s *stuckHistory) Messages(ctx context.Context, userID, conversationID string, q parley.MessageQuery) (parley.MessagePage, error) {
	if userID == s.user {
		select {
		case <-s.release:
		case <-ctx.Done():
			return parley.MessagePage{}, ctx.Err()
		}
	}
	return s.DB.Messages(ctx, userID, conversationID, q)
}

// TestHostileRequestQueueBytes: sixteen connections each ask for a
// history page the store is too slow to read, then send frames of almost
// 64 KiB as fast as the server reads them. The requests read and waiting
// behind the slow one are bounded in bytes (requestQueueBytes: 64 KiB
// and one frame), not only in count: before, each connection held 31
// such frames, 2 MiB, twice its send queue's budget again, and the
// sixteen held 32 MiB.
func TestHostileRequestQueueBytes(t *testing.T) {
	st := &stuckHistory{user: "alice", release: make(chan struct{})}
	srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		st.DB = db
		return st, err
	}), servertest.WithConfig(func(c *server.Config) { c.HeartbeatTimeout = 2 * time.Minute }))
	aTok := srv.Token(t, "alice", "alice")
	_, conv := aliceToBob(t, srv)
	// A ping in a form the reader leaves to the worker, padded to just
	// under the frame limit.
	pad := []byte(`{"op":"ping","id":"p","data":{"pad":"` + strings.Repeat("a", parley.MaxFrameBytes-64) + `"}}`)
	base := liveHeap()

	const conns = 16
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range conns {
		c := connect(t, srv, aTok, nil)
		c.sendOp(protocol.OpHistory, "stuck", protocol.History{ConversationID: conv.ID})
		wg.Add(1)
		go func() { // the server stops reading: these writes block
			defer wg.Done()
			for range 64 {
				if c.ws.Write(ctx, websocket.MessageText, pad) != nil {
					return
				}
			}
		}()
	}
	grew := peakHeap(base)
	close(st.release)

	// Per connection the waiting requests' bound (64 KiB and one frame)
	// and some slack for its frames and buffers; plus the runtime's.
	const bound = conns*(2*parley.MaxFrameBytes+64<<10) + 8*mib
	t.Logf("requests behind a slow store: live heap grew by at most %.1f MiB (bound %.1f MiB)", float64(grew)/mib, float64(bound)/mib)
	if grew > bound {
		t.Fatalf("the heap grew by %.1f MiB for %d clients whose requests wait; want at most %.1f MiB", float64(grew)/mib, conns, float64(bound)/mib)
	}
}
