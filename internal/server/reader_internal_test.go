package server

import (
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
