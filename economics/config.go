package economics

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/lode-pool/lode/internal/webhook"
)

// Config is the economics section of lode.yaml. The zero value is valid:
// everything in sats, no power price (so no cost, margin or advice), no
// webhook. Defaults are applied by New, and listed on each field.
type Config struct {
	// Enabled runs the engine in the daemon (default off: nothing of this
	// section is read, and no figures are served).
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Refresh is how often figures are recomputed (default 30 s); new
	// blocks are picked up at the next refresh.
	Refresh time.Duration `yaml:"refresh" json:"refresh"`
	// FeeWindowBlocks is the trailing fee window (default 144).
	FeeWindowBlocks int `yaml:"fee_window_blocks" json:"fee_window_blocks"`
	// PoolFee is the pool's fee as a fraction (0.01 = 1 %), taken off
	// revenue.
	PoolFee float64 `yaml:"pool_fee" json:"pool_fee"`
	// RevenueBasis picks the fees that revenue uses: "trailing_mean"
	// (default), "trailing_median" or "template".
	RevenueBasis string `yaml:"revenue_basis" json:"revenue_basis"`
	// RevenueWindow is the hashrate window revenue, cost and advice use:
	// 5m, 1h (default) or 24h.
	RevenueWindow time.Duration `yaml:"revenue_window" json:"revenue_window"`

	Power    PowerConfig    `yaml:"power" json:"power"`
	BTCPrice BTCPriceConfig `yaml:"btc_price" json:"btc_price"`
	Devices  DevicesConfig  `yaml:"devices" json:"devices"`
	Advice   AdviceConfig   `yaml:"advice" json:"advice"`
	Webhook  WebhookConfig  `yaml:"webhook" json:"webhook"`

	// PerWorkerMetrics exports per-worker Prometheus series (off by
	// default: one series per worker).
	PerWorkerMetrics bool `yaml:"per_worker_metrics" json:"per_worker_metrics"`
}

// PowerConfig is the price of electricity.
type PowerConfig struct {
	// Currency of the prices: a fiat code such as "USD" (then figures in
	// sats need a BTC price in the same currency) or "sat" (prices in
	// satoshis per kWh, fully offline). Default "USD".
	Currency string `yaml:"currency" json:"currency"`
	// Price is the flat price per kWh, used when no schedule rate or fresh
	// feed value applies. 0 with no schedule and no feed: no power price.
	Price float64 `yaml:"price" json:"price"`
	// Schedule is a time-of-use tariff in Timezone (default UTC).
	Schedule []TimeOfUse `yaml:"schedule" json:"schedule"`
	Timezone string      `yaml:"timezone" json:"timezone"`
	// Feed is a live price feed (per kWh, in Currency); it wins while fresh.
	Feed FeedConfig `yaml:"feed" json:"feed"`
	// ForcedOff windows (demand-response events) make the advice curtail
	// at once, whatever the margin.
	ForcedOff []Window `yaml:"forced_off" json:"forced_off"`
	// Overhead multiplies the machines' power for cooling and PSU losses
	// (default 1.0).
	Overhead float64 `yaml:"overhead" json:"overhead"`
}

// BTCPriceConfig is the price of one bitcoin in the power currency.
type BTCPriceConfig struct {
	// Source is "none" (default), "static" (Value) or "feed" (Feed).
	Source string     `yaml:"source" json:"source"`
	Value  float64    `yaml:"value" json:"value"`
	Feed   FeedConfig `yaml:"feed" json:"feed"`
}

// DevicesConfig tunes the device classifier.
type DevicesConfig struct {
	// DefaultJPerTH is the efficiency of unidentified machines (default 30).
	DefaultJPerTH float64 `yaml:"default_j_per_th" json:"default_j_per_th"`
	// Catalog replaces or extends the built-in models: an entry whose name
	// is a built-in model replaces it, others are added.
	Catalog []Model `yaml:"catalog" json:"catalog"`
	// Overrides assign models or efficiencies by worker-name glob; the
	// first match wins.
	Overrides []Override `yaml:"overrides" json:"overrides"`
}

// AdviceConfig shapes run/curtail/hold.
type AdviceConfig struct {
	// Hysteresis is the fraction of the cost the margin's interval must
	// clear to change the advice (default 0.1).
	Hysteresis float64 `yaml:"hysteresis" json:"hysteresis"`
	// MinDwell is how long a new advice's condition must hold before it
	// is given (default 30 min).
	MinDwell time.Duration `yaml:"min_dwell" json:"min_dwell"`
}

// Defaults.
const (
	DefaultRefresh    = 30 * time.Second
	DefaultHysteresis = 0.1
	DefaultMinDwell   = 30 * time.Minute
	DefaultCurrency   = "USD"
)

// Revenue bases.
const (
	BasisTrailingMean   = "trailing_mean"
	BasisTrailingMedian = "trailing_median"
	BasisTemplate       = "template"
)

// ConfigError is a bad configuration value, named by its key in lode.yaml
// (under economics:).
type ConfigError struct {
	Key    string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("economics.%s = %v: %s", e.Key, e.Value, e.Reason)
}

// ConfigKey and ConfigProblem let the config file's loader report the error
// under its full key path.
func (e *ConfigError) ConfigKey() string { return e.Key }

// ConfigProblem is the reason with the value the file holds, if any.
func (e *ConfigError) ConfigProblem() string {
	if e.Value == nil || e.Value == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s (got %v)", e.Reason, e.Value)
}

func bad(key string, v any, reason string) error {
	return &ConfigError{Key: key, Value: v, Reason: reason}
}

// finite reports a usable float.
func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// problems collects the *ConfigErrors of a check, so Validate reports
// every bad value at once.
type problems []error

func (p *problems) bad(key string, v any, reason string) { *p = append(*p, bad(key, v, reason)) }

// Validate checks every value and returns every bad one, each a
// *ConfigError naming its key (errors.Join; errors.As finds the first).
func (c Config) Validate() error {
	var p problems
	if c.Refresh < 0 {
		p.bad("refresh", c.Refresh, "must not be negative")
	}
	if c.FeeWindowBlocks < 0 || c.FeeWindowBlocks > RetargetInterval {
		p.bad("fee_window_blocks", c.FeeWindowBlocks, "must be 0 (default 144) to 2016")
	}
	if !finite(c.PoolFee) || c.PoolFee < 0 || c.PoolFee >= 1 {
		p.bad("pool_fee", c.PoolFee, "must be a fraction in [0, 1)")
	}
	switch c.RevenueBasis {
	case "", BasisTrailingMean, BasisTrailingMedian, BasisTemplate:
	default:
		p.bad("revenue_basis", c.RevenueBasis, "must be trailing_mean, trailing_median or template")
	}
	switch c.RevenueWindow {
	case 0, Window5m, Window1h, Window24h:
	default:
		p.bad("revenue_window", c.RevenueWindow, "must be 5m, 1h or 24h")
	}
	c.Power.validate(&p)
	c.BTCPrice.validate(c.Power.Currency, &p)
	c.Devices.validate(&p)
	a := c.Advice
	if !finite(a.Hysteresis) || a.Hysteresis < 0 {
		p.bad("advice.hysteresis", a.Hysteresis, "must be a non-negative fraction")
	}
	if a.MinDwell < 0 {
		p.bad("advice.min_dwell", a.MinDwell, "must not be negative")
	}
	if err := validateWebhook(c.Webhook); err != nil {
		p = append(p, err)
	}
	return errors.Join(p...)
}

func (pc PowerConfig) validate(p *problems) {
	if pc.Currency != "" && strings.TrimSpace(pc.Currency) == "" {
		p.bad("power.currency", pc.Currency, "must not be blank")
	}
	if !finite(pc.Price) || pc.Price < 0 {
		p.bad("power.price", pc.Price, "must be a non-negative number (per kWh)")
	}
	if pc.Timezone != "" {
		if _, err := time.LoadLocation(pc.Timezone); err != nil {
			p.bad("power.timezone", pc.Timezone, err.Error())
		}
	}
	for i, r := range pc.Schedule {
		key := fmt.Sprintf("power.schedule[%d]", i)
		if !finite(r.Price) || r.Price < 0 {
			p.bad(key+".price", r.Price, "must be a non-negative number (per kWh)")
		}
		from, err := parseClock(r.From)
		if err != nil {
			p.bad(key+".from", r.From, err.Error())
		}
		to, err2 := parseClock(r.To)
		if err2 != nil {
			p.bad(key+".to", r.To, err2.Error())
		}
		if err == nil && err2 == nil && from == to {
			p.bad(key+".to", r.To, "equals from: an empty rate")
		}
		for j, d := range r.Days {
			if _, ok := weekdays[strings.ToLower(d)]; !ok {
				p.bad(fmt.Sprintf("%s.days[%d]", key, j), d, "must be mon, tue, wed, thu, fri, sat or sun")
			}
		}
	}
	pc.Feed.validate("power.feed", p)
	for i, w := range pc.ForcedOff {
		if w.From.IsZero() || !w.To.After(w.From) {
			p.bad(fmt.Sprintf("power.forced_off[%d]", i), fmt.Sprintf("%s..%s", w.From, w.To), "needs from before to")
		}
	}
	if !finite(pc.Overhead) || pc.Overhead < 0 || (pc.Overhead > 0 && pc.Overhead < 1) {
		p.bad("power.overhead", pc.Overhead, "must be ≥ 1 (0: default 1)")
	}
}

func (f FeedConfig) validate(key string, p *problems) {
	if f.URL == "" {
		if f.Field != "" {
			p.bad(key+".url", f.URL, "is required when field is set")
		}
		return
	}
	u, err := url.Parse(strings.ReplaceAll(f.URL, webhook.TokenPlaceholder, "token"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.bad(key+".url", f.URL, "must be an http(s) URL")
	}
	if strings.Contains(f.URL, webhook.TokenPlaceholder) && !f.Token.IsSet() {
		p.bad(key+".token", "", "is required: the url has "+webhook.TokenPlaceholder)
	}
	if f.Header != "" && !f.Token.IsSet() {
		p.bad(key+".header", f.Header, "carries the token: set token too")
	}
	if strings.ContainsAny(f.Header, " :\r\n") {
		p.bad(key+".header", f.Header, "must be a header name")
	}
	if f.Interval < 0 {
		p.bad(key+".interval", f.Interval, "must not be negative")
	}
	if f.MaxAge < 0 {
		p.bad(key+".max_age", f.MaxAge, "must not be negative")
	}
	if f.Timeout < 0 {
		p.bad(key+".timeout", f.Timeout, "must not be negative")
	}
}

func (b BTCPriceConfig) validate(currency string, p *problems) {
	switch b.Source {
	case "", "none":
	case "static":
		if !finite(b.Value) || b.Value <= 0 {
			p.bad("btc_price.value", b.Value, "must be a positive number (it divides)")
		}
	case "feed":
		if b.Feed.URL == "" {
			p.bad("btc_price.feed.url", "", "is required with source: feed")
		} else {
			b.Feed.validate("btc_price.feed", p)
		}
	default:
		p.bad("btc_price.source", b.Source, "must be none, static or feed")
	}
	if strings.EqualFold(currency, "sat") && b.Source != "" && b.Source != "none" {
		p.bad("btc_price.source", b.Source, "power.currency is sat: a BTC price has no currency to convert to")
	}
}

func (d DevicesConfig) validate(p *problems) {
	if !finite(d.DefaultJPerTH) || d.DefaultJPerTH < 0 {
		p.bad("devices.default_j_per_th", d.DefaultJPerTH, "must be a positive number (0: default 30)")
	}
	for i, m := range d.Catalog {
		key := fmt.Sprintf("devices.catalog[%d]", i)
		if strings.TrimSpace(m.Name) == "" {
			p.bad(key+".name", m.Name, "is required")
		}
		if !finite(m.JPerTH) || m.JPerTH <= 0 {
			p.bad(key+".j_per_th", m.JPerTH, "must be a positive number")
		}
		if !finite(m.TypicalTHs) || m.TypicalTHs < 0 {
			p.bad(key+".typical_ths", m.TypicalTHs, "must be a non-negative number")
		}
	}
	for i, o := range d.Overrides {
		key := fmt.Sprintf("devices.overrides[%d]", i)
		if o.Worker == "" {
			p.bad(key+".worker", o.Worker, "is required (a glob such as bc1q…*.rack1-*)")
		}
		if _, err := path.Match(o.Worker, ""); err != nil {
			p.bad(key+".worker", o.Worker, err.Error())
		}
		if (o.Model == "") == (o.JPerTH == 0) {
			p.bad(key, o.Worker, "set exactly one of model and j_per_th")
		}
		if !finite(o.JPerTH) || o.JPerTH < 0 {
			p.bad(key+".j_per_th", o.JPerTH, "must be a positive number")
		}
	}
}

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.FeeWindowBlocks == 0 {
		c.FeeWindowBlocks = DefaultFeeWindowBlocks
	}
	if c.RevenueBasis == "" {
		c.RevenueBasis = BasisTrailingMean
	}
	if c.RevenueWindow == 0 {
		c.RevenueWindow = Window1h
	}
	if c.Power.Currency == "" {
		c.Power.Currency = DefaultCurrency
	}
	if c.Power.Overhead == 0 {
		c.Power.Overhead = 1
	}
	if c.BTCPrice.Source == "" {
		c.BTCPrice.Source = "none"
	}
	if c.Advice.Hysteresis == 0 {
		c.Advice.Hysteresis = DefaultHysteresis
	}
	if c.Advice.MinDwell == 0 {
		c.Advice.MinDwell = DefaultMinDwell
	}
	if c.Devices.DefaultJPerTH == 0 {
		c.Devices.DefaultJPerTH = DefaultJPerTH
	}
	c.Webhook = c.Webhook.WithDefaults()
	return c
}

// catalog merges the configured models into the built-in ones.
func (d DevicesConfig) catalog() []Model {
	cat := DefaultCatalog()
	for _, m := range d.Catalog {
		replaced := false
		for i := range cat {
			if strings.EqualFold(cat[i].Name, m.Name) {
				if m.Match == nil {
					m.Match = cat[i].Match
				}
				if m.Vendor == "" {
					m.Vendor = cat[i].Vendor
				}
				cat[i] = m
				replaced = true
			}
		}
		if !replaced {
			cat = append(cat, m)
		}
	}
	return cat
}

// DefaultConfig is the configuration with every default filled in (and the
// engine off): what lode.yaml's economics section means when left out.
func DefaultConfig() Config { return Config{}.withDefaults() }
