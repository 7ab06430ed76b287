package server

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// several servers can live in one process (tests, multi-node runs).
type metrics struct {
	reg         *prometheus.Registry
	connections prometheus.Gauge
	messages    prometheus.Counter
	fanout      prometheus.Counter
	resumes     *prometheus.CounterVec
	drops       *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	slowClosed  prometheus.Counter
	// heartbeatPings counts the WebSocket pings the heartbeat sweep sent
	// to quiet connections (heartbeat.go).
	heartbeatPings prometheus.Counter
	// hubStoreCalls counts the hub's own store calls, by hubStoreKind;
	// repliesEarly the connections whose send replies were written before
	// their events were queued (hub.beforeStore, commitFlush.end).
	hubStoreCalls [numHubStoreKinds]prometheus.Counter
	repliesEarly  prometheus.Counter
	// sendsDropped counts the sends of closed connections the store did
	// not run (conn.dropSends).
	sendsDropped prometheus.Counter
	uploads      prometheus.Counter
	httpConns    prometheus.Gauge
	httpRefused  *prometheus.CounterVec
	panics       *prometheus.CounterVec
	obs          *obsMetrics // latencies, sizes and failures (obs.go)
}

func newMetrics() *metrics {
	m := &metrics{
		reg:         prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_connections", Help: "Open WebSocket connections that completed hello."}),
		messages:    counter("parley_messages_total", "Messages stored through this node (new, not resends)."),
		fanout:      counter("parley_events_fanned_out_total", "Event frames queued to local connections."),
		resumes:     counterVec("parley_resumes_total", "Hellos with resume_from, by result (replayed, resync).", "result"),
		drops:       counterVec("parley_queue_drops_total", "Frames dropped from full send queues (kind ephemeral or durable), and events a full hub queue dropped to read from the store (kind hub), and broker events whose data did not parse (kind broker_data: read from the store, or dropped when ephemeral).", "kind"),
		rateLimited: counterVec("parley_rate_limited_total", "Requests refused by a rate limit, by limit.", "limit"),
		slowClosed:  counter("parley_slow_consumer_closes_total", "Connections closed with 4001 (slow consumer)."),
		uploads:     counter("parley_uploads_total", "Images stored through POST /v1/uploads."),
		heartbeatPings: counter("parley_heartbeat_pings_total",
			"WebSocket pings sent to connections the server had not heard from for 1.5 heartbeat intervals (a client whose own pings are late, such as a hidden browser tab); the pong counts as hearing from it."),
		sendsDropped: counter("parley_sends_dropped_total",
			"Sends a WebSocket connection handed to the store that the store did not run because the connection closed before it took them into a batch (or, with a store without parley.AsyncSender, before the server handed them to it): their replies could not be written, and the client sends them again."),
		panics: counterVec("parley_panics_total", "Panics recovered, by where (reader, worker, writer, hello, timer, http); each closed its connection with 1011 or answered 500.", "where"),
	}
	m.httpConns = prometheus.NewGauge(prometheus.GaugeOpts{Name: "parley_http_connections_open", Help: "Open TCP connections (HTTP and WebSocket) accepted within the caps."})
	m.httpRefused = counterVec("parley_http_connections_refused_total", "Connections closed on accept for being over a cap, by cap (per_ip, total).", "reason")
	m.reg.MustRegister(m.httpConns, m.httpRefused)
	hubStore := counterVec("parley_hub_store_calls_total",
		"Store calls of the hub's own, by kind (fill: the events of a gap or of an overflowing queue; poll: the heads; event: an event whose broker data did not parse; contacts; consent). Send replies pending then are written without waiting for it, ahead of their events (parley_send_replies_early_total).", "kind")
	for k, name := range hubStoreKinds {
		m.hubStoreCalls[k] = hubStore.WithLabelValues(name)
	}
	m.repliesEarly = counter("parley_send_replies_early_total",
		"Connections whose WebSocket send replies were written before the hub queued their store batch's events, because the hub was in (or about to make) a store call of its own: the sender's own events for those sends come in a later write.")
	m.reg.MustRegister(hubStore, m.repliesEarly)
	m.obs = newObsMetrics(m.reg)
	m.reg.MustRegister(m.connections, m.messages, m.fanout, m.resumes, m.drops, m.rateLimited, m.slowClosed, m.heartbeatPings, m.sendsDropped, m.uploads, m.panics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// counter, counterVec and histogram make a metric from its name and help
// (and label, or buckets): what every metric here is defined by.
func counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

func counterVec(name, help, label string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
}

func histogram(name, help string, buckets []float64) prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
}

// brokerCounts registers a broker's counts of what it received (read
// returns them; natsbroker.Broker.BrokerCounts): messages read from their
// bytes, event payloads decoded from JSON, and messages dropped as
// malformed. read is called at each scrape, from the scraping goroutine,
// so it must be safe for concurrent use.
func (m *metrics) brokerCounts(read func() (read, payloads, dropped int64)) {
	one := func(i int) func() float64 {
		return func() float64 {
			var c [3]int64
			c[0], c[1], c[2] = read()
			return float64(c[i])
		}
	}
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_broker_messages_read_total",
			Help: "Messages this node's broker subscription read from their bytes (a node's own, taken back from its echo cache, are not counted)."}, one(0)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_broker_payloads_decoded_total",
			Help: "Events whose JSON payload the broker decoded (wire version 1 messages, and version 2 events published without data); a version 2 event's data is not decoded there."}, one(1)),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "parley_broker_messages_dropped_total",
			Help: "Broker messages refused as malformed (logged at most once a second)."}, one(2)),
	)
}
