package config

import (
	"strings"
	"testing"
)

// TestPPLNSWindowOfZeroUnits: a stratum config whose window would round to
// 0 units at the network's lowest difficulty (regtest: 2 × 4.66e-10) is an
// error naming pool.pplns_min_window; a floor fixes it; mainnet needs none.
// The window archive retention must be positive.
func TestPPLNSWindowOfZeroUnits(t *testing.T) {
	const regtest = "network: regtest\nroles: [stratum]\npool: {payout_address: bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	for _, tc := range []struct {
		yaml string
		want string // "" : no window problem
	}{
		{regtest + "}\n", "pool.pplns_min_window: payouts: PPLNS window of 0 units on regtest"},
		{regtest + ", pplns_min_window: 1}\n", ""},
		{regtest + ", pplns_min_window: 0.00000001}\n", ""},
		{"network: mainnet\nroles: [stratum]\npool: {payout_address: bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kqxsdnd}\n", ""},
		{"roles: [api]\npayouts: {window_archive_blocks: 0, window_archive_days: -1}\n", "payouts.window_archive_blocks: must be at least 1"},
		{"roles: [api]\npayouts: {window_archive_days: 0}\n", "payouts.window_archive_days: must be at least 1"},
	} {
		_, err := Parse(strings.NewReader(tc.yaml))
		got := ""
		if err != nil {
			got = err.Error()
		}
		switch {
		case tc.want == "" && strings.Contains(got, "pplns"):
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
