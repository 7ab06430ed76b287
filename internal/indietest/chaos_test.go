// Package indietest checks docs/protocol.md against the server from the
// outside: a client written from the document alone (client_test.go)
// drives a real `parley serve --shards 8` process, while the test cuts
// connections and kills the server; TestConformance and
// TestConformanceLimits (conform_*_test.go) check its promises one at a
// time, with raw JSON frames and HTTP requests.
package indietest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The parallel checks mostly wait on the server's timers (heartbeats,
	// typing expiry, upload waits), not on the CPU: run 8 at a time
	// unless -parallel says otherwise (its default, GOMAXPROCS, is 2 on a
	// small machine, which ran the checks' waits two at a time).
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "8")
	}
	goleak.VerifyTestMain(runThenClean{m})
}

// runThenClean runs the tests, then removes the parley binary they
// shared.
type runThenClean struct{ m *testing.M }

func (r runThenClean) Run() int {
	defer func() {
		if built.dir != "" {
			os.RemoveAll(built.dir)
		}
	}()
	return r.m.Run()
}

const shards = 8

// TestProtocol2 builds parley, starts it with 8 shards on SQLite and
// checks the hello refusals and the chaos scenario of protocol 2.
func TestProtocol2(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the parley binary")
	}
	bin := buildParley(t)
	srv := startServer(t, bin, t.TempDir(), shards)
	t.Run("hello", func(t *testing.T) { testHellos(t, srv) })
	t.Run("chaos", func(t *testing.T) { testChaos(t, srv) })
	t.Run("shard count is fixed", func(t *testing.T) { testShardsFixed(t, srv) })
	t.Run("shard of a conversation", func(t *testing.T) { testShardOf(t, bin) })
	t.Run("resume limit", func(t *testing.T) { testResumeLimit(t, bin) })
}

// testHellos: the hellos section 3 refuses, and the answers it gives.
func testHellos(t *testing.T, srv *server) {
	tok, _ := register(t, srv.Addr(), "hellocheck")
	const unsupportedMsg = "this server's event log has 8 shards: it needs protocol 2"
	for _, tc := range []struct {
		name string
		data map[string]any
		code string // "" : a welcome
		msg  string // a prefix of the error message, when the doc gives one
	}{
		{"protocol absent (1)", map[string]any{}, "unsupported", unsupportedMsg},
		{"protocol 0 (1)", map[string]any{"protocol": 0}, "unsupported", unsupportedMsg},
		{"protocol 1 with resume_from", map[string]any{"protocol": 1, "resume_from": 0}, "unsupported", unsupportedMsg},
		{"protocol 1 with a cursor", map[string]any{"protocol": 1, "cursor": map[string]any{}}, "unsupported", unsupportedMsg},
		{"protocol 1 with a forged token", map[string]any{"token": "forged"}, "unauthorized", ""},
		{"protocol 2 with a forged token", map[string]any{"token": "forged", "protocol": 2, "cursor": nil}, "unauthorized", ""},
		{"protocol 3", map[string]any{"protocol": 3}, "invalid", ""},
		{"resume_from with protocol 2", map[string]any{"protocol": 2, "resume_from": 5}, "invalid", ""},
		{"cursor key beyond the shards", map[string]any{"protocol": 2, "cursor": map[string]any{"8": 1}}, "invalid", ""},
		{"cursor key not decimal", map[string]any{"protocol": 2, "cursor": map[string]any{"x": 1}}, "invalid", ""},
		{"cursor key negative", map[string]any{"protocol": 2, "cursor": map[string]any{"-1": 1}}, "invalid", ""},
		{"cursor key +1", map[string]any{"protocol": 2, "cursor": map[string]any{"+1": 1}}, "invalid", ""},
		{"cursor key 01", map[string]any{"protocol": 2, "cursor": map[string]any{"01": 1}}, "invalid", ""},
		{"cursor keys 01 and 1 (one shard twice)", map[string]any{"protocol": 2, "cursor": map[string]any{"01": 1, "1": 0}}, "invalid", ""},
		{"cursor key with a space", map[string]any{"protocol": 2, "cursor": map[string]any{" 1": 1}}, "invalid", ""},
		{"cursor position negative", map[string]any{"protocol": 2, "cursor": map[string]any{"0": -1}}, "invalid", ""},
		{"cursor of 9 entries", map[string]any{"protocol": 2, "cursor": nineEntries()}, "invalid", ""},
		{"cursor not an object", map[string]any{"protocol": 2, "cursor": []int{1}}, "invalid", ""},
		{"cursor position a string", map[string]any{"protocol": 2, "cursor": map[string]any{"0": "1"}}, "invalid", ""},
		{"cursor position fractional", map[string]any{"protocol": 2, "cursor": map[string]any{"0": 1.5}}, "invalid", ""},
		{"cursor null (first connection)", map[string]any{"protocol": 2, "cursor": nil}, "", ""},
		{"cursor {} (from the start)", map[string]any{"protocol": 2, "cursor": map[string]any{}}, "", ""},
		{"cursor with an explicit 0", map[string]any{"protocol": 2, "cursor": map[string]any{"3": 0}}, "", ""},
		{"cursor on every shard", map[string]any{"protocol": 2, "cursor": map[string]any{"0": 0, "1": 0, "2": 0, "3": 0, "4": 0, "5": 0, "6": 0, "7": 0}}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.data["token"]; !ok {
				tc.data["token"] = tok
			}
			wantClose := websocket.StatusCode(4101)
			if tc.code == "unauthorized" {
				wantClose = 4100 // section 3: a bad token
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := dialWS(ctx, srv.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			w, err := hello(ctx, c, tc.data)
			var ref *helloRefused
			switch {
			case tc.code == "" && err != nil:
				t.Fatalf("hello: %v, want a welcome", err)
			case tc.code == "":
				if w.Shards != shards {
					t.Errorf("welcome.shards = %d, want %d", w.Shards, shards)
				}
			case !errors.As(err, &ref):
				t.Fatalf("hello: %v (welcome %+v), want %s and close 4101", err, w, tc.code)
			default:
				if ref.err.Code != tc.code || ref.status != wantClose || !strings.HasPrefix(ref.err.Message, tc.msg) {
					t.Errorf("hello: %s %q, close %d; want %s %q…, close %d", ref.err.Code, ref.err.Message, ref.status, tc.code, tc.msg, wantClose)
				}
			}
		})
	}

	// Section 3, protocol 2, case 1: a cursor beyond a shard's head is a
	// lost log: resync log_lost naming the shard.
	t.Run("cursor beyond the log", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, _ := connect(ctx, t, srv.Addr(), map[string]any{"token": tok, "protocol": 2, "cursor": map[string]any{"5": 1 << 40}})
		f, err := c.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var r resyncData
		json.Unmarshal(f.Data, &r)
		if f.Type != "resync" || r.Cause != "log_lost" || r.Shard != 5 || !slices.Equal(r.Lost, []int{5}) || r.From != 1<<40 || r.Shards != shards || r.Cursor == nil {
			t.Errorf("after a cursor beyond shard 5's log: %s %s, want resync {shard: 5, from: %d, cause: log_lost, lost: [5], cursor, shards: 8}", f.Type, f.Data, int64(1<<40))
		}
	})
}

func nineEntries() map[string]any {
	m := map[string]any{}
	for s := range shards + 1 {
		m[fmt.Sprint(s)] = 1
	}
	return m
}

// testChaos: 6 users in 8 groups over several shards send while the test
// cuts their connections and kills the server; every acknowledged message
// must reach every member exactly once, in seq order.
func testChaos(t *testing.T, srv *server) {
	const nUsers, nGroups, perUser = 6, 8, 50
	total := nUsers * perUser
	cutEvery := 6                                                // acks between two cuts
	restartAt := []int64{int64(total / 3), int64(total * 2 / 3)} // acks at which the server is killed

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var acks atomic.Int64
	// Each waiter has its own wake-up channel: with one channel read by
	// both the chaos goroutine and the wait for the last ack, the chaos
	// goroutine could take the last ack's wake-up and the wait would
	// sleep until its guard (seen in CI: "300 of 300 sends acknowledged
	// after 3 min").
	ackWake := make(chan struct{}, 1) // the chaos goroutine's
	ackDone := make(chan struct{}, 1) // the wait for every ack
	progress := make(chan struct{}, 1)
	signal := func(ch chan struct{}) func() {
		return func() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	users := make([]*user, nUsers)
	for i := range users {
		name := fmt.Sprintf("indie%d", i)
		tok, id := register(t, srv.Addr(), name)
		users[i] = &user{name: name, id: id, token: tok, shards: shards, batch: i%2 == 1,
			onAck:      func() { acks.Add(1); signal(ackWake)(); signal(ackDone)() },
			onProgress: signal(progress),
			recv:       map[string][]message{}, seen: map[string]bool{}, posOf: map[string][2]int64{}, convShard: map[string]int{}}
	}
	// Group g: created by user g%6, with the next, the one after and the
	// one four on.
	members := map[string][]*user{} // conversation -> members
	var convs []string
	for g := range nGroups {
		ms := []*user{users[g%nUsers], users[(g+1)%nUsers], users[(g+2)%nUsers], users[(g+4)%nUsers]}
		id := createGroup(t, srv.Addr(), ms[0], fmt.Sprintf("group %d", g), ms[1:])
		members[id] = ms
		convs = append(convs, id)
	}
	for _, u := range users {
		var mine []string
		for _, c := range convs {
			if slices.Contains(members[c], u) {
				mine = append(mine, c)
			}
		}
		for i := range perUser {
			u.plan = append(u.plan, planned{conv: mine[i%len(mine)],
				clientID: fmt.Sprintf("%s-%d-%08x", u.name, i, rand.Uint32()), text: fmt.Sprintf("%s says %d", u.name, i)})
		}
	}

	// The users, each its own goroutine, joined before the checks.
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Add(1)
		go func() { defer wg.Done(); u.run(ctx, srv.Addr) }()
	}
	stopUsers := func() { cancel(); wg.Wait() }
	defer stopUsers()

	// Chaos, driven by acknowledgements (not by time): a cut every
	// cutEvery acks, a SIGKILL and restart at each restartAt.
	var cuts, cutTries, restarts int
	var chaosErr error
	chaosCtx, stopChaos := context.WithCancel(ctx)
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		for {
			select {
			case <-chaosCtx.Done():
				return
			case <-ackWake:
			}
			n := acks.Load()
			for cutTries < int(n)/cutEvery {
				cutTries++
				u := users[rand.IntN(nUsers)]
				if cutTries%3 == 0 {
					u.armReplayCut(1 + rand.IntN(3))
				}
				if u.cut() {
					cuts++
				}
			}
			if restarts < len(restartAt) && n >= restartAt[restarts] {
				restarts++
				srv.kill()
				if restarts == 2 {
					// docs/deploy.md: later starts may leave --shards out
					// (0: whatever the database records).
					srv.shards = 0
				}
				if chaosErr = srv.start(); chaosErr != nil {
					cancel()
					return
				}
			}
		}
	}()

	// Wait (a timeout only as a guard against a hang) until every send is
	// acknowledged, then until every member holds every message.
	guard := time.After(3 * time.Minute)
	allAcked := func() bool { return acks.Load() == int64(total) }
	for !allAcked() {
		select {
		case <-progress:
		case <-ackDone:
		case <-guard:
			t.Fatalf("guard: %d of %d sends acknowledged after 3 min", acks.Load(), total)
		case <-chaosDone:
			t.Fatalf("chaos stopped: %v", chaosErr)
		}
	}
	stopChaos()
	<-chaosDone
	want := map[string][]message{} // conversation -> acknowledged messages by seq
	for _, u := range users {
		u.mu.Lock()
		for _, p := range u.plan {
			want[p.conv] = append(want[p.conv], *p.msg)
		}
		u.mu.Unlock()
	}
	delivered := func() bool {
		for _, u := range users {
			u.mu.Lock()
			for c, ms := range members {
				if slices.Contains(ms, u) && len(u.recv[c]) < len(want[c]) {
					u.mu.Unlock()
					return false
				}
			}
			u.mu.Unlock()
		}
		return true
	}
	guard = time.After(time.Minute)
wait:
	for !delivered() {
		select {
		case <-progress:
		case <-guard:
			t.Error("guard: not every message reached every member within a minute of the last ack")
			break wait
		}
	}
	stopUsers()

	// The checks, per conversation and member.
	var lost, dup, reordered, stale, gaps, sessions, resumes, replayed, sends, resends, resyncs, below, inHandshake, inReplay, batches int
	sendErrors := map[string]int{}
	shardOf := map[string]int{}
	for _, u := range users {
		for _, p := range u.problems {
			t.Errorf("contract: %s", p)
		}
		st := u.st
		dup += st.dups
		reordered += st.reordered
		stale += st.stale
		gaps += st.gaps
		sessions += st.sessions
		resumes += st.resumes
		replayed += st.replayed
		sends += st.sends
		resends += st.resends
		resyncs += st.resyncs
		below += st.headsBelowCursor
		inHandshake += st.cutsInHandshake
		inReplay += st.cutsInReplay
		batches += st.batches
		for k, v := range st.sendErrors {
			sendErrors[k] += v
		}
		for c, s := range u.convShard {
			if old, ok := shardOf[c]; ok && old != s {
				t.Errorf("conversation %s is in shard %d for one user, %d for another", c, old, s)
			}
			shardOf[c] = s
		}
	}
	for _, c := range convs {
		ws := want[c]
		slices.SortFunc(ws, func(a, b message) int { return int(a.Seq - b.Seq) })
		for i, m := range ws {
			if m.Seq != int64(i+1) {
				t.Errorf("conversation %s: acknowledged seqs are not 1..%d: #%d is seq %d (a resend stored twice?)", c, len(ws), i+1, m.Seq)
				break
			}
		}
		for _, u := range members[c] {
			got := u.recv[c]
			ids := map[string]bool{}
			for _, m := range got {
				ids[m.ID] = true
			}
			for _, m := range ws {
				if !ids[m.ID] {
					lost++
				}
			}
			if len(got) != len(ws) || !slices.EqualFunc(got, ws, func(a, b message) bool { return a.ID == b.ID && a.Seq == b.Seq }) {
				t.Errorf("%s in %s received %d messages, want the %d acknowledged ones exactly, in seq order", u.name, c, len(got), len(ws))
			}
		}
		checkHistory(t, srv.Addr(), members[c][0], c, ws)
	}
	for _, u := range users {
		checkEvents(t, srv.Addr(), u)
	}
	usedShards := map[int]bool{}
	for _, c := range convs {
		s, ok := shardOf[c]
		if !ok {
			t.Errorf("no event of conversation %s reached anyone", c)
		}
		usedShards[s] = true
		if want := shardFor(c, shards); s != want {
			t.Errorf("conversation %s is in shard %d, docs/deploy.md says FNV-1a mod %d = %d", c, s, shards, want)
		}
	}
	if len(usedShards) < 2 {
		t.Errorf("the %d conversations are all in one shard: %v", len(convs), usedShards)
	}
	if cuts+inReplay == 0 || restarts != len(restartAt) {
		t.Errorf("chaos did not happen: %d cuts, %d restarts", cuts, restarts)
	}
	t.Logf("users %d (3 asking for batching: %d messages held several frames), groups %d in shards %v",
		nUsers, batches, len(convs), slices.Sorted(mapsKeys(usedShards)))
	t.Logf("messages acknowledged %d (sends written %d, resends with the same client_id %d, send errors %v)", acks.Load(), sends, resends, sendErrors)
	t.Logf("chaos: %d cuts (of %d tries; %d of them before resumed) and %d more in the middle of a replay, %d server restarts (SIGKILL; the second without --shards); %d sessions, %d resumes replaying %d events",
		cuts, cutTries, inHandshake, inReplay, restarts, sessions, resumes, replayed)
	t.Logf("per member: lost %d, duplicated %d, reordered %d, gaps on arrival %d; events at or below the cursor %d; heads below the cursor %d; resyncs %d",
		lost, dup, reordered, gaps, stale, below, resyncs)
}

func mapsKeys(m map[int]bool) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// checkHistory pages the conversation's history over HTTP (section 11)
// from the start: the store must hold exactly the acknowledged messages.
func checkHistory(t *testing.T, addr string, u *user, conv string, want []message) {
	t.Helper()
	var got []message
	after := int64(0)
	for {
		var page struct {
			Messages []message `json:"messages"`
			HasMore  bool      `json:"has_more"`
			Next     int64     `json:"next"` // section 5: the following page's after
		}
		call(t, addr, "GET", fmt.Sprintf("/v1/conversations/%s/messages?after=%d&limit=100", conv, after), u.token, nil, http.StatusOK, &page)
		got = append(got, page.Messages...)
		if !page.HasMore {
			break
		}
		if page.Next <= after {
			t.Fatalf("history of %s: has_more with next %d after %d", conv, page.Next, after)
		}
		after = page.Next
	}
	if !slices.EqualFunc(got, want, func(a, b message) bool { return a.ID == b.ID && a.Seq == b.Seq && a.ClientID == b.ClientID }) {
		t.Errorf("history of %s: %d messages, want the %d acknowledged", conv, len(got), len(want))
	}
}

// checkEvents reads the user's durable events over HTTP, shard by shard
// (section 11, GET /v1/events): every newMessage the WebSocket delivered
// is there at the same shard and pos, and nothing else is.
func checkEvents(t *testing.T, addr string, u *user) {
	t.Helper()
	fromHTTP := map[string][2]int64{}
	for s := range shards {
		after := int64(0)
		for {
			var page struct {
				Events  []event `json:"events"`
				Head    int64   `json:"head"`
				HasMore bool    `json:"has_more"`
				Next    int64   `json:"next"`
				Resync  bool    `json:"resync"`
				Shard   int     `json:"shard"`
				Shards  int     `json:"shards"`
			}
			call(t, addr, "GET", fmt.Sprintf("/v1/events?shard=%d&after=%d&limit=1000", s, after), u.token, nil, http.StatusOK, &page)
			if page.Shard != s || page.Shards != shards || page.Resync {
				t.Errorf("GET /v1/events?shard=%d: shard %d, shards %d, resync %v", s, page.Shard, page.Shards, page.Resync)
			}
			for _, e := range page.Events {
				es := e.shard()
				if es != s || e.Pos <= after {
					t.Errorf("GET /v1/events?shard=%d&after=%d gave event %d:%d", s, after, es, e.Pos)
				}
				after = e.Pos
				if e.Type == "newMessage" && e.Message != nil {
					fromHTTP[e.Message.ID] = [2]int64{int64(es), e.Pos}
				}
			}
			if !page.HasMore {
				if after > page.Head {
					t.Errorf("GET /v1/events?shard=%d: last event %d beyond head %d", s, after, page.Head)
				}
				break
			}
			// A page over events hidden from the user may be short or
			// empty: the next one starts at next, not at its last event.
			if page.Next < after {
				t.Fatalf("GET /v1/events?shard=%d: next %d before the page's last event %d", s, page.Next, after)
			}
			after = page.Next
		}
	}
	if len(fromHTTP) != len(u.posOf) {
		t.Errorf("%s: GET /v1/events holds %d newMessage events, the WebSocket delivered %d", u.name, len(fromHTTP), len(u.posOf))
	}
	for id, sp := range u.posOf {
		if fromHTTP[id] != sp {
			t.Errorf("%s: message %s came at %v on the WebSocket, %v over HTTP", u.name, id, sp, fromHTTP[id])
		}
	}
}

// testShardsFixed: docs/deploy.md, "Choosing shards": a store whose log
// holds events refuses another count, and parley serve exits naming both.
func testShardsFixed(t *testing.T, srv *server) {
	srv.kill()
	srv.shards = 4
	err := srv.start()
	if err == nil {
		t.Fatal("parley serve --shards 4 on a log of 8 shards served")
	}
	srv.logMu.Lock()
	tail := srv.logTail[len(srv.logTail)-1]
	srv.logMu.Unlock()
	if !regexp.MustCompile(`\b8\b.*\b4\b|\b4\b.*\b8\b`).MatchString(tail) {
		t.Errorf("parley serve --shards 4 on a log of 8: %v; its last words do not name both counts:\n%s", err, tail)
	}
	t.Logf("--shards 4 on a log of 8: %v; log: %s", err, tail)
}

// shardFor is docs/deploy.md's rule: a conversation's events go to shard
// FNV-1a(conversation id) mod shards, the 32-bit hash of the id's text.
// (With 8 shards the 32- and 64-bit hashes agree: both primes are 3 mod 8.)
func shardFor(conv string, n int) int {
	h := fnv.New32a()
	io.WriteString(h, conv)
	return int(h.Sum32() % uint32(n))
}

// testShardOf: on a log of 6 shards (where the 32- and 64-bit FNV-1a
// differ), each group's events are in the shard docs/deploy.md names;
// a replay from {} goes shard after shard; a resync of shard 0 leaves
// "shard" out, as events do.
func testShardOf(t *testing.T, bin string) {
	const n = 6
	srv, owner := serverOwnedBy(t, bin, n, "sharder")
	tok := owner.token
	want := map[string]int{}
	for g := range 12 {
		c := createGroup(t, srv.Addr(), owner, fmt.Sprint("alone ", g), nil)
		want[c] = shardFor(c, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _ := connect(ctx, t, srv.Addr(), map[string]any{"token": tok, "protocol": 2, "cursor": map[string]any{}})
	got, last := map[string]int{}, -1
	for {
		f, err := c.read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != "event" {
			if f.Type != "resumed" {
				t.Errorf("frame %s %s, want resumed", f.Type, f.Data)
			}
			break
		}
		var e event
		json.Unmarshal(f.Data, &e)
		s := e.shard()
		if s < last {
			t.Errorf("replay went from shard %d back to %d; section 3: shard after shard", last, s)
		}
		last = s
		if e.ConversationID != "" {
			got[e.ConversationID] = s
		}
	}
	for c, s := range want {
		if got[c] != s {
			t.Errorf("conversation %s: events in shard %d, want FNV-1a 32-bit mod %d = %d (64-bit would give another)", c, got[c], n, s)
		}
	}

	c2, _ := connect(ctx, t, srv.Addr(), map[string]any{"token": tok, "protocol": 2, "cursor": map[string]any{"0": 1 << 40}})
	f, err := c2.read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(f.Data, &raw)
	if _, ok := raw["shard"]; f.Type != "resync" || ok || string(raw["lost"]) != "[0]" {
		t.Errorf("after a cursor beyond shard 0's log: %s %s, want resync without \"shard\" (0 is left out), lost [0]", f.Type, f.Data)
	}
}

// serverOwnedBy starts a server of the test's own on a log of n shards
// and registers name there: the user who creates the test's groups.
func serverOwnedBy(t *testing.T, bin string, n int, name string) (*server, *user) {
	srv := startServer(t, bin, t.TempDir(), n)
	tok, id := register(t, srv.Addr(), name)
	return srv, &user{name: name, token: tok, id: id}
}

// testResumeLimit: section 3, protocol 2, case 2: a replay of more than
// resume_limit events gives the first resume_limit (shard after shard, in
// position order) and then resync resume_limit naming the shard of the
// first event not replayed and the position the replay reached in it,
// with the heads as cursor. The limits stop the replay inside shard 0
// and right at the end of shards 0 and 1 (the server restarted with each).
func testResumeLimit(t *testing.T, bin string) {
	const n = 6
	srv, owner := serverOwnedBy(t, bin, n, "limited")
	tok := owner.token
	// Groups until shard 0 holds 2 events and shards 1 and 2 one or more.
	count := map[int]int{}
	for g := 0; count[0] < 2 || count[1] < 1 || count[2] < 1; g++ {
		if g == 100 {
			t.Fatalf("100 groups and shards 0, 1, 2 hold %v", count)
		}
		count[shardFor(createGroup(t, srv.Addr(), owner, fmt.Sprint("alone ", g), nil), n)]++
	}
	for _, limit := range []int{1, count[0], count[0] + count[1]} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			srv.kill()
			srv.extra = []string{fmt.Sprint("--resume-limit=", limit)}
			if err := srv.start(); err != nil {
				t.Fatal(err)
			}
			resumeLimit(t, srv.Addr(), tok, n, limit)
		})
	}
}

func resumeLimit(t *testing.T, addr, tok string, n, limit int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, w := connect(ctx, t, addr, map[string]any{"token": tok, "protocol": 2, "cursor": map[string]any{}})
	heads, _ := parseCursor(w.Cursor, n)
	reached := map[int]int64{}
	var f frame
	var err error
	replayed := 0
	for {
		if f, err = c.read(ctx); err != nil {
			t.Fatal(err)
		}
		if f.Type != "event" {
			break
		}
		var e event
		json.Unmarshal(f.Data, &e)
		s := e.shard()
		reached[s] = e.Pos
		replayed++
	}
	if replayed != limit || f.Type != "resync" {
		t.Fatalf("replay with resume_limit %d: %d events then %s %s", limit, replayed, f.Type, f.Data)
	}
	ws := 0 // the first shard (in replay order) with an event not replayed
	for ws < n && reached[ws] >= heads[ws] {
		ws++
	}
	var r resyncData
	var raw map[string]json.RawMessage
	json.Unmarshal(f.Data, &r)
	json.Unmarshal(f.Data, &raw)
	got, _ := parseCursor(r.Cursor, n)
	if _, has := raw["shard"]; r.Cause != "resume_limit" || r.Shard != ws || has != (ws != 0) || r.From != reached[ws] ||
		r.Head != heads[ws] || r.Shards != n || fmt.Sprint(got) != fmt.Sprint(heads) {
		t.Errorf("after %d events reaching %v: resync %s; want {shard: %d, head: %d, from: %d, cause: resume_limit, cursor: %v, shards: %d}",
			limit, reached, f.Data, ws, heads[ws], reached[ws], w.Cursor, n)
	}

	// The client moves its cursor up to the resync's: the next connection
	// replays nothing.
	c2, _ := connect(ctx, t, addr, map[string]any{"token": tok, "protocol": 2, "cursor": r.Cursor})
	if f, err = c2.read(ctx); err != nil || f.Type != "resumed" {
		t.Fatalf("resume from the resync's cursor: %s %s %v, want resumed", f.Type, f.Data, err)
	}
	var rd resumedData
	json.Unmarshal(f.Data, &rd)
	if rd.Count != 0 {
		t.Errorf("resume from the heads replayed %d events: %s", rd.Count, f.Data)
	}
}

// connect dials and says hello with data; the test fails unless a
// welcome answers. The connection is closed when the test ends.
func connect(ctx context.Context, t *testing.T, addr string, data map[string]any) (*wsConn, welcomeData) {
	t.Helper()
	c, err := dialWS(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	w, err := hello(ctx, c, data)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

// register makes an account (section 1) and returns its token and id.
func register(t *testing.T, addr, name string) (token, id string) {
	t.Helper()
	var out struct {
		Token string `json:"token"`
		User  struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"user"`
	}
	call(t, addr, "POST", "/v1/auth/register", "", map[string]string{"username": name, "password": "correct horse " + name}, http.StatusCreated, &out)
	if out.Token == "" || out.User.ID == "" || out.User.Name != name {
		t.Fatalf("register %s: %+v", name, out)
	}
	return out.Token, out.User.ID
}

// createGroup makes a group of owner and others over HTTP (section 11).
func createGroup(t *testing.T, addr string, owner *user, title string, others []*user) string {
	t.Helper()
	var ids []string
	for _, u := range others {
		ids = append(ids, u.id)
	}
	var conv struct {
		ID      string `json:"id"`
		Members []struct {
			UserID string `json:"user_id"`
			Role   string `json:"role"`
		} `json:"members"`
	}
	call(t, addr, "POST", "/v1/conversations/group", owner.token, map[string]any{"title": title, "member_ids": ids}, http.StatusCreated, &conv)
	// Section 5: members "in the order they joined"; all joined at once
	// here, so only who they are and the creator's role are checked.
	owners := 0
	for _, m := range conv.Members {
		if m.UserID == owner.id && m.Role == "owner" {
			owners++
		}
	}
	if len(conv.Members) != len(others)+1 || owners != 1 {
		t.Fatalf("group %s: members %+v, want the creator (owner) and %v", title, conv.Members, ids)
	}
	return conv.ID
}

func call(t *testing.T, addr, method, path, token string, body any, wantStatus int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != wantStatus {
		t.Fatalf("%s %s: %s %s, want %d", method, path, resp.Status, b, wantStatus)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %v in %s", method, path, err, b)
	}
}

// built is the parley binary the package's tests share: one link of
// cmd/parley instead of one per test (each took 10-20 s on a loaded
// machine). TestMain removes its directory.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildParley builds cmd/parley once, into a temporary directory, and
// returns the binary.
func buildParley(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		if built.dir, built.err = os.MkdirTemp("", "indietest-parley-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "parley")
		out, err := exec.Command(goBin, "build", "-o", built.bin, "github.com/parleychat/parley/cmd/parley").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// server is `parley serve --shards 8` as a child process, killed and
// started again on the same data dir. start and kill are called by one
// goroutine at a time; Addr by any.
type server struct {
	t         *testing.T
	bin, dir  string
	shards    int // --shards; 0 leaves the flag out
	extra     []string
	mu        sync.Mutex
	addr      string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process and its log reader ended
	logMu     sync.Mutex
	logTail   []string
	servingRE *regexp.Regexp
}

func startServer(t *testing.T, bin, dir string, shards int, extra ...string) *server {
	s := &server{t: t, bin: bin, dir: dir, shards: shards, extra: extra, servingRE: regexp.MustCompile(`parley serving.* addr=http://(\S+)`)}
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			s.logMu.Lock()
			t.Logf("server log (last %d lines):\n%s", len(s.logTail), strings.Join(s.logTail, "\n"))
			s.logMu.Unlock()
		}
	})
	return s
}

func (s *server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// start runs the server and returns once it serves (its log says where).
func (s *server) start() error {
	// Limits that would refuse the test's own traffic are off (section 9:
	// negative is no limit); the rest are the defaults.
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", s.dir}
	if s.shards != 0 {
		args = append(args, "--shards", fmt.Sprint(s.shards))
	}
	args = append(args, "--messages-per-second=-1", "--ip-messages-per-second=-1", "--connects-per-second=-1",
		"--reads-per-second=-1", "--conversation-writes-per-second=-1", "--conns-per-ip=-1", "--connections-per-user=-1")
	cmd := exec.Command(s.bin, append(args, s.extra...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	addr := make(chan string, 1)
	// Owned by the server: it ends when the child's stderr closes, and
	// kill waits for it.
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := s.servingRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
			s.logMu.Lock()
			s.logTail = append(s.logTail, line)
			if len(s.logTail) > 300 {
				s.logTail = s.logTail[100:]
			}
			s.logMu.Unlock()
		}
		cmd.Wait()
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	select {
	case a := <-addr:
		s.mu.Lock()
		s.addr = a
		s.mu.Unlock()
		return nil
	case <-done:
		return errors.New("parley exited before serving")
	case <-time.After(60 * time.Second):
		s.kill()
		return errors.New("parley did not serve within 60 s")
	}
}

// kill ends the process with SIGKILL and waits for it.
func (s *server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}
