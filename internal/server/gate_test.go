package server_test

import (
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/protocol"
)

// TestSendGateKeepsOrder: after a send is refused as rate-limited, a later
// send on the same connection is refused too, even once the limiter has a
// token again, until the refused message comes back: otherwise a client
// with several sends in flight would get them stored out of order.
func TestSendGateKeepsOrder(t *testing.T) {
	srv := startLimited(t, func(l *server.Limits) {
		// One token a second: slow enough that no token comes back while
		// the first three sends run, even on a loaded machine.
		l.MessagesPerSecond, l.MessageBurst = 1, 2
	})
	a, conv := aliceToBob(t, srv)
	a.send(conv.ID, "c1", "one")
	a.send(conv.ID, "c2", "two")
	f := a.call(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c3", Text: "three"})
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED {
		t.Fatalf("third send: %s %+v, want rate_limited", f.Type, f.Error)
	}
	// Let the limiter refill (one token a second). This wait is a
	// precondition, not a timed assertion: waiting longer changes nothing.
	time.Sleep(time.Duration(f.Error.RetryAfterMS)*time.Millisecond + 100*time.Millisecond)

	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c4", Text: "four"}); code != parley.ERATELIMITED {
		t.Fatalf("send after the refused one, before it is retried: %s, want rate_limited", code)
	}
	a.send(conv.ID, "c3", "three")      // the refused message opens the gate
	time.Sleep(1100 * time.Millisecond) // a token for c4 (a precondition, as above)
	a.send(conv.ID, "c4", "four")

	page := a.history(conv.ID)
	var got []string
	for _, m := range page.Messages {
		got = append(got, m.Text)
	}
	if len(got) != 4 || got[0] != "one" || got[1] != "two" || got[2] != "three" || got[3] != "four" {
		t.Fatalf("stored %v, want [one two three four]", got)
	}
}

// TestSendGateHoldsEdits: an edit refused by the messages limit closes
// the gate for sends, and a refused send closes it for edits, so a
// client's sends and edits are applied in the order it sent them.
func TestSendGateHoldsEdits(t *testing.T) {
	srv := startLimited(t, func(l *server.Limits) {
		l.MessagesPerSecond, l.MessageBurst = 1, 2
	})
	a, conv := aliceToBob(t, srv)
	m := a.send(conv.ID, "c1", "one")
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e1", Text: "ONE"}, nil)
	f := a.call(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e2", Text: "ONE!"})
	if f.Type != protocol.TypeError || f.Error.Code != parley.ERATELIMITED {
		t.Fatalf("third write: %s %+v, want rate_limited", f.Type, f.Error)
	}
	// A refill (a precondition, not a timed assertion, as above).
	time.Sleep(time.Duration(f.Error.RetryAfterMS)*time.Millisecond + 100*time.Millisecond)
	if code := a.fail(protocol.OpSend, protocol.Send{ConversationID: conv.ID, ClientID: "c2", Text: "two"}); code != parley.ERATELIMITED {
		t.Fatalf("a send behind the refused edit: %s, want rate_limited", code)
	}
	var got parley.Message
	a.do(protocol.OpEdit, protocol.Edit{ConversationID: conv.ID, MessageID: m.ID, ClientID: "e2", Text: "ONE!"}, &got)
	if got.Text != "ONE!" {
		t.Fatalf("the refused edit, resent: %q", got.Text)
	}
}
