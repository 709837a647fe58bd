package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"smartfhir/internal/audit"
	"smartfhir/internal/store/sqlstore"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers in one test process do not collide.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "smartfhir_http_requests_total",
			Help: "HTTP requests answered, by interaction and status code.",
		}, []string{"interaction", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "smartfhir_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by interaction.",
			Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"interaction"}),
	}
	m.reg.MustRegister(m.requests, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one answered request; the FHIR API calls it with the
// interaction it recognised.
func (m *metrics) observe(interaction string, status int, elapsed time.Duration) {
	m.requests.WithLabelValues(interaction, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(interaction).Observe(elapsed.Seconds())
}

// instrument records requests to a non-FHIR route under a fixed name.
func (m *metrics) instrument(name string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		m.observe(name, rec.code(), time.Since(start))
	})
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// readCacheStats exports the hits and misses of the store's read cache
// (--read-cache-mb).
func (m *metrics) readCacheStats(db *sqlstore.DB) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "smartfhir_read_cache_hits_total",
			Help: "Reads by id answered from memory because the database had not changed, and search results whose version was in memory.",
		}, func() float64 { return float64(db.ReadCacheStats().Hits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "smartfhir_read_cache_misses_total",
			Help: "Reads by id and search results that looked in memory and were read from the database.",
		}, func() float64 { return float64(db.ReadCacheStats().Misses) }),
	)
}

// auditStats publishes the audit log's counters: events written, and
// batch writes that failed and were retried (an alert-worthy number).
func (m *metrics) auditStats(l *audit.Log) {
	m.reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "smartfhir_audit_events_written_total",
			Help: "Audit events written to the database.",
		}, func() float64 { w, _ := l.Stats(); return float64(w) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "smartfhir_audit_write_failures_total",
			Help: "Batches of audit events whose write failed and was retried.",
		}, func() float64 { _, f := l.Stats(); return float64(f) }),
	)
}
