package economics

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/secret"
)

func TestConfigValidate(t *testing.T) {
	nan := math.NaN()
	t0 := time.Date(2026, 12, 6, 17, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		mod  func(*Config)
		key  string // "" = valid
	}{
		{"zero value", func(*Config) {}, ""},
		{"full", func(c *Config) {
			c.PoolFee = 0.01
			c.Power = PowerConfig{Currency: "EUR", Price: 0.08, Timezone: "Europe/Paris", Overhead: 1.08,
				Schedule:  []TimeOfUse{{Days: []string{"mon", "Fri"}, From: "17:00", To: "21:00", Price: 0.2}, {From: "22:00", To: "06:00", Price: 0.05}},
				Feed:      FeedConfig{URL: "https://prices.example/kwh", Field: "data.price", MaxAge: time.Hour},
				ForcedOff: []Window{{From: t0, To: t0.Add(time.Hour)}}}
			c.BTCPrice = BTCPriceConfig{Source: "feed", Feed: FeedConfig{URL: "http://127.0.0.1:1/p", Field: "bitcoin.eur"}}
			c.Webhook = WebhookConfig{URL: "https://fleet.example/hook", Secret: secret.Literal("s")}
			c.Devices.Overrides = []Override{{Worker: "*.rack1-*", Model: "Antminer S19"}}
		}, ""},
		{"sat currency offline", func(c *Config) { c.Power = PowerConfig{Currency: "sat", Price: 5000} }, ""},
		{"negative pool fee", func(c *Config) { c.PoolFee = -0.01 }, "pool_fee"},
		{"pool fee 100 %", func(c *Config) { c.PoolFee = 1 }, "pool_fee"},
		{"NaN pool fee", func(c *Config) { c.PoolFee = nan }, "pool_fee"},
		{"negative refresh", func(c *Config) { c.Refresh = -time.Second }, "refresh"},
		{"huge fee window", func(c *Config) { c.FeeWindowBlocks = 5000 }, "fee_window_blocks"},
		{"bad basis", func(c *Config) { c.RevenueBasis = "average" }, "revenue_basis"},
		{"bad window", func(c *Config) { c.RevenueWindow = 2 * time.Hour }, "revenue_window"},
		{"negative power price", func(c *Config) { c.Power.Price = -0.1 }, "power.price"},
		{"NaN power price", func(c *Config) { c.Power.Price = nan }, "power.price"},
		{"infinite power price", func(c *Config) { c.Power.Price = math.Inf(1) }, "power.price"},
		{"bad timezone", func(c *Config) { c.Power.Timezone = "Mars/Olympus" }, "power.timezone"},
		{"schedule price NaN", func(c *Config) { c.Power.Schedule = []TimeOfUse{{From: "00:00", To: "01:00", Price: nan}} }, "power.schedule[0].price"},
		{"schedule bad from", func(c *Config) { c.Power.Schedule = []TimeOfUse{{From: "25:00", To: "01:00"}} }, "power.schedule[0].from"},
		{"schedule empty", func(c *Config) { c.Power.Schedule = []TimeOfUse{{From: "01:00", To: "01:00"}} }, "power.schedule[0].to"},
		{"schedule bad day", func(c *Config) {
			c.Power.Schedule = []TimeOfUse{{From: "01:00", To: "02:00"}, {Days: []string{"funday"}, From: "01:00", To: "02:00"}}
		}, "power.schedule[1].days[0]"},
		{"feed url", func(c *Config) { c.Power.Feed = FeedConfig{URL: "ftp://x/y"} }, "power.feed.url"},
		{"feed field without url", func(c *Config) { c.Power.Feed = FeedConfig{Field: "price"} }, "power.feed.url"},
		{"feed negative max age", func(c *Config) { c.Power.Feed = FeedConfig{URL: "http://x/", MaxAge: -1} }, "power.feed.max_age"},
		{"forced_off backwards", func(c *Config) { c.Power.ForcedOff = []Window{{From: t0, To: t0}} }, "power.forced_off[0]"},
		{"overhead below 1", func(c *Config) { c.Power.Overhead = 0.5 }, "power.overhead"},
		{"overhead NaN", func(c *Config) { c.Power.Overhead = nan }, "power.overhead"},
		{"static btc zero divides", func(c *Config) { c.BTCPrice = BTCPriceConfig{Source: "static"} }, "btc_price.value"},
		{"static btc negative", func(c *Config) { c.BTCPrice = BTCPriceConfig{Source: "static", Value: -1} }, "btc_price.value"},
		{"static btc NaN", func(c *Config) { c.BTCPrice = BTCPriceConfig{Source: "static", Value: nan} }, "btc_price.value"},
		{"btc feed without url", func(c *Config) { c.BTCPrice = BTCPriceConfig{Source: "feed"} }, "btc_price.feed.url"},
		{"btc source unknown", func(c *Config) { c.BTCPrice = BTCPriceConfig{Source: "oracle"} }, "btc_price.source"},
		{"btc price with sat currency", func(c *Config) {
			c.Power.Currency = "sat"
			c.BTCPrice = BTCPriceConfig{Source: "static", Value: 1}
		}, "btc_price.source"},
		{"default J/TH negative", func(c *Config) { c.Devices.DefaultJPerTH = -1 }, "devices.default_j_per_th"},
		{"catalog J/TH zero divides", func(c *Config) { c.Devices.Catalog = []Model{{Name: "X", TypicalTHs: 1}} }, "devices.catalog[0].j_per_th"},
		{"catalog no name", func(c *Config) { c.Devices.Catalog = []Model{{JPerTH: 20}} }, "devices.catalog[0].name"},
		{"override bad glob", func(c *Config) { c.Devices.Overrides = []Override{{Worker: "[", JPerTH: 20}} }, "devices.overrides[0].worker"},
		{"override both", func(c *Config) { c.Devices.Overrides = []Override{{Worker: "*", Model: "Antminer S19", JPerTH: 20}} }, "devices.overrides[0]"},
		{"override NaN J/TH", func(c *Config) { c.Devices.Overrides = []Override{{Worker: "*", JPerTH: nan}} }, "devices.overrides[0].j_per_th"},
		{"hysteresis negative", func(c *Config) { c.Advice.Hysteresis = -0.1 }, "advice.hysteresis"},
		{"dwell negative", func(c *Config) { c.Advice.MinDwell = -time.Minute }, "advice.min_dwell"},
		{"webhook without secret", func(c *Config) { c.Webhook.URL = "http://127.0.0.1:9/h" }, "webhook.secret"},
		{"webhook bad url", func(c *Config) { c.Webhook = WebhookConfig{URL: "127.0.0.1:9", Secret: secret.Literal("s")} }, "webhook.url"},
		{"webhook negative attempts", func(c *Config) {
			c.Webhook = WebhookConfig{URL: "http://h/", Secret: secret.Literal("s"), MaxAttempts: -1}
		}, "webhook.max_attempts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			tc.mod(&c)
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("valid config refused: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("want a *ConfigError for %s, got %v", tc.key, err)
			}
			if ce.Key != tc.key {
				t.Fatalf("error names %q, want %q (%v)", ce.Key, tc.key, err)
			}
		})
	}
}

// Every bad value is reported at once, each naming its key.
func TestValidateReportsAll(t *testing.T) {
	c := Config{Refresh: -1, PoolFee: 2}
	c.Power.Schedule = []TimeOfUse{{From: "25:00", To: "06:00", Price: -1}}
	c.Devices.Catalog = []Model{{JPerTH: 20}}
	var keys []string
	for _, e := range c.Validate().(interface{ Unwrap() []error }).Unwrap() {
		keys = append(keys, e.(*ConfigError).Key)
	}
	if got := strings.Join(keys, " "); got != "refresh pool_fee power.schedule[0].price power.schedule[0].from devices.catalog[0].name" {
		t.Fatalf("keys %q", got)
	}
}
