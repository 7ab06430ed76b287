package client_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
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
