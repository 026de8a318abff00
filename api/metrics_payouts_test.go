package api

import (
	"strings"
	"testing"
)

// TestPayoutMetrics: the payout processor's halt alert is exported where the
// payouts role runs, and only there.
func TestPayoutMetrics(t *testing.T) {
	m := NewMetrics(Sources{Payouts: func() PayoutSnapshot {
		return PayoutSnapshot{Halted: true, AwaitingBroadcast: 2, BroadcastRefused: 3, BroadcastFailed: 4}
	}})
	s, err := New(Config{Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, s.Handler(), "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	for _, want := range []string{
		"lode_payouts_halted 1",
		"lode_payouts_awaiting_broadcast 2",
		`lode_payout_broadcast_failures_total{reason="refused"} 3`,
		`lode_payout_broadcast_failures_total{reason="unreachable"} 4`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("missing %q in\n%s", want, body)
		}
	}
	s, err = New(Config{Metrics: NewMetrics(Sources{})})
	if err != nil {
		t.Fatal(err)
	}
	if _, body := do(t, s.Handler(), "GET", "/metrics", "", ""); strings.Contains(body, "lode_payout") {
		t.Errorf("payout metrics in a process without the payouts role:\n%s", body)
	}
}
