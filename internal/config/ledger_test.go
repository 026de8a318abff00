package config

import (
	"strings"
	"testing"
	"time"
)

// TestRedisUnixAndStatsInterval: redis.address takes a Unix socket as
// unix:///absolute/path (a relative one is refused with the key named), and
// ledger.stats_interval is read (default 1s: statistics once a second; 0:
// with every commit) and bounded.
func TestRedisUnixAndStatsInterval(t *testing.T) {
	for _, tc := range []struct {
		yaml  string
		want  string // "" : valid as far as these keys go
		every time.Duration
	}{
		{"roles: [api]\n", "", time.Second},
		{"roles: [api]\nredis: {address: unix:///run/redis/redis.sock}\n", "", time.Second},
		{"roles: [api]\nredis: {address: unix://redis.sock}\n", "redis.address: want unix:///absolute/path", 0},
		{"roles: [api]\nredis: {address: /run/redis.sock}\n", "redis.address: want host:port", 0},
		{"roles: [api]\nledger: {stats_interval: 1s}\n", "", time.Second},
		{"roles: [api]\nledger: {stats_interval: 0s}\n", "", 0},
		{"roles: [api]\nledger: {stats_interval: -1s}\n", "ledger.stats_interval: must be 0..1m", 0},
		{"roles: [api]\nledger: {stats_interval: 2m}\n", "ledger.stats_interval: must be 0..1m", 0},
	} {
		c, err := Parse(strings.NewReader(tc.yaml))
		got := ""
		if err != nil {
			got = err.Error()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		case err == nil && c.Ledger.StatsInterval != tc.every:
			t.Errorf("%q: stats interval %v, want %v", tc.yaml, c.Ledger.StatsInterval, tc.every)
		}
	}
}
