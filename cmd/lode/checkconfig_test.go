package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

// -check-config checks what the daemon checks at start (issue 10 item 8):
// a payout key that is not a WIF, or the WIF of another address, passed the
// check and then stopped the daemon. Both paths now run preflight.
func TestCheckConfigChecksThePayoutKey(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	newKey := func() (*btcec.PrivateKey, string) {
		k, err := btcec.NewPrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		w, err := btcutil.NewWIF(k, params, true)
		if err != nil {
			t.Fatal(err)
		}
		return k, w.String()
	}
	poolKey, poolWIF := newKey()
	_, otherWIF := newKey()
	pool, err := btcutil.NewAddressWitnessPubKeyHash(btcutil.Hash160(poolKey.PubKey().SerializeCompressed()), params)
	if err != nil {
		t.Fatal(err)
	}
	mainKey, err := btcutil.NewWIF(poolKey, &chaincfg.MainNetParams, true)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hot.yaml")
	text := `network: regtest
roles: [payouts]
node: {rpc_user: lode, rpc_password: {env: LODE_TEST_RPC_PASSWORD}}
pool: {payout_address: ` + pool.EncodeAddress() + `}
payouts: {signing: hot, key: {env: LODE_TEST_PAYOUT_KEY}}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LODE_TEST_RPC_PASSWORD", "pw")
	for _, tc := range []struct {
		name, key string
		code      int
		want      string
	}{
		{"not a WIF", "notawif", 1, "payouts.key: load key: environment variable LODE_TEST_PAYOUT_KEY does not hold a valid WIF key"},
		{"key of another address", otherWIF, 1, "payouts"},
		{"key for another network", mainKey.String(), 1, "not for network regtest"},
		{"the pool address's key", poolWIF, 0, "OK (network regtest, roles payouts)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LODE_TEST_PAYOUT_KEY", tc.key)
			var out, errOut strings.Builder
			code := run(t.Context(), []string{"-config", path, "-check-config"}, nil, &out, &errOut)
			got := out.String() + errOut.String()
			if code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("exit %d, want %d with %q; output %q", code, tc.code, tc.want, got)
			}
			if strings.Contains(got, tc.key) && tc.code != 0 {
				t.Fatalf("the key's text reached the output: %q", got)
			}
		})
	}
	// The same function refuses the daemon's start before anything runs.
	t.Setenv("LODE_TEST_PAYOUT_KEY", otherWIF)
	var out, errOut strings.Builder
	if code := run(t.Context(), []string{"-config", path}, nil, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "payouts") {
		t.Fatalf("daemon start with another address's key: exit %d, %q", code, errOut.String())
	}
}

// NaN and infinities (YAML .nan, .inf) fail the file's checks instead of
// slipping through comparisons that NaN makes false.
func TestConfigRefusesNonFiniteNumbers(t *testing.T) {
	t.Setenv("LODE_TEST_RPC_PASSWORD", "pw")
	for _, tc := range []struct{ yaml, key string }{
		{"pool: {payout_address: " + mainnetAddr + ", fee_percent: .nan}", "pool.fee_percent"},
		{"pool: {payout_address: " + mainnetAddr + ", pplns_window: .nan}", "pool.pplns_window"},
		{"pool: {payout_address: " + mainnetAddr + ", pplns_min_window: .inf}", "pool.pplns_min_window"},
		{"pool: {payout_address: " + mainnetAddr + ", pplns_min_window: .nan}", "pool.pplns_min_window"},
		{"pool: {payout_address: " + mainnetAddr + "}\nstratum: {ports: [{listen: ':3333', start_difficulty: .nan, min_difficulty: 1, max_difficulty: 10}]}", "stratum.ports[0].start_difficulty"},
		{"pool: {payout_address: " + mainnetAddr + "}\nstratum: {ports: [{listen: ':3333', start_difficulty: 1, min_difficulty: 1, max_difficulty: .inf}]}", "stratum.ports[0].max_difficulty"},
		{"pool: {payout_address: " + mainnetAddr + "}\nstratum: {ports: [{listen: ':3333', start_difficulty: 1, min_difficulty: 1, max_difficulty: .nan}]}", "stratum.ports[0].max_difficulty"},
		{"pool: {payout_address: " + mainnetAddr + "}\napi: {rate_limit: .nan}", "api.rate_limit"},
		{"pool: {payout_address: " + mainnetAddr + "}\napi: {rate_limit: .inf}", "api.rate_limit"},
		{"pool: {payout_address: " + mainnetAddr + "}\nstratum: {ban: {reject_ratio: .nan}}", "stratum.ban.reject_ratio"},
	} {
		text := "node: {rpc_user: lode, rpc_password: {env: LODE_TEST_RPC_PASSWORD}}\n" + tc.yaml + "\n"
		_, err := ParseConfig(strings.NewReader(text))
		if err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%s: error %v, want one naming %s", tc.yaml, err, tc.key)
		}
	}
}
