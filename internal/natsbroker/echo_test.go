package natsbroker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/natsbroker"
	"github.com/parleychat/parley/internal/natsbroker/natstest"
)

// TestEchoNotDecoded: a node's own messages reach its subscriber as they
// were published, in NATS's order among the other node's, without being
// decoded again; the other node's are decoded. Each subscriber sees every
// message of both nodes, in each node's publish order.
func TestEchoNotDecoded(t *testing.T) {
	subject := natstest.Subject(t)
	a, b := open(t, embedded.ClientURL(), subject, "a"), open(t, embedded.ClientURL(), subject, "b")
	type got struct{ node, text string }
	recv := func(br *natsbroker.Broker) chan got {
		ch := make(chan got, 400)
		stop, err := br.Subscribe(func(m parley.BrokerMessage) {
			for _, e := range m.Events {
				if len(e.Audience) != 1 || e.Audience[0] != "u-"+m.Node {
					t.Errorf("event %q from %s has audience %v", e.Message.Text, m.Node, e.Audience)
				}
				ch <- got{m.Node, e.Message.Text}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		return ch
	}
	ca, cb := recv(a), recv(b)
	publish := func(br *natsbroker.Broker, node string, i int) {
		t.Helper()
		err := br.Publish(context.Background(), parley.BrokerMessage{Node: node, Events: []parley.Event{{Pos: int64(i + 1),
			Type: parley.EventNewMessage, Message: &parley.Message{Text: fmt.Sprint(node, i)}, Audience: []string{"u-" + node}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	const n = 100
	for i := range n {
		publish(a, "a", i)
		if i%2 == 0 {
			publish(b, "b", i/2)
		}
	}
	for name, ch := range map[string]chan got{"a": ca, "b": cb} {
		next := map[string]int{}
		for range n + n/2 {
			select {
			case g := <-ch:
				if want := fmt.Sprint(g.node, next[g.node]); g.text != want {
					t.Fatalf("%s's subscriber got %q, want %q", name, g.text, want)
				}
				next[g.node]++
			case <-time.After(10 * time.Second):
				t.Fatalf("%s's subscriber: gave up after %v", name, next)
			}
		}
	}
	if d := natsbroker.Decoded(a); d != n/2 {
		t.Errorf("a decoded %d messages, want %d (b's only)", d, n/2)
	}
	if d := natsbroker.Decoded(b); d != n {
		t.Errorf("b decoded %d messages, want %d (a's only)", d, n)
	}
}

// TestEchoesBounded: the messages kept for their echo are bounded in
// bytes (the oldest forgotten, and decoded when they come); an echo
// forgets what was kept before it (NATS dropped those); another
// instance's header, or a malformed one, never matches.
func TestEchoesBounded(t *testing.T) {
	var e natsbroker.Echoes
	msg := func(i int) parley.BrokerMessage { return parley.BrokerMessage{Node: fmt.Sprint("m", i)} }
	const size = 64 << 10
	for i := range 200 {
		natsbroker.Keep(&e, uint64(i+1), size, msg(i+1))
		if _, bytes := natsbroker.Len(&e); bytes > natsbroker.MaxEchoBytes {
			t.Fatalf("after %d messages %d bytes kept, over %d", i+1, bytes, natsbroker.MaxEchoBytes)
		}
	}
	kept, _ := natsbroker.Len(&e)
	if kept != natsbroker.MaxEchoBytes/size {
		t.Fatalf("%d messages kept, want %d", kept, natsbroker.MaxEchoBytes/size)
	}
	if _, ok := natsbroker.Take(&e, 1); ok {
		t.Fatal("took message 1, forgotten long ago")
	}
	first := uint64(200 - kept + 1)
	if m, ok := natsbroker.Take(&e, first+3); !ok || m.Node != fmt.Sprint("m", first+3) {
		t.Fatalf("take %d = %v, %v", first+3, m.Node, ok)
	}
	if n, _ := natsbroker.Len(&e); n != kept-4 {
		t.Fatalf("%d kept after taking the 4th, want %d (the 3 before it dropped)", n, kept-4)
	}
	if _, ok := natsbroker.Take(&e, first+1); ok {
		t.Fatal("took a message dropped as passed")
	}
	for _, h := range []string{"", "other.5", "abc.5", "abc", "abc.", "abc.x", "abc5", "abc.-1"} {
		if seq, ok := natsbroker.EchoSeq(h, "abc"); ok && h != "abc.5" {
			t.Errorf("header %q matched instance abc as %d", h, seq)
		}
	}
	if seq, ok := natsbroker.EchoSeq("abc.5", "abc"); !ok || seq != 5 {
		t.Errorf("header abc.5 = %d, %v", seq, ok)
	}
}
