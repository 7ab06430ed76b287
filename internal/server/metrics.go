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
	uploads     prometheus.Counter
	httpConns   prometheus.Gauge
	httpRefused *prometheus.CounterVec
	panics      *prometheus.CounterVec
	obs         *obsMetrics // latencies, sizes and failures (obs.go)
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_connections", Help: "Open WebSocket connections that completed hello.",
		}),
		messages: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_messages_total", Help: "Messages stored through this node (new, not resends).",
		}),
		fanout: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_events_fanned_out_total", Help: "Event frames queued to local connections.",
		}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_resumes_total", Help: "Hellos with resume_from, by result (replayed, resync).",
		}, []string{"result"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_queue_drops_total", Help: "Frames dropped from full send queues (kind ephemeral or durable), and events a full hub queue dropped to read from the store (kind hub).",
		}, []string{"kind"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_rate_limited_total", Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
		slowClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_slow_consumer_closes_total", Help: "Connections closed with 4001 (slow consumer).",
		}),
		uploads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_uploads_total", Help: "Images stored through POST /v1/uploads.",
		}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_panics_total", Help: "Panics recovered, by where (reader, worker, writer, hello, timer, http); each closed its connection with 1011 or answered 500.",
		}, []string{"where"}),
	}
	m.httpConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "parley_http_connections_open", Help: "Open TCP connections (HTTP and WebSocket) accepted within the caps.",
	})
	m.httpRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "parley_http_connections_refused_total", Help: "Connections closed on accept for being over a cap, by cap (per_ip, total).",
	}, []string{"reason"})
	m.reg.MustRegister(m.httpConns, m.httpRefused)
	m.obs = newObsMetrics(m.reg)
	m.reg.MustRegister(m.connections, m.messages, m.fanout, m.resumes, m.drops, m.rateLimited, m.slowClosed, m.uploads, m.panics,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
