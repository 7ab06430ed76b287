package server_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSmoke(t *testing.T) {
	srv := servertest.Start(t)
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	m := a.send(conv.ID, "c1", "hello")
	ev := b.event(parley.EventNewMessage)
	if ev.Message.ID != m.ID || ev.Message.Text != "hello" {
		t.Fatalf("bob got %+v, want %+v", ev.Message, m)
	}
}
