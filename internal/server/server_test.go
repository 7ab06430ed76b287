package server_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSmoke(t *testing.T) {
	srv := servertest.Start(t)
	a, b, conv := directPair(t, srv)
	m := a.send(conv.ID, "c1", "hello")
	ev := b.event(parley.EventNewMessage)
	if ev.Message.ID != m.ID || ev.Message.Text != "hello" {
		t.Fatalf("bob got %+v, want %+v", ev.Message, m)
	}
}
