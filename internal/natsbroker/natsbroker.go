// Package natsbroker is a parley.Broker over core NATS: every node publishes
// to one subject and subscribes to it, so each node hears every node,
// itself included. Use it to run several Parley nodes; one node needs no
// broker (internal/membroker).
//
// Core NATS delivers at most once. That is all a Parley broker must do: the
// hub fills any gap in positions from the store, and presence is repaired by
// the next snapshot. What NATS does guarantee, and the hub relies on, is the
// order of one connection's messages to one subscriber.
package natsbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/subscriptions"
)

var _ parley.Broker = (*Broker)(nil)

// DefaultSubject is the subject nodes talk on unless Config.Subject says
// otherwise. Two clusters on one NATS need different subjects.
const DefaultSubject = "parley.events"

// Config configures Open.
type Config struct {
	// URL is the NATS server, e.g. "nats://127.0.0.1:4222"; a comma-separated
	// list names several servers of one NATS cluster. A "subject" query
	// parameter at its end ("nats://host:4222?subject=chat.prod") sets
	// Subject, so one flag or env var configures both.
	URL string
	// Subject is the subject events travel on (default DefaultSubject).
	// Every node of a cluster uses the same; two clusters on one NATS
	// need different ones.
	Subject string
	// Name is the connection name shown in NATS monitoring, e.g. the node id.
	Name string
	// Logger receives disconnects, reconnects and undecodable messages
	// (default slog.Default()).
	Logger *slog.Logger
	// PendingMsgs and PendingBytes bound what a subscription holds
	// received and not yet handed to its callback (default
	// DefaultPendingMsgs and DefaultPendingBytes). Past either, nats.go
	// drops messages for it and reports a slow consumer (logged); the
	// hub reads the durable events it missed from the store (gap fill
	// and head poll), and presence is repaired by the next snapshot.
	PendingMsgs  int
	PendingBytes int
	// Wire is the wire format version this node publishes (default 2,
	// see wire.go); it reads both. A "wire" query parameter of URL sets
	// it ("nats://host:4222?wire=1"). Set 1 on the upgraded nodes while
	// a cluster still runs nodes that read only version 1, then drop it
	// (docs/deploy.md, "Upgrading a NATS cluster").
	Wire int
}

// Defaults of Config's pending limits.
const (
	DefaultPendingMsgs  = 1 << 16
	DefaultPendingBytes = 64 << 20
)

// Broker is a NATS connection used as a parley.Broker. It is safe for
// concurrent use. After a lost connection it reconnects forever; messages
// published meanwhile are buffered by nats.go (up to 8 MB) and sent on
// reconnect, messages published by other nodes meanwhile are lost to this
// node (the hub recovers them from the store).
type Broker struct {
	nc      *nats.Conn
	subject string
	wire    int    // Config.Wire, after defaults
	pending [2]int // msgs, bytes: Config.PendingMsgs and PendingBytes
	log     *slog.Logger
	closed  chan struct{} // closed by nats.go's ClosedHandler

	subs subscriptions.Set[*subscription]

	// instance names this broker's messages for their echo (echo.go).
	instance string
	// pubMu orders publishes: seq and the subscriptions' kept messages
	// follow the order nats.go sends them in. It also guards echoSubs,
	// the subscriptions that keep messages for their echo (their own
	// list: subs' lock is held while Subscribe waits for the server).
	pubMu    sync.Mutex
	seq      uint64
	echoSubs []*subscription
	// decoded counts the messages read from their bytes, payloads the
	// events among them decoded from JSON (a version 1 message's every
	// event; a version 2 event published without Data), and dropped the
	// messages refused as malformed (tests and metrics).
	decoded  atomic.Int64
	payloads atomic.Int64
	dropped  atomic.Int64
	// dropLogged is when drop last logged (Unix ns).
	dropLogged atomic.Int64
	// lost counts reconnects, slow-consumer reports and drops seen at
	// delivery (Lost).
	lost atomic.Uint64
}

// Lost counts the times b may have lost messages of other nodes: each
// reconnect to NATS (what they published while this node's link was
// down never reached it), each slow-consumer report (nats.go dropped
// messages for a subscription that fell behind), and each delivery that
// finds the subscription dropped messages since the last one (nats.go
// reports only the first drop of an overload; the rest are counted when
// the next message is delivered, before it). Durable events need no
// such count (the hub fills gaps from the store), but state that only
// the broker's notices correct does: a node drops its cached users when
// the count moves (parley.BrokerMessage.Users). Safe for concurrent use.
func (b *Broker) Lost() uint64 { return b.lost.Load() }

// CarriesEventData reports that b carries parley.Event.Data as the
// event's payload (wire version 2): a publisher that sets Data saves the
// broker encoding the event, and receiving nodes write Data to their
// clients without decoding it. False while b publishes version 1.
func (b *Broker) CarriesEventData() bool { return b.wire == wireV2 }

// Counts are what a Broker's subscriptions did with the messages they
// received from NATS.
type Counts struct {
	// Read are the messages read from their bytes (not taken from
	// those kept for their echo, echo.go).
	Read int64
	// Payloads are the events among them decoded from JSON: a wire
	// version 1 message's every event, a version 2 event published
	// without Data. A version 2 event with Data is not decoded here.
	Payloads int64
	// Dropped are the messages refused as malformed (logged at most
	// once a second, with the count).
	Dropped int64
}

// Counts reports b's counts since Open.
func (b *Broker) Counts() Counts {
	return Counts{Read: b.decoded.Load(), Payloads: b.payloads.Load(), Dropped: b.dropped.Load()}
}

// BrokerCounts is Counts as three numbers, for a server that exports
// them as metrics without depending on this package.
func (b *Broker) BrokerCounts() (read, payloads, dropped int64) {
	c := b.Counts()
	return c.Read, c.Payloads, c.Dropped
}

// PendingLimits returns the bounds of the node's subscription (see
// Config.PendingMsgs and PendingBytes), after defaults.
func (b *Broker) PendingLimits() (msgs, bytes int) { return b.pending[0], b.pending[1] }

type subscription struct {
	b  *Broker
	ns *nats.Subscription
	fn func(parley.BrokerMessage)
	// echoes are this broker's messages published since the
	// subscription started, kept until their echo (echo.go).
	echoes echoes
	// mu is held while fn runs, so stop can wait for a call in progress.
	mu      sync.Mutex
	stopped bool
}

// ErrClosed is returned by Publish and Subscribe after Close.
var ErrClosed = errors.New("natsbroker: closed")

// Open connects to NATS. It fails when no server answers within ctx's
// deadline (at most 10 s); once connected, the broker reconnects forever.
func Open(ctx context.Context, cfg Config) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if i := strings.IndexByte(cfg.URL, '?'); i >= 0 {
		q, err := url.ParseQuery(cfg.URL[i+1:])
		if err != nil {
			return nil, fmt.Errorf("natsbroker: bad URL query: %w", err)
		}
		for k := range q {
			if k != "subject" && k != "wire" {
				return nil, fmt.Errorf("natsbroker: unknown URL parameter %q (only subject and wire)", k)
			}
		}
		if v := q.Get("wire"); v != "" && cfg.Wire == 0 {
			if cfg.Wire, err = strconv.Atoi(v); err != nil {
				return nil, fmt.Errorf("natsbroker: bad wire version %q", v)
			}
		}
		if sub := q.Get("subject"); sub != "" && cfg.Subject == "" {
			cfg.Subject = sub
		}
		cfg.URL = cfg.URL[:i]
	}
	if cfg.Subject == "" {
		cfg.Subject = DefaultSubject
	}
	switch cfg.Wire {
	case 0:
		cfg.Wire = wireV2
	case wireVersion, wireV2:
	default:
		return nil, fmt.Errorf("natsbroker: unknown wire version %d (want 1 or 2)", cfg.Wire)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PendingMsgs <= 0 {
		cfg.PendingMsgs = DefaultPendingMsgs
	}
	if cfg.PendingBytes <= 0 {
		cfg.PendingBytes = DefaultPendingBytes
	}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	b := &Broker{
		subject: cfg.Subject,
		wire:    cfg.Wire,
		pending: [2]int{cfg.PendingMsgs, cfg.PendingBytes},
		log:     cfg.Logger.With("component", "natsbroker"),
		closed:  make(chan struct{}),
		subs:    subscriptions.Set[*subscription]{ErrClosed: ErrClosed},

		instance: newInstance(),
	}
	var closeOnce sync.Once
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.Timeout(timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.PingInterval(5*time.Second),
		nats.DrainTimeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.log.Warn("disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			// nats.go calls this once the connection and its
			// subscriptions are back: a notice published from now on
			// reaches this node, and one published before may not have.
			b.lost.Add(1)
			b.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				b.lost.Add(1)
			}
			b.log.Warn("NATS error", "err", err)
		}),
		nats.ClosedHandler(func(*nats.Conn) { closeOnce.Do(func() { close(b.closed) }) }),
	)
	if err != nil {
		return nil, fmt.Errorf("natsbroker: connect %s: %w", redact(cfg.URL), err)
	}
	b.nc = nc
	return b, nil
}

// redact drops credentials from a URL list for error messages.
func redact(u string) string {
	if i, j := strings.LastIndexByte(u, '@'), strings.Index(u, "://"); i > 0 && j >= 0 && j < i {
		return u[:j+3] + "***" + u[i:]
	}
	return u
}

// Publish sends m to every node. It returns once nats.go has taken the
// message (it writes asynchronously); a message larger than the server's
// max payload is split between events, which keeps their order.
func (b *Broker) Publish(ctx context.Context, m parley.BrokerMessage) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.subs.Closed() {
		return ErrClosed
	}
	return b.publish(m)
}

// encode is m as b publishes it (Config.Wire).
func (b *Broker) encode(m parley.BrokerMessage) ([]byte, error) {
	if b.wire == wireVersion {
		return json.Marshal(toWire(m))
	}
	return encodeV2(m)
}

func (b *Broker) publish(m parley.BrokerMessage) error {
	data, err := b.encode(m)
	if err != nil {
		return fmt.Errorf("natsbroker: encode: %w", err)
	}
	// The max payload counts the headers too (the echo header, echo.go).
	if int64(len(data)+echoHeaderRoom) > b.nc.MaxPayload() {
		if len(m.Events) < 2 {
			return fmt.Errorf("natsbroker: message of %d bytes exceeds the NATS max payload of %d", len(data), b.nc.MaxPayload())
		}
		half := len(m.Events) / 2
		first, second := m, m
		first.Events, second.Events = m.Events[:half], m.Events[half:]
		second.Presence, second.Usage, second.Users = nil, nil, nil
		if err := b.publish(first); err != nil {
			return err
		}
		return b.publish(second)
	}
	// Under pubMu, so the sequence and the kept messages follow the
	// order nats.go sends in. A message kept whose publish fails is
	// forgotten when a later one's echo comes.
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	msg := &nats.Msg{Subject: b.subject, Data: data}
	if b.nc.HeadersSupported() { // NATS 2.2 and later; older ones get no echo header
		b.seq++
		for _, s := range b.echoSubs {
			s.echoes.keep(b.seq, len(data), m)
		}
		msg.Header = nats.Header{echoHeader: {b.instance + "." + strconv.FormatUint(b.seq, 10)}}
	}
	if err := b.nc.PublishMsg(msg); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrConnectionDraining) {
			return ErrClosed
		}
		return fmt.Errorf("natsbroker: publish: %w", err)
	}
	return nil
}

// Subscribe calls fn for every message on the subject, one call at a time,
// on the subscription's nats.go delivery goroutine (owned by nats.go; stop
// and Close end it). It returns once the server knows the subscription,
// so a message published after that reaches it. fn must not call stop.
func (b *Broker) Subscribe(fn func(parley.BrokerMessage)) (func(), error) {
	return b.subs.Add(func() (*subscription, error) { return b.subscribe(fn) }, (*subscription).stop)
}

// subscribe opens a subscription for Subscribe (under the set's lock, so
// Close waits for it and then stops it).
func (b *Broker) subscribe(fn func(parley.BrokerMessage)) (*subscription, error) {
	s := &subscription{b: b, fn: fn}
	b.pubMu.Lock()
	b.echoSubs = append(b.echoSubs, s)
	b.pubMu.Unlock()
	var seenDropped int // only the delivery goroutine touches it
	ns, err := b.nc.Subscribe(b.subject, func(msg *nats.Msg) {
		// nats.go reports a slow consumer at its first drop only, not
		// again until a message gets into the queue: drops later in the
		// same overload are seen here, at the first message delivered
		// after them (one queued before them, at once), and move Lost.
		if d, err := msg.Sub.Dropped(); err == nil && d > seenDropped {
			seenDropped = d
			b.lost.Add(1)
		}
		m, ok := parley.BrokerMessage{}, false
		if seq, mine := echoSeq(msg.Header.Get(echoHeader), b.instance); mine {
			m, ok = s.echoes.take(seq)
		}
		if !ok {
			var err error
			payloads := 0
			m, err = decode(msg.Data, &payloads)
			if err != nil {
				b.drop(err, len(msg.Data))
				return
			}
			b.decoded.Add(1)
			b.payloads.Add(int64(payloads))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.stopped {
			s.fn(m)
		}
	})
	if err != nil {
		b.dropEchoes(s)
		return nil, fmt.Errorf("natsbroker: subscribe: %w", err)
	}
	// Bounded: the hub's callback never blocks, so the queue drains
	// unless the process is starved, and then nats.go drops what does
	// not fit (a slow consumer) rather than holding it; the hub reads
	// the durable events it missed from the store.
	if err := ns.SetPendingLimits(b.pending[0], b.pending[1]); err != nil {
		ns.Unsubscribe()
		b.dropEchoes(s)
		return nil, fmt.Errorf("natsbroker: subscribe: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.nc.FlushWithContext(ctx); err != nil {
		// Reconnecting: the subscription is re-sent on reconnect.
		b.log.Warn("subscription not confirmed by the server", "err", err)
	}
	s.ns = ns
	return s, nil
}

// dropEchoes stops keeping messages for s (stopped, or never opened).
func (b *Broker) dropEchoes(s *subscription) {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	if i := slices.Index(b.echoSubs, s); i >= 0 {
		b.echoSubs = slices.Delete(b.echoSubs, i, i+1)
	}
}

func (s *subscription) stop() {
	s.b.dropEchoes(s)
	s.ns.Unsubscribe() // fails only when the connection is closed: nothing to undo
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
}

// Close drains the connection: messages already received are delivered to
// the subscribers and messages published are flushed to the server (within
// 5 s), then it ends every subscription and returns. It is idempotent.
func (b *Broker) Close() error {
	subs, first := b.subs.Close()
	if !first {
		return nil
	}
	if err := b.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionReconnecting) {
		b.nc.Close()
	}
	<-b.closed
	for _, s := range subs {
		s.stop()
	}
	return nil
}

// wireMessage is a BrokerMessage on the wire. It is its own type because
// Event.Audience is hidden from clients (json:"-") but must travel between
// nodes. V lets a later version change the encoding during a rolling
// upgrade.
type wireMessage struct {
	V        int           `json:"v"`
	Node     string        `json:"node"`
	Events   []wireEvent   `json:"events,omitempty"`
	Presence *wirePresence `json:"presence,omitempty"`
	Usage    []wireUsage   `json:"usage,omitempty"`
	Users    []wireUser    `json:"users,omitempty"`
}

// wireUser is a parley.UserChange. A node of a release before it ignores
// the field (encoding/json skips unknown keys): it keeps its cached
// users, as it did before notices existed.
type wireUser struct {
	ID     string `json:"id"`
	Banned bool   `json:"banned,omitempty"`
}

type wireUsage struct {
	Limit string `json:"l"`
	Key   string `json:"k"`
	N     int    `json:"n"`
}

type wireEvent struct {
	parley.Event
	// Audience and QuoteHidden shadow the embedded, hidden
	// Event.Audience and Event.QuoteHidden.
	Audience    []string `json:"audience,omitempty"`
	QuoteHidden []string `json:"quote_hidden,omitempty"`
}

type wirePresence struct {
	Snapshot bool     `json:"snapshot,omitempty"`
	Online   []string `json:"online,omitempty"`
	Offline  []string `json:"offline,omitempty"`
	Leaving  bool     `json:"leaving,omitempty"`
}

const wireVersion = 1

func toWire(m parley.BrokerMessage) wireMessage {
	w := wireMessage{V: wireVersion, Node: m.Node}
	if len(m.Events) > 0 {
		w.Events = make([]wireEvent, len(m.Events))
		for i, e := range m.Events {
			w.Events[i] = wireEvent{Event: e, Audience: e.Audience, QuoteHidden: e.QuoteHidden}
		}
	}
	if p := m.Presence; p != nil {
		w.Presence = &wirePresence{Snapshot: p.Snapshot, Online: p.Online, Offline: p.Offline, Leaving: p.Leaving}
	}
	for _, u := range m.Usage {
		w.Usage = append(w.Usage, wireUsage(u))
	}
	for _, u := range m.Users {
		w.Users = append(w.Users, wireUser(u))
	}
	return w
}

// drop counts and logs a message refused as malformed. The log is
// throttled to one line a second, with the count since: a node of a
// newer or older wire version (or anything else) sharing the subject
// would otherwise log every message.
func (b *Broker) drop(err error, n int) {
	d := b.dropped.Add(1)
	now := time.Now().UnixNano()
	if last := b.dropLogged.Load(); now-last < int64(time.Second) || !b.dropLogged.CompareAndSwap(last, now) {
		return
	}
	b.log.Warn("dropping malformed messages", "err", err, "bytes", n, "dropped_total", d)
}

// decode reads one message from the subject, of either wire version,
// adding to payloads the events it decoded from JSON. A message that does
// not parse or comes from an unknown wire version is an error, never a
// partial message.
func decode(data []byte, payloads *int) (parley.BrokerMessage, error) {
	if len(data) > 0 && data[0] == wireMagic {
		if len(data) < 2 || data[1] != wireV2 {
			v := -1
			if len(data) > 1 {
				v = int(data[1])
			}
			return parley.BrokerMessage{}, fmt.Errorf("natsbroker: message of wire version %d, want 1 or 2 (a newer node? see docs/deploy.md)", v)
		}
		m, err := decodeV2(data[2:], payloads)
		if err != nil {
			return parley.BrokerMessage{}, fmt.Errorf("natsbroker: malformed message: %w", err)
		}
		return m, nil
	}
	var w wireMessage
	if err := json.Unmarshal(data, &w); err != nil {
		return parley.BrokerMessage{}, fmt.Errorf("natsbroker: undecodable message: %w", err)
	}
	if w.V != wireVersion {
		return parley.BrokerMessage{}, fmt.Errorf("natsbroker: message from node %q has wire version %d, want 1 or 2", w.Node, w.V)
	}
	for i, e := range w.Events {
		if e.Pos < 0 || e.Shard < 0 || e.Shard > maxShard {
			return parley.BrokerMessage{}, fmt.Errorf("natsbroker: message from node %q: event %d has position %d in shard %d", w.Node, i, e.Pos, e.Shard)
		}
	}
	*payloads += len(w.Events)
	return fromWire(w), nil
}

func fromWire(w wireMessage) parley.BrokerMessage {
	m := parley.BrokerMessage{Node: w.Node}
	if len(w.Events) > 0 {
		m.Events = make([]parley.Event, len(w.Events))
		for i, we := range w.Events {
			e := we.Event
			e.Audience, e.QuoteHidden = we.Audience, we.QuoteHidden
			m.Events[i] = e
		}
	}
	if p := w.Presence; p != nil {
		m.Presence = &parley.NodePresence{Snapshot: p.Snapshot, Online: p.Online, Offline: p.Offline, Leaving: p.Leaving}
	}
	for _, u := range w.Usage {
		m.Usage = append(m.Usage, parley.LimitUsage(u))
	}
	for _, u := range w.Users {
		m.Users = append(m.Users, parley.UserChange(u))
	}
	return m
}
