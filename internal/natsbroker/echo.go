package natsbroker

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"

	"github.com/parleychat/parley"
)

// Echoes: NATS delivers a node's own messages back to it (every node
// hears every node, itself included). Decoding them again cost a node
// about 5 µs of CPU per event (docs/benchmarks.md, "Per-node cost in a
// cluster"), so each subscription keeps the messages its broker
// published, in publish order, until NATS delivers them back, and takes
// the kept one instead of decoding the bytes. The order of delivery is
// still NATS's (a kept message is used only when its own bytes arrive),
// so the hub sees exactly the stream it would see without the cache.
//
// A published message carries echoHeader: this broker's instance id (16
// random bytes, hex, fresh at every Open, so a restarted node with the
// same node id never matches the previous process's messages) and its
// publish sequence. A message whose header is not this instance's, or
// whose sequence is no longer kept, is decoded as before.

// echoHeader is the NATS header naming a message's publisher instance and
// sequence ("<instance>.<seq>").
const echoHeader = "Parley-Echo"

// echoHeaderRoom is room enough for the echo header in a message
// ("NATS/1.0\r\n", the name, 32 hex digits, a dot, a sequence of up to
// 20 digits, and line ends), counted against the server's max payload.
const echoHeaderRoom = 128

// maxEchoBytes bounds the encoded size of the messages one subscription
// keeps for their echo; past it the oldest are forgotten (and decoded
// when their echo comes). Echoes come back within milliseconds unless the
// link is down, when nats.go buffers publishes (up to 8 MB) and NATS
// may drop them.
const maxEchoBytes = 4 << 20

func newInstance() string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand: "Read ... never returns an error")
	return hex.EncodeToString(b[:])
}

// echo is one kept message.
type echo struct {
	seq   uint64
	bytes int
	m     parley.BrokerMessage
}

// echoes are one subscription's kept messages, oldest first. Safe for
// concurrent use: Publish adds, the subscription's delivery goroutine
// takes.
type echoes struct {
	mu    sync.Mutex
	q     []echo
	bytes int
}

// keep adds the message published as seq (its encoding n bytes long),
// forgetting the oldest beyond maxEchoBytes.
func (e *echoes) keep(seq uint64, n int, m parley.BrokerMessage) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.q = append(e.q, echo{seq: seq, bytes: n, m: m})
	e.bytes += n
	for e.bytes > maxEchoBytes && len(e.q) > 0 {
		e.bytes -= e.q[0].bytes
		e.q[0] = echo{}
		e.q = e.q[1:]
	}
}

// take returns the kept message published as seq, if kept. Echoes come
// back in publish order, so the messages kept before seq will not come
// (NATS dropped them, or the subscription missed them): they are
// forgotten.
func (e *echoes) take(seq uint64) (parley.BrokerMessage, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.q) > 0 && e.q[0].seq < seq {
		e.bytes -= e.q[0].bytes
		e.q[0] = echo{}
		e.q = e.q[1:]
	}
	if len(e.q) == 0 || e.q[0].seq != seq {
		return parley.BrokerMessage{}, false
	}
	m := e.q[0].m
	e.bytes -= e.q[0].bytes
	e.q[0] = echo{}
	e.q = e.q[1:]
	return m, true
}

// len reports how many messages and bytes are kept (tests).
func (e *echoes) len() (int, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.q), e.bytes
}

// echoSeq reads a message's echo header: its sequence when this instance
// published it.
func echoSeq(h, instance string) (uint64, bool) {
	rest, ok := strings.CutPrefix(h, instance)
	if !ok || len(rest) < 2 || rest[0] != '.' {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest[1:], 10, 64)
	return seq, err == nil
}
