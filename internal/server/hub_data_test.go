package server

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// frames returns the frames queued to c and empties its queue.
func frames(c *conn) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out [][]byte
	for _, f := range c.q {
		out = append(out, f.b)
	}
	c.q, c.qBytes = nil, 0
	return out
}

// TestHubData: an event a broker brings as its routing fields and Data
// (parley.Event.Data) goes to a local connection as the very frame the
// event encodes to (attachment URLs included: Data is made with them),
// so a client cannot tell which node encoded it; typing the same. Data
// that does not parse is not written: the event is read from the store
// and goes out as the store has it, once, and its position is delivered.
func TestHubData(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "parley.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := newHub(store, slog.New(slog.DiscardHandler), newMetrics())
	h.start([]int64{0})
	s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}}
	a := &conn{s: s, user: parley.User{ID: "a"}}
	h.register(a, nil, nil)

	at := time.Date(2026, 12, 5, 1, 0, 0, 5, time.UTC)
	img := &parley.Message{ID: "m1", ConversationID: "c1", Seq: 1, SenderID: "b", Type: parley.Image, Text: "<b>&☃",
		Attachment: &parley.Attachment{ID: "a1", ContentType: "image/png", Size: 3, Width: 1, Height: 1}, CreatedAt: at}
	events := []parley.Event{
		{Pos: 1, Type: parley.EventNewMessage, ConversationID: "c1", UserID: "b", Message: img, At: at, Audience: []string{"a", "b"}},
		{Pos: 2, Type: parley.EventConversationUpdated, ConversationID: "c1", Change: parley.ChangeRenamed, At: at, Audience: []string{"a"},
			Conversation: &parley.Conversation{ID: "c1", Kind: parley.Group, Title: "t", LastMessage: img, CreatedAt: at, LastActivityAt: at}},
	}
	for _, ev := range events {
		want := encodeEvent(ev)
		if !bytes.Contains(want, []byte(`"/v1/attachments/a1`)) {
			t.Fatalf("no attachment URL in %s", want)
		}
		routed := parley.Event{Pos: ev.Pos, Type: ev.Type, ConversationID: ev.ConversationID, Change: ev.Change, At: ev.At,
			Audience: ev.Audience, Data: eventData(ev)}
		h.accept(routed)
		if got := frames(a); len(got) != 1 || !bytes.Equal(got[0], want) {
			t.Fatalf("event %d from Data: frames %q, want %q", ev.Pos, got, want)
		}
	}
	typing := parley.Event{Type: parley.EventTypingStarted, ConversationID: "c1", UserID: "b", At: at, Audience: []string{"a"}}
	want := encodeEvent(typing)
	h.deliverTyping(parley.Event{Type: typing.Type, ConversationID: "c1", At: at, Audience: []string{"a"}, Data: eventData(typing)})
	if got := frames(a); len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("typing from Data: frames %q, want %q", got, want)
	}

	// Malformed Data: the store's event goes out instead.
	if _, err := store.EnsureUser(t.Context(), "a", "A"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureUser(t.Context(), "b", "B"); err != nil {
		t.Fatal(err)
	}
	_, evs, err := store.CreateGroup(t.Context(), "a", "g", []string{"b"})
	if err != nil || len(evs) != 1 {
		t.Fatalf("CreateGroup: %v, %d events", err, len(evs))
	}
	h.start([]int64{evs[0].Pos - 1})
	stored := evs[0]
	want = encodeEvent(stored)
	h.accept(parley.Event{Pos: stored.Pos, Type: stored.Type, ConversationID: stored.ConversationID, At: stored.At,
		Audience: []string{"a"}, Data: []byte(`{"pos":`)})
	if got := frames(a); len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("malformed Data: frames %q, want the store's %q", got, want)
	}
	if h.delivered[0] != stored.Pos {
		t.Fatalf("delivered %d, want %d", h.delivered[0], stored.Pos)
	}

	// Malformed Data of an event the store does not give either: no frame,
	// the position advances, and the receiver is closed with a code that
	// means "reconnect and resume", so it reads the event from the store
	// once it can instead of never getting it.
	h.accept(parley.Event{Pos: stored.Pos + 1, Type: parley.EventNewMessage, ConversationID: stored.ConversationID, At: stored.At,
		Audience: []string{"a"}, Data: []byte(`{"pos":`)})
	if got := frames(a); len(got) != 0 {
		t.Fatalf("unreadable event: frames %q, want none", got)
	}
	if h.delivered[0] != stored.Pos+1 {
		t.Fatalf("delivered %d, want %d", h.delivered[0], stored.Pos+1)
	}
	a.mu.Lock()
	code := a.closeCode
	a.mu.Unlock()
	if code != protocol.CloseReconnect {
		t.Fatalf("receiver of an unreadable event: close code %d, want %d (reconnect and resume)", code, protocol.CloseReconnect)
	}
}
