package protocol_test

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// FuzzHelloCursor: any hello data decodes (DecodeData) to a cursor or
// fails with EINVALID, never panics; a cursor that passes Check for a log
// of n shards has at most n entries, each a shard of the log at a
// position of at least 0, and survives a JSON round trip as the same map.
func FuzzHelloCursor(f *testing.F) {
	for _, s := range []string{
		`{"protocol":2,"cursor":{"0":12,"5":40}}`,
		`{"protocol":2,"cursor":{}}`,
		`{"protocol":2,"cursor":null}`,
		`{"protocol":2,"cursor":{"-1":1}}`,
		`{"protocol":2,"cursor":{"99999999999999999999":1}}`,
		`{"protocol":2,"cursor":{"01":1,"1":2}}`,
		`{"protocol":2,"cursor":{"x":1}}`,
		`{"protocol":2,"cursor":{"1":-5}}`,
		`{"protocol":2,"cursor":{"1":1.5}}`,
		`{"protocol":2,"cursor":[1,2]}`,
	} {
		f.Add([]byte(s), 8)
	}
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		n = 1 + (n&0xffff)%parley.MaxShards
		var h protocol.Hello
		if err := protocol.DecodeData(data, &h); err != nil {
			if parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("decode error %v, want invalid", err)
			}
			return
		}
		if err := h.Cursor.Check(n); err != nil {
			if parley.ErrorCode(err) != parley.EINVALID {
				t.Fatalf("check error %v, want invalid", err)
			}
			return
		}
		if len(h.Cursor) > n {
			t.Fatalf("a cursor of %d entries passed for %d shards", len(h.Cursor), n)
		}
		for s, p := range h.Cursor {
			if s < 0 || s >= n || p < 0 {
				t.Fatalf("entry %d:%d passed for %d shards", s, p, n)
			}
		}
		b, err := json.Marshal(h.Cursor)
		if err != nil {
			t.Fatal(err)
		}
		var back protocol.ShardCursor
		if err := json.Unmarshal(b, &back); err != nil || !maps.Equal(back, h.Cursor) {
			t.Fatalf("round trip of %v: %s -> %v (%v)", h.Cursor, b, back, err)
		}
	})
}

// TestShardCursor: Advance drops what is at or below a shard's entry and
// moves only that shard's; Merge never moves an entry back; CursorOf
// leaves out shards at 0; on the wire keys are decimal strings.
func TestShardCursor(t *testing.T) {
	c := protocol.ShardCursor{0: 12, 5: 40}
	if c.Advance(5, 40) || c.Advance(0, 3) {
		t.Fatal("Advance took a position at or below its shard's entry")
	}
	if !c.Advance(0, 13) || !c.Advance(7, 1) || c[5] != 40 {
		t.Fatalf("Advance: %v", c)
	}
	c.Merge(protocol.ShardCursor{0: 1, 5: 41, 2: 3})
	if want := (protocol.ShardCursor{0: 13, 2: 3, 5: 41, 7: 1}); !maps.Equal(c, want) {
		t.Fatalf("Merge: %v, want %v", c, want)
	}
	if got := protocol.CursorOf([]int64{0, 4, 0, 9}); !maps.Equal(got, protocol.ShardCursor{1: 4, 3: 9}) {
		t.Fatalf("CursorOf: %v", got)
	}
	b, _ := json.Marshal(protocol.ShardCursor{0: 12, 5: 40})
	if string(b) != `{"0":12,"5":40}` {
		t.Fatalf("wire: %s", b)
	}
}

// TestShardCursorKeysCanonical: a cursor key is the canonical decimal of its
// shard, once. A plain map[int]int64 would read "01" and "+1" as shard 1 and
// keep the last of two keys naming one shard (found by internal/indietest).
func TestShardCursorKeysCanonical(t *testing.T) {
	for _, in := range []string{`{"01":1}`, `{"+1":1}`, `{" 1":1}`, `{"1 ":1}`, `{"-0":1}`, `{"01":1,"1":0}`, `{"1":1,"1":2}`, `{"0":1.5}`, `{"0":"1"}`, `[1]`, `{"0":1`, `{"0":1}x`} {
		var c protocol.ShardCursor
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("%s: read as %v, want an error", in, c)
		}
	}
	for in, want := range map[string]protocol.ShardCursor{`null`: nil, `{}`: {}, `{"0":0,"7":12}`: {0: 0, 7: 12}, `{"-1":3}`: {-1: 3}} {
		var c protocol.ShardCursor
		if err := json.Unmarshal([]byte(in), &c); err != nil {
			t.Errorf("%s: %v", in, err)
		} else if !maps.Equal(c, want) || (c == nil) != (want == nil) {
			t.Errorf("%s: read as %v, want %v", in, c, want)
		}
	}
	many := make(protocol.ShardCursor, parley.MaxShards+1)
	for s := range parley.MaxShards + 1 {
		many[s] = 1
	}
	b, _ := json.Marshal(many)
	var c protocol.ShardCursor
	if err := json.Unmarshal(b, &c); err == nil {
		t.Errorf("a cursor of %d entries was read", len(many))
	}
}
