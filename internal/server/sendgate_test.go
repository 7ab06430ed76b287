package server_test

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/protocol"
)

// failingSends is the SQLite store with every send of one client id
// failing once with `unavailable`, as a store cut off from its database
// (or a send that waited past the op timeout) answers, while later sends
// would succeed. Sends go one at a time (no MultiSender), so the failure
// is the store's, not a batch's.
type failingSends struct {
	*sqlite.DB
	clientID string
	failed   atomic.Bool
}

func (s *failingSends) SendMessage(ctx context.Context, m parley.NewMessage) (parley.Message, []parley.Event, error) {
	if m.ClientID == s.clientID && s.failed.CompareAndSwap(false, true) {
		return parley.Message{}, nil, &parley.Error{Code: parley.EUNAVAILABLE, Message: "the store is unreachable"}
	}
	return s.DB.SendMessage(ctx, m)
}

// SendMessages hides the engine's own, so every send passes SendMessage.
func (s *failingSends) SendMessages(ctx context.Context, ms []parley.NewMessage, done func(int, parley.Message, []parley.Event, error)) {
	for i, m := range ms {
		msg, evs, err := s.SendMessage(ctx, m)
		done(i, msg, evs, err)
	}
}

// SendMessagesAsync hides the engine's own (parley.AsyncSender) for the
// same reason: the server would hand it the sends instead.
func (s *failingSends) SendMessagesAsync(ms []parley.NewMessage, _ *atomic.Bool, done func(int, parley.Message, []parley.Event, error)) {
	s.SendMessages(context.Background(), ms, done)
}

// TestSendGateAfterUnavailable: a send that fails for a reason a retry
// can fix (unavailable, internal, the op timeout) closes the connection's
// send gate like a rate-limit refusal, so a later send the client had in
// flight is not stored before the failed one's retry: TestPromise saw
// one sender's messages stored out of order (6 right after 0) on a
// loaded machine, where sends waited past the op timeout.
func TestSendGateAfterUnavailable(t *testing.T) {
	fs := &failingSends{clientID: "c2"}
	srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
		db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
		fs.DB = db
		return fs, err
	}))
	a, conv := aliceToBob(t, srv)
	a.send(conv.ID, "c1", "one")
	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c2", Text: "two"}); code != parley.EUNAVAILABLE {
		t.Fatalf("second send: %s, want unavailable", code)
	}
	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c3", Text: "three"}); code != parley.EUNAVAILABLE {
		t.Fatalf("a send behind the failed one, before it is retried: %s, want unavailable", code)
	}
	a.send(conv.ID, "c2", "two") // the failed message opens the gate
	a.send(conv.ID, "c3", "three")

	var got []string
	for _, m := range a.history(conv.ID).Messages {
		got = append(got, m.Text)
	}
	if len(got) != 3 || got[0] != "one" || got[1] != "two" || got[2] != "three" {
		t.Fatalf("stored %v, want [one two three]", got)
	}
}
