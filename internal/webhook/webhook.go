// Package webhook delivers Parley's durable events to endpoints the
// operator configured: signed, at least once, from a durable outbox in the
// store, in order per conversation, off the send path.
//
// Two kinds of goroutine, all owned by a Dispatcher (Run starts them and
// returns when ctx ends and they have stopped):
//
//   - the enqueuer follows each shard of the store's event log from that
//     shard's outbox cursor (parley.WebhookQueue) and writes one delivery
//     per subscribed endpoint, with its payload, and moves the cursor in
//     the same write.
//     A message.new payload lists the members with no live connection at
//     that moment (Config.Connected). Nodes of a cluster race for the
//     cursor; the store lets one win each step.
//   - one worker per endpoint claims due deliveries (each the oldest
//     pending of its conversation, leased so no other node takes it),
//     POSTs them concurrently (at most Config.Concurrency), deletes the
//     delivered ones and reschedules the others with capped, jittered
//     exponential backoff.
//
// A send never waits on any of it: the enqueuer is woken (Poke) without
// blocking and reads the store.
//
// Bounds: at most Config.MaxBacklog deliveries wait per endpoint; past it
// new events for that endpoint are dropped (counted in
// parley_webhook_dropped_total) and the cursor moves on, so a dead
// endpoint costs at most MaxBacklog rows and never blocks others.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/defaults"
)

// Defaults of Config's zero fields.
const (
	DefaultMaxBacklog  = 10000
	DefaultTimeout     = 10 * time.Second
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 5 * time.Minute
	DefaultPoll        = time.Second
	DefaultConcurrency = 4
	// MaxPayloadBytes bounds a delivery's body; an event whose payload is
	// larger (it cannot be, with the store's limits) is dropped and
	// counted.
	MaxPayloadBytes = 256 << 10
	// enqueueBatch is how many events the enqueuer reads per step.
	enqueueBatch = 256
	// maxResponseBytes of a receiver's answer are read (and dropped) so
	// the connection can be reused; its header may be as large, past
	// which the attempt fails (net/http's default allows 10 MiB a
	// delivery in flight).
	maxResponseBytes = 64 << 10
)

// Store is what the dispatcher needs of the store: the outbox and the
// event log per shard.
type Store interface {
	parley.WebhookQueue
	parley.ShardedLog
}

// Config configures a Dispatcher. Store and Endpoints are required.
type Config struct {
	Store     Store
	Endpoints []Endpoint
	// Connected reports whether a user has a live connection anywhere in
	// the cluster (the server's presence); nil: nobody is.
	Connected func(userID string) bool
	// Prepare turns an event into what clients see (attachment URLs); nil
	// leaves it as stored.
	Prepare func(parley.Event) parley.Event
	// AllowPrivate lets endpoints resolve to loopback and private
	// addresses (off by default: see ssrf.go).
	AllowPrivate bool
	// MaxBacklog bounds the deliveries waiting per endpoint (default
	// DefaultMaxBacklog).
	MaxBacklog int
	// Timeout bounds one delivery, connection included (default 10 s).
	Timeout time.Duration
	// BackoffBase and BackoffMax: attempt n waits a random time in
	// [d/2, d] with d = min(BackoffBase * 2^(n-1), BackoffMax) (defaults
	// 1 s and 5 min).
	BackoffBase, BackoffMax time.Duration
	// Poll is how often workers look for due deliveries and the enqueuer
	// for events it was not woken for (default 1 s).
	Poll time.Duration
	// Concurrency is how many deliveries an endpoint has in flight (each
	// of a different conversation; default 4).
	Concurrency int
	Logger      *slog.Logger
	// Registerer takes the parley_webhook_* metrics (nil: none).
	Registerer prometheus.Registerer
}

// Dispatcher runs webhook deliveries. Create it with New and run it with
// Run; Poke is safe for concurrent use and never blocks.
type Dispatcher struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	wake   chan struct{}            // the enqueuer's
	kick   map[string]chan struct{} // each worker's, by endpoint name
	shards int                      // the log's shard count (Store.Shards; 1 without a store)

	delivered, failed, dropped, enqueued *prometheus.CounterVec
	backlog                              *prometheus.GaugeVec
}

// New checks cfg and returns a Dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	defaults.Positive(&cfg.MaxBacklog, DefaultMaxBacklog)
	defaults.Positive(&cfg.Timeout, DefaultTimeout)
	defaults.Positive(&cfg.BackoffBase, DefaultBackoffBase)
	defaults.Positive(&cfg.BackoffMax, DefaultBackoffMax)
	defaults.Positive(&cfg.Poll, DefaultPoll)
	defaults.Positive(&cfg.Concurrency, DefaultConcurrency)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Connected == nil {
		cfg.Connected = func(string) bool { return false }
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), kick: map[string]chan struct{}{}, shards: 1}
	if cfg.Store != nil {
		d.shards = cfg.Store.Shards()
	}
	for i := range cfg.Endpoints {
		e := &cfg.Endpoints[i]
		if err := e.check(); err != nil {
			return nil, err
		}
		if d.kick[e.Name] != nil {
			return nil, errorf("two webhooks are named %q (set name= on one)", e.Name)
		}
		d.kick[e.Name] = make(chan struct{}, 1)
	}
	dialer := &net.Dialer{Timeout: cfg.Timeout}
	if !cfg.AllowPrivate {
		dialer.Control = refusePrivate
	}
	d.client = &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    cfg.Timeout,
			ResponseHeaderTimeout:  cfg.Timeout,
			MaxResponseHeaderBytes: maxResponseBytes,
			MaxIdleConnsPerHost:    cfg.Concurrency,
			IdleConnTimeout:        90 * time.Second,
		},
		// A redirect could lead anywhere; the operator gives the URL.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	d.delivered = countByEndpoint("parley_webhook_deliveries_total", "Webhook deliveries answered 2xx, by endpoint.")
	d.failed = countByEndpoint("parley_webhook_failures_total", "Webhook attempts that failed (error, timeout or non-2xx) and will be retried, by endpoint.")
	d.dropped = countByEndpoint("parley_webhook_dropped_total", "Events not enqueued for an endpoint because its backlog was full, by endpoint.")
	d.enqueued = countByEndpoint("parley_webhook_enqueued_total", "Deliveries written to the outbox by this node, by endpoint.")
	d.backlog = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "parley_webhook_backlog", Help: "Deliveries waiting in the outbox (cluster-wide, as last read by this node), by endpoint.",
	}, []string{"endpoint"})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{d.delivered, d.failed, d.dropped, d.enqueued, d.backlog} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

type configError string

func (e configError) Error() string { return "webhook: " + string(e) }

func errorf(format string, args ...any) error {
	return configError(fmt.Sprintf(format, args...))
}

// Poke tells the enqueuer that events were committed. It never blocks.
func (d *Dispatcher) Poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run runs the enqueuer and the workers until ctx ends, and returns once
// they all have stopped (deliveries in flight are cut short; they are
// leased in the store and go out again after their lease).
func (d *Dispatcher) Run(ctx context.Context) {
	if len(d.cfg.Endpoints) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, e := range d.cfg.Endpoints {
		wg.Go(func() { d.work(ctx, e) })
	}
	wg.Go(func() { d.enqueue(ctx) })
	wg.Wait()
	d.client.CloseIdleConnections()
}

// wait returns false when ctx ended, else after a signal on ch (signalled
// true) or after t.
func wait(ctx context.Context, ch <-chan struct{}, t time.Duration) (ok, signalled bool) {
	tm := time.NewTimer(t)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false, false
	case <-ch:
		return true, true
	case <-tm.C:
		return true, false
	}
}

// enqueue is the enqueuer's loop.
func (d *Dispatcher) enqueue(ctx context.Context) {
	for {
		if err := d.enqueueAll(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("webhook: enqueueing", "err", err)
		}
		d.refreshBacklog(ctx)
		if ok, _ := wait(ctx, d.wake, d.cfg.Poll); !ok {
			return
		}
	}
}

// enqueueAll enqueues every event after each shard's cursor.
func (d *Dispatcher) enqueueAll(ctx context.Context) error {
	var errs []error
	for shard := range d.shards {
		if err := d.enqueueShard(ctx, shard); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("shard %d: %w", shard, err))
		}
	}
	return errors.Join(errs...)
}

// enqueueShard enqueues every event of shard after its cursor.
func (d *Dispatcher) enqueueShard(ctx context.Context, shard int) error {
	q := d.cfg.Store
	cursor, err := q.WebhookCursor(ctx, shard)
	if err != nil {
		return err
	}
	if cursor < 0 {
		// First run: history is not delivered, only what follows.
		head, err := q.ShardHead(ctx, shard)
		if err != nil {
			return err
		}
		if err := q.EnqueueWebhooks(ctx, shard, cursor, head, nil); err != nil && parley.ErrorCode(err) != parley.ECONFLICT {
			return err
		}
		if cursor, err = q.WebhookCursor(ctx, shard); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		evs, err := q.ShardEvents(ctx, shard, cursor, enqueueBatch)
		if err != nil || len(evs) == 0 {
			return err
		}
		backlog, err := q.WebhookBacklog(ctx)
		if err != nil {
			return err
		}
		ds, drops := d.deliveries(shard, evs, backlog)
		to := evs[len(evs)-1].Pos
		err = q.EnqueueWebhooks(ctx, shard, cursor, to, ds)
		if parley.ErrorCode(err) == parley.ECONFLICT {
			// Another node moved the cursor: start again from it.
			if cursor, err = q.WebhookCursor(ctx, shard); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		cursor = to
		for _, dl := range ds {
			d.enqueued.WithLabelValues(dl.Endpoint).Inc()
			backlog[dl.Endpoint]++
		}
		for ep, n := range drops {
			d.dropped.WithLabelValues(ep).Add(float64(n))
		}
		for _, e := range d.cfg.Endpoints {
			d.backlog.WithLabelValues(e.Name).Set(float64(backlog[e.Name]))
			select {
			case d.kick[e.Name] <- struct{}{}:
			default:
			}
		}
	}
	return ctx.Err()
}

// refreshBacklog sets the backlog gauges from the store (deliveries
// other nodes finished included).
func (d *Dispatcher) refreshBacklog(ctx context.Context) {
	b, err := d.cfg.Store.WebhookBacklog(ctx)
	if err != nil {
		return
	}
	for _, e := range d.cfg.Endpoints {
		d.backlog.WithLabelValues(e.Name).Set(float64(b[e.Name]))
	}
}

// deliveries makes the deliveries of evs for the subscribed endpoints
// whose backlog has room, and counts the others per endpoint. backlog is
// updated as deliveries are added.
func (d *Dispatcher) deliveries(shard int, evs []parley.Event, backlog map[string]int) (ds []parley.WebhookDelivery, drops map[string]int) {
	drops = map[string]int{}
	room := make(map[string]int, len(d.cfg.Endpoints))
	for _, e := range d.cfg.Endpoints {
		room[e.Name] = d.cfg.MaxBacklog - backlog[e.Name]
	}
	for _, ev := range evs {
		kind := Kind(ev.Type)
		var body []byte
		for _, e := range d.cfg.Endpoints {
			if !e.wants(kind) {
				continue
			}
			if room[e.Name] <= 0 {
				drops[e.Name]++
				continue
			}
			if body == nil {
				ev.Shard = shard // a one-shard log's events say 0 already
				body = d.payload(kind, ev)
			}
			if len(body) > MaxPayloadBytes {
				drops[e.Name]++
				continue
			}
			room[e.Name]--
			ds = append(ds, parley.WebhookDelivery{Endpoint: e.Name, Shard: shard, Pos: ev.Pos, ConversationID: ev.ConversationID, Payload: body})
		}
	}
	return ds, drops
}

// Payload is the JSON body of a delivery.
type Payload struct {
	// ID is the idempotency key: the event's position in decimal on a
	// log of one shard; "shard:pos" (both in decimal) on a log of more
	// (positions are per shard). EventID makes it.
	ID   string `json:"id"`
	Type string `json:"type"`
	Pos  int64  `json:"pos"`
	// Shard is the event's shard of the log; left out on a log of one
	// shard (it is 0).
	Shard int `json:"shard,omitempty"`
	// Event is the event as clients receive it over WebSocket.
	Event parley.Event `json:"event"`
	// Members are the users the event went to (the conversation's
	// members then; for a removal, the removed users too).
	Members []string `json:"members"`
	// Offline lists, on message.new, the members other than the sender
	// who had no live connection anywhere in the cluster when the event
	// was enqueued: the ones to push to. Always present on message.new
	// (maybe empty), absent on other kinds.
	Offline *[]string `json:"offline_user_ids,omitempty"`
	// QuoteHidden lists, on message.new of a reply, the members from
	// whom its quote is hidden: they blocked the sender of the message
	// it replies to (parley.Event.QuoteHidden), so a push to them must
	// not show event.message.reply_to's sender or text. Absent when
	// none.
	QuoteHidden []string `json:"quote_hidden_user_ids,omitempty"`
}

func (d *Dispatcher) payload(kind string, ev parley.Event) []byte {
	p := Payload{ID: EventID(d.shards, ev.Shard, ev.Pos), Type: kind, Pos: ev.Pos, Members: ev.Audience}
	if d.shards > 1 {
		p.Shard = ev.Shard
	}
	if p.Members == nil {
		p.Members = []string{}
	}
	if kind == KindMessageNew {
		off := []string{}
		for _, u := range ev.Audience {
			if u != ev.UserID && !d.cfg.Connected(u) {
				off = append(off, u)
			}
		}
		p.Offline = &off
		p.QuoteHidden = ev.QuoteHidden
	}
	if d.cfg.Prepare != nil {
		ev = d.cfg.Prepare(ev)
	}
	p.Event = ev
	b, err := json.Marshal(p)
	if err != nil {
		// A parley.Event always marshals; keep the delivery rather than
		// lose it, with what can be said.
		b = []byte(`{"id":"` + p.ID + `","type":"` + kind + `","pos":` + strconv.FormatInt(p.Pos, 10) + `}`)
	}
	return b
}

// work is one endpoint's worker loop.
func (d *Dispatcher) work(ctx context.Context, e Endpoint) {
	next := time.Duration(0) // a backlog left by the last run goes out at once
	idle := false            // the last claim found nothing
	for {
		ok, kicked := wait(ctx, d.kick[e.Name], next)
		if !ok {
			return
		}
		next = d.cfg.Poll
		if idle && !kicked {
			// A claim is a write; an idle endpoint's poll is a read
			// unless something waits (a retry, another node's lease run
			// out).
			if b, err := d.cfg.Store.WebhookBacklog(ctx); err == nil && b[e.Name] == 0 {
				continue
			}
		}
		idle = false
		for ctx.Err() == nil {
			now := time.Now()
			// The lease outlasts a delivery's timeout, so a delivery in
			// flight is not claimed again by another node.
			ds, err := d.cfg.Store.ClaimWebhooks(ctx, e.Name, now, now.Add(2*d.cfg.Timeout+time.Second), d.cfg.Concurrency)
			if err != nil {
				if ctx.Err() == nil {
					d.log.Warn("webhook: claiming", "endpoint", e.Name, "err", err)
				}
				break
			}
			if len(ds) == 0 {
				idle = true
				break
			}
			retry := d.send(ctx, e, ds)
			if ctx.Err() != nil {
				return
			}
			if retry > 0 {
				next = min(next, retry)
				if len(ds) < d.cfg.Concurrency {
					break // nothing else due now; wait for the retry
				}
			}
		}
	}
}

// send delivers ds concurrently, then finishes the delivered ones and
// reschedules the others; it returns the soonest retry delay (0: none).
func (d *Dispatcher) send(ctx context.Context, e Endpoint, ds []parley.WebhookDelivery) time.Duration {
	ok := make([]bool, len(ds))
	var wg sync.WaitGroup
	for i, dl := range ds {
		wg.Go(func() { ok[i] = d.post(ctx, e, dl) })
	}
	wg.Wait()
	var soonest time.Duration
	// Store writes use a context of their own: a delivery that succeeded
	// is recorded even while the node stops (else it goes out again).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	for i, dl := range ds {
		if ok[i] {
			d.delivered.WithLabelValues(e.Name).Inc()
			d.backlog.WithLabelValues(e.Name).Dec()
			if err := d.cfg.Store.FinishWebhook(sctx, e.Name, dl.Shard, dl.Pos); err != nil {
				d.log.Warn("webhook: finishing", "endpoint", e.Name, "pos", dl.Pos, "err", err)
			}
			continue
		}
		if ctx.Err() != nil {
			continue // cut short by shutdown: the lease brings it back
		}
		d.failed.WithLabelValues(e.Name).Inc()
		wait := d.backoff(dl.Attempts)
		if soonest == 0 || wait < soonest {
			soonest = wait
		}
		if err := d.cfg.Store.RetryWebhook(sctx, e.Name, dl.Shard, dl.Pos, time.Now().Add(wait)); err != nil {
			d.log.Warn("webhook: rescheduling", "endpoint", e.Name, "pos", dl.Pos, "err", err)
		}
	}
	return soonest
}

// backoff is the wait after the attempt-th failed attempt: full jitter
// over the upper half of min(base*2^(attempt-1), max).
func (d *Dispatcher) backoff(attempt int) time.Duration {
	w := d.cfg.BackoffMax
	if attempt < 1 {
		attempt = 1
	}
	if attempt-1 < 40 {
		w = min(d.cfg.BackoffBase<<(attempt-1), d.cfg.BackoffMax)
	}
	if w <= 1 {
		return w
	}
	return w/2 + rand.N(w/2+1)
}

// post makes one attempt; true when the receiver answered 2xx.
func (d *Dispatcher) post(ctx context.Context, e Endpoint, dl parley.WebhookDelivery) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(dl.Payload))
	if err != nil {
		d.log.Warn("webhook: request", "endpoint", e.Name, "err", err)
		return false
	}
	var p struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(dl.Payload, &p)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Parley-Webhook/1")
	req.Header.Set(HeaderEventID, EventID(d.shards, dl.Shard, dl.Pos))
	req.Header.Set(HeaderEventType, p.Type)
	req.Header.Set(HeaderAttempt, strconv.Itoa(dl.Attempts))
	req.Header.Set(HeaderSignature, Sign(e.Secret, time.Now(), dl.Payload))
	resp, err := d.client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			d.log.Debug("webhook: delivery failed", "endpoint", e.Name, "pos", dl.Pos, "attempt", dl.Attempts, "err", err)
		}
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		d.log.Debug("webhook: delivery refused", "endpoint", e.Name, "pos", dl.Pos, "attempt", dl.Attempts, "status", resp.StatusCode)
		return false
	}
	return true
}

// countByEndpoint is a counter with an endpoint label.
func countByEndpoint(name, help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"endpoint"})
}

// EventID is a delivery's idempotency key (Payload.ID and the
// X-Parley-Event-Id header) for the event at pos of shard in a log of
// shards shards: pos in decimal with one shard (as before the log had
// shards), "shard:pos" with more.
func EventID(shards, shard int, pos int64) string {
	if shards <= 1 {
		return strconv.FormatInt(pos, 10)
	}
	return strconv.Itoa(shard) + ":" + strconv.FormatInt(pos, 10)
}
