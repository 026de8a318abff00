package economics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the latest snapshot as Prometheus gauges at scrape
// time: pool-wide figures and one series per device model; per-worker
// series only when Config.PerWorkerMetrics is set (one series per worker
// and figure). The api package registers it with one line:
//
//	registry.MustRegister(economics.NewCollector(engine, notifier))
type Collector struct {
	engine   *Engine
	notifier *Notifier

	hashprice, difficulty, implied, observed, templateFees, trailingFees *prometheus.Desc
	retarget, retargetETA, power, btc, priceAge                          *prometheus.Desc
	modelWorkers, modelHashrate, modelWatts, modelBreakEven, modelMargin *prometheus.Desc
	modelCurtailable, modelAdvice, curtailable                           *prometheus.Desc
	workerHashrate, workerMargin, workerAdvice                           *prometheus.Desc
	webhook                                                              *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector over e (and n's delivery counters, when
// n is not nil).
func NewCollector(e *Engine, n *Notifier) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("lode_economics_"+name, help, labels, nil)
	}
	return &Collector{
		engine: e, notifier: n,
		hashprice:        d("hashprice_sat_per_th_day", "Hashprice: satoshis one TH/s earns per day, by fee basis.", "basis"),
		difficulty:       d("network_difficulty", "Network difficulty of the current template."),
		implied:          d("network_hashrate_implied", "Network hashrate implied by the difficulty, H/s."),
		observed:         d("network_hashrate_observed", "Network hashrate observed over the fee window, H/s."),
		templateFees:     d("template_fees_sat", "Fees in the current template, satoshis."),
		trailingFees:     d("trailing_fees_sat", "Fees per block over the trailing window, satoshis.", "stat"),
		retarget:         d("retarget_difficulty", "Forecast of the next difficulty, with its 95 % band.", "bound"),
		retargetETA:      d("retarget_eta_timestamp_seconds", "Expected time of the next retarget (unix seconds)."),
		power:            d("power_price_sat_per_kwh", "Power price in use, satoshis per kWh."),
		btc:              d("btc_price", "BTC price in use, in the power currency."),
		priceAge:         d("price_age_seconds", "Age of a feed's last value.", "price"),
		modelWorkers:     d("model_workers", "Workers per device model.", "model"),
		modelHashrate:    d("model_hashrate", "Hashrate per device model, H/s, with its interval.", "model", "bound"),
		modelWatts:       d("model_watts", "Power drawn per device model at its measured hashrate, W.", "model"),
		modelBreakEven:   d("model_break_even_sat_per_kwh", "Power price at which a model breaks even, satoshis per kWh.", "model"),
		modelMargin:      d("model_margin_sat_per_day", "Margin per device model, satoshis per day, with its interval.", "model", "bound"),
		modelCurtailable: d("model_curtailable_watts", "Watts of a model's workers advised to curtail.", "model"),
		modelAdvice:      d("model_advice", "1 for the model's current advice.", "model", "advice"),
		curtailable:      d("curtailable_watts", "Watts of all workers advised to curtail."),
		workerHashrate:   d("worker_hashrate", "Worker hashrate over the revenue window, H/s, with its interval.", "worker", "bound"),
		workerMargin:     d("worker_margin_sat_per_day", "Worker margin, satoshis per day.", "worker"),
		workerAdvice:     d("worker_advice", "1 for the worker's current advice.", "worker", "advice"),
		webhook:          d("webhook_events_total", "Webhook events by outcome.", "outcome"),
	}
}

// Describe sends every descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.hashprice, c.difficulty, c.implied, c.observed, c.templateFees, c.trailingFees,
		c.retarget, c.retargetETA, c.power, c.btc, c.priceAge, c.modelWorkers, c.modelHashrate, c.modelWatts,
		c.modelBreakEven, c.modelMargin, c.modelCurtailable, c.modelAdvice, c.curtailable,
		c.workerHashrate, c.workerMargin, c.workerAdvice, c.webhook} {
		ch <- d
	}
}

// Collect reads the latest snapshot.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if n := c.notifier; n != nil {
		for outcome, v := range map[string]uint64{"delivered": n.Delivered.Load(), "failed": n.Failed.Load(), "dropped": n.Dropped.Load()} {
			ch <- prometheus.MustNewConstMetric(c.webhook, prometheus.CounterValue, float64(v), outcome)
		}
	}
	s := c.engine.Snapshot()
	if s == nil {
		return
	}
	net := s.Network
	for basis, hp := range net.Hashprice {
		g(c.hashprice, hp.SatPerTHDay, basis)
	}
	g(c.difficulty, net.Difficulty)
	g(c.implied, net.ImpliedHashrate)
	if net.ObservedHashrate != nil {
		g(c.observed, *net.ObservedHashrate)
	}
	g(c.templateFees, float64(net.TemplateFeesSat))
	if t := net.Trailing; t != nil {
		g(c.trailingFees, t.Mean, "mean")
		g(c.trailingFees, t.Median, "median")
	}
	if r := net.Retarget; r.Available {
		g(c.retarget, r.NextDifficulty, "forecast")
		g(c.retarget, r.Low, "low")
		g(c.retarget, r.High, "high")
		g(c.retargetETA, float64(r.ETA.Unix()))
	}
	if s.Prices.SatPerKWh != nil {
		g(c.power, *s.Prices.SatPerKWh)
	}
	if p := s.Prices.Power; p != nil && p.Source == "feed" {
		g(c.priceAge, p.AgeSeconds, "power")
	}
	if p := s.Prices.BTC; p != nil {
		if usable(p) {
			g(c.btc, p.Value)
		}
		if p.Source == "feed" {
			g(c.priceAge, p.AgeSeconds, "btc")
		}
	}
	g(c.curtailable, s.Fleet.CurtailableW)
	for _, m := range s.Fleet.Models {
		g(c.modelWorkers, float64(m.Workers), m.Model)
		g(c.modelHashrate, m.Hashrate.Value, m.Model, "value")
		g(c.modelHashrate, m.Hashrate.Low, m.Model, "low")
		g(c.modelHashrate, m.Hashrate.High, m.Model, "high")
		g(c.modelWatts, m.Money.Watts.Value, m.Model)
		g(c.modelBreakEven, m.Money.BreakEvenSatPerKWh, m.Model)
		if mg := m.Money.MarginSat; mg != nil {
			g(c.modelMargin, mg.Value, m.Model, "value")
			g(c.modelMargin, mg.Low, m.Model, "low")
			g(c.modelMargin, mg.High, m.Model, "high")
		}
		g(c.modelCurtailable, m.CurtailableW, m.Model)
		g(c.modelAdvice, 1, m.Model, m.Advice.Advice)
	}
	if !c.engine.cfg.PerWorkerMetrics {
		return
	}
	wi := 1
	for k, w := range windows {
		if w == c.engine.cfg.RevenueWindow {
			wi = k
		}
	}
	for _, w := range s.Workers {
		h := w.Hashrate[wi]
		g(c.workerHashrate, h.Hashrate, w.Worker, "value")
		g(c.workerHashrate, h.Low, w.Worker, "low")
		g(c.workerHashrate, h.High, w.Worker, "high")
		if mg := w.Money.MarginSat; mg != nil {
			g(c.workerMargin, mg.Value, w.Worker)
		}
		g(c.workerAdvice, 1, w.Worker, w.Advice.Advice)
	}
}
