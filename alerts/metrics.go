package alerts

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the dispatcher's delivery outcomes at scrape time:
// lode_alerts_deliveries_total{channel, outcome} (outcome delivered,
// failed: given up after the retries, dropped: a full queue) and
// lode_alerts_subscriptions.
type Collector struct {
	d          *Dispatcher
	deliveries *prometheus.Desc
	subs       *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns the collector of d.
func NewCollector(d *Dispatcher) *Collector {
	return &Collector{d: d,
		deliveries: prometheus.NewDesc("lode_alerts_deliveries_total",
			"Alert events by channel kind and outcome (failed: given up after retries; dropped: queue full).",
			[]string{"channel", "outcome"}, nil),
		subs: prometheus.NewDesc("lode_alerts_subscriptions", "Miners' alert subscriptions.", nil, nil),
	}
}

func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.deliveries
	ch <- c.subs
}

func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for kind, n := range c.d.Counts() {
		for outcome, v := range map[string]uint64{"delivered": n.Delivered, "failed": n.Failed, "dropped": n.Dropped} {
			ch <- prometheus.MustNewConstMetric(c.deliveries, prometheus.CounterValue, float64(v), kind, outcome)
		}
	}
	c.d.mu.Lock()
	n := len(c.d.list)
	c.d.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.subs, prometheus.GaugeValue, float64(n))
}
