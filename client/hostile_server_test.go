package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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
