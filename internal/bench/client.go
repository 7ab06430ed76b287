package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"

	"github.com/parleychat/parley/protocol"
)

// bitset is a growable set of small non-negative integers (message seqs).
type bitset []uint64

// add sets i and reports whether it was unset before.
func (b *bitset) add(i uint32) bool {
	w := int(i / 64)
	for len(*b) <= w {
		*b = append(*b, 0)
	}
	m := uint64(1) << (i % 64)
	if (*b)[w]&m != 0 {
		return false
	}
	(*b)[w] |= m
	return true
}

func (b bitset) has(i uint32) bool {
	w := int(i / 64)
	return w < len(b) && b[w]&(1<<(i%64)) != 0
}

// andNotCount counts the members of b that are not in o.
func (b bitset) andNotCount(o bitset) int64 {
	var n int
	for i, w := range b {
		if i < len(o) {
			w &^= o[i]
		}
		n += bits.OnesCount64(w)
	}
	return int64(n)
}

// room is one group conversation whose members all live in one worker, so
// the worker can check every delivery against every acknowledged send.
type room struct {
	idx     int // global room index, embedded in message texts
	id      string
	members []*client
}

// client is one simulated user holding at most one WebSocket at a time.
// Its run goroutine (started and waited for by the worker) dials, says
// hello, resumes after a drop and owns the receive-side state (cursor,
// recv); the send side (nextSeq, pending, acked) is shared with the pacer
// and guarded by mu.
type client struct {
	w      *worker
	idx    int // global user index
	userID string
	token  string
	room   *room
	member int // index in room.members
	addr   int // source address index

	conn atomic.Pointer[wsConn]
	// cursor is the last position seen per shard (protocol 2), resumed
	// from after a drop; owned by the read goroutine.
	cursor protocol.ShardCursor
	recv   []bitset // per sender member: seqs received
	buf    []byte
	buf2   []byte // closed-loop sends from the read goroutine

	uniq, dups, unexpected atomic.Int64
	connects               atomic.Int64
	// pingAt is when the heartbeat next pings this client (unix ns): one
	// interval after its hello, then one after each ping.
	pingAt    atomic.Int64
	resumedAt atomic.Int64 // unix ns of the last welcome (fresh) or resumed (resume)
	replayed  atomic.Int64
	resyncs   atomic.Int64
	goAwayMS  atomic.Int64
	failed    atomic.Pointer[string]

	// setup replies (create_group), by request id
	replies chan []byte

	// Delivery receipts (Job.Receipts): the highest seq of another
	// member's message received, and the highest reported with delivered
	// (by the heartbeat, at most once per receiptInterval).
	recvSeq, reportedSeq atomic.Int64
	reportAt             atomic.Int64 // unix ns of the last report

	mu      sync.Mutex
	nextSeq uint32
	pending map[uint32]pendingSend
	acked   bitset
	ackedN  atomic.Int64
	sendErr atomic.Int64
}

type pendingSend struct {
	sched  int64 // scheduled send time (unix ns), embedded in the text
	sentAt int64 // when it was written (unix ns), for ack latency
}

var (
	prefixEvent = []byte(`{"type":"event"`)
	prefixReply = []byte(`{"type":"reply","id":"`)
	prefixPong  = []byte(`{"type":"pong"`)
	// resumed and welcome come once per connection; with thousands of
	// clients resuming at once, decoding them as JSON showed in the
	// load tool's profile.
	prefixResumed = []byte(`{"type":"resumed","data":{`)
	prefixWelcome = []byte(`{"type":"welcome",`)
	keyCount      = []byte(`"count":`)
	keyPos        = []byte(`"pos":`)
	keyShard      = []byte(`,"shard":`)
	// keySeq: a newMessage's first "seq" is its message's.
	keySeq = []byte(`"seq":`)
)

// receiptID is the request id of the load's delivered reports.
const receiptID = "d"

// receiptInterval is how often, at most, a load client reports what it
// received: the reference clients' rate (client.DefaultDeliveredInterval).
const receiptInterval = time.Second

// reportDelivered sends a delivered op for what c received since its last
// report, at most once per receiptInterval, as the SDK does. The
// heartbeat goroutine calls it.
func (c *client) reportDelivered(conn *wsConn, now int64) {
	seq := c.recvSeq.Load()
	if seq <= c.reportedSeq.Load() || now-c.reportAt.Load() < int64(receiptInterval) || c.room == nil {
		return
	}
	c.reportedSeq.Store(seq)
	c.reportAt.Store(now)
	b := fmt.Appendf(nil, `{"op":"delivered","id":"%s","data":{"conversations":[{"conversation_id":%q,"seq":%d}]}}`, receiptID, c.room.id, seq)
	if conn.write(b) == nil {
		c.w.receipts.Add(1)
	}
}

// dialer spreads connections over several loopback source addresses so the
// ephemeral port range (about 28k ports per source address) is no limit.
// gobwas/ws's Dialer writes the upgrade request and reads the response on
// the TCP connection itself: no http.Client, no connection pool.
type dialer struct {
	ws []ws.Dialer
}

func newDialer(n, base int) *dialer {
	d := &dialer{}
	for i := range n {
		ip := net.IPv4(127, 0, 0, byte(base+i))
		// No TCP keep-alive: on loopback it probes nothing, and it cost
		// four setsockopt calls per dial.
		nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second, KeepAlive: -1}
		d.ws = append(d.ws, ws.Dialer{NetDial: nd.DialContext})
	}
	return d
}

// dial connects source address i to the WebSocket at url; the connection
// is closed when ctx ends.
func (d *dialer) dial(ctx context.Context, url string, i int) (*wsConn, error) {
	nc, br, _, err := d.ws[i%len(d.ws)].Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	return newWSConn(ctx, nc, br), nil
}

// run keeps the client connected until ctx ends: dial, hello (resuming
// from lastPos after the first connection), read frames; on a drop it
// backs off (full jitter, or the server's goaway delay) and reconnects.
// once is true for scenarios where a drop is an error (no reconnect).
func (c *client) run(ctx context.Context, once bool, ready func(error)) {
	attempt := 0
	first := true
	for ctx.Err() == nil {
		err := c.session(ctx, &first, ready)
		if ctx.Err() != nil {
			return
		}
		if cs := closeStatus(err); cs != -1 && !protocol.ShouldReconnect(cs) {
			c.fail(fmt.Errorf("closed by server with %d: %w", cs, err))
			if first {
				ready(err)
			}
			return
		}
		if once && !first {
			c.fail(fmt.Errorf("connection lost: %w", err))
			return
		}
		var wait time.Duration
		if ms := c.goAwayMS.Swap(0); ms > 0 {
			wait = time.Duration(ms) * time.Millisecond
			attempt = 0
		} else {
			capd := c.w.job.BackoffBase << min(attempt, 10)
			capd = min(capd, c.w.job.BackoffMax)
			wait = time.Duration(rand.Int64N(int64(capd) + 1))
			attempt++
		}
		if first && attempt > 20 {
			ready(fmt.Errorf("user %d: cannot connect: %w", c.idx, err))
			return
		}
		if sleep(ctx, wait) != nil {
			return
		}
	}
}

func (c *client) fail(err error) {
	s := err.Error()
	c.failed.Store(&s)
}

// session is one connection: dial, hello, welcome, then the read loop.
func (c *client) session(ctx context.Context, first *bool, ready func(error)) error {
	conn, err := c.w.refusals.dial(ctx, c.w.dialSem, func(ctx context.Context) (*wsConn, error) {
		return c.w.dialer.dial(ctx, c.w.job.WSURL, c.addr)
	})
	if err != nil {
		return err
	}
	defer conn.closeNow()
	c.connects.Add(1)
	resuming := !*first
	// The load tool asks for batched frames (several per message, split on
	// '\n'): the server then writes a connection's queue in one syscall.
	hello := protocol.Hello{Token: c.token, Batch: true, Protocol: protocol.Version2}
	if resuming {
		hello.Cursor = c.cursor.Clone()
		if hello.Cursor == nil {
			hello.Cursor = protocol.ShardCursor{}
		}
	}
	hb, _ := json.Marshal(hello)
	req, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, ID: "hello", Data: hb})
	// The hello's answer within 15 s; reads after it wait as long as
	// the session lasts.
	if err := conn.setReadDeadline(time.Now().Add(15 * time.Second)); err != nil {
		return err
	}
	c.pingAt.Store(time.Now().Add(protocol.HeartbeatInterval).UnixNano())
	if err := conn.write(req); err != nil {
		return err
	}
	var rest []byte // frames after the welcome in the same message
	for welcomed := false; !welcomed; {
		b, err := c.readFrame(conn)
		if err != nil {
			return err
		}
		for len(b) > 0 {
			var fb []byte
			fb, b = nextFrame(b)
			if resuming && bytes.HasPrefix(fb, prefixWelcome) {
				// A resuming client needs nothing from the welcome: it
				// goes on from its own position.
				rest, welcomed = b, true
				break
			}
			var f protocol.Frame
			if err := json.Unmarshal(fb, &f); err != nil {
				return fmt.Errorf("bad frame before welcome: %w", err)
			}
			if f.Type == protocol.TypeError {
				return fmt.Errorf("hello refused: %s: %s", f.Error.Code, f.Error.Message)
			}
			if f.Type != protocol.TypeWelcome {
				continue
			}
			var wl protocol.Welcome
			if err := json.Unmarshal(f.Data, &wl); err != nil {
				return fmt.Errorf("bad welcome: %w", err)
			}
			if *first {
				if c.cursor == nil {
					c.cursor = protocol.ShardCursor{}
				}
				c.cursor.Merge(wl.Cursor)
			}
			rest, welcomed = b, true
			break
		}
	}
	if err := conn.setReadDeadline(time.Time{}); err != nil {
		return err
	}
	c.conn.Store(conn)
	defer c.conn.Store(nil)
	if !resuming {
		c.resumedAt.Store(time.Now().UnixNano())
		*first = false
		ready(nil)
	}
	c.resendPending(ctx, conn)
	c.handleAll(ctx, conn, rest)
	for {
		b, err := c.readFrame(conn)
		if err != nil {
			return err
		}
		c.handleAll(ctx, conn, b)
	}
}

// nextFrame splits the first frame off a message: with hello batch the
// server may put several frames in one message, separated by '\n'.
func nextFrame(b []byte) (frame, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// handleAll handles every frame of one message, in order.
func (c *client) handleAll(ctx context.Context, conn *wsConn, b []byte) {
	for len(b) > 0 {
		var f []byte
		f, b = nextFrame(b)
		c.handle(ctx, conn, f)
	}
}

// readFrame reads one message into the client's reused buffer.
func (c *client) readFrame(conn *wsConn) ([]byte, error) {
	b := c.buf[:0]
	if cap(b) == 0 {
		b = make([]byte, 0, 1024) // a welcome fits; growing from 8 bytes showed in profiles
	}
	b, err := conn.readMessage(b)
	if err != nil {
		return nil, err
	}
	c.buf = b
	return b, nil
}

// handle processes one frame. The hot frames (events, replies, pongs) are
// recognised by their prefix and scanned without decoding the JSON.
func (c *client) handle(ctx context.Context, conn *wsConn, b []byte) {
	switch {
	case bytes.HasPrefix(b, prefixEvent):
		c.onEvent(b)
		return
	case bytes.HasPrefix(b, prefixReply):
		rest := b[len(prefixReply):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return
		}
		id := rest[:end]
		if len(id) > 1 && id[0] == 's' {
			if seq, err := strconv.ParseUint(string(id[1:]), 10, 32); err == nil {
				c.onAck(ctx, conn, uint32(seq))
			}
			return
		}
		if string(id) == receiptID {
			return
		}
		c.deliverReply(b)
		return
	case bytes.HasPrefix(b, prefixPong):
		return
	case bytes.HasPrefix(b, prefixResumed):
		// {"type":"resumed","data":{"from":F,"to":T,"count":N}}
		if i := bytes.Index(b, keyCount); i >= 0 {
			if n, k := parseInt(b[i+len(keyCount):]); k > 0 && n <= math.MaxInt32 {
				c.onResumed(int(n))
				return
			}
		}
	}
	var f protocol.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		c.w.protoErrors.Add(1)
		return
	}
	switch f.Type {
	case protocol.TypeEvent:
		c.onEvent(b) // same frame, fields in another order
	case protocol.TypeReply:
		if len(f.ID) > 1 && f.ID[0] == 's' {
			if seq, err := strconv.ParseUint(f.ID[1:], 10, 32); err == nil {
				c.onAck(ctx, conn, uint32(seq))
			}
			return
		}
		c.deliverReply(b)
	case protocol.TypeResumed:
		var r protocol.Resumed
		_ = json.Unmarshal(f.Data, &r)
		c.onResumed(r.Count)
	case protocol.TypeResync:
		var r protocol.Resync
		_ = json.Unmarshal(f.Data, &r)
		c.resyncs.Add(1)
		if c.cursor == nil {
			c.cursor = protocol.ShardCursor{}
		}
		c.cursor.Merge(r.Cursor)
		c.resumedAt.Store(time.Now().UnixNano())
		c.w.resumes.Add(1)
	case protocol.TypeGoAway:
		var g protocol.GoAway
		_ = json.Unmarshal(f.Data, &g)
		c.goAwayMS.Store(max(g.ReconnectAfterMS, 1))
	case protocol.TypeError:
		if len(f.ID) > 1 && f.ID[0] == 's' {
			if seq, err := strconv.ParseUint(f.ID[1:], 10, 32); err == nil {
				c.onSendError(uint32(seq), f.Error)
			}
			return
		}
		if f.ID != "" {
			c.deliverReply(b)
			return
		}
		c.w.protoErrors.Add(1)
		if f.Error == nil { // not a frame the server writes, but not a crash either
			c.w.noteError("error frame without an error")
			return
		}
		c.w.noteError("error frame: %s: %s", f.Error.Code, f.Error.Message)
	}
}

// onResumed accounts the resumed frame: the replay of count events is over.
func (c *client) onResumed(count int) {
	c.replayed.Add(int64(count))
	c.resumedAt.Store(time.Now().UnixNano())
	c.w.resumes.Add(1)
}

func (c *client) deliverReply(b []byte) {
	select {
	case c.replies <- bytes.Clone(b):
	default:
	}
}

// onEvent accounts one event frame: its position for resume, and if it is
// one of this run's messages, the delivery (exactly-once check, latency).
func (c *client) onEvent(b []byte) {
	if i := bytes.Index(b, keyPos); i >= 0 {
		pos, n := parseInt(b[i+len(keyPos):])
		if pos > 0 {
			// The shard follows pos when it is not 0 (the server
			// encodes the event's fields in that order).
			shard := 0
			if rest := b[i+len(keyPos)+n:]; bytes.HasPrefix(rest, keyShard) {
				sh, _ := parseInt(rest[len(keyShard):])
				shard = int(sh)
			}
			if c.cursor == nil {
				c.cursor = protocol.ShardCursor{}
			}
			if !c.cursor.Advance(shard, pos) {
				c.w.posRepeats.Add(1)
			}
		}
	}
	i := bytes.Index(b, c.w.marker)
	if i < 0 {
		return
	}
	now := time.Now().UnixNano()
	rest := b[i+len(c.w.marker):]
	var f [4]int64
	for k := range f {
		v, n := parseInt(rest)
		if n == 0 {
			c.w.protoErrors.Add(1)
			return
		}
		f[k] = v
		rest = rest[n:]
		if len(rest) > 0 && rest[0] == '|' {
			rest = rest[1:]
		}
	}
	roomIdx, sender, seq, sched := int(f[0]), int(f[1]), uint32(f[2]), f[3]
	if c.room == nil || roomIdx != c.room.idx || sender < 0 || sender >= len(c.recv) {
		c.unexpected.Add(1)
		return
	}
	if !c.recv[sender].add(seq) {
		c.dups.Add(1)
		return
	}
	c.uniq.Add(1)
	// Latency before the count: a step ends (and takes its histogram)
	// once delivered reaches what it expects, so a delivery counted must
	// already be in the histogram.
	c.w.latency.Load().Record(time.Duration(now - sched))
	c.w.delivered.Add(1)
	if c.w.job.Receipts {
		if j := bytes.Index(b, keySeq); j >= 0 {
			if v, n := parseInt(b[j+len(keySeq):]); n > 0 && v > c.recvSeq.Load() {
				c.recvSeq.Store(v) // only the read goroutine stores it
			}
		}
	}
}

func parseInt(b []byte) (int64, int) {
	var v int64
	n := 0
	for n < len(b) && b[n] >= '0' && b[n] <= '9' {
		v = v*10 + int64(b[n]-'0')
		n++
	}
	return v, n
}

// send writes message seq (scheduled at sched) to the server. The message
// stays pending until acknowledged, so a drop resends it with the same
// client_id, which the server answers with the stored message and no new
// event: the at-least-once resend becomes exactly-once delivery.
func (c *client) send(ctx context.Context, buf []byte, sched int64) []byte {
	c.mu.Lock()
	c.nextSeq++
	seq := c.nextSeq
	now := time.Now().UnixNano()
	c.pending[seq] = pendingSend{sched: sched, sentAt: now}
	c.mu.Unlock()
	c.w.sent.Add(1)
	conn := c.conn.Load()
	if conn == nil {
		return buf // resent after the next welcome
	}
	buf = c.appendSend(buf[:0], seq, sched)
	// A bounded write (wsConn's write deadline): a connection the server
	// stopped reading must not stall the pacer (or the worker's finish)
	// forever. A timed-out write closes the connection; the send is
	// resent after a reconnect.
	_ = conn.write(buf)
	return buf
}

func (c *client) appendSend(b []byte, seq uint32, sched int64) []byte {
	b = append(b, `{"op":"send","id":"s`...)
	b = strconv.AppendUint(b, uint64(seq), 10)
	b = append(b, `","data":{"conversation_id":"`...)
	b = append(b, c.room.id...)
	b = append(b, `","client_id":"`...)
	b = append(b, c.w.job.RunID...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(c.idx), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(seq), 10)
	b = append(b, `","text":"`...)
	b = append(b, c.w.marker[len(`"text":"`):]...)
	b = strconv.AppendInt(b, int64(c.room.idx), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(c.member), 10)
	b = append(b, '|')
	b = strconv.AppendUint(b, uint64(seq), 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, sched, 10)
	if pad := c.w.job.TextBytes - 40; pad > 0 {
		b = append(b, '|')
		for range pad {
			b = append(b, 'x')
		}
	}
	b = append(b, `"}}`...)
	return b
}

func (c *client) onAck(ctx context.Context, conn *wsConn, seq uint32) {
	now := time.Now().UnixNano()
	c.mu.Lock()
	p, ok := c.pending[seq]
	if ok {
		delete(c.pending, seq)
		c.acked.add(seq)
	}
	c.mu.Unlock()
	if !ok {
		return // the answer to a resend of an acknowledged message
	}
	c.ackedN.Add(1)
	c.w.acked.Add(1)
	c.w.ackLatency.Load().Record(time.Duration(now - p.sentAt))
	if c.w.closedLoop.Load() {
		c.buf2 = c.send(ctx, c.buf2, time.Now().UnixNano())
	}
}

func (c *client) onSendError(seq uint32, e *protocol.ErrorBody) {
	c.mu.Lock()
	_, ok := c.pending[seq]
	delete(c.pending, seq)
	c.mu.Unlock()
	if ok {
		c.sendErr.Add(1)
		c.w.sendErrors.Add(1)
		if e != nil {
			c.w.noteError("send refused: %s: %s", e.Code, e.Message)
		}
	}
}

// resendPending writes every unacknowledged send again, in seq order.
func (c *client) resendPending(ctx context.Context, conn *wsConn) {
	if c.room == nil {
		return
	}
	c.mu.Lock()
	type item struct {
		seq   uint32
		sched int64
	}
	var items []item
	for seq, p := range c.pending {
		items = append(items, item{seq, p.sched})
	}
	c.mu.Unlock()
	if len(items) == 0 {
		return
	}
	c.w.resent.Add(int64(len(items)))
	slices.SortFunc(items, func(a, b item) int { return int(a.seq) - int(b.seq) })
	var buf []byte
	for _, it := range items {
		buf = c.appendSend(buf[:0], it.seq, it.sched)
		if err := conn.write(buf); err != nil {
			return
		}
	}
}

// request sends a setup request and waits for its reply or error.
func (c *client) request(ctx context.Context, op, id string, data any) (protocol.Frame, error) {
	conn := c.conn.Load()
	if conn == nil {
		return protocol.Frame{}, errors.New("not connected")
	}
	db, err := json.Marshal(data)
	if err != nil {
		return protocol.Frame{}, err
	}
	req, _ := json.Marshal(protocol.Request{Op: op, ID: id, Data: db})
	if err := conn.write(req); err != nil {
		return protocol.Frame{}, err
	}
	for {
		select {
		case <-ctx.Done():
			return protocol.Frame{}, ctx.Err()
		case b := <-c.replies:
			var f protocol.Frame
			if err := json.Unmarshal(b, &f); err != nil {
				return f, err
			}
			if f.ID != id {
				continue
			}
			if f.Type == protocol.TypeError {
				return f, fmt.Errorf("%s: %s: %s", op, f.Error.Code, f.Error.Message)
			}
			return f, nil
		}
	}
}
