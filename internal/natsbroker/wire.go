package natsbroker

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/parleychat/parley"
)

// Wire format, version 2. A node of N decodes every node's events, most of
// which have no audience on it (docs/benchmarks.md, "Per-node cost in a
// cluster"): decoding them whole from JSON was most of a node of three's
// extra CPU per message. So a message carries what the hub routes on in a
// small binary header per event, and the event itself as the bytes the
// publishing node already encoded for its clients (parley.Event.Data):
// a receiving node reads the header, and writes the bytes to the local
// connections that take the event, or nothing. The payload is parsed
// only when a node needs the event's other fields (rare kinds: see
// parley.Event.Decode) or when the publisher sent no Data.
//
//	message  = 0x00 version(2) string(node) bytes(meta) uvarint(count) event*
//	event    = flags(1 byte) uvarint(pos) uvarint(shard) string(type)
//	           string(conversation) string(change) varint(at, Unix ns)
//	           uvarint(audience count) string(user)*
//	           [uvarint(quote-hidden count) string(user)*] bytes(payload)
//	string, bytes = uvarint(length) then that many bytes
//
// meta is empty, or the JSON of the message's presence, rate-limit
// usage and user notices (wireMeta: rare, small, and parsed by
// encoding/json). A key added to meta needs no new version byte: a node
// of an older release skips a key it does not know (encoding/json) and
// reads the rest of the message. "users" (parley.UserChange) came so:
// an older node ignores the notices and keeps its cached users as it
// always did (docs/deploy.md, "Upgrading a NATS cluster"). flags bit 0
// (flagData) says the payload is parley.Event.Data, the event as clients
// receive it; without it the payload is the event's JSON (json.Marshal of
// parley.Event) and the receiving node decodes it. flags bit 1
// (flagQuoteHidden) says the bracketed list follows the audience:
// parley.Event.QuoteHidden, set only on an event that has one (a reply
// whose quote some of its receivers blocked the sender of). Other flag
// bits are refused. A node of a release before flagQuoteHidden refuses a
// message holding such an event (unknown flags) and delivers its events
// from its store poll, as for any message it refuses; every other
// message still reaches it, so the flag needs no new version byte. A
// later change that every event needs changes the version byte.
//
// Version 1 was the whole message as JSON (wireMessage, starting with
// '{'); nodes still read it, and publish it with Config.Wire = 1, so a
// cluster can be upgraded one node at a time (docs/deploy.md).
const (
	wireMagic = 0x00
	wireV2    = 2
	flagData  = 1
	// flagQuoteHidden: the event's QuoteHidden follows its audience.
	flagQuoteHidden = 2
)

// maxShard bounds a shard number on the wire (the hub drops an event of
// a shard it does not have anyway; this only keeps the int conversion
// sane).
const maxShard = 1 << 20

// wireMeta is a version 2 message's presence, usage and user notices.
type wireMeta struct {
	Presence *wirePresence `json:"presence,omitempty"`
	Usage    []wireUsage   `json:"usage,omitempty"`
	Users    []wireUser    `json:"users,omitempty"`
}

// encodeV2 encodes m. An event with Data travels as its header and Data;
// one without as its header and its JSON.
func encodeV2(m parley.BrokerMessage) ([]byte, error) {
	var meta []byte
	if m.Presence != nil || len(m.Usage) > 0 || len(m.Users) > 0 {
		w := toWire(parley.BrokerMessage{Presence: m.Presence, Usage: m.Usage, Users: m.Users})
		var err error
		if meta, err = json.Marshal(wireMeta{Presence: w.Presence, Usage: w.Usage, Users: w.Users}); err != nil {
			return nil, err
		}
	}
	n := 2 + 10 + len(m.Node) + 10 + len(meta) + 10
	for i := range m.Events {
		e := &m.Events[i]
		n += 1 + 10 + 10 + 10 + len(e.Type) + 10 + len(e.ConversationID) + 10 + len(e.Change) + 10 + 10 + 10 + len(e.Data)
		for _, u := range e.Audience {
			n += 10 + len(u)
		}
		for _, u := range e.QuoteHidden {
			n += 10 + len(u)
		}
	}
	b := make([]byte, 0, n)
	b = append(b, wireMagic, wireV2)
	b = appendString(b, m.Node)
	b = appendBytes(b, meta)
	b = binary.AppendUvarint(b, uint64(len(m.Events)))
	for i := range m.Events {
		e := &m.Events[i]
		if e.Pos < 0 || e.Shard < 0 || e.Shard > maxShard {
			return nil, fmt.Errorf("event with position %d in shard %d", e.Pos, e.Shard)
		}
		payload, flags := e.Data, byte(flagData)
		if payload == nil {
			var err error
			if payload, err = json.Marshal(e); err != nil {
				return nil, err
			}
			flags = 0
		}
		if len(e.QuoteHidden) > 0 {
			flags |= flagQuoteHidden
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(e.Pos))
		b = binary.AppendUvarint(b, uint64(e.Shard))
		b = appendString(b, string(e.Type))
		b = appendString(b, e.ConversationID)
		b = appendString(b, string(e.Change))
		b = binary.AppendVarint(b, atNanos(e.At))
		b = appendStrings(b, e.Audience)
		if flags&flagQuoteHidden != 0 {
			b = appendStrings(b, e.QuoteHidden)
		}
		b = appendBytes(b, payload)
	}
	return b, nil
}

// atNanos is t in Unix nanoseconds, clamped to what an int64 holds (the
// zero time is out of range; the payload keeps the exact time).
func atNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	s := t.Unix()
	switch {
	case s > math.MaxInt64/1_000_000_000-1:
		return math.MaxInt64
	case s < math.MinInt64/1_000_000_000+1:
		return math.MinInt64
	}
	return t.UnixNano()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendStrings appends a list: uvarint(count) string*.
func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// errTruncated is a version 2 message that ends inside a field.
var errTruncated = errors.New("truncated")

// reader reads a version 2 message. Every length and count is checked
// against the bytes left before anything is allocated for it, so a
// message can make the reader allocate at most about its own size.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 { return readVarint(r, binary.Uvarint) }

func (r *reader) varint() int64 { return readVarint(r, binary.Varint) }

// readVarint reads one varint with decode (binary.Uvarint or
// binary.Varint): 0 and errTruncated when the bytes end inside it or it
// overflows 64 bits, and nothing more is read after an error.
func readVarint[T int64 | uint64](r *reader, decode func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := decode(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errTruncated
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes returns the next length-prefixed field, sharing the message's
// memory (nats.go gives each message its own buffer).
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errTruncated
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) string() string { return string(r.bytes()) }

// count reads a list's length: each item takes at least min bytes, so a
// count the bytes left cannot hold is an error, not an allocation.
func (r *reader) count(min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b)/min) {
		r.err = fmt.Errorf("count %d exceeds the message", n)
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// strings reads a list (appendStrings): nil when empty.
func (r *reader) strings() []string {
	k := r.count(1)
	if k == 0 || r.err != nil {
		return nil
	}
	ss := make([]string, k)
	for j := range ss {
		ss[j] = r.string()
	}
	return ss
}

// decodeV2 reads a version 2 message (data after its version byte).
// Events with Data get only their routing fields and Data; the others are
// decoded from their JSON (counted in payloads).
func decodeV2(data []byte, payloads *int) (parley.BrokerMessage, error) {
	r := &reader{b: data}
	m := parley.BrokerMessage{Node: r.string()}
	if meta := r.bytes(); len(meta) > 0 {
		var w wireMeta
		if err := json.Unmarshal(meta, &w); err != nil {
			return parley.BrokerMessage{}, fmt.Errorf("presence, usage and users: %w", err)
		}
		wm := fromWire(wireMessage{Presence: w.Presence, Usage: w.Usage, Users: w.Users})
		m.Presence, m.Usage, m.Users = wm.Presence, wm.Usage, wm.Users
	}
	// An event takes at least 10 bytes: flags, pos, shard, three string
	// lengths, at, audience count, payload length (and a payload byte).
	n := r.count(10)
	if n > 0 {
		m.Events = make([]parley.Event, n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		e := &m.Events[i]
		flags := r.byte()
		pos, shard := r.uvarint(), r.uvarint()
		e.Type = parley.EventType(r.string())
		e.ConversationID = r.string()
		e.Change = parley.Change(r.string())
		at := r.varint()
		e.Audience = r.strings()
		if flags&flagQuoteHidden != 0 {
			e.QuoteHidden = r.strings()
		}
		payload := r.bytes()
		if r.err != nil {
			break
		}
		switch {
		case flags&^(flagData|flagQuoteHidden) != 0:
			return parley.BrokerMessage{}, fmt.Errorf("event %d: unknown flags %#x", i, flags)
		case pos > math.MaxInt64:
			return parley.BrokerMessage{}, fmt.Errorf("event %d: position %d out of range", i, pos)
		case shard > maxShard:
			return parley.BrokerMessage{}, fmt.Errorf("event %d: shard %d out of range", i, shard)
		case len(payload) == 0:
			return parley.BrokerMessage{}, fmt.Errorf("event %d: no payload", i)
		}
		if flags&flagData == 0 {
			audience, quoteHidden := e.Audience, e.QuoteHidden
			*e = parley.Event{}
			if err := json.Unmarshal(payload, e); err != nil {
				return parley.BrokerMessage{}, fmt.Errorf("event %d: %w", i, err)
			}
			*payloads++
			e.Audience, e.QuoteHidden = audience, quoteHidden
		} else {
			e.Data = payload
			if at != 0 {
				e.At = time.Unix(0, at).UTC()
			}
		}
		// The header routes the event: its position and shard are the
		// ones the hub sequences, whatever the payload says.
		e.Pos, e.Shard = int64(pos), int(shard)
	}
	if r.err != nil {
		return parley.BrokerMessage{}, fmt.Errorf("message from node %q: %w", m.Node, r.err)
	}
	if len(r.b) != 0 {
		return parley.BrokerMessage{}, fmt.Errorf("message from node %q: %d bytes after its last event", m.Node, len(r.b))
	}
	return m, nil
}
