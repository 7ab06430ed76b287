package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// servePages is a script that welcomes the client and answers its
// conversations requests with page(n) for the n-th (from 0), other
// requests with an empty reply, until page returns false: then it
// returns (the connection closes) and reports how many pages it served
// on served.
func servePages(t *testing.T, page func(n int) (protocol.ConversationList, bool), served chan<- int) func(context.Context, *websocket.Conn) {
	return func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		n := 0
		defer func() { served <- n }()
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			var req protocol.Request
			if json.Unmarshal(b, &req) != nil {
				t.Errorf("bad request %q", b)
				return
			}
			var data any = struct{}{}
			if req.Op == protocol.OpConversations {
				p, ok := page(n)
				if !ok {
					return
				}
				n++
				data = p
			}
			raw, _ := json.Marshal(data)
			f, _ := json.Marshal(protocol.Frame{Type: protocol.TypeReply, ID: req.ID, Data: raw})
			if ws.Write(ctx, websocket.MessageText, f) != nil {
				return
			}
		}
	}
}

// more reports whether page has an n-th page.
func more(page func(n int) (protocol.ConversationList, bool), n int) bool {
	_, ok := page(n)
	return ok
}

// TestHostileServerEndlessConversations: a server that says has_more on
// every page of the conversation list (broken, or hostile) cannot keep
// Conversations fetching for ever. Conversations followed the cursor
// with no end, each page under its own deadline, keeping every page:
// memory and time without bound. Now the pages share the call's deadline,
// are bounded in bytes (MaxConversationListBytes: too_large) and a
// cursor given twice fails the call.
func TestHostileServerEndlessConversations(t *testing.T) {
	conv := func(n int, title string) parley.Conversation {
		return parley.Conversation{ID: "c" + strconv.Itoa(n), Kind: parley.Group, Title: title}
	}
	// The bound is lowered to 1 MiB (from MaxConversationListBytes):
	// 64 MiB through the race detector takes long.
	const listBytes = 1 << 20
	big := strings.Repeat("x", 64<<10)
	maxPages := listBytes/len(big) + 2
	cases := []struct {
		name    string
		timeout time.Duration
		page    func(n int) (protocol.ConversationList, bool)
		check   func(err error) bool
	}{{
		name: "the same cursor again", timeout: 20 * time.Second,
		page: func(n int) (protocol.ConversationList, bool) {
			return protocol.ConversationList{Conversations: []parley.Conversation{conv(n, "t")}, HasMore: true, Next: "again"}, n < 100
		},
		check: func(err error) bool { return err != nil && strings.Contains(err.Error(), "twice") },
	}, {
		name: "pages of 64 KiB", timeout: 20 * time.Second,
		page: func(n int) (protocol.ConversationList, bool) {
			return protocol.ConversationList{Conversations: []parley.Conversation{conv(n, big)}, HasMore: true, Next: strconv.Itoa(n)}, n < maxPages
		},
		check: func(err error) bool { return parley.ErrorCode(err) == parley.ETOOLARGE },
	}, {
		// Small pages with new cursors: only the deadline ends them. The
		// server gives up at ten times the deadline.
		name: "small pages for ever", timeout: 500 * time.Millisecond,
		page: func() func(n int) (protocol.ConversationList, bool) {
			var start time.Time
			return func(n int) (protocol.ConversationList, bool) {
				if n == 0 {
					start = time.Now()
				}
				return protocol.ConversationList{Conversations: []parley.Conversation{conv(n, "t")}, HasMore: true, Next: strconv.Itoa(n)},
					time.Since(start) < 5*time.Second
			}
		}(),
		check: func(err error) bool { return errors.Is(err, context.DeadlineExceeded) },
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, c := startScripted(t, client.WithRequestTimeout(tc.timeout), client.WithMaxConversationListBytes(listBytes))
			served := make(chan int, 1)
			srv.scripts <- servePages(t, tc.page, served)
			if err := c.Connect(t.Context()); err != nil {
				t.Fatal(err)
			}
			_, err := c.Conversations(context.Background())
			if !tc.check(err) {
				t.Errorf("Conversations: %v", err)
			}
			c.Close()
			if n := <-served; !more(tc.page, n) {
				t.Errorf("the server served %d pages and gave up: the client would have gone on", n)
			}
		})
	}
}

// TestHostileServerHugeHTTPReply: an HTTP answer past the SDK's bound
// (1 MiB) fails saying so, whether it ends or not. The SDK read the
// first MiB and failed with "unexpected end of JSON input", which blamed
// the JSON of an answer it had cut itself.
func TestHostileServerHugeHTTPReply(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token":"t","pad":"`)
		chunk := strings.Repeat("x", 64<<10)
		for r.Context().Err() == nil { // endless: until the client hangs up
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
	}))
	defer hs.Close()
	_, err := client.Login(t.Context(), hs.URL, "alice", "correct horse battery")
	if err == nil || !strings.Contains(err.Error(), "over 1048576 bytes") {
		t.Fatalf("Login: %v, want an answer over 1048576 bytes", err)
	}
}

// TestHostileServerStalledDownload: a server that stops sending, before
// its answer or in the middle of the body, fails Download after the
// request timeout with an error that wraps context.DeadlineExceeded,
// even under a ctx with no deadline. Download waited as long as ctx did:
// with context.Background, for ever. The server here gives up after 10 s,
// long after the client's 300 ms.
func TestHostileServerStalledDownload(t *testing.T) {
	for _, name := range []string{"no answer", "a body that stops"} {
		t.Run(name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if name == "a body that stops" {
					w.Header().Set("Content-Length", "1000")
					w.Write(make([]byte, 500))
					w.(http.Flusher).Flush()
				}
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			}))
			defer hs.Close()
			c, err := client.New(hs.URL, client.WithToken("t"), client.WithRequestTimeout(300*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Download(context.Background(), "a1", io.Discard); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Download: %v, want a deadline", err)
			}
		})
	}
}

// holdScript is a script that welcomes the client, answers its first
// conversations request with an empty list and then writes flood's
// frames. Later requests of op held wait unanswered until release is
// closed; then they, and every later one, get answer's data. Other
// requests get an empty reply.
func holdScript(t *testing.T, flood func(ctx context.Context, ws *websocket.Conn), held string,
	answer func(protocol.Request) any, release <-chan struct{}) func(context.Context, *websocket.Conn) {
	return func(ctx context.Context, ws *websocket.Conn) {
		reqs := make(chan protocol.Request, 64)
		go func() { // the reader; this script is the one writer
			defer close(reqs)
			for {
				_, b, err := ws.Read(ctx)
				if err != nil {
					return
				}
				var req protocol.Request
				if json.Unmarshal(b, &req) == nil {
					reqs <- req
				}
			}
		}()
		reply := func(req protocol.Request, data any) {
			raw, _ := json.Marshal(data)
			f, _ := json.Marshal(protocol.Frame{Type: protocol.TypeReply, ID: req.ID, Data: raw})
			ws.Write(ctx, websocket.MessageText, f)
		}
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		var waiting []protocol.Request
		listed, released := false, false
		for {
			select {
			case req, ok := <-reqs:
				switch {
				case !ok:
					return
				case req.Op == protocol.OpConversations && !listed:
					listed = true
					reply(req, protocol.ConversationList{Conversations: []parley.Conversation{}})
					flood(ctx, ws)
				case req.Op == held && !released:
					waiting = append(waiting, req)
				case req.Op == held:
					reply(req, answer(req))
				default:
					reply(req, struct{}{})
				}
			case <-release:
				release, released = nil, true
				for _, req := range waiting {
					reply(req, answer(req))
				}
				waiting = nil
			case <-ctx.Done():
				return
			}
		}
	}
}

// TestHostileServerManyUnknownConversations: events of many
// conversations the client does not know (a broken or hostile server,
// or a long replay) do not make a goroutine and a request in flight
// each: the client fetched each alone on a goroutine of its own, so
// 1000 small events the server never answers for held 1000 goroutines.
// The fetches now wait their turn, and every conversation is still
// fetched once the server answers.
func TestHostileServerManyUnknownConversations(t *testing.T) {
	const n = 1000
	srv, c := startScripted(t)
	release := make(chan struct{})
	srv.scripts <- holdScript(t, func(ctx context.Context, ws *websocket.Conn) {
		for i := range n {
			id := "c" + strconv.Itoa(i)
			writeFrame(ctx, t, ws, protocol.TypeEvent, parley.Event{Pos: int64(i + 1), Type: parley.EventNewMessage, ConversationID: id,
				Message: &parley.Message{ID: "m" + id, ConversationID: id, Seq: 1, SenderID: "alice", Type: parley.Text, Text: "x"}})
		}
	}, protocol.OpConversation, func(req protocol.Request) any {
		var ref protocol.ConversationRef
		json.Unmarshal(req.Data, &ref)
		return parley.Conversation{ID: ref.ConversationID, Kind: parley.Group, Members: []parley.Member{{UserID: "bob"}, {UserID: "alice"}}}
	}, release)
	last := make(chan struct{})
	c.AddEventHandler("test", func(ev client.Event) {
		if m, ok := ev.(client.NewMessage); ok && m.Message.ConversationID == "c"+strconv.Itoa(n-1) {
			close(last)
		}
	})
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	if _, err := c.Conversations(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-last // every event applied: every fetch asked for
	if grown := runtime.NumGoroutine() - before; grown > n/2 {
		t.Errorf("%d goroutines more for %d unknown conversations", grown, n)
	}
	close(release)
	for deadline := time.Now().Add(time.Minute); len(c.CachedConversations()) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d conversations fetched", len(c.CachedConversations()), n)
		}
	}
}

// TestHostileServerResyncFlood: resyncs in a row (a broken or hostile
// server) fetch the conversation list once at a time, once more after
// the last: each started a listing of its own on a goroutine of its
// own, so 1000 small frames the server never answers for held 1000
// goroutines.
func TestHostileServerResyncFlood(t *testing.T) {
	const n = 1000
	srv, c := startScripted(t)
	release := make(chan struct{})
	var lists atomic.Int64
	srv.scripts <- holdScript(t, func(ctx context.Context, ws *websocket.Conn) {
		for range n {
			writeFrame(ctx, t, ws, protocol.TypeResync, protocol.Resync{Head: 1, Reason: "flood"})
		}
	}, protocol.OpConversations, func(protocol.Request) any {
		lists.Add(1)
		return protocol.ConversationList{Conversations: []parley.Conversation{}}
	}, release)
	resyncs := make(chan struct{}, n)
	c.AddEventHandler("test", func(ev client.Event) {
		if _, ok := ev.(client.Resynced); ok {
			resyncs <- struct{}{}
		}
	})
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	if _, err := c.Conversations(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range n { // every resync applied: every listing asked for
		<-resyncs
	}
	if grown := runtime.NumGoroutine() - before; grown > n/2 {
		t.Errorf("%d goroutines more for %d resyncs", grown, n)
	}
	close(release)
	// The listing under way, then one more for the resyncs after it.
	for deadline := time.Now().Add(20 * time.Second); lists.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d listings after the resyncs, want 2", lists.Load())
		}
	}
}

// TestHostileServerNeverAnswers: a server that keeps the link up but
// answers no request does not make the client keep every request it
// gave up on. Each stayed in the map of requests waiting for a reply
// until the connection ended, which such a server need never do.
func TestHostileServerNeverAnswers(t *testing.T) {
	const calls = 200
	srv, c := startScripted(t)
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		for { // every request, pings too, read and none answered (the heartbeat gives 9 s: longer than the test)
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range calls {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if _, err := c.History(ctx, "c1", parley.MessageQuery{}); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("History: %v, want a deadline", err)
			}
		})
	}
	wg.Wait()
	if !c.Connected() {
		t.Fatal("the link went down: the pending requests went with it")
	}
	if n := c.PendingRequests(); n != 0 {
		t.Errorf("%d of %d requests given up on still wait for a reply", n, calls)
	}
}

// TestHostileServerLoginNeverAnswers: Login under a ctx with no deadline
// against a server that accepts the request and never answers fails
// after DefaultRequestTimeout (lowered here to 300 ms) with an error
// that wraps context.DeadlineExceeded. It waited for ever. The server
// here gives up after 10 s.
func TestHostileServerLoginNeverAnswers(t *testing.T) {
	client.SetAuthTimeout(t, 300*time.Millisecond)
	done := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}))
	defer hs.Close()
	defer close(done) // before Close, which waits for the handler
	if _, err := client.Login(context.Background(), hs.URL, "alice", "correct horse battery"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Login: %v, want a deadline", err)
	}
}
