package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/parleychat/parley"
)

// Version2 is the protocol version of a deployment whose event log has
// shards (docs/protocol.md section 3, "Protocol 2: a cursor per shard"):
// hello carries Protocol: 2 and Cursor instead of ResumeFrom, welcome,
// resumed and resync carry the cursor and the shard count, and a durable
// event carries its shard besides its pos. It works on a log of one shard
// too (the cursor is then {"0": N}).
const Version2 = 2

// ShardCursor is a protocol-2 position: the last position a client saw in each
// shard of the event log, sparse. On the wire it is a JSON object whose
// keys are shard numbers in decimal and whose values are positions, e.g.
// {"0":12,"5":40}; a shard left out is at position 0 (nothing of it
// seen). It is not opaque: a client compares an event's pos with
// Cursor[event.shard] to drop what it has seen, and moves only that
// shard's entry.
//
// encoding/json writes it (a map with integer keys) and reads it through
// UnmarshalJSON, which keeps the keys canonical; Check bounds what it read.
type ShardCursor map[int]int64

// UnmarshalJSON reads a cursor object with encoding/json's tokenizer and
// refuses what a plain map[int]int64 would let through: a key that is not
// the canonical decimal of its shard ("01", "+1", " 1"), the same shard
// twice (encoding/json keeps the last silently), and more than MaxShards
// entries. null leaves the cursor nil (no position: a first connection).
func (c *ShardCursor) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		*c = nil
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return parley.Errorf(parley.EINVALID, "cursor must be a JSON object of shard to position")
	}
	out := ShardCursor{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return parley.Errorf(parley.EINVALID, "cursor: %v", err)
		}
		key, _ := t.(string)
		s, err := strconv.Atoi(key)
		if err != nil || strconv.Itoa(s) != key {
			return parley.Errorf(parley.EINVALID, "cursor key %q is not a shard number in decimal", key)
		}
		if _, dup := out[s]; dup {
			return parley.Errorf(parley.EINVALID, "cursor names shard %d twice", s)
		}
		if len(out) == parley.MaxShards {
			return parley.Errorf(parley.EINVALID, "cursor has more than %d entries", parley.MaxShards)
		}
		var p int64
		if err := dec.Decode(&p); err != nil {
			return parley.Errorf(parley.EINVALID, "cursor position of shard %d must be a whole number", s)
		}
		out[s] = p
	}
	if _, err := dec.Token(); err != nil {
		return parley.Errorf(parley.EINVALID, "cursor: %v", err)
	}
	*c = out
	return nil
}

// Check reports whether c is a cursor of a log of shards shards: at most
// one entry per shard, every key a shard of the log (0 to shards-1), every
// position at least 0. Errors are parley.EINVALID.
func (c ShardCursor) Check(shards int) error {
	if len(c) > shards {
		return parley.Errorf(parley.EINVALID, "cursor has %d entries; this server's log has %d shard(s)", len(c), shards)
	}
	for s, p := range c {
		if s < 0 || s >= shards {
			return parley.Errorf(parley.EINVALID, "cursor names shard %d; this server's log has shards 0 to %d", s, shards-1)
		}
		if p < 0 {
			return parley.Errorf(parley.EINVALID, "cursor position of shard %d must not be negative", s)
		}
	}
	return nil
}

// Advance records an event of shard at pos: it reports false (the event
// was seen: drop it) when pos is at or below the cursor's entry for shard,
// else it moves the entry to pos and reports true.
func (c ShardCursor) Advance(shard int, pos int64) bool {
	if pos <= c[shard] {
		return false
	}
	c[shard] = pos
	return true
}

// Merge moves every entry of c up to o's where o's is further; it never
// moves one back.
func (c ShardCursor) Merge(o ShardCursor) {
	for s, p := range o {
		if p > c[s] {
			c[s] = p
		}
	}
}

// Clone returns a copy of c (nil for nil).
func (c ShardCursor) Clone() ShardCursor {
	if c == nil {
		return nil
	}
	o := make(ShardCursor, len(c))
	for s, p := range c {
		o[s] = p
	}
	return o
}

// CursorOf returns the sparse cursor of heads, one position per shard:
// shards at 0 are left out.
func CursorOf(heads []int64) ShardCursor {
	c := make(ShardCursor, len(heads))
	for s, p := range heads {
		if p > 0 {
			c[s] = p
		}
	}
	return c
}
