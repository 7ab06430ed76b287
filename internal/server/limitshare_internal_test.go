package server

import (
	"testing"

	"github.com/parleychat/parley"
)

// TestLimitUsage: a shared set counts the tokens it gives and reports
// them once; a charge from another node puts the bucket into debt (its
// next request is refused), bounded however large the report; a set not
// shared counts nothing.
func TestLimitUsage(t *testing.T) {
	ls := newLimiters(Limits{MessagesPerSecond: 0.001, MessageBurst: 3}.withDefaults(), nil)
	ls.shared()
	for range 2 {
		if d := ls.messages.wait("alice"); d != 0 {
			t.Fatalf("a token within the burst: wait %v", d)
		}
	}
	got := ls.usage()
	if len(got) != 1 || got[0] != (parley.LimitUsage{Limit: "messages", Key: "alice", N: 2}) {
		t.Fatalf("usage = %+v, want messages/alice 2", got)
	}
	if again := ls.usage(); len(again) != 0 {
		t.Fatalf("usage reported twice: %+v", again)
	}

	ls.charge([]parley.LimitUsage{{Limit: "messages", Key: "bob", N: 1 << 40}, {Limit: "no such limit", Key: "bob", N: 1}})
	if d := ls.messages.wait("bob"); d == 0 {
		t.Fatal("bob took a token after another node reported more than his burst")
	}
	if d := ls.messages.wait("carol"); d != 0 {
		t.Fatalf("carol, charged nothing, waits %v", d)
	}

	alone := newLimiters(Limits{}.withDefaults(), nil)
	alone.messages.wait("alice")
	if u := alone.usage(); len(u) != 0 {
		t.Fatalf("a set not shared reported %+v", u)
	}
}
