package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every Prometheus collector Lode exports. Two kinds feed it:
//
//   - events, through plain methods (ShareAccepted, ShareRejected,
//     RecordLatency, BlockCandidate, LedgerBatch) that the daemon's adapters
//     call around the recorder, the ledger store and the block submitter;
//   - snapshots read at scrape time (Sources): counters a component already
//     keeps itself, like the stratum server's connection and fan-out stats,
//     so nothing is counted twice.
//
// All methods are safe for concurrent use and cheap enough for the share
// path (pre-resolved atomic counters; the reason-labelled ones look a label
// up in a small map).
type Metrics struct {
	reg *prometheus.Registry

	sharesAccepted   prometheus.Counter
	sharesRejected   *prometheus.CounterVec
	difficultySum    prometheus.Counter
	recordLatency    prometheus.Histogram
	blockAccepted    prometheus.Counter
	blockRejected    prometheus.Counter
	redisBatch       prometheus.Histogram
	redisBatchShares prometheus.Histogram
}

// Sources are read at scrape time; nil ones export nothing (a process
// without the stratum role has no connections to report).
type Sources struct {
	// TemplateAge is the age of the block template behind the current job.
	TemplateAge func() time.Duration
	// Stratum returns the stratum server's counters.
	Stratum func() StratumSnapshot
	// SpoolBytes returns the size of the ledger's spool: shares acknowledged to miners that wait for Redis to come back.
	SpoolBytes func() int64
	// Payouts returns the payout processor's alerting state.
	Payouts func() PayoutSnapshot
}

// PayoutSnapshot is the payout processor's alerting state: new payouts are
// halted while a payout transaction is not on the network.
type PayoutSnapshot struct {
	Halted            bool
	AwaitingBroadcast int
	// BroadcastRefused and BroadcastFailed count failed broadcasts since
	// start: refused by the node with a reason, or the node not reachable.
	BroadcastRefused, BroadcastFailed uint64
}

// StratumSnapshot is the stratum server's view at one instant.
type StratumSnapshot struct {
	Connections int64             // open now
	Closes      map[string]uint64 // closed connections by reason, since start
	// Fanout is the time from a new tip to the clean job written to each
	// connection.
	Fanout HistogramSnapshot
	// Submit is the time from a mining.submit decoded to its reply queued
	// for the miner (accepted or rejected), exported as lode_submit_seconds.
	Submit HistogramSnapshot
	// StaleByJobAge counts stale shares (for the previous block) by the age
	// of their job when submitted: StaleCounts[i] counts ages ≤
	// StaleBounds[i] (and above the previous bound), the last count ages
	// above every bound.
	StaleBounds []time.Duration
	StaleCounts []uint64
	// Panics counts sessions ended by a recovered panic (always a bug).
	Panics uint64
}

// HistogramSnapshot is a fixed-bucket histogram: Counts[i] counts
// observations ≤ Bounds[i] and > Bounds[i-1]; the last count is above every
// bound.
type HistogramSnapshot struct {
	Bounds []time.Duration
	Counts []uint64
	Sum    time.Duration
	Count  uint64
}

const ns = "lode"

// NewMetrics registers Lode's collectors, plus the Go runtime and process
// collectors, in a new registry.
func NewMetrics(src Sources) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg}
	m.sharesAccepted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "shares_accepted_total",
		Help: "Shares accepted (durable, acknowledged to the miner).",
	})
	m.sharesRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "shares_rejected_total",
		Help: "Shares rejected, by reason (stale, duplicate, low_difficulty, ...).",
	}, []string{"reason"})
	m.difficultySum = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Name: "shares_difficulty_sum",
		Help: "Sum of the credited difficulty of accepted shares; rate() × 2^32 is the pool hashrate.",
	})
	m.recordLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: ns, Name: "share_record_seconds",
		Help:    "Time an accepted share waited to become durable (group commit to Redis, or the spool) before the miner's reply.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	})
	blocks := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Name: "block_candidates_total",
		Help: "Block candidates submitted to the node, by result (accepted, rejected).",
	}, []string{"result"})
	m.blockAccepted = blocks.WithLabelValues("accepted")
	m.blockRejected = blocks.WithLabelValues("rejected")
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
	reg.MustRegister(m.sharesAccepted, m.sharesRejected, m.difficultySum, m.recordLatency, blocks,
		m.redisBatch, m.redisBatchShares,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if src.TemplateAge != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "template_age_seconds",
			Help: "Age of the block template the current job was built from.",
		}, func() float64 { return src.TemplateAge().Seconds() }))
	}
	if src.SpoolBytes != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Name: "ledger_spool_bytes",
			Help: "Bytes of share batches waiting in the local spool file for Redis to come back (0 when Redis is healthy).",
		}, func() float64 { return float64(src.SpoolBytes()) }))
	}
	if src.Stratum != nil {
		reg.MustRegister(newStratumCollector(src.Stratum))
	}
	if src.Payouts != nil {
		reg.MustRegister(newPayoutCollector(src.Payouts))
	}
	return m
}

// payoutCollector exports a PayoutSnapshot at scrape time.
type payoutCollector struct {
	read                       func() PayoutSnapshot
	halted, awaiting, failures *prometheus.Desc
}

func newPayoutCollector(read func() PayoutSnapshot) *payoutCollector {
	return &payoutCollector{
		read: read,
		halted: prometheus.NewDesc(ns+"_payouts_halted",
			"1 while new payouts are halted because a payout transaction is not on the network (see docs/payouts.md).", nil, nil),
		awaiting: prometheus.NewDesc(ns+"_payouts_awaiting_broadcast",
			"Signed payouts the node does not have (never accepted, or the last broadcast failed).", nil, nil),
		failures: prometheus.NewDesc(ns+"_payout_broadcast_failures_total",
			"Failed payout broadcasts, by reason: refused (the node gave a reason) or unreachable (it could not be asked).",
			[]string{"reason"}, nil),
	}
}

func (c *payoutCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.halted
	ch <- c.awaiting
	ch <- c.failures
}

func (c *payoutCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	halted := 0.0
	if s.Halted {
		halted = 1
	}
	ch <- prometheus.MustNewConstMetric(c.halted, prometheus.GaugeValue, halted)
	ch <- prometheus.MustNewConstMetric(c.awaiting, prometheus.GaugeValue, float64(s.AwaitingBroadcast))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.BroadcastRefused), "refused")
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.BroadcastFailed), "unreachable")
}

// Registry is where the collectors live (served on /metrics).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

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

// RecordLatency observes how long one accepted share took to become durable.
func (m *Metrics) RecordLatency(d time.Duration) { m.recordLatency.Observe(d.Seconds()) }

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

// stratumCollector exports a StratumSnapshot as const metrics at scrape
// time.
type stratumCollector struct {
	read                                                  func() StratumSnapshot
	conns, connsTotal, closes, fan, submit, stale, panics *prometheus.Desc
}

func newStratumCollector(read func() StratumSnapshot) *stratumCollector {
	return &stratumCollector{
		read: read,
		conns: prometheus.NewDesc(ns+"_stratum_connections",
			"Stratum connections currently open.", nil, nil),
		connsTotal: prometheus.NewDesc(ns+"_stratum_connections_total",
			"Stratum connections accepted since start.", nil, nil),
		closes: prometheus.NewDesc(ns+"_stratum_disconnects_total",
			"Stratum connections closed, by reason.", []string{"reason"}, nil),
		fan: prometheus.NewDesc(ns+"_job_fanout_seconds",
			"Time from the node's new tip to the clean job written to each connection.", nil, nil),
		submit: prometheus.NewDesc(ns+"_submit_seconds",
			"Time from a mining.submit decoded to its reply queued for the miner (validation, block submission, "+
				"the wait for the share to be durable), accepted and rejected shares alike.", nil, nil),
		stale: prometheus.NewDesc(ns+"_shares_stale_by_job_age_total",
			"Stale shares (previous block) by the age of their job, in buckets up to job_age_le seconds (not cumulative).",
			[]string{"job_age_le"}, nil),
		panics: prometheus.NewDesc(ns+"_stratum_session_panics_total",
			"Sessions ended by a recovered panic (a bug: please report it).", nil, nil),
	}
}

func (c *stratumCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.connsTotal
	ch <- c.closes
	ch <- c.fan
	ch <- c.submit
	ch <- c.stale
	ch <- c.panics
}

func (c *stratumCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	total := uint64(max(s.Connections, 0))
	for reason, n := range s.Closes {
		total += n
		ch <- prometheus.MustNewConstMetric(c.closes, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.Connections))
	ch <- prometheus.MustNewConstMetric(c.connsTotal, prometheus.CounterValue, float64(total))
	ch <- constHistogram(c.fan, s.Fanout)
	ch <- constHistogram(c.submit, s.Submit)
	for i, n := range s.StaleCounts {
		le := "+Inf"
		if i < len(s.StaleBounds) {
			le = strconv.FormatFloat(s.StaleBounds[i].Seconds(), 'g', -1, 64)
		}
		ch <- prometheus.MustNewConstMetric(c.stale, prometheus.CounterValue, float64(n), le)
	}
	ch <- prometheus.MustNewConstMetric(c.panics, prometheus.CounterValue, float64(s.Panics))
}

// constHistogram turns a snapshot's per-bucket counts into Prometheus's
// cumulative buckets (in seconds).
func constHistogram(d *prometheus.Desc, h HistogramSnapshot) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, b := range h.Bounds {
		if i < len(h.Counts) {
			cum += h.Counts[i]
		}
		buckets[b.Seconds()] = cum
	}
	return prometheus.MustNewConstHistogram(d, h.Count, h.Sum.Seconds(), buckets)
}
