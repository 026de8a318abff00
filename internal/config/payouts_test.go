package config

import (
	"strings"
	"testing"
)

// TestPayoutsPSBTDir: payouts.psbt_dir (documented in docs/payouts.md,
// "Cold") is a known key for cold signing and refused, by key, for hot.
func TestPayoutsPSBTDir(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string // "": parses with psbt_dir set
	}{
		{"roles: [api]\npayouts: {signing: cold, psbt_dir: /var/lib/lode/psbt}\n", ""},
		{"roles: [api]\npayouts: {signing: hot, key: {env: LODE_TEST_KEY}, psbt_dir: /var/lib/lode/psbt}\n", "payouts.psbt_dir: is for signing: cold"},
	} {
		cfg, err := Parse(strings.NewReader(tc.yaml))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.yaml, err)
			} else if cfg.Payouts.PSBTDir != "/var/lib/lode/psbt" {
				t.Errorf("%q: psbt_dir %q", tc.yaml, cfg.Payouts.PSBTDir)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
