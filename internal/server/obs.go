package server

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/batchq"
	"github.com/parleychat/parley/protocol"
)

// obsMetrics are the operator's latency, size and failure metrics
// (docs/deploy.md, "Metrics and logs"; docs/grafana-dashboard.json is
// built on them). Every labelled series is made at start, so /metrics
// lists it from the first scrape and the hot paths only call Observe or
// Inc on a series they already hold: no label lookup, no allocation.
type obsMetrics struct {
	// sendAck is from a send's handling starting (the worker taking a
	// run of sends off the connection, or the HTTP handler) to its answer
	// being queued: the store's commit wait and the service's checks.
	sendAckWS, sendAckHTTP prometheus.Observer
	// deliveryLag is from an event's time (stamped when it is stored) to
	// the end of the socket write that carried it: one sample per write
	// of a connection that carries live events, for the oldest of them
	// (markLag, observeLag). Across nodes it includes clock skew.
	deliveryLag prometheus.Histogram
	// sendWake is from the poller's wait returning with a parked
	// connection's socket readable to the worker starting to handle the
	// send read first after it (dispatchSends, where sendAck starts):
	// the reader's wait for a P, the read, the request queue, the
	// worker's wait for a P and the decode. One sample per wake-up whose
	// first message is a send; connections read without the poller
	// (TLS, not Linux) and sends read on without a wake-up give none.
	sendWake prometheus.Histogram
	// storeSendRun is the messages one store call takes (a connection's
	// run of consecutive sends, MultiSender); storeSendWait the time from
	// that call to each message's commit.
	storeSendRun  prometheus.Histogram
	storeSendWait prometheus.Histogram
	// resumeEvents is how many events a resume replayed.
	resumeEvents prometheus.Histogram
	errors       map[string]prometheus.Counter // by error code
	authFailures map[string]prometheus.Counter // token, login
	closes       map[int]prometheus.Counter    // by close code; closeNow is "none"
	closeOther   prometheus.Counter
}

// batchObserved is a store whose group-commit batcher reports each
// committed batch (both built-in stores do; see batchq.BatchObserver):
// its op count, its COMMIT's duration and its whole transaction's.
type batchObserved interface {
	SetBatchObserver(func(ops int, commit, txn time.Duration))
}

// observeBatches registers parley_store_batch_ops,
// parley_store_commit_seconds and parley_store_batch_seconds and has
// store report to them, if it can: a store that cannot has none of the
// three in /metrics rather than histograms that stay empty. The observer
// runs on the store's batcher goroutine: three Observe calls, no lookup,
// no allocation. One observer per store: a second server on the same
// store takes the reports over.
func observeBatches(reg *prometheus.Registry, store any) {
	bo, ok := store.(batchObserved)
	if !ok {
		return
	}
	ops := histogram("parley_store_batch_ops", "Ops (writes of every kind) committed in one store transaction by the group-commit batcher.", prometheus.ExponentialBuckets(1, 2, 11))
	commit := histogram("parley_store_commit_seconds", "Duration of a store batch's COMMIT statement (the fsync, for SQLite).", latencyBuckets)
	txn := histogram("parley_store_batch_seconds", "Duration of a store batch's whole transaction, from BEGIN (and PostgreSQL's positions lock) to the end of its COMMIT.", latencyBuckets)
	reg.MustRegister(ops, commit, txn)
	bo.SetBatchObserver(func(n int, c, t time.Duration) {
		ops.Observe(float64(n))
		commit.Observe(c.Seconds())
		txn.Observe(t.Seconds())
	})
}

// stageObserved is a store whose batcher reports how long each stage of
// a write took (both built-in stores do; see batchq.Stage).
type stageObserved interface {
	SetStageObserver(func(s batchq.Stage, d time.Duration))
}

// observeStages registers parley_store_stage_seconds, by stage, and has
// store report to it, if it can. Its buckets are finer than
// latencyBuckets' (ratio 1.5 from 50 µs): a stage is often well under a
// millisecond, and the stages of the send's tail are what it is for.
func observeStages(reg *prometheus.Registry, store any) {
	so, ok := store.(stageObserved)
	if !ok {
		return
	}
	vec := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "parley_store_stage_seconds",
		Help:    "Time a write spent in each stage of the store's group-commit batcher: queued (per op: from queued to its batch's BEGIN), sql (per batch: BEGIN to COMMIT), commit (the COMMIT statement), sync (SQLite, per batch: the WAL fsync after its COMMIT), answer (per batch: publishing its events and answering its ops).",
		Buckets: prometheus.ExponentialBuckets(0.00005, 1.5, 26),
	}, []string{"stage"})
	var obs [batchq.NumStages]prometheus.Observer
	for s := range batchq.NumStages {
		obs[s] = vec.WithLabelValues(s.String())
	}
	reg.MustRegister(vec)
	so.SetStageObserver(func(s batchq.Stage, d time.Duration) {
		if s >= 0 && s < batchq.NumStages {
			obs[s].Observe(d.Seconds())
		}
	})
}

// latencyBuckets span 0.5 ms to about 16 s.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 16)

// closeCodes are the close codes the server sends (docs/protocol.md
// section 8), each a series of parley_closes_total.
var closeCodes = []int{closeNow, protocol.CloseNormal, protocol.CloseGoingAway, protocol.CloseTooLarge,
	1011, protocol.CloseReconnect, protocol.CloseSlowConsumer, protocol.CloseHeartbeatTimeout, protocol.CloseShutdown, protocol.CloseHelloTimeout,
	protocol.CloseUnauthorized, protocol.CloseProtocolError, protocol.CloseAuthRevoked, protocol.CloseTooManyConnections}

func newObsMetrics(reg *prometheus.Registry) *obsMetrics {
	o := &obsMetrics{
		deliveryLag: histogram("parley_event_delivery_lag_seconds", "From a durable event's store time to the end of the socket write that carried it (per write, for the oldest live event in it).", latencyBuckets),
		sendWake: histogram("parley_send_wake_seconds", "From the poller seeing a parked connection's socket readable to the worker starting to handle the send read first after it (the reader's and the worker's waits to run, the read, the decode); one sample per wake-up that brings a send.",
			prometheus.ExponentialBuckets(0.00005, 1.5, 26)),
		storeSendRun:  histogram("parley_store_send_batch_size", "Messages handed to the store in one call (a connection's run of consecutive sends).", prometheus.ExponentialBuckets(1, 2, 8)),
		storeSendWait: histogram("parley_store_send_commit_seconds", "From a store call with sends to each message's commit (the store's batching and commit).", latencyBuckets),
		resumeEvents:  histogram("parley_resume_events", "Events replayed by one resume (a resync is not counted here: see parley_resumes_total).", prometheus.ExponentialBuckets(1, 4, 9)),
		errors:        map[string]prometheus.Counter{},
		authFailures:  map[string]prometheus.Counter{},
		closes:        map[int]prometheus.Counter{},
	}
	sendAck := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "parley_send_ack_seconds", Buckets: latencyBuckets,
		Help: "From a send's handling starting to its answer (ack or error) being queued, by transport (ws, http).",
	}, []string{"transport"})
	o.sendAckWS, o.sendAckHTTP = sendAck.WithLabelValues("ws"), sendAck.WithLabelValues("http")
	errs := counterVec("parley_errors_total", "Error answers (HTTP error responses, WebSocket error frames), by code.", "code")
	for code := range codes {
		o.errors[code] = errs.WithLabelValues(code)
	}
	auths := counterVec("parley_auth_failures_total", "Refused authentications, by kind: token (missing, forged or expired, on HTTP or WebSocket), login (wrong username or password).", "kind")
	for _, k := range []string{"token", "login"} {
		o.authFailures[k] = auths.WithLabelValues(k)
	}
	closes := counterVec("parley_closes_total", "WebSocket connections ended, by the close code the server asked for (none: the client left or a write failed; other: any code not listed).", "code")
	for _, c := range closeCodes {
		o.closes[c] = closes.WithLabelValues(closeLabel(c))
	}
	o.closeOther = closes.WithLabelValues("other")
	reg.MustRegister(o.deliveryLag, o.sendWake, o.storeSendRun, o.storeSendWait, o.resumeEvents, sendAck, errs, auths, closes)
	return o
}

func closeLabel(code int) string {
	if code == closeNow || code == 0 {
		return "none"
	}
	return strconv.Itoa(code)
}

// countError counts an error answer with code (unknown codes count as
// internal, as the wire has them).
func (o *obsMetrics) countError(code string) {
	if c, ok := o.errors[code]; ok {
		c.Inc()
		return
	}
	o.errors[parley.EINTERNAL].Inc()
}

// countClose counts a connection ended with close code (closeNow or 0:
// none was asked for).
func (o *obsMetrics) countClose(code int) {
	if code == 0 {
		code = closeNow
	}
	if c, ok := o.closes[code]; ok {
		c.Inc()
		return
	}
	o.closeOther.Inc()
}

// monoBase is the origin of monoNow's clock.
var monoBase = time.Now()

// monoNow is a monotonic clock in nanoseconds (since monoBase), never
// 0: for times kept as an int64 (pollReg.woke, request.woke) that
// must not move with the wall clock.
func monoNow() int64 { return mono(time.Now()) }

// mono is t (read from time.Now, so with its monotonic reading) on
// monoNow's clock.
func mono(t time.Time) int64 { return max(int64(t.Sub(monoBase)), 1) }

// sinceSeconds is time.Since(t) in seconds, for Observe.
func sinceSeconds(t time.Time) float64 { return time.Since(t).Seconds() }

// markLag notes, after the hub queued a live event stored at at (unix
// nanos), that the next write carries it, unless an older event already
// waits: one atomic compare-and-swap per delivery, no allocation.
func (c *conn) markLag(at int64) {
	if at > 0 {
		c.lagSince.CompareAndSwap(0, at)
	}
}

// observeLag records, after a write, the lag of the oldest live event
// queued since the previous write (parley_event_delivery_lag_seconds):
// one sample per write, not per event. An event queued while the write
// was under way counts with this write, a little early.
func (c *conn) observeLag() {
	if at := c.lagSince.Swap(0); at != 0 {
		c.s.metrics.obs.deliveryLag.Observe(float64(time.Now().UnixNano()-at) / 1e9)
	}
}

// closedCode is the close code asked for first (closeWith), or closeNow
// when none was; for countClose when the connection ends.
func (c *conn) closedCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}
