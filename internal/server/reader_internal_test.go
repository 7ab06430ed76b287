package server

import (
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley/protocol"
)

// FuzzPlainPing checks the reader's ping fast path against the general
// decoder: whatever plainPing accepts, DecodeRequest reads as a ping with
// the same id.
func FuzzPlainPing(f *testing.F) {
	for _, s := range []string{`{"op":"ping"}`, `{"op":"ping","id":"p1"}`, `{"op":"ping","id":""}`,
		`{"op":"ping","id":"` + strings.Repeat("x", protocol.MaxRequestIDLen) + `"}`,
		`{"op":"ping","id":"` + strings.Repeat("x", protocol.MaxRequestIDLen+1) + `"}`,
		`{"op":"ping","id":"a\"b"}`, `{"op":"ping","id":"\u00e9"}`, `{"op":"ping","id":"p"} `, `{"op":"pong"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, ok := plainPing(b)
		if !ok {
			return
		}
		r, err := protocol.DecodeRequest(b)
		if err != nil || r.Op != protocol.OpPing || r.ID != id {
			t.Fatalf("plainPing(%q) = %q; DecodeRequest: op %q id %q err %v", b, id, r.Op, r.ID, err)
		}
	})
}

// queueTransport reads its messages in order and parks once it has none
// left (it has no poller: Park only reports it).
type queueTransport struct {
	transport // Write, Close...: not called by readLoop
	msgs      [][]byte
	parks     int
}

func (q *queueTransport) Wait() error { return nil }

func (q *queueTransport) Park(resumer) bool {
	if len(q.msgs) > 0 {
		return false
	}
	q.parks++
	return true
}

func (q *queueTransport) Read() (msgKind, *[]byte, error) {
	bp := readPool.Get().(*[]byte)
	*bp = append((*bp)[:0], q.msgs[0]...)
	q.msgs = q.msgs[1:]
	return msgText, bp, nil
}

// TestReadLoopWokeOnce: the poller's wake-up time goes with the first
// message read after it and with no other, so parley_send_wake_seconds
// has one sample per wake-up; a ping read first takes it with it.
func TestReadLoopWokeOnce(t *testing.T) {
	send := []byte(`{"op":"send","id":"s","data":{}}`)
	ping := []byte(`{"op":"ping","id":"p"}`)
	for _, tc := range []struct {
		name string
		msgs [][]byte
		want []int64 // woke of the requests queued, in order
	}{
		{"sends", [][]byte{send, send, send}, []int64{42, 0, 0}},
		{"ping first", [][]byte{ping, send, send}, []int64{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &conn{s: &Server{}, workerOn: true} // workerOn: push starts no worker
			q := &queueTransport{msgs: tc.msgs}
			c.t = q
			// The ping's pong goes to the send queue: started is false,
			// so nothing writes it.
			if !c.readLoop(42) || q.parks != 1 {
				t.Fatalf("readLoop did not park once (%d parks)", q.parks)
			}
			var got []int64
			for _, r := range c.reqs {
				got = append(got, r.woke)
				readPool.Put(r.raw)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("woke of the requests queued: %v, want %v", got, tc.want)
			}
		})
	}
}
