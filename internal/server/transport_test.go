package server_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestTransports: each WebSocket library behind the transport interface
// serves a hello, a request, a delivery to another connection, and closes
// a frame over the read limit with 1009.
func TestTransports(t *testing.T) {
	for _, tr := range []string{server.TransportGobwas, server.TransportCoder} {
		t.Run(tr, func(t *testing.T) {
			srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Transport = tr }))
			a, b, conv := directPair(t, srv)
			a.send(conv.ID, "c1", "over "+tr)
			if ev := b.event(parley.EventNewMessage); ev.Message.Text != "over "+tr {
				t.Fatalf("bob got %q", ev.Message.Text)
			}
			if f := b.call(protocol.OpPing, nil); f.Type != protocol.TypePong {
				t.Fatalf("ping: got %s", f.Type)
			}
			big := `{"op":"ping","id":"` + strings.Repeat("x", parley.MaxFrameBytes) + `"}`
			if err := a.writeRaw(websocket.MessageText, []byte(big)); err != nil {
				t.Fatal(err)
			}
			if code := a.closeCode(); code != protocol.CloseTooLarge {
				t.Fatalf("a frame over %d bytes: close %d, want %d", parley.MaxFrameBytes, code, protocol.CloseTooLarge)
			}
		})
	}
}
