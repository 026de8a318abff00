package main

import (
	"context"
	"strings"
	"testing"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
)

// lodectl payouts threshold stores the override under the canonical address
// (uppercase bech32 is the same address; the balances are keyed lowercase)
// and applies payment.CheckThreshold, the admin API's rule (issue 10 items 7
// and 10).
func TestPayoutsThresholdCanonicalAndRule(t *testing.T) {
	srv := testenv.StartRedis(t)
	flags := []string{"-redis", srv.Addr, "-prefix", "thr", "-network", "regtest"}
	upper := strings.ToUpper(addrA)
	out, errs, code := runCtl(t, append(append([]string{"payouts", "threshold"}, flags...), upper, "40000")...)
	if code != 0 || !strings.Contains(out, addrA+": payout threshold") {
		t.Fatalf("threshold %s: exit %d %q %q", upper, code, out, errs)
	}
	for _, bad := range []string{"5", "9999", "-1", "x"} {
		if _, errs, code := runCtl(t, append(append([]string{"payouts", "threshold"}, flags...), addrA, bad)...); code != 1 || errs == "" {
			t.Errorf("threshold %s: exit %d %q, want 1 and an error", bad, code, errs)
		}
	}
	s, err := redisstore.Connect(context.Background(), redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "thr"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	th, err := s.Thresholds(context.Background())
	if err != nil || len(th) != 1 || th[addrA] != 40000 {
		t.Fatalf("stored thresholds %v %v, want %s=40000 only", th, err, addrA)
	}
}
