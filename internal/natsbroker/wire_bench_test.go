package natsbroker

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// BenchmarkReceive: a receiving node's cost of reading one message of
// the write benchmark's kind (one newMessage event, or a batch of 16 as
// a store's group commit publishes them) from its bytes: wire version 1
// (JSON, every event decoded) against version 2 (the routing header
// read, Data kept as bytes). Per op: one message.
func BenchmarkReceive(b *testing.B) {
	at := time.Now().UTC()
	ev := parley.Event{Pos: 123456, Type: parley.EventNewMessage, ConversationID: "01JEXAMPLECONVERSATION00000", UserID: "01JEXAMPLEUSER000000000000", UserName: "bench-user",
		Message: &parley.Message{ID: "01JEXAMPLEMESSAGE000000000", ConversationID: "01JEXAMPLECONVERSATION00000", SenderID: "01JEXAMPLEUSER000000000000",
			SenderName: "bench-user", Seq: 1, Text: "a message of the write benchmark, about this long", ClientID: "c-0001", CreatedAt: at},
		At: at, Audience: []string{"01JEXAMPLEUSER000000000000"}}
	data, err := json.Marshal(ev)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 16} {
		evs := make([]parley.Event, n)
		for i := range evs {
			evs[i] = ev
			evs[i].Pos += int64(i)
			evs[i].Data = data
		}
		m := parley.BrokerMessage{Node: "node-1", Events: evs}
		v1, err := json.Marshal(toWire(m))
		if err != nil {
			b.Fatal(err)
		}
		v2, err := encodeV2(m)
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range []struct {
			name string
			msg  []byte
		}{{"v1", v1}, {"v2", v2}} {
			b.Run(c.name+"/events="+string(rune('0'+n/10))+string(rune('0'+n%10)), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(c.msg)))
				var p int
				for b.Loop() {
					if _, err := decode(c.msg, &p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
