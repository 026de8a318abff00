package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every Prometheus collector Lode exports. Its methods are the
// observer calls the stratum server, the share validator and the ledger make
// (each declares the subset it uses as an interface of its own). All methods
// are safe for concurrent use and cheap enough for the share path: they touch
// pre-resolved atomic counters, except the reason-labelled ones, which look
// up a label value in a small map.
type Metrics struct {
	reg *prometheus.Registry

	connections      prometheus.Gauge
	connectionsTotal prometheus.Counter
	closes           *prometheus.CounterVec
	sharesAccepted   prometheus.Counter
	sharesRejected   *prometheus.CounterVec
	difficultySum    prometheus.Counter
	submitLatency    prometheus.Histogram
	fanout           prometheus.Histogram
	templateAge      prometheus.GaugeFunc
	blocks           *prometheus.CounterVec
	blockAccepted    prometheus.Counter
	blockRejected    prometheus.Counter
	redisBatch       prometheus.Histogram
	redisBatchShares prometheus.Histogram
	spoolDepth       prometheus.Gauge
}

// NewMetrics registers Lode's collectors, plus the Go runtime and process
// collectors, in a new registry. templateAge, when not nil, is read at scrape
// time and returns how old the current block template is.
func NewMetrics(templateAge func() time.Duration) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	const ns = "lode"
	m.connections = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "stratum_connections",
		Help: "Stratum connections currently open.",
	})
	m.connectionsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "stratum_connections_total",
		Help: "Stratum connections accepted since start.",
	})
	m.closes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "stratum_disconnects_total",
		Help: "Stratum connections closed, by reason.",
	}, []string{"reason"})
	m.sharesAccepted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "shares_accepted_total",
		Help: "Shares accepted (acknowledged to the miner).",
	})
	m.sharesRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "shares_rejected_total",
		Help: "Shares rejected, by reason (stale, duplicate, low_difficulty, ...).",
	}, []string{"reason"})
	m.difficultySum = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "shares_difficulty_sum",
		Help: "Sum of the credited difficulty of accepted shares; rate() × 2^32 is the pool hashrate.",
	})
	m.submitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "submit_latency_seconds",
		Help:    "Time from reading mining.submit to writing its reply (includes the ledger's group commit).",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.fanout = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "job_fanout_seconds",
		Help:    "Time from a new-tip event to the clean job being queued to every connection.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	if templateAge == nil {
		templateAge = func() time.Duration { return 0 }
	}
	m.templateAge = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "template_age_seconds",
		Help: "Age of the block template the current job was built from.",
	}, func() float64 { return templateAge().Seconds() })
	m.blocks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "block_candidates_total",
		Help: "Block candidates submitted to the node, by result (accepted, rejected).",
	}, []string{"result"})
	m.blockAccepted = m.blocks.WithLabelValues("accepted")
	m.blockRejected = m.blocks.WithLabelValues("rejected")
	m.redisBatch = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "ledger_batch_seconds",
		Help:    "Latency of one group-commit write of shares to Redis.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	m.redisBatchShares = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "ledger_batch_shares",
		Help:    "Shares per group-commit batch.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 11),
	})
	m.spoolDepth = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "ledger_spool_shares",
		Help: "Shares waiting in the local spool file for Redis to come back.",
	})
	reg.MustRegister(m.connections, m.connectionsTotal, m.closes, m.sharesAccepted, m.sharesRejected,
		m.difficultySum, m.submitLatency, m.fanout, m.templateAge, m.blocks, m.redisBatch,
		m.redisBatchShares, m.spoolDepth,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the collectors live (served on /metrics).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ConnectionOpened counts a new Stratum connection.
func (m *Metrics) ConnectionOpened() {
	m.connections.Inc()
	m.connectionsTotal.Inc()
}

// ConnectionClosed counts a closed connection and why it closed.
func (m *Metrics) ConnectionClosed(reason string) {
	m.connections.Dec()
	m.closes.WithLabelValues(reason).Inc()
}

// ShareAccepted counts an accepted share of the given credited difficulty.
func (m *Metrics) ShareAccepted(difficulty float64) {
	m.sharesAccepted.Inc()
	if difficulty > 0 {
		m.difficultySum.Add(difficulty)
	}
}

// ShareRejected counts a rejected share by reason.
func (m *Metrics) ShareRejected(reason string) {
	m.sharesRejected.WithLabelValues(reason).Inc()
}

// SubmitLatency observes one submit→reply time.
func (m *Metrics) SubmitLatency(d time.Duration) { m.submitLatency.Observe(d.Seconds()) }

// JobFanout observes one new-block fan-out time.
func (m *Metrics) JobFanout(d time.Duration) { m.fanout.Observe(d.Seconds()) }

// BlockCandidate counts a block handed to the node and whether it took it.
func (m *Metrics) BlockCandidate(accepted bool) {
	if accepted {
		m.blockAccepted.Inc()
	} else {
		m.blockRejected.Inc()
	}
}

// LedgerBatch observes one group-commit batch of n shares written in d.
func (m *Metrics) LedgerBatch(d time.Duration, n int) {
	m.redisBatch.Observe(d.Seconds())
	m.redisBatchShares.Observe(float64(n))
}

// SpoolDepth sets how many shares wait in the spool.
func (m *Metrics) SpoolDepth(n int) { m.spoolDepth.Set(float64(n)) }
