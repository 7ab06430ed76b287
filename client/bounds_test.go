package client_test

import (
	"bytes"
	"context"
	"encoding/json"
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

// TestHostileServerGoawayForAnHour: a goaway whose reconnect_after_ms
// says an hour waits no longer than the backoff's ceiling, then the
// client connects again by itself. It waited the hour: a server (or a
// man in the middle on plain ws) could park a client until the app
// called Reconnect.
func TestHostileServerGoawayForAnHour(t *testing.T) {
	const ceiling = 200 * time.Millisecond
	srv, c := startScripted(t, client.WithBackoff(time.Millisecond, ceiling))
	changes := c.StatusChanges(t.Context())
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		writeFrame(ctx, t, ws, protocol.TypeGoAway, protocol.GoAway{Reason: "restart", ReconnectAfterMS: time.Hour.Milliseconds()})
	}
	again := make(chan struct{})
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		close(again)
		for { // until the client closes
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	for ch := range changes {
		if ch.Current != client.Reconnecting {
			continue
		}
		if wait := ch.NextRetryAt.Sub(ch.At); wait > ceiling {
			t.Fatalf("after a goaway of an hour the client waits %v, more than the backoff's ceiling %v", wait, ceiling)
		}
		break
	}
	select {
	case <-again:
	case <-time.After(20 * time.Second): // a liveness bound, not a timing assertion
		t.Fatal("no second connection after the goaway")
	}
}

// TestHostileServerEndlessDownload: a chunked answer (no Content-Length)
// that never ends writes no more than the attachment's size, or the
// SDK's bound (MaxFileBytes, lowered here) without one, then fails with
// too_large; an answer whose Content-Length says more fails before a
// byte is written. Download wrote until the server stopped or ctx ended.
// An honest answer of exactly the size is whole.
func TestHostileServerEndlessDownload(t *testing.T) {
	const bound = 256 << 10
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/attachments/endless":
			chunk := bytes.Repeat([]byte("x"), 32<<10)
			for r.Context().Err() == nil { // until the client hangs up
				if _, err := w.Write(chunk); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		case "/v1/attachments/long":
			w.Header().Set("Content-Length", "2000")
			w.Write(make([]byte, 2000))
		case "/v1/attachments/exact":
			w.Write(make([]byte, 1000))
			w.(http.Flusher).Flush() // chunked
			w.Write(make([]byte, 1000))
		default:
			http.NotFound(w, r)
		}
	}))
	defer hs.Close()
	c, err := client.New(hs.URL, client.WithToken("t"), client.WithMaxDownloadBytes(bound))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A liveness bound, not a timing assertion: without a bound the
	// endless answers end only here.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cases := []struct {
		name     string
		download func(w *bytes.Buffer) (int64, error)
		want     int64 // bytes written
		code     string
	}{
		{"endless, by id", func(w *bytes.Buffer) (int64, error) { return c.Download(ctx, "endless", w) }, bound, parley.ETOOLARGE},
		{"endless, with its size", func(w *bytes.Buffer) (int64, error) {
			return c.DownloadAttachment(ctx, parley.Attachment{ID: "endless", Size: 1000}, w)
		}, 1000, parley.ETOOLARGE},
		{"endless, with a size over the bound", func(w *bytes.Buffer) (int64, error) {
			return c.DownloadAttachment(ctx, parley.Attachment{ID: "endless", Size: 10 * bound}, w)
		}, bound, parley.ETOOLARGE},
		{"a Content-Length over the size", func(w *bytes.Buffer) (int64, error) {
			return c.DownloadAttachment(ctx, parley.Attachment{ID: "long", Size: 1000}, w)
		}, 0, parley.ETOOLARGE},
		{"exactly the size", func(w *bytes.Buffer) (int64, error) {
			return c.DownloadAttachment(ctx, parley.Attachment{ID: "exact", Size: 2000}, w)
		}, 2000, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			n, err := tc.download(&w)
			if parley.ErrorCode(err) != tc.code || (tc.code == "" && err != nil) {
				t.Errorf("download: %v, want code %q", err, tc.code)
			}
			if n != tc.want || int64(w.Len()) != tc.want {
				t.Errorf("download wrote %d bytes (says %d), want %d", w.Len(), n, tc.want)
			}
		})
	}
}

// TestHostileServerIDFlood: a server sending events of ever new ids
// (users coming online, typing, messages in unknown conversations,
// removals from them) keeps every map of the state within its bound
// (lowered here: MaxKnownConversations, MaxKnownUsers, MaxTypists) and
// fills them up to it. Each map took every id, linear in the bytes
// received. The delivery reports wait unanswered, so what they hold
// piles up as it would behind a slow server; ids over MaxStateIDBytes
// are never kept.
func TestHostileServerIDFlood(t *testing.T) {
	const convCap, userCap, typistCap, n = 50, 60, 40, 300
	srv, c := startScripted(t, client.WithStateCaps(convCap, userCap, typistCap), client.WithRequestTimeout(20*time.Second))
	srv.scripts <- func(ctx context.Context, ws *websocket.Conn) {
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
		event := func(ev parley.Event) { writeFrame(ctx, t, ws, protocol.TypeEvent, ev) }
		writeFrame(ctx, t, ws, protocol.TypeWelcome, welcomeWith(0))
		pos := int64(0)
		for req := range reqs {
			switch req.Op {
			case protocol.OpConversations:
				reply(req, protocol.ConversationList{Conversations: []parley.Conversation{}})
				long := strings.Repeat("x", client.MaxStateIDBytes+1)
				event(parley.Event{Type: parley.EventUserOnline, UserID: long, UserName: "Long"})
				for i := range n {
					id := strconv.Itoa(i)
					event(parley.Event{Type: parley.EventUserOnline, UserID: "u" + id, UserName: "U" + id})
					event(parley.Event{Type: parley.EventTypingStarted, ConversationID: "t" + id, UserID: "u" + id, UserName: "U" + id})
					pos++
					event(parley.Event{Pos: pos, Type: parley.EventNewMessage, ConversationID: "n" + id,
						Message: &parley.Message{ID: "m" + id, ConversationID: "n" + id, Seq: 1, SenderID: "s" + id, SenderName: "S" + id, Type: parley.Text, Text: "x"}})
					pos++
					event(parley.Event{Pos: pos, Type: parley.EventConversationUpdated, ConversationID: "r" + id, Change: parley.ChangeMembersRemoved,
						UserIDs: []string{"bob"}, Conversation: &parley.Conversation{ID: "r" + id, Kind: parley.Group}})
				}
				pos++
				event(parley.Event{Pos: pos, Type: parley.EventNewMessage, ConversationID: "last",
					Message: &parley.Message{ID: "mlast", ConversationID: "last", Seq: 1, SenderID: "bob", Type: parley.Text, Text: "end"}})
			case protocol.OpConversation:
				var ref protocol.ConversationRef
				json.Unmarshal(req.Data, &ref)
				reply(req, parley.Conversation{ID: ref.ConversationID, Kind: parley.Group, Members: []parley.Member{{UserID: "bob"}, {UserID: "alice"}}})
			case protocol.OpDelivered: // never answered: the reports pile up
			default:
				reply(req, struct{}{})
			}
		}
	}
	last := make(chan struct{})
	c.AddEventHandler("test", func(ev client.Event) {
		if m, ok := ev.(client.NewMessage); ok && m.Message.ConversationID == "last" {
			close(last)
		}
	})
	if err := c.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Conversations(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-last: // every event applied
	case <-time.After(20 * time.Second): // a liveness bound, not a timing assertion
		t.Fatal("the flood's last event never came")
	}
	// The conversations fetched alone: until none waits.
	for deadline := time.Now().Add(20 * time.Second); c.StateSizes()["toRefresh"] > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("conversations still waiting to be fetched: %v", c.StateSizes())
		}
	}
	sizes := c.StateSizes()
	caps := map[string]int{"online": userCap, "names": userCap, "unread": convCap, "convs": convCap, "removed": convCap,
		"typing": typistCap, "typingConversations": typistCap, "toRefresh": convCap, "delivered": convCap}
	for name, cap := range caps {
		if sizes[name] > cap {
			t.Errorf("%s holds %d entries, over its bound %d", name, sizes[name], cap)
		}
	}
	// Filled to the bound, not emptied: an honest account's state stays.
	for _, name := range []string{"online", "names", "unread", "removed", "typing"} {
		if sizes[name] != caps[name] {
			t.Errorf("%s holds %d entries, want its bound %d", name, sizes[name], caps[name])
		}
	}
	for _, u := range c.Online() {
		if len(u.ID) > client.MaxStateIDBytes {
			t.Errorf("an id of %d bytes is kept", len(u.ID))
		}
	}
}
